"""LanceDB storage: the table schema, opening/creating the table, reading rows back."""
from .schema import CORE_FIELDS, TABLE_NAME, conform, images_schema
from .table import open_images_table, open_or_create_images_table

__all__ = ["CORE_FIELDS", "TABLE_NAME", "conform", "images_schema", "open_images_table",
           "open_or_create_images_table"]
