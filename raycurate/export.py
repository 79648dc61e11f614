"""Export of the kept images: the originals, their metadata, and training-ready layouts.

Rows are streamed out of LanceDB with the keep predicate applied inside
LanceDB; no model runs here (``export_from_db`` re-exports an existing table).
Output names come from the source name made safe (no path separators, no
leading dots, a restricted alphabet) plus the content id, so two sources can
never collide and nothing can be written outside the output folder.

``OUT`` is a local folder or a prefix in a bucket (``s3://bucket/prefix``, ``gs://...``), written
through ``pyarrow.fs`` (:class:`raycurate.storage.OutputDir`): in a bucket the kohya and identity
copies are server-side copies of ``images/`` (there are no hard links), or uploads when the
originals are not copied.

What is written under ``OUT`` (each part but ``metadata.jsonl`` is optional)::

    images/<name>                     the originals, byte for byte
    metadata.jsonl, metadata.parquet  one record per kept row (vector columns stay in LanceDB)
    train/<repeats>_<name>/<name>     kohya-ss / OneTrainer layout: the image (a hard link)
    train/<repeats>_<name>/<stem>.txt   and its caption (configs/captions.yaml)
    face_crops/<stem>_f<k>.jpg        square crop of face k (0: the largest)
    body_crops/<stem>_b0.jpg          square upper-body crop
    by_identity/person_<n>/<name>     the images grouped by face embedding (unknown/: no embedding)
"""
from __future__ import annotations

import json
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .analyzers.face_embedders import FACE_VECTOR_COLUMNS
from .config import CONFIG_DIR
from .sources import read_bytes
from .storage import OutputDir
from .store.schema import DEDUP_FIELDS

