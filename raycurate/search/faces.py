"""Search by face and by identity over the ``faces`` table (declared in :mod:`raycurate.store.people_schema`).

:class:`FaceSearch` answers ``Curation.search(face=..., identity=...)`` (:mod:`raycurate.search.images`) and needs
nothing of it: the DB, its ``images`` table, the settings and the models directory are handed over.

``Curation.search(face=IMG)``: the query picture's largest face, found and embedded the way the stored faces
were (the face detector the ``images`` table records, the embedder family of the faces' ``embedding_model``:
dlib on a default install, ArcFace with the InsightFace pack), is compared with every stored face of that
model (cosine distance; ``where`` applied before). ``same_person`` is ``distance <= SAME_PERSON[family]``.

``Curation.search(identity=ID)``: the faces grouped into identity ``ID``, sharpest first; their distance is
``identity_distance`` (to the identity's centroid).

Both return a ``pyarrow.Table``: rank, distance, same_person, thumbnail (a crop of the face) and
:data:`FACE_HIT_COLUMNS`; the schema metadata names the column, method, model and threshold.
"""
from __future__ import annotations

import hashlib
import os
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from ..analyzers.face_embedders import DLIB_ID, SAME_PERSON, VECTOR_COLUMNS
from ..people.faces import family_of
from ..schemas import FACES_SCHEMA
from ..settings import Settings
from ..store.people_schema import FACES_TABLE, IDENTITIES_TABLE
from ..store.table import open_table, sql_str
from .index import COSINE_ONLY, plan
from .inputs import SearchError, query_pixels
from .results import write_thumbnail

FACE_HIT_COLUMNS = ("face_id", "identity_id", "identity_distance", "source", "image_id", "uri", "video_id",
                    "frame_index", "timestamp", "face_index", "box", "score", "sharpness", "embedding_model")
COLUMN_FAMILY = {col: family for family, (col, _) in VECTOR_COLUMNS.items()}


def pack_of(model: str) -> str | None:
    """The InsightFace pack behind an ArcFace ``embedding_model`` (``insightface-buffalo_l:w600k_r50.onnx``),
    None for a user's folder (``<folder name>/<file>@sha256:...``)."""
    head = model.split(":", 1)[0]
    return head[len("insightface-"):] if head.startswith("insightface-") and ":" in model else None


