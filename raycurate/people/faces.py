"""A run's stored rows exploded into ``faces`` rows: one per detected face, from the ``images`` table
(``source = image``) and from the sampled video frames of the ``frames`` table that reached Stage 2
(``source = frame``). Rows are appended by ``face_id``: a face already stored (the same photo in an
earlier run, a resumed run) is not written twice.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import pyarrow as pa

from ..analyzers.face_embedders import DLIB_ID, VECTOR_COLUMNS
from ..schemas import FACES_SCHEMA
from ..store.people_schema import FACES_TABLE
from ..store.schema import FRAMES_TABLE, TABLE_NAME
from ..store.table import open_or_create_table, sql_str

FACE_COLUMNS = ("face_boxes", "face_kps", "face_scores", "face_sharpness", "face_pose", "face_embeddings",
                "face_embedding_model")
IMAGE_COLUMNS = ("id", "uri", "source_video_id", "frame_index", "frame_timestamp", *FACE_COLUMNS)
FRAME_COLUMNS = ("video_id", "video_uri", "frame_index", "timestamp", *FACE_COLUMNS)
BATCH = 4096   # rows read per batch


def family_of(model: str | None, dim: int | None = None) -> str | None:
    """The embedding family (key of ``VECTOR_COLUMNS``) of a vector made by ``model``: dlib's model id is
    ``dlib``, any other (an InsightFace pack's ArcFace) ``arcface``; None when ``dim`` does not fit it."""
    if not model:
        return None
    family = "dlib" if model.split("@", 1)[0] == DLIB_ID else "arcface"
    return family if dim is None or VECTOR_COLUMNS[family][1] == dim else None


def image_face_id(image_id: str, k: int) -> str:
    return f"{image_id}:{k}"


def frame_face_id(video_id: str, frame_index: int, k: int) -> str:
    return f"{video_id}@{frame_index}:{k}"


@dataclass
class FacesWritten:
    rows: dict[str, int] = field(default_factory=lambda: {"image": 0, "frame": 0})     # faces exploded
    written: dict[str, int] = field(default_factory=lambda: {"image": 0, "frame": 0})  # new to the table
    with_vector: int = 0
    image_ids: set[str] = field(default_factory=set)                                  # images rows with faces

    def as_dict(self) -> dict[str, Any]:
        return {"faces": self.rows, "written": self.written, "with_vector": self.with_vector}


def _at(values: Any, k: int) -> Any:
    return values[k] if values is not None and k < len(values) else None


def explode(row: Mapping[str, Any], *, run_id: str, source: str) -> list[dict[str, Any]]:
    """The faces of one stored row (an ``images`` row, or a ``frames`` row for ``source = frame``)."""
    boxes = row.get("face_boxes") or []
    if source == "image":
        base = {"source": "image", "image_id": row["id"], "uri": row["uri"], "video_id": row.get("source_video_id"),
                "frame_index": row.get("frame_index"), "timestamp": row.get("frame_timestamp")}
        ids = [image_face_id(row["id"], k) for k in range(len(boxes))]
    else:
        base = {"source": "frame", "image_id": None, "uri": row["video_uri"], "video_id": row["video_id"],
                "frame_index": row["frame_index"], "timestamp": row.get("timestamp")}
        ids = [frame_face_id(row["video_id"], row["frame_index"], k) for k in range(len(boxes))]
    model = row.get("face_embedding_model")
    out = []
    for k, box in enumerate(boxes):
        vec = _at(row.get("face_embeddings"), k)
        family = family_of(model, len(vec)) if vec is not None else None
        face = {**base, "face_id": ids[k], "run_id": run_id, "face_index": k, "box": box,
                "kps": _at(row.get("face_kps"), k), "score": _at(row.get("face_scores"), k),
                "pose": _at(row.get("face_pose"), k), "sharpness": _at(row.get("face_sharpness"), k),
                "embedding_model": model if family else None, "identity_id": None, "identity_distance": None}
        for fam, (col, _) in VECTOR_COLUMNS.items():
            face[col] = vec if fam == family else None
        out.append(face)
    return out


def _rows(db_uri: str, table_name: str, where: str, columns: tuple[str, ...]) -> Iterator[list[dict[str, Any]]]:
    from ..store.table import open_table

    try:
        table = open_table(db_uri, table_name)
    except FileNotFoundError:
        return
    have = set(table.schema.names)
    needs = {"face_boxes", "face_embeddings", "face_embedding_model"} | \
        ({"face_count", "error"} if table_name == TABLE_NAME else set())   # what ``where`` reads
    if not needs <= have:
        return
    cols = [c for c in columns if c in have]
    data = table.search().where(where).select(cols).limit(None).to_arrow()
    for batch in data.to_batches(BATCH):
        yield batch.to_pylist()


def faces_of_run(db_uri: str, run_id: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(source, faces) batches of the run's images rows with faces, then its frames rows with face vectors."""
    run = f"run_id = {sql_str(run_id)}"
    for rows in _rows(db_uri, TABLE_NAME, f"{run} AND error IS NULL AND face_count > 0", IMAGE_COLUMNS):
        yield "image", [f for r in rows for f in explode(r, run_id=run_id, source="image")]
    for rows in _rows(db_uri, FRAMES_TABLE, f"{run} AND face_embedding_model IS NOT NULL", FRAME_COLUMNS):
        yield "frame", [f for r in rows for f in explode(r, run_id=run_id, source="frame")]


def write_faces(db_uri: str, run_id: str) -> FacesWritten:
    """The run's faces appended to the ``faces`` table (made when absent); faces already there are kept."""
    table = open_or_create_table(db_uri, FACES_TABLE, FACES_SCHEMA)
    result = FacesWritten()
    seen: set[str] = set()   # a file stored twice in one run (two URIs, one content id) has its faces once
    for source, faces in faces_of_run(db_uri, run_id):
        faces = [f for f in faces if f["face_id"] not in seen and not seen.add(f["face_id"])]
        if not faces:
            continue
        result.rows[source] += len(faces)
        result.with_vector += sum(1 for f in faces if f["embedding_model"])
        result.image_ids |= {f["image_id"] for f in faces if f["image_id"]}
        before = table.count_rows()
        data = pa.Table.from_pylist(faces, schema=FACES_SCHEMA)
        # null vectors (a face not embedded, or of the other family) stay null
        table.merge_insert("face_id").when_not_matched_insert_all().execute(data, on_bad_vectors="null")
        result.written[source] += table.count_rows() - before
    return result
