"""Similar-frame search over a curated ``images`` table: by an image, by a stored row's id, or by text.

``raycurate.open(db).search(image=..., id=..., text=..., where=..., k=10)`` returns a
``pyarrow.Table`` of hits, nearest first (cosine distance), with a JPEG thumbnail per hit.

The vector column: ``clip_embedding`` when the table holds CLIP vectors and the CLIP model
recorded in ``clip_model`` has verified weights in the models directory, else ``content_vector``
(the DCT vector, which needs no model). Text needs CLIP. A query image is decoded the way the
pipeline decodes (same ``decode.max_side``), so a stored image queried with its own file comes
back first at distance ~0. Rows whose vector was written by another CLIP model than the query's
are left out (embeddings of two models cannot be compared).

A model is loaded only when the query needs one: an image or text query on ``clip_embedding``.
``--id`` reads the stored vector; ``content_vector`` is computed without any model.

An ANN index on the column is used when there is one (at least ``search.nprobes`` partitions probed,
more when a narrow prefilter needs them, and ``search.refine_factor`` x k candidates re-ranked on the
full vectors, so the distances returned are exact; :mod:`raycurate.search.index`); without one the search
is exact.

Face and identity queries go to :class:`raycurate.search.faces.FaceSearch`. The hits' table and the
thumbnails are built in :mod:`raycurate.search.results`.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

import numpy as np
import pyarrow as pa

from ..analyzers.face_embedders import FACE_VECTOR_COLUMNS as FACE_VECTORS   # main-face vectors, one a family
from ..settings import Settings
from ..store.table import sql_str
from .index import plan
from .inputs import SearchError, query_pixels, resolve_db
from .results import HIT_COLUMNS, join_path, result_table, write_thumbnail


class Curation:
    """A curated DB, opened for search.

    ``models_dir``: where CLIP weights are looked for (else ``$RAYCURATE_MODELS``, else the default).
    ``thumbs_dir``: where thumbnails are written (default ``<db>/thumbnails``). ``max_side``: the
    decode size of query images (default: ``decode.max_side`` of the settings). ``settings``: the typed
    settings (``decode``, ``search``, the CLIP and face analysers'), built where the command or the library
    call starts (:func:`raycurate.open`, the CLI, the UI).
    """

    def __init__(self, db_uri: str, *, models_dir: str | None = None, thumbs_dir: str | None = None,
                 max_side: int | None = None, device: str = "cpu", settings: Settings) -> None:
        from .. import models
        from ..store import open_images_table

        if max_side is not None:
            settings = dataclasses.replace(settings, decode=dataclasses.replace(settings.decode, max_side=max_side))
        self.settings = settings
        self.db_uri = resolve_db(db_uri)
        self.models_root = models.models_dir(models_dir)
        self.thumbs_dir = thumbs_dir or join_path(self.db_uri, "thumbnails")
        self.device = device
        try:
            self.table = open_images_table(self.db_uri)
        except OSError as exc:   # FileNotFoundError: no table; SourceError: a bucket that refuses
            raise SearchError(str(exc)) from None
        self._clip: dict[str, Any] = {}   # model id -> loaded ClipAnalyzer
        self._clip_models: dict[str, list[str]] | None = None
        self._faces: Any = None   # raycurate.search.faces.FaceSearch, opened on the first face query

    # -- what can be searched --------------------------------------------------------------
    def vector_columns(self) -> list[str]:
        """The table's vector columns (fixed-size float lists)."""
        return [f.name for f in self.table.schema
                if pa.types.is_fixed_size_list(f.type) and pa.types.is_floating(f.type.value_type)]

    def clip_models(self) -> dict[str, list[str]]:
        """CLIP model id -> the ``clip_model`` values (id@version) of rows holding a ``clip_embedding``;
        the model with the most rows first. Read once: a Curation searches the table as it was opened."""
        if self._clip_models is not None:
            return self._clip_models
        if "clip_embedding" not in self.table.schema.names:
            self._clip_models = {}
            return {}
        refs = (self.table.search().where("clip_embedding IS NOT NULL AND clip_model IS NOT NULL")
                .select(["clip_model"]).limit(None).to_arrow().column("clip_model").to_pylist())
        counts: dict[str, dict[str, int]] = {}
        for ref in refs:
            per = counts.setdefault(ref.split("@", 1)[0], {})
            per[ref] = per.get(ref, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: -sum(kv[1].values()))
        self._clip_models = {model_id: sorted(per) for model_id, per in ranked}
        return self._clip_models

    def usable_clip(self) -> tuple[str | None, str]:
        """(the CLIP model whose stored vectors can be queried here, or None; why not when None)."""
        from .. import models

        found = self.clip_models()
        if not found:
            return None, "the images table holds no CLIP vectors (clip_embedding is null on every row)"
        reasons = []
        for model_id in found:
            try:
                state = models.status(models.find_spec(model_id, self.models_root), self.models_root)
            except models.ModelError:
                state = "unknown (not in the registry nor in raycurate-models.extra.json)"
            if state == "ok":
                return model_id, ""
            reasons.append(f"the table's CLIP vectors come from {model_id}, which is {state} in {self.models_root}")
        return None, "; ".join(reasons)

    # -- the search ---------------------------------------------------------------------------
    def search(self, *, image: str | np.ndarray | None = None, id: str | None = None,  # noqa: A002
               text: str | None = None, face: str | np.ndarray | None = None, identity: str | None = None,
               where: str | None = None, k: int = 10, column: str | None = None,
               prefilter: bool = True, thumbnails: bool = True) -> pa.Table:
        """The ``k`` rows nearest to the query, nearest first.

        Exactly one of ``image`` (a path or URI, or an RGB uint8 array), ``id`` (a stored row's
        content id, or a unique prefix of one: its stored vector is the query) and ``text`` (CLIP).
        ``where``: SQL over the stored columns, applied before the vector search (``prefilter``).
        Columns: rank, distance (cosine), thumbnail, and :data:`HIT_COLUMNS`; the schema metadata
        says which column and method served (``raycurate.column``, ``raycurate.method``).

        ``face`` (a picture: its largest face is the query) and ``identity`` (an identity id: its faces)
        search the ``faces`` table instead (``where`` over its columns): see :mod:`raycurate.search.faces`.
        """
        given = [name for name, v in (("image", image), ("id", id), ("text", text), ("face", face),
                                      ("identity", identity)) if v is not None]
        if len(given) != 1:
            raise SearchError(f"give exactly one of image, id, text, face, identity (got {', '.join(given) or 'none'})")
        if k < 1:
            raise SearchError(f"k must be at least 1, got {k}")
        kind = given[0]
        if kind in ("face", "identity"):
            return self.faces().search(face=face, identity=identity, where=where, k=k, column=column,
                                       prefilter=prefilter, thumbnails=thumbnails)
        if column is not None and column not in self.vector_columns():
            raise SearchError(f"{column!r} is not a vector column of the images table; "
                              f"vector columns: {', '.join(self.vector_columns())}")

        clip_model: str | None = None
        face_model: str | None = None
        if kind == "id":
            assert id is not None
            column, vec, model = self._stored_query(id, column)
            if column in FACE_VECTORS:
                face_model = model
            else:
                clip_model = model
        else:
            column, clip_model = self._column_for(kind, column)
            vec = (self._text_vector(text, clip_model) if kind == "text"
                   else self._image_vector(image, column, clip_model))
        filters = [f"({where})"] if where else []
        if column == "clip_embedding" and clip_model is not None:
            refs = self.clip_models().get(clip_model, [])
            filters.append("clip_model IN (" + ", ".join(sql_str(r) for r in refs) + ")" if refs else "FALSE")
        if face_model is not None:   # face vectors of another model live in the same column space: never mix
            filters.append(f"face_embedding_model = {sql_str(face_model)}")
        hits, method = self._nearest(vec, column, " AND ".join(filters) or None, k, prefilter)
        return self._finish(hits, column, method, clip_model, thumbnails)

    def faces(self) -> Any:
        """Search over the ``faces`` table (:class:`raycurate.search.faces.FaceSearch`), opened on first use."""
        if self._faces is None:
            from .faces import FaceSearch

            self._faces = FaceSearch(self.db_uri, self.table, settings=self.settings, models_root=self.models_root,
                                     thumbs_dir=self.thumbs_dir, device=self.device)
        return self._faces

    def _column_for(self, kind: str, column: str | None) -> tuple[str, str | None]:
        """The column and CLIP model of an image or text query."""
        if column in (None, "clip_embedding"):
            clip_model, why = self.usable_clip()
            if clip_model is not None:
                return "clip_embedding", clip_model
            if kind == "text" or column == "clip_embedding":
                raise SearchError(self._no_clip_message(kind, why))
            return "content_vector", None
        if kind == "text":
            raise SearchError(f"text search needs CLIP (clip_embedding); {column} cannot embed text")
        if column != "content_vector":
            raise SearchError(f"an image query on {column} is not supported (only content_vector and "
                              f"clip_embedding); query a stored row with id= (--id) instead")
        return column, None

    def _no_clip_message(self, kind: str, why: str) -> str:
        found = list(self.clip_models())
        missing = found[0] if found else self.settings.analyzers.clip.weights
        what = "text search needs CLIP" if kind == "text" else "an image query on clip_embedding needs CLIP"
        fix = (f"run `raycurate models pull {missing} --models-dir {self.models_root}`" if found else
               f"run `raycurate models pull {missing}`, then curate again with CLIP enabled")
        if found and "unknown" in why:
            fix += (f" (for your own model: declare it in raycurate-models.extra.json there, copy its files in "
                    f"and run `raycurate models verify {missing} --record`)")
        return f"{what}: {why}; {fix}"

    def _stored_query(self, content_id: str, column: str | None) -> tuple[str, np.ndarray, str | None]:
        """(column, stored vector, its CLIP model) of the row with this id (or unique id prefix)."""
        if not re.fullmatch(r"[0-9a-fA-F]{4,64}", content_id):
            raise SearchError(f"not a content id: {content_id!r} (the sha256 hex of a stored file, or a prefix)")
        content_id = content_id.lower()
        cond = f"id = '{content_id}'" if len(content_id) == 64 else f"starts_with(id, '{content_id}')"
        vectors = [c for c in ("clip_embedding", "content_vector", *FACE_VECTORS) if c in self.vector_columns()]
        cols = ["id", *vectors] + [c for c in ("clip_model", "face_embedding_model") if c in self.table.schema.names]
        rows = self.table.search().where(cond).select(cols).limit(None).to_arrow().to_pylist()
        ids = sorted({r["id"] for r in rows})
        if not ids:
            raise SearchError(f"unknown id: no row of the images table has id {content_id}")
        if len(ids) > 1:
            raise SearchError(f"id prefix {content_id} is ambiguous: {len(ids)} ids start with it")
        if column is None:
            clip_model = self.usable_clip()[0]
            usable = [r for r in rows if clip_model is not None and r.get("clip_embedding") is not None
                      and str(r.get("clip_model") or "").split("@", 1)[0] == clip_model]
            column, rows = ("clip_embedding", usable) if usable else ("content_vector", rows)
        row = next((r for r in rows if r.get(column) is not None), None)
        if row is None:
            raise SearchError(f"row {ids[0][:16]} has no {column} (its analyser did not run or failed on it)")
        model = None
        if column == "clip_embedding":
            model = str(row.get("clip_model") or "").split("@", 1)[0] or None
        elif column in FACE_VECTORS:
            model = row.get("face_embedding_model")
        return column, np.asarray(row[column], dtype=np.float32), model

    def _image_vector(self, image: str | np.ndarray, column: str, clip_model: str | None) -> np.ndarray:
        decode = self.settings.decode
        rgb = query_pixels(image, max_side=decode.max_side, max_pixels=decode.max_pixels)
        if column == "content_vector":
            from ..analyzers.content_vector import ContentVectorAnalyzer

            content = ContentVectorAnalyzer()
            content.setup()
            return np.asarray(content.analyze([rgb], {})[0]["content_vector"], dtype=np.float32)
        assert clip_model is not None
        return np.asarray(self._clip_analyzer(clip_model).analyze([rgb], {})[0]["clip_embedding"], dtype=np.float32)

    def _text_vector(self, text: str, clip_model: str | None) -> np.ndarray:
        assert clip_model is not None
        if not text.strip():
            raise SearchError("the text query is empty")
        return self._clip_analyzer(clip_model).embed_text([text])[0]

    def _clip_analyzer(self, model_id: str) -> Any:
        """The CLIP analyser for ``model_id``, loaded once per :class:`Curation` (no aesthetic head)."""
        if model_id not in self._clip:
            from ..analyzers.clip import ClipAnalyzer
            from ..models import ModelError

            clip = ClipAnalyzer(weights=model_id, aesthetic=None, models_dir=str(self.models_root),
                                device=self.device)
            try:
                clip.setup()
            except ModelError as exc:   # e.g. a weight file changed since it was verified
                raise SearchError(str(exc)) from None
            self._clip[model_id] = clip
        return self._clip[model_id]

    def _nearest(self, vec: np.ndarray, column: str, where: str | None, k: int, prefilter: bool
                 ) -> tuple[pa.Table, str]:
        norm = float(np.linalg.norm(vec))
        if not np.isfinite(norm) or norm == 0.0:
            raise SearchError("the query vector is zero or not finite")
        query, method, scale = plan(self.table.search((vec / norm).astype(np.float32), vector_column_name=column),
                                    self.table, column, k, self.settings.search)
        if where:
            query = query.where(where, prefilter=prefilter)
        names = [c for c in HIT_COLUMNS if c in self.table.schema.names]
        try:
            hits = query.select([*names, "_distance"]).limit(k).to_arrow()
        except ValueError as exc:   # lance's message names the bad column or the SQL parse error
            raise SearchError(f"search on {column} failed" + (f" (where: {where})" if where else "")
                              + f": {exc}") from None
        distance = np.asarray(hits.column("_distance").to_numpy(zero_copy_only=False), dtype=np.float64) * scale
        distance = np.maximum(distance, 0.0)   # rounding gives -1e-8 for the query itself
        hits = hits.drop_columns(["_distance"]).append_column("distance", pa.array(distance, pa.float32()))
        return hits, method

    def _finish(self, hits: pa.Table, column: str, method: str, clip_model: str | None,
                thumbnails: bool) -> pa.Table:
        thumbs = [self.thumbnail(r["id"], r["uri"]) if thumbnails else None for r in hits.to_pylist()]
        return result_table(hits, thumbs, self.table.schema, column, method, clip_model)

    # -- thumbnails -----------------------------------------------------------------------------
    def thumbnail(self, content_id: str, uri: str) -> str | None:
        """Path of a JPEG thumbnail (longest side :data:`THUMB_SIDE`) of the original at ``uri``,
        written under ``thumbs_dir`` the first time; None when the original cannot be read."""
        return write_thumbnail(self.thumbs_dir, content_id, uri)


__all__ = ["Curation"]
