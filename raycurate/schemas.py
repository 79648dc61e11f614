"""The full schemas of the tables whose columns the analysers declare: where storage and compute meet.

Each analyser declares its columns (:meth:`raycurate.analyzers.Analyzer.fields`), each cascade stage its own
(:meth:`raycurate.stages.CascadeStage.fields`) and the face embedders their vector columns
(:data:`raycurate.analyzers.face_embedders.VECTOR_FIELDS`). The store declares the rest and composes the tables
from what it is given (:mod:`raycurate.store.schema`, :mod:`raycurate.store.people_schema`), importing none of
the analysers; this module gathers the declarations and hands them over. Nothing below it imports it.
"""
from __future__ import annotations

import pyarrow as pa

from .analyzers import ANALYZERS
from .analyzers.face_embedders import VECTOR_FIELDS
from .stages import STAGES
from .store.people_schema import faces_schema_of
from .store.schema import frames_schema_of, images_schema_of


def analyzer_fields() -> list[pa.Field]:
    """Every known analyser's columns, in pipeline order (the order of :data:`raycurate.analyzers.ANALYZERS`)."""
    return [f for cls in ANALYZERS.values() for f in cls.fields()]


def images_schema() -> pa.Schema:
    """The ``images`` table: the store's columns, then every known analyser's (a disabled one's are null), so
    that runs with different analysers enabled append to one table."""
    return images_schema_of(analyzer_fields())


def frames_schema() -> pa.Schema:
    """The ``frames`` table: the store's key columns, every cascade stage's columns in stage order, dedup's marks."""
    return frames_schema_of([f for stage in STAGES.values() for f in stage.fields()])


# The ``faces`` table, with one vector column per embedding family.
FACES_SCHEMA = faces_schema_of(VECTOR_FIELDS)
