"""The ``faces`` and ``identities`` tables, and the people columns of ``images``: declared here, once.

``faces`` holds one row per detected face, in photos (``source = image``) and in sampled video frames
(``source = frame``), with the face's geometry, its embedding and the identity it was grouped into.
``identities`` holds one row per identity of one embedding family (ArcFace or dlib): its centroid, its
face count, its best face and the name a user gave it.

The faces' vector columns, one per embedding family, are the analysers' declaration
(:data:`raycurate.analyzers.face_embedders.VECTOR_FIELDS`): :func:`faces_schema_of` takes them, and
:data:`raycurate.schemas.FACES_SCHEMA` passes them.
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

FACES_TABLE = "faces"
IDENTITIES_TABLE = "identities"

# A face: where it was found, its geometry and the model behind its vector ...
FACE_FIELDS: list[pa.Field] = [
    pa.field("face_id", pa.string(), nullable=False),   # "<image id>:<k>" or "<video id>@<frame index>:<k>"
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),    # image | frame
    pa.field("image_id", pa.string()),                  # images.id (photos, exported frames); null: a sampled frame
    pa.field("uri", pa.string()),                       # the image's URI, or the video's for a sampled frame
    pa.field("video_id", pa.string()),                  # lineage of a face in a video frame
    pa.field("frame_index", pa.int64()),
    pa.field("timestamp", pa.float64()),
    pa.field("face_index", pa.int32()),                 # 0: the largest face of its image
    pa.field("box", pa.list_(pa.float32(), 4)),         # x1, y1, x2, y2 as fractions of the image
    pa.field("kps", pa.list_(pa.float32(), 10)),        # 5 landmarks, fractions
    pa.field("score", pa.float32()),                    # detection confidence
    pa.field("pose", pa.list_(pa.float32(), 3)),        # pitch, yaw, roll (degrees)
    pa.field("sharpness", pa.float32()),                # variance of the Laplacian of the 112 px crop
    pa.field("embedding_model", pa.string()),           # the model behind the vector (face_embedding_model)
]
# ... then its vector (one column per embedding family, given), then the identity it was grouped into.
FACE_IDENTITY_FIELDS: list[pa.Field] = [
    pa.field("identity_id", pa.string()),               # null: not (yet) grouped
    pa.field("identity_distance", pa.float32()),        # cosine distance to the identity's centroid
]


def faces_schema_of(vectors: Sequence[pa.Field]) -> pa.Schema:
    """The ``faces`` table, with ``vectors`` (one vector column per embedding family) after the embedding's model."""
    return pa.schema(FACE_FIELDS + list(vectors) + FACE_IDENTITY_FIELDS)


IDENTITIES_SCHEMA = pa.schema([
    pa.field("identity_id", pa.string(), nullable=False),   # stable across runs: never renumbered
    pa.field("family", pa.string(), nullable=False),        # arcface | dlib (embedding family)
    pa.field("name", pa.string()),                          # a person's name (rename, or --person)
    pa.field("centroid", pa.list_(pa.float32())),           # unit mean of its faces' vectors
    pa.field("face_count", pa.int64()),
    pa.field("image_count", pa.int64()),
    pa.field("best_face_id", pa.string()),                  # sharpest, most frontal face
    pa.field("created_run", pa.string()),
    pa.field("updated_at", pa.timestamp("us", tz="UTC")),
])

# Written on ``images`` rows after the faces are grouped (null until then).
PEOPLE_FIELDS: list[pa.Field] = [
    pa.field("identity_id", pa.string()),               # the main (largest) face's identity
    pa.field("identity_ids", pa.list_(pa.string())),    # every face's identity, in face order (null: none)
    pa.field("persons", pa.list_(pa.string())),         # the --person targets shown in the image
]
