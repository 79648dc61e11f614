"""The composed table schemas are the ones existing DBs hold: same names, types, nullability and order, byte for byte.

``fixtures/table_schemas.json`` was written from the schemas as the code built them before the store stopped
importing the analysers (commit "tests: snapshot of the table schemas"): each table's fields as
``[name, type, nullable]`` and its Arrow IPC serialisation (base64). A change of a column is a change of that
file, made on purpose."""
import base64
import json
from pathlib import Path

import pyarrow as pa
import pytest

from raycurate.schemas import FACES_SCHEMA, frames_schema, images_schema
from raycurate.store.people_schema import IDENTITIES_SCHEMA

SNAPSHOT = json.loads((Path(__file__).parent / "fixtures" / "table_schemas.json").read_text())


def _schemas() -> dict[str, pa.Schema]:
    return {"images": images_schema(), "frames": frames_schema(), "faces": FACES_SCHEMA,
            "identities": IDENTITIES_SCHEMA}


@pytest.mark.parametrize("table", ["images", "frames", "faces", "identities"])
def test_schema_matches_the_snapshot(table):
    schema = _schemas()[table]
    assert [[f.name, str(f.type), f.nullable] for f in schema] == SNAPSHOT[table]["fields"]
    assert schema.serialize().to_pybytes() == base64.b64decode(SNAPSHOT[table]["ipc"])
