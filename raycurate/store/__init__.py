"""LanceDB storage: table schemas, opening/creating tables."""
from .schema import (CORE_FIELDS, FILES_SCHEMA, FILES_TABLE, FRAMES_TABLE, LINEAGE_FIELDS, STAGE3_SCHEMA,
                     STAGE3_TABLE, TABLE_NAME, VIDEOS_DONE_SCHEMA, VIDEOS_DONE_TABLE, VIDEOS_SCHEMA, VIDEOS_TABLE,
                     conform, frames_schema_of, images_schema_of)
from .table import open_images_table, open_or_create_images_table, open_or_create_table, open_table

__all__ = ["CORE_FIELDS", "FILES_SCHEMA", "FILES_TABLE", "FRAMES_TABLE", "LINEAGE_FIELDS", "STAGE3_SCHEMA",
           "STAGE3_TABLE", "TABLE_NAME", "VIDEOS_DONE_SCHEMA", "VIDEOS_DONE_TABLE", "VIDEOS_SCHEMA", "VIDEOS_TABLE",
           "conform", "frames_schema_of", "images_schema_of", "open_images_table", "open_or_create_images_table",
           "open_or_create_table", "open_table"]