class FaceSearch:
    """The ``faces`` table of the DB at ``db_uri``, with the face models a query needs.

    ``images``: the DB's ``images`` table (its ``face_model`` says which detector found the stored faces).
    ``settings``: the face analysers' settings, the query's decode size (``decode``) and ``search``.
    ``models_root``: where the face models' weights are. ``thumbs_dir``: where face crops are written."""

    def __init__(self, db_uri: str, images: Any, *, settings: Settings, models_root: Any, thumbs_dir: str,
                 device: str = "cpu") -> None:
        self.db_uri, self.images, self.settings = db_uri, images, settings
        self.models_root, self.thumbs_dir, self.device = models_root, thumbs_dir, device
        try:
            self.table = open_table(db_uri, FACES_TABLE)
        except FileNotFoundError:
            raise SearchError(f"no '{FACES_TABLE}' table in {db_uri}: face and identity search need the "
                              f"faces a run stores (one row per detected face) and groups into identities") from None
        self._analysers: dict[str, tuple[Any, Any]] = {}   # embedding model -> (FaceAnalyzer, FaceFeaturesAnalyzer)

    # -- which model --------------------------------------------------------------------------------
    def stored_models(self, column: str | None = None) -> list[str]:
        """The ``embedding_model`` values of faces holding a vector (in ``column`` when given), most faces first."""
        cols = [column] if column else [c for c, _ in VECTOR_COLUMNS.values()]
        cond = " OR ".join(f"{c} IS NOT NULL" for c in cols)
        found = (self.table.search().where(f"embedding_model IS NOT NULL AND ({cond})").select(["embedding_model"])
                 .limit(None).to_arrow().column("embedding_model").to_pylist())
        return [m for m, _ in Counter(found).most_common()]

    def _usable(self, model: str) -> tuple[bool, str]:
        """Whether ``model``'s weights can embed a query here; else why, with the fix."""
        from .. import models
        from ..analyzers import insightface_pack

        root = self.models_root
        if family_of(model) == "dlib":
            spec = models.find_spec(DLIB_ID, root)
            state = models.status(spec, root)
            return state == "ok", f"{DLIB_ID} is {state} in {root}; {models.fix_hint(spec, root)}"
        pack = pack_of(model) or self._config_pack()
        ok, why = insightface_pack.available(pack, str(root))
        fix = ("copy the pack's ONNX files there" if insightface_pack.is_folder(pack) else
               f"run `raycurate models pull {insightface_pack.registry_id(pack)} --models-dir {root}`")
        return ok, f"the stored faces are ArcFace vectors ({model}), which need the InsightFace pack: {why}; {fix}"

    def _config_pack(self) -> str:
        analyzers = self.settings.analyzers
        return str(analyzers.face_features.pack or analyzers.face.pack)

    def choose(self, column: str | None) -> str:
        """The stored embedding model a picture's face is embedded with (the first usable, most faces first)."""
        if column is not None and column not in COLUMN_FAMILY:
            raise SearchError(f"{column!r} is not a face vector column; face vector columns: "
                              f"{', '.join(COLUMN_FAMILY)}")
        found = self.stored_models(column)
        if not found:
            raise SearchError(f"the {FACES_TABLE} table holds no face vectors"
                              + (f" in {column}" if column else "") + ": nothing to compare a face with")
        reasons = []
        for model in found:
            ok, why = self._usable(model)
            if ok:
                return model
            reasons.append(why)
        raise SearchError("a face query cannot be embedded: " + " | ".join(reasons))

    # -- the query's face -----------------------------------------------------------------------------
    def _detector(self) -> tuple[str, str]:
        """(detector, pack) the images table's faces were found with (its ``face_model``), else ``auto``."""
        from ..analyzers import insightface_pack

        pack = self._config_pack()
        table = self.images
        if "face_model" not in table.schema.names:
            return "auto", pack
        refs = (table.search().where("face_count > 0 AND face_model IS NOT NULL").select(["face_model"])
                .limit(1000).to_arrow().column("face_model").to_pylist())
        model = Counter(r.split("@", 1)[0] for r in refs).most_common(1)[0][0] if refs else ""
        if model.startswith("insightface-folder:"):
            return "insightface", model.split(":", 1)[1]
        if model.startswith("insightface-"):
            found = model[len("insightface-"):]
            ok, _ = insightface_pack.available(found, str(self.models_root))
            return ("insightface", found) if ok else ("centerface", pack)
        if model.startswith("opencv-haar"):
            return "opencv_haar", pack
        return ("centerface", pack) if model.startswith("centerface") else ("auto", pack)

    def _models_for(self, model: str) -> tuple[Any, Any]:
        """The face detector and embedder for queries against ``model``'s vectors, loaded once."""
        if model not in self._analysers:
            from ..analyzers.face import FaceAnalyzer
            from ..analyzers.face_features import FaceFeaturesAnalyzer
            from ..models import ModelError

            face, feats = self.settings.analyzers.face, self.settings.analyzers.face_features
            detector, det_pack = self._detector()
            root = str(self.models_root)
            try:
                finder = FaceAnalyzer(detector=detector, pack=det_pack, det_size=face.det_size,
                                      det_thresh=face.det_thresh, max_faces=face.max_faces, models_dir=root)
                embedder = FaceFeaturesAnalyzer(
                    embedder="dlib" if family_of(model) == "dlib" else "insightface",
                    pack=pack_of(model) or self._config_pack(), min_face_px=feats.min_face_px,
                    min_face_sharpness=feats.min_face_sharpness, models_dir=root, device=self.device)
                finder.setup()
                embedder.setup()
            except (ModelError, OSError, ImportError, ValueError) as exc:
                raise SearchError(f"the face models of a face query cannot be loaded: {exc}") from None
            self._analysers[model] = (finder, embedder)
        return self._analysers[model]

    def query_vector(self, image: str | np.ndarray, model: str) -> tuple[np.ndarray, list[float]]:
        """The vector of the query picture's largest face, and its box (fractions)."""
        finder, embedder = self._models_for(model)
        decode = self.settings.decode
        rgb = query_pixels(image, max_side=decode.max_side, max_pixels=decode.max_pixels)
        shown = "the query array" if isinstance(image, np.ndarray) else os.path.basename(os.fspath(image))
        batch = finder({"image": [rgb], "error": [None]})
        if batch["face_error"][0]:
            raise SearchError(f"face detection failed on {shown}: {batch['face_error'][0]}")
        if not batch["face_count"][0]:
            raise SearchError(f"no face found in the query image {shown} ({finder.detector.model_id}): "
                              f"give a picture where a face is visible")
        out = embedder(batch)
        column = VECTOR_COLUMNS[family_of(model)][0]
        if out["face_features_error"][0]:
            raise SearchError(f"the face of {shown} could not be embedded: {out['face_features_error'][0]}")
        if out[column][0] is None:
            raise SearchError(f"the largest face of {shown} cannot be embedded: {out['face_embedding_reasons'][0][0]}")
        if out["face_embedding_model"][0] != model:
            raise SearchError(f"the query's face was embedded by {out['face_embedding_model'][0]}, the stored faces "
                              f"by {model}: vectors of two models cannot be compared")
        return np.asarray(out[column][0], dtype=np.float32), list(batch["face_boxes"][0][0])

    # -- the searches ---------------------------------------------------------------------------------
    def search(self, *, face: str | np.ndarray | None, identity: str | None, where: str | None, k: int,
               column: str | None, prefilter: bool, thumbnails: bool) -> pa.Table:
        if identity is not None:
            return self.identity(identity, where=where, k=k, thumbnails=thumbnails)
        assert face is not None
        model = self.choose(column)
        family = family_of(model)
        column = VECTOR_COLUMNS[family][0]
        vec, box = self.query_vector(face, model)
        # only a cosine index serves: dlib's vectors are not unit length, so l2 and dot do not give cosine
        query, method, _ = plan(self.table.search(vec, vector_column_name=column), self.table, column, k,
                                self.settings.search, COSINE_ONLY)
        filters = [f"embedding_model = {sql_str(model)}", f"{column} IS NOT NULL"] + ([f"({where})"] if where else [])
        try:
            hits = (query.where(" AND ".join(filters), prefilter=prefilter)
                    .select([*FACE_HIT_COLUMNS, "_distance"]).limit(k).to_arrow())
        except ValueError as exc:
            raise SearchError(f"face search on {column} failed" + (f" (where: {where})" if where else "")
                              + f": {exc}") from None
        distance = np.maximum(np.asarray(hits.column("_distance").to_numpy(zero_copy_only=False), np.float64), 0.0)
        meta = {"raycurate.kind": "face", "raycurate.column": column, "raycurate.method": method,
                "raycurate.model": model, "raycurate.same_person": str(SAME_PERSON[family]),
                "raycurate.query_box": ",".join(f"{v:.4f}" for v in box)}
        same = distance <= SAME_PERSON[family]
        return self._table(hits.drop_columns(["_distance"]), distance, same.tolist(), meta, thumbnails)

    def identity(self, identity: str, *, where: str | None, k: int, thumbnails: bool) -> pa.Table:
        """The faces of identity ``identity`` (sharpest first, at most ``k``)."""
        identity = identity.strip()
        cond = f"identity_id = {sql_str(identity)}" + (f" AND ({where})" if where else "")
        try:
            rows = self.table.search().where(cond).select(list(FACE_HIT_COLUMNS)).limit(None).to_arrow()
        except ValueError as exc:
            raise SearchError(f"identity search failed (where: {cond}): {exc}") from None
        if rows.num_rows == 0:
            raise SearchError(f"unknown identity: no face of the {FACES_TABLE} table has identity_id {identity!r}"
                              + (f" (with where: {where})" if where else ""))
        order = sorted(range(rows.num_rows), key=lambda i: -(rows.column("sharpness")[i].as_py() or -1.0))[:k]
        rows = rows.take(order)
        models = [m for m in rows.column("embedding_model").to_pylist() if m]
        model = Counter(models).most_common(1)[0][0] if models else ""
        distance = np.asarray(rows.column("identity_distance").to_numpy(zero_copy_only=False), np.float64)
        meta = {"raycurate.kind": "identity", "raycurate.column": "identity_id", "raycurate.method": "scan",
                "raycurate.model": model, "raycurate.identity": identity,
                "raycurate.identity_name": self._identity_name(identity)}
        return self._table(rows, distance, [True] * rows.num_rows, meta, thumbnails)

    def _identity_name(self, identity: str) -> str:
        try:
            table = open_table(self.db_uri, IDENTITIES_TABLE)
            rows = table.search().where(f"identity_id = {sql_str(identity)}").select(["name"]).limit(1).to_list()
        except (FileNotFoundError, ValueError):
            return ""
        return str(rows[0].get("name") or "") if rows else ""

    def _table(self, hits: pa.Table, distance: np.ndarray, same: list[bool], meta: dict[str, str],
               thumbnails: bool) -> pa.Table:
        n = hits.num_rows
        rows = hits.to_pylist()
        arrays: dict[str, pa.Array] = {"rank": pa.array(range(1, n + 1), pa.int32()),
                                       "distance": pa.array(distance, pa.float32()),
                                       "same_person": pa.array(same, pa.bool_())}
        for name in FACE_HIT_COLUMNS:
            arrays[name] = hits.column(name).combine_chunks().cast(FACES_SCHEMA.field(name).type)
            if name == "uri":
                arrays["thumbnail"] = pa.array([self.thumbnail(r) if thumbnails else None for r in rows], pa.string())
        return pa.table(arrays).replace_schema_metadata(meta)

    def thumbnail(self, row: dict[str, Any]) -> str | None:
        """A JPEG crop of the face (None for a face of a sampled video frame: its picture is not stored)."""
        if not row.get("uri") or not row.get("box") or (row.get("source") == "frame" and not row.get("image_id")):
            return None
        name = "face-" + hashlib.sha256(str(row["face_id"]).encode()).hexdigest()[:11]
        return write_thumbnail(self.thumbs_dir, name, row["uri"], box=row["box"])


__all__ = ["COLUMN_FAMILY", "FACE_HIT_COLUMNS", "FaceSearch", "pack_of"]