FORMAT_EXTENSIONS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
                     "TIFF": ".tif", "BMP": ".bmp", "JPEG2000": ".jp2", "PPM": ".ppm"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Vector columns are never exported (every top-level fixed-size list column is one; these are the known ones,
# with the per-face embeddings, a list of vectors).
VECTOR_COLUMNS = ("content_vector", *FACE_VECTOR_COLUMNS, "clip_embedding", "face_embeddings")
CAPTIONS_FILE = CONFIG_DIR / "captions.yaml"
JPEG_QUALITY = 95
VISIBLE = 0.5          # keypoint confidence that counts as visible (as the pose analyser's default)

# Columns the export adds to every metadata record (null where the option is off).
EXPORT_FIELDS: list[pa.Field] = [
    pa.field("file", pa.string()),                   # images/<name>; null: not copied (or an exact duplicate)
    pa.field("export_error", pa.string()),
    pa.field("caption", pa.string()),                # the kohya caption
    pa.field("identity", pa.string()),               # person_<n> | unknown (group_by_identity)
    pa.field("face_crops", pa.list_(pa.string())),   # face_crops/<stem>_f<k>.jpg, one per face box
    pa.field("body_crops", pa.list_(pa.string())),
]


def safe_stem(uri: str) -> str:
    """The file-name stem of ``uri`` in a safe alphabet: no separators, no leading dots, at most 80 chars."""
    base = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", os.path.splitext(base)[0]).strip("._-")[:80] or "image"


def safe_name(uri: str, content_id: str, fmt: str | None) -> str:
    """A file name for an exported image that cannot escape its folder or collide."""
    base = uri.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    ext = FORMAT_EXTENSIONS.get(fmt or "", _UNSAFE.sub("", os.path.splitext(base)[1].lower())[:8] or ".bin")
    return f"{safe_stem(uri)}-{content_id[:16]}{ext}"


def json_safe(value: Any) -> Any:
    """``value`` as JSON can hold it: timestamps as ISO text, non-finite floats as null, tuples as lists
    (metadata.jsonl and the web UI's detail view)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


# -- captions -------------------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Placeholders computed by the export rather than read from a column.
DERIVED = ("trigger", "head_yaw")
_PART_KEYS = {"text", "map", "ranges", "first", "join"}


def _key(value: Any) -> str:
    """A map key or a value, as the template compares them (YAML's true/false and numbers as text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class CaptionPart:
    """One piece of a caption: the first of ``texts`` whose placeholders all have a value."""

    texts: tuple[str, ...]
    maps: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[tuple[float | None, str | None], ...]] = field(default_factory=dict)
    first: bool = False
    join: str = " and "

    def value(self, name: str, raw: Any) -> str | None:
        """The text for placeholder ``name`` given the row's value; None drops the part."""
        if isinstance(raw, (list, tuple)):
            if self.first:
                return self.value(name, raw[0]) if raw else None
            texts = [self.value(name, v) for v in raw]
            return self.join.join(dict.fromkeys(t for t in texts if t)) or None
        if raw is None or (isinstance(raw, float) and not math.isfinite(raw)):
            return None
        if name in self.ranges and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            for upper, text in self.ranges[name]:
                if upper is None or raw < upper:
                    return text or None
            return None
        mapping = self.maps.get(name)
        if mapping is not None:
            key = _key(raw)
            if key in mapping:
                return mapping[key] or None
            if "*" in mapping:
                return mapping["*"] or None
        text = f"{raw:g}" if isinstance(raw, float) else _key(raw)
        return text.strip() or None

    def render(self, values: Mapping[str, Any]) -> str | None:
        for text in self.texts:
            out, missing = text, False
            for name in dict.fromkeys(_PLACEHOLDER.findall(text)):
                v = self.value(name, values.get(name))
                if v is None:
                    missing = True
                    break
                out = out.replace("{" + name + "}", v)
            if not missing:
                out = " ".join(out.split())
                if out:
                    return out
        return None


class CaptionTemplate:
    """An ordered list of :class:`CaptionPart`; parts without a value are left out (see configs/captions.yaml)."""

    def __init__(self, parts: Sequence[CaptionPart], separator: str = ", ", source: str = "") -> None:
        self.parts = list(parts)
        self.separator = separator
        self.source = source

    @classmethod
    def from_file(cls, path: str | os.PathLike | None = None) -> "CaptionTemplate":
        from .config import load_yaml

        path = Path(path) if path is not None else CAPTIONS_FILE
        return cls.from_mapping(load_yaml(path), source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "") -> "CaptionTemplate":
        from .config import ConfigError

        def bad(msg: str) -> ConfigError:
            return ConfigError(f"caption template {source or '(mapping)'}: {msg}")

        unknown = set(data) - {"separator", "parts"}
        if unknown:
            raise bad(f"unknown key(s): {', '.join(sorted(unknown))}")
        separator = data.get("separator", ", ")
        raw_parts = data.get("parts")
        if not isinstance(separator, str):
            raise bad("separator must be a string")
        if not isinstance(raw_parts, list) or not raw_parts:
            raise bad("parts must be a non-empty list")
        parts = []
        for i, raw in enumerate(raw_parts, 1):
            if isinstance(raw, str):
                raw = {"text": raw}
            if not isinstance(raw, Mapping) or "text" not in raw:
                raise bad(f"part {i} must be a string or a mapping with 'text'")
            if set(raw) - _PART_KEYS:
                raise bad(f"part {i}: unknown key(s) {', '.join(sorted(set(raw) - _PART_KEYS))}")
            texts = raw["text"] if isinstance(raw["text"], list) else [raw["text"]]
            if not texts or not all(isinstance(t, str) and _PLACEHOLDER.search(t) for t in texts):
                raise bad(f"part {i}: text must be a string (or a list of them) with at least one {{column}}")
            if any(ch in _PLACEHOLDER.sub("", t) for t in texts for ch in "{}"):
                raise bad(f"part {i}: a placeholder is written {{name}} (letters, digits, _)")
            names = {n for t in texts for n in _PLACEHOLDER.findall(t)}
            maps, ranges = raw.get("map") or {}, raw.get("ranges") or {}
            for kind, table in (("map", maps), ("ranges", ranges)):
                if not isinstance(table, Mapping) or set(table) - names:
                    raise bad(f"part {i}: {kind} must be keyed by placeholders of its text "
                              f"({', '.join(sorted(names))})")
            for name, m in maps.items():
                if not isinstance(m, Mapping) or not all(v is None or isinstance(v, str) for v in m.values()):
                    raise bad(f"part {i}: map.{name} must map values to text (or null)")
            parsed_ranges: dict[str, tuple[tuple[float | None, str | None], ...]] = {}
            for name, rs in ranges.items():
                ok = isinstance(rs, list) and rs and all(
                    isinstance(r, list) and len(r) == 2 and (r[0] is None or isinstance(r[0], (int, float)))
                    and (r[1] is None or isinstance(r[1], str)) for r in rs)
                if not ok:
                    raise bad(f"part {i}: ranges.{name} must be a list of [upper bound or null, text or null]")
                parsed_ranges[name] = tuple((None if u is None else float(u), t) for u, t in rs)
            if not isinstance(raw.get("first", False), bool) or not isinstance(raw.get("join", " and "), str):
                raise bad(f"part {i}: first must be true/false and join a string")
            parts.append(CaptionPart(
                texts=tuple(texts), maps={n: {_key(k): v for k, v in m.items()} for n, m in maps.items()},
                ranges=parsed_ranges, first=raw.get("first", False), join=raw.get("join", " and ")))
        return cls(parts, separator=separator, source=source)

    @property
    def placeholders(self) -> set[str]:
        return {n for p in self.parts for t in p.texts for n in _PLACEHOLDER.findall(t)}

    def check_columns(self, columns: Iterable[str]) -> None:
        """Refuse a placeholder that is neither a column nor a derived value (before anything is written)."""
        from .config import ConfigError

        unknown = self.placeholders - set(columns) - set(DERIVED)
        if unknown:
            raise ConfigError(f"caption template {self.source}: no column named "
                              f"{', '.join('{' + u + '}' for u in sorted(unknown))} in the table "
                              f"(derived values: {', '.join(DERIVED)})")

    def render(self, row: Mapping[str, Any], trigger: str | None = None) -> str:
        """The caption for ``row``: the parts that have a value, in order, each once."""
        values = dict(row)
        values["trigger"] = trigger
        values["head_yaw"] = head_yaw(row)
        texts = (p.render(values) for p in self.parts)
        return self.separator.join(dict.fromkeys(t for t in texts if t))


def head_yaw(row: Mapping[str, Any]) -> float | None:
    """Yaw in degrees of the largest face (``face_pose`` is pitch, yaw, roll per face: InsightFace's 3D model,
    else the 5-point estimate)."""
    poses = row.get("face_pose") or []
    return float(poses[0][1]) if poses and poses[0] is not None and len(poses[0]) == 3 else None


# -- crops ----------------------------------------------------------------------------------------------

def square_region(box: Sequence[float], padding: float, width: int, height: int) -> tuple[int, int, int]:
    """(x, y, side) of the square crop around the pixel ``box`` (x1, y1, x2, y2).

    The side is the box's larger side plus ``padding`` of it on each side, shrunk to the
    picture's shorter side when larger (never below the box's larger side), and the square
    is moved inside the picture where it fits; only a box larger than the picture's shorter
    side leaves part of the square outside (filled black by :func:`crop_square`).
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    big = max(x2 - x1, y2 - y1, 1.0)
    side = max(1, round(min(big * (1 + 2 * padding), max(min(width, height), big))))

    def place(centre: float, extent: int) -> int:
        start = round(centre - side / 2)
        return min(max(start, 0), extent - side) if side <= extent else (extent - side) // 2

    return place((x1 + x2) / 2, width), place((y1 + y2) / 2, height), side


def crop_square(rgb: np.ndarray, x: int, y: int, side: int, size: int) -> np.ndarray:
    """The ``side`` square at (x, y) of ``rgb`` (black outside the picture), resized to ``size``."""
    import cv2

    h, w = rgb.shape[:2]
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx1, sy1, sx2, sy2 = max(x, 0), max(y, 0), min(x + side, w), min(y + side, h)
    if sx2 > sx1 and sy2 > sy1:
        out[sy1 - y:sy2 - y, sx1 - x:sx2 - x] = rgb[sy1:sy2, sx1:sx2]
    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(out, (size, size), interpolation=interp)


def upper_body_box(row: Mapping[str, Any], width: int, height: int) -> list[float] | None:
    """Pixel box (x1, y1, x2, y2) of the upper body of the largest person, or None.

    With pose keypoints (the largest person, a shoulder and a hip visible): from the top of
    the person's box down to the lowest visible hip, across the visible shoulders and hips.
    Without: from the largest face box, head plus three face heights below the chin (about
    chin to hips on an adult), three face heights wide, centred on the face.
    """
    kps, boxes = row.get("pose_keypoints") or [], row.get("pose_boxes") or []
    if kps and kps[0] is not None:
        k = np.asarray(kps[0], dtype=np.float64).reshape(17, 3)
        shoulders = [i for i in (5, 6) if k[i, 2] >= VISIBLE]
        hips = [i for i in (11, 12) if k[i, 2] >= VISIBLE]
        if shoulders and hips:
            pts = k[shoulders + hips, :2] * [width, height]
            top = boxes[0][1] * height if boxes and boxes[0] is not None else pts[:, 1].min()
            return [pts[:, 0].min(), min(top, pts[:, 1].min()), pts[:, 0].max(), pts[:, 1].max()]
    faces = row.get("face_boxes") or []
    if faces and faces[0] is not None:
        x1, y1, x2, y2 = faces[0][0] * width, faces[0][1] * height, faces[0][2] * width, faces[0][3] * height
        fh, cx = y2 - y1, (x1 + x2) / 2
        return [cx - 1.5 * fh, y1, cx + 1.5 * fh, y2 + 3 * fh]
    return None


def _jpeg_bytes(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return buf.getvalue()


# -- identity -------------------------------------------------------------------------------------------

def cluster_identities(vectors: np.ndarray, threshold: float) -> np.ndarray:
    """Connected components of the rows of ``vectors`` joined when their cosine distance <= ``threshold``.

    Labels are 0..k-1, the largest group first (ties: the group holding the earliest row).
    Single linkage: two faces are one person when a chain of close faces joins them. Exact,
    O(n^2) dot products computed in blocks (memory ~64 MB a block).
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    x = np.asarray(vectors, dtype=np.float32)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    parent = np.arange(n)

    def find(i: np.ndarray) -> np.ndarray:
        while True:
            p = parent[i]
            if np.array_equal(p, i):
                return i
            parent[i] = parent[p]    # path halving
            i = parent[i]

    block = max(1, (1 << 24) // n)
    for start in range(0, n, block):
        stop = min(n, start + block)
        sim = x[start:stop] @ x[start:].T
        ii, jj = np.nonzero(sim >= 1.0 - threshold)
        ii, jj = ii + start, jj + start
        keep = ii < jj
        ii, jj = ii[keep], jj[keep]
        while len(ii):
            ri, rj = find(ii), find(jj)
            differ = ri != rj
            if not differ.any():
                break
            ri, rj = ri[differ], rj[differ]
            parent[np.maximum(ri, rj)] = np.minimum(ri, rj)
            ii, jj = ii[differ], jj[differ]
    roots = find(np.arange(n))
    uniq, first, counts = np.unique(roots, return_index=True, return_counts=True)
    order = sorted(range(len(uniq)), key=lambda g: (-counts[g], first[g]))
    rank = np.empty(len(uniq), dtype=np.int64)
    rank[order] = np.arange(len(uniq))
    return rank[np.searchsorted(uniq, roots)]


# -- options --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KohyaOptions:
    """LoRA trainer layout: ``OUT/<dir>/<repeats>_<name>/`` with one caption ``.txt`` per image."""

    template: CaptionTemplate
    dir: str = "train"
    repeats: int = 10
    name: str = "person"
    trigger: str | None = None      # the caption's {trigger}; None: ``name``

    @property
    def folder(self) -> str:
        return f"{self.dir}/{self.repeats}_{self.name}"


@dataclass(frozen=True)
class CropOptions:
    size: int                       # side of the saved square, pixels
    padding: float                  # added on each side, as a fraction of the box's larger side


@dataclass(frozen=True)
class IdentityOptions:
    threshold: float | None = None  # cosine distance at or below which two faces are one person; None: the model's


def export_options(section: Mapping[str, Any]) -> dict[str, Any]:
    """``export_kept`` keyword options from the config's ``export`` section (reads the caption template,
    so a bad one raises :class:`~raycurate.config.ConfigError` here, before any work)."""
    k, f, b, g = (section["kohya"], section["face_crops"], section["body_crops"], section["group_by_identity"])
    return {
        "parquet": section["parquet"],
        "include_duplicates": section["include_duplicates"],
        "kohya": KohyaOptions(template=CaptionTemplate.from_file(k["captions"]), dir=k["dir"],
                              repeats=k["repeats"], name=k["name"], trigger=k["trigger"]) if k["enabled"] else None,
        "face_crops": CropOptions(f["size"], f["padding"]) if f["enabled"] else None,
        "body_crops": CropOptions(b["size"], b["padding"]) if b["enabled"] else None,
        "identity": IdentityOptions(g["threshold"]) if g["enabled"] else None,
    }


# -- export ---------------------------------------------------------------------------------------------

@dataclass
class ExportResult:
    kept: int = 0
    exported: int = 0                # rows whose requested files were all written
    exact_duplicates: int = 0
    copy_errors: int = 0             # rows with an export_error
    captions: int = 0
    face_crops: int = 0
    body_crops: int = 0
    identities: int = 0              # person_<n> folders


def vector_columns(schema: pa.Schema) -> set[str]:
    """Columns that stay in LanceDB: the known vectors and any top-level fixed-size list."""
    return {f.name for f in schema if f.name in VECTOR_COLUMNS or pa.types.is_fixed_size_list(f.type)}


def metadata_schema(table_schema: pa.Schema) -> pa.Schema:
    """The columns of ``metadata.jsonl`` / ``metadata.parquet``: the table's without vectors, plus the export's."""
    skip = vector_columns(table_schema)
    fields = [f for f in table_schema if f.name not in skip]
    names = {f.name for f in fields}
    return pa.schema(fields + [f for f in DEDUP_FIELDS + EXPORT_FIELDS if f.name not in names])


def iter_rows(table: Any, where: str, columns: list[str], batch_size: int = 1024) -> Iterator[dict[str, Any]]:
    """Rows of ``table`` matching ``where``, streamed in batches from LanceDB."""
    reader = table.search().where(where).select(columns).limit(None).to_batches(batch_size=batch_size)
    for batch in reader:
        yield from batch.to_pylist()


def canonical_uris(table: Any, where: str) -> dict[str, str]:
    """For each content id among matching rows, the smallest uri: the copy that is exported."""
    best: dict[str, str] = {}
    for row in iter_rows(table, where, ["id", "uri"], batch_size=8192):
        if row["id"] not in best or row["uri"] < best[row["id"]]:
            best[row["id"]] = row["uri"]
    return best


def identities(table: Any, where: str, threshold: float | None) -> dict[str, str]:
    """Content id -> ``person_<n>`` (1: the largest group) or ``unknown`` for rows matching ``where``, by
    the main face's embedding: ArcFace where the table holds any, else dlib (vectors of two models are never
    compared). ``threshold`` None: the model's own (:data:`~raycurate.analyzers.face_embedders.SAME_PERSON`)."""
    from .analyzers.face_embedders import SAME_PERSON, VECTOR_COLUMNS as FACE_VECTORS

    names = table.schema.names
    family = next((fam for fam, (col, _) in FACE_VECTORS.items() if col in names
                   and table.count_rows(f"({where}) AND {col} IS NOT NULL") > 0), None)
    column = FACE_VECTORS[family][0] if family else None
    vectors: dict[str, np.ndarray | None] = {}
    for row in iter_rows(table, where, ["id", column] if column else ["id"], batch_size=4096):
        v = row.get(column) if column else None
        if vectors.get(row["id"]) is None:
            vectors[row["id"]] = np.asarray(v, dtype=np.float32) if v is not None else None
    known = sorted(i for i, v in vectors.items() if v is not None)
    out = {i: "unknown" for i, v in vectors.items() if v is None}
    if known:
        limit = threshold if threshold is not None else SAME_PERSON[family]
        labels = cluster_identities(np.stack([vectors[i] for i in known]), limit)
        out.update({i: f"person_{label + 1}" for i, label in zip(known, labels)})
    return out


@dataclass
class _Written:
    file: str | None = None
    face_crops: list[str] = field(default_factory=list)
    body_crops: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _RowWriter:
    """Writes one exported image's files; run in the export's thread pool."""

    out: OutputDir
    copy_images: bool
    kohya: KohyaOptions | None
    face_crops: CropOptions | None
    body_crops: CropOptions | None
    identity: bool

    @property
    def needed(self) -> bool:
        return bool(self.copy_images or self.kohya or self.face_crops or self.body_crops or self.identity)

    def write(self, row: Mapping[str, Any], name: str, caption: str | None, identity: str | None) -> _Written:
        out = _Written()
        try:
            data = read_bytes(row["uri"])
        except OSError as exc:
            out.errors.append(f"export read failed: {exc}")
            return out
        src = None
        if self.copy_images:
            try:
                self.out.write_bytes(f"images/{name}", data)
                src = out.file = f"images/{name}"
            except OSError as exc:
                src = None
                out.errors.append(f"export copy failed: {exc}")
        stem = os.path.splitext(name)[0]
        try:
            if self.kohya is not None:
                self.out.place(src, data, f"{self.kohya.folder}/{name}")
                self.out.write_bytes(f"{self.kohya.folder}/{stem}.txt", (caption or "").encode("utf-8"))
            if identity is not None:
                self.out.place(src, data, f"by_identity/{identity}/{name}")
        except OSError as exc:
            out.errors.append(f"export link failed: {exc}")
        if self.face_crops or self.body_crops:
            self._crops(row, data, stem, out)
        return out

    def _crops(self, row: Mapping[str, Any], data: bytes, stem: str, out: _Written) -> None:
        from .decode import DecodeError, decode_image

        try:
            rgb = decode_image(data).rgb     # upright (EXIF applied), full size: the boxes' frame
        except DecodeError as exc:
            out.errors.append(f"export crop: {exc}")
            return
        h, w = rgb.shape[:2]
        jobs: list[tuple[str, list[float], CropOptions, list[str]]] = []
        if self.face_crops is not None:
            for k, b in enumerate(row.get("face_boxes") or []):
                if b is not None:
                    jobs.append((f"face_crops/{stem}_f{k}.jpg", [b[0] * w, b[1] * h, b[2] * w, b[3] * h],
                                 self.face_crops, out.face_crops))
        if self.body_crops is not None:
            box = upper_body_box(row, w, h)
            if box is not None:
                jobs.append((f"body_crops/{stem}_b0.jpg", box, self.body_crops, out.body_crops))
        for rel, box, opt, done in jobs:
            try:
                x, y, side = square_region(box, opt.padding, w, h)
                self.out.write_bytes(rel, _jpeg_bytes(crop_square(rgb, x, y, side, opt.size)))
                done.append(rel)
            except (OSError, ValueError) as exc:
                out.errors.append(f"export crop {rel}: {exc}")


def export_kept(table: Any, where: str, out_dir: str, *, copy_images: bool, threads: int,
                progress: Any = None, parquet: bool = True, include_duplicates: bool = False,
                kohya: KohyaOptions | None = None, face_crops: CropOptions | None = None,
                body_crops: CropOptions | None = None, identity: IdentityOptions | None = None) -> ExportResult:
    """Write ``metadata.jsonl`` (and ``metadata.parquet``, the originals, captions, crops, identity folders)
    for rows matching ``where`` into ``out_dir`` (a folder, or a prefix in a bucket).

    Rows that dedup marked ``duplicate_of`` are left out unless ``include_duplicates``. The same
    bytes under several names (one content id) are exported once, from the smallest uri; the
    other rows are listed with ``file`` null and ``duplicate_of`` the id (``duplicate_column`` id).
    """
    names = table.schema.names
    if not include_duplicates and "duplicate_of" in names:
        where = f"({where}) AND duplicate_of IS NULL"
    if kohya is not None:
        kohya.template.check_columns(names)
    out = OutputDir(out_dir)
    out.makedirs()
    for sub, on in (("images", copy_images), (kohya.folder if kohya else "", kohya is not None),
                    ("face_crops", face_crops is not None), ("body_crops", body_crops is not None)):
        if on:
            out.makedirs(sub)
    schema = metadata_schema(table.schema)
    columns = [f.name for f in table.schema if f.name in set(schema.names)]
    canonical = canonical_uris(table, where)
    who = identities(table, where, identity.threshold) if identity is not None else {}
    for person in set(who.values()):
        out.makedirs(f"by_identity/{person}")
    writer = _RowWriter(out, copy_images, kohya, face_crops, body_crops, identity is not None)
    trigger = (kohya.trigger if kohya.trigger is not None else kohya.name) if kohya else None
    exported_ids: set[str] = set()
    result = ExportResult(identities=len(set(who.values()) - {"unknown"}))
    pq_writer = None
    if parquet:
        import pyarrow.parquet as pq

        where_pq, fs = out.sink("metadata.parquet")
        pq_writer = pq.ParquetWriter(where_pq, schema, filesystem=fs)
    try:
        with out.open_text("metadata.jsonl") as meta, ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            reader = table.search().where(where).select(columns).limit(None).to_batches(batch_size=256)
            for batch in reader:
                rows = [{n: r.get(n) for n in schema.names} for r in batch.to_pylist()]
                jobs = {}
                for i, row in enumerate(rows):
                    result.kept += 1
                    row["identity"] = who.get(row["id"])
                    if row["uri"] != canonical[row["id"]] or row["id"] in exported_ids:
                        if row["duplicate_of"] is None:
                            row.update(duplicate_of=row["id"], duplicate_group=row["id"], duplicate_column="id",
                                       duplicate_distance=0.0)
                        result.exact_duplicates += 1
                        continue
                    exported_ids.add(row["id"])
                    if kohya is not None:
                        row["caption"] = kohya.template.render(row, trigger)
                        result.captions += 1
                    if writer.needed:
                        name = safe_name(row["uri"], row["id"], row.get("format"))
                        jobs[i] = pool.submit(writer.write, row, name, row["caption"], row["identity"])
                for i, job in jobs.items():
                    done = job.result()
                    row = rows[i]
                    row["file"] = done.file
                    row["face_crops"] = done.face_crops if face_crops is not None else None
                    row["body_crops"] = done.body_crops if body_crops is not None else None
                    result.face_crops += len(done.face_crops)
                    result.body_crops += len(done.body_crops)
                    if done.errors:
                        row["export_error"] = "; ".join(done.errors)
                        result.copy_errors += 1
                    else:
                        result.exported += 1
                if progress is not None:
                    progress.update(len(rows))
                for row in rows:
                    meta.write(json.dumps(json_safe(row), ensure_ascii=False) + "\n")
                if pq_writer is not None and rows:
                    pq_writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    finally:
        if pq_writer is not None:
            pq_writer.close()
    return result


def export_from_db(db_uri: str, out_dir: str, *, where: str | None, cfg: Mapping[str, Any]) -> ExportResult:
    """Re-export rows of an existing ``images`` table: no model is loaded.

    Keeps ``error IS NULL`` rows (and, unless ``export.include_duplicates``, ``duplicate_of IS NULL``)
    AND-ed with ``where``; every other choice comes from ``cfg["export"]`` (the whole loaded config).
    """
    from .store.table import open_images_table

    section = cfg["export"]
    options = export_options(section)
    table = open_images_table(db_uri)
    keep = "error IS NULL" + (f" AND ({where})" if where and where.strip() else "")
    return export_kept(table, keep, out_dir, copy_images=section["copy_images"], threads=section["copy_threads"],
                       **options)


def export_filtered(db_uri: str, out_dir: str, *, cfg: Mapping[str, Any], where: str | None = None
                    ) -> tuple[ExportResult, str]:
    """Re-export with the config's ``filter`` spec (its gates, for the analysers whose columns the table
    holds) AND ``where``; returns the result and the SQL that chose the rows. No model is loaded."""
    from .analyzers import ANALYZERS
    from .gates import MANUAL_LABEL, build_gates, kept_predicate, with_manual_labels
    from .store.table import open_images_table

    if "://" not in db_uri and not os.path.isdir(db_uri):
        raise FileNotFoundError(f"no LanceDB directory at {db_uri}")
    table = open_images_table(db_uri)
    ran = [name for name in ANALYZERS if table.count_rows(f"{name}_model IS NOT NULL") > 0]
    keep = kept_predicate(build_gates(cfg["filter"], ran), ran)
    if MANUAL_LABEL in table.schema.names:   # the web UI's manual keep / reject override the gates
        keep = with_manual_labels(keep)
    if where and where.strip():
        keep += f" AND ({where})"
    return export_from_db(db_uri, out_dir, where=keep, cfg=cfg), keep
