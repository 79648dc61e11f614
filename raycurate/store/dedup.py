"""Near-duplicate removal inside LanceDB: rows are grouped and marked, never deleted.

Nodes are content ids (an image's ``id``, the sha256 of its bytes; a video frame's ``video_id:frame_index``):
rows with the same content id hold the same pixels, so they are exact duplicates of each other. Edges are
the pairs of content ids within a vector column's cosine distance threshold, where at least one of the two
is in scope (a run's new rows, or the whole table), the other anywhere in the table (earlier runs included).
They are found one of two ways (``method``):

- ``block`` (:mod:`raycurate.store.blockdedup`): the whole column is read once and searched exactly,
  block by block, inside partitions (every pair within the threshold; no index);
- ``ann`` (:mod:`raycurate.store.ann`): each content id in scope asks LanceDB for its ``k`` nearest rows
  (through an ANN index above ``index_min_rows`` rows).

``auto`` takes ``block`` when the scope holds at least ``block_min_rows`` vectors of the column and at least
1/20 of the table's (block's cost grows with the table, the queries' with the scope), ``ann`` otherwise.
The pairs earlier dedups marked (a member and its keeper) join them while they hold under today's thresholds;
a mark that no longer holds is undone and its group formed again.

Groups never chain (:mod:`.keepers`): inside each connected component of the pairs that the scope touches,
content ids are taken best first by ``keep_by`` (each key descending, nulls last; ``pixels`` is width x
height), then by content id; an unclaimed id becomes a keeper and claims every unclaimed id it has a pair
with. **Invariant: every marked row is within its column's threshold of its keeper** (0 for the same bytes).
Among the keeper's copies the row an earlier dedup kept stays the keeper, else the smallest key (uri, run).
Every other row of the group gets ``duplicate_of`` = the keeper's content id, ``duplicate_distance`` (cosine
distance to the keeper in the pair's column, 0 for the same bytes) and ``duplicate_column``; every member gets
``duplicate_group``. Only the marks that change are written, with ``merge_insert`` on the row key.
:func:`dedup_table` does the ``images`` table, :func:`dedup_frames` the ``frames`` table, by the same rule.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

from .ann import INDEX_TYPES, SCALAR_INDEXES, ensure_vector_index, maintain, near_pairs
from .indexes import has_index, has_vector_index, index_kind
from .table import ROW_KEY, content_ids, sql_in, write_columns
from .keepers import keeper_first
from .unionfind import UnionFind

__all__ = ["DedupResult", "FRAMES", "IMAGES", "INDEX_TYPES", "METHODS", "RowKind", "SCALAR_INDEXES", "dedup_frames",
           "dedup_table", "ensure_vector_index", "has_vector_index", "maintain", "near_pairs", "uses_block"]

KEY = ROW_KEY
METHODS = ("auto", "ann", "block")
BLOCK_MIN_ROWS = 10_000  # auto: block from this many vectors in scope (20k rows: 4.8 s vs 27 s exact ANN)
BLOCK_SHARE = 0.05      # auto: block only when the scope holds at least this share of the column's vectors


@dataclass(frozen=True)
class RowKind:
    """How a table names its rows and their content."""

    key: tuple[str, ...]        # one row: the merge_insert key
    content: tuple[str, ...]    # its content id's columns: rows alike in these are exact copies
    valid: str                  # SQL: the rows dedup considers
    table: str                  # the table's name (its schema types the dedup columns an older table lacks)
    id_column: str | None = None  # one column naming the content (BTREE-indexed): marks alike merge on it


IMAGES = RowKind(key=KEY, content=("id",), valid="error IS NULL", table="images", id_column="id")
FRAMES = RowKind(key=("video_id", "video_uri", "run_id", "frame_index"), content=("video_id", "frame_index"),
                 valid="frame_index IS NOT NULL", table="frames")
MARK_COLUMNS = ("duplicate_group", "duplicate_of", "duplicate_distance", "duplicate_column")
MARK_TYPES = (pa.string(), pa.string(), pa.float32(), pa.string())


@dataclass
class DedupResult:
    rows_in_scope: int = 0
    exact_groups: int = 0
    pairs: dict[str, int] = field(default_factory=dict)      # near pairs found per vector column
    groups: int = 0                                          # groups touched (2+ content ids or copies)
    marked: int = 0                                          # rows now marked duplicate_of
    stale_marks: int = 0     # earlier marks beyond today's thresholds (or of a column no longer used): undone
    indexed: dict[str, str] = field(default_factory=dict)    # column -> index built / present / none
    method: dict[str, str] = field(default_factory=dict)     # column -> how its pairs were found
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _runs(run_id: str | Sequence[str] | None) -> list[str] | None:
    return None if run_id is None else [run_id] if isinstance(run_id, str) else list(run_id)


def _scope(kind: RowKind, runs: list[str] | None) -> str:
    """SQL of the rows in scope: the valid rows of ``runs`` (every valid row when None)."""
    if runs is None:
        return kind.valid
    return f"{kind.valid} AND {sql_in('run_id', runs)}"


def _sort_key(row: Mapping[str, Any], keep_by: Sequence[str]) -> tuple:
    key: list[Any] = []
    for name in keep_by:
        if name == "pixels":
            value = (row.get("width") or 0) * (row.get("height") or 0) or None
        else:
            value = row.get(name)
        key += [value is None, -(value or 0.0)]          # nulls last, then larger first
    return (*key, row["cid"])


def dedup_frames(table: Any, *, run_id: str | Sequence[str] | None, columns: Mapping[str, float | None], keep_by: Sequence[str],
                 **options: Any) -> DedupResult:
    """:func:`dedup_table` on the ``frames`` table (rows keyed by video, uri, run and frame index; content id
    ``video_id:frame_index``). Frames carry no ``stage3_score`` (Stage 3 writes its own table): ``keep_by``
    takes the cascade's ``stage2_score`` in its place."""
    keep_by = [("stage2_score" if name == "stage3_score" else name) for name in keep_by]
    return dedup_table(table, run_id=run_id, columns=columns, keep_by=list(dict.fromkeys(keep_by)),
                       kind=FRAMES, **options)


def dedup_table(table: Any, *, run_id: str | Sequence[str] | None, columns: Mapping[str, float | None], keep_by: Sequence[str],
                k: int = 16, index_min_rows: int = 100_000, index_type: str = "IVF_FLAT", nprobes: int = 8,
                refine_factor: int = 10, method: str = "auto", block_min_rows: int = BLOCK_MIN_ROWS,
                progress: Any = None, kind: RowKind = IMAGES) -> DedupResult:
    """Group and mark duplicates of the rows of ``run_id`` (a run, or several; all rows when None) against the
    whole table."""
    import pyarrow.compute as pc

    if method not in METHODS:
        raise ValueError(f"dedup method {method!r}: one of {', '.join(METHODS)}")
    start = time.perf_counter()
    result = DedupResult()
    names = set(table.schema.names)
    runs = _runs(run_id)
    scope = _scope(kind, runs)
    keep_cols = [c for c in keep_by if c in names and c != "pixels"]
    base_cols = list(dict.fromkeys([*kind.key, *kind.content, "width", "height", *keep_cols,
                                    *[c for c in MARK_COLUMNS if c in names]]))

    # every valid row's key, keep-by values and earlier marks, as Arrow columns
    base = table.search().where(kind.valid).select(base_cols).limit(None).to_arrow()
    base = base.append_column("cid", content_ids(base, kind.content))
    for name, type_ in zip(MARK_COLUMNS, MARK_TYPES):    # a table older than dedup's columns
        if name not in base.column_names:
            base = base.append_column(name, pa.nulls(base.num_rows, type_))
    in_scope = base if runs is None else base.filter(pc.is_in(base.column("run_id"), value_set=pa.array(runs)))
    scope_ids = set(in_scope.column("cid").to_pylist())
    result.rows_in_scope = in_scope.num_rows
    counts = base.group_by("cid").aggregate([("cid", "count")])
    copied = set(counts.filter(pc.greater(counts.column("cid_count"), 1)).column("cid").to_pylist())
    result.exact_groups = len(copied & scope_ids)

    search = _Search(table, kind, scope, runs, k, index_min_rows, index_type, nprobes, refine_factor, method,
                     block_min_rows, progress)
    edges = _Edges()
    uf = UnionFind()
    for column, threshold in columns.items():
        if threshold is not None and column in names:
            _column_pairs(search, column, threshold, uf, edges, result)
    stale = _earlier_pairs(base, columns, uf, edges)
    result.stale_marks = len(stale)

    touched = _touched_groups(uf, scope_ids, stale, copied)
    needed = set().union(*touched.values()) if touched else set()
    rows_of: dict[str, list[dict[str, Any]]] = {}
    if needed:
        for r in base.filter(pc.is_in(base.column("cid"), value_set=pa.array(sorted(needed)))).to_pylist():
            rows_of.setdefault(r["cid"], []).append(r)
    del base
    _write_marks(table, kind, _marks(s=search, touched=touched, rows_of=rows_of, keep_by=keep_by, edges=edges,
                                     result=result))
    result.seconds = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class _Search:
    """How dedup finds near neighbours (the rows in ``scope`` against the whole table)."""

    table: Any
    kind: RowKind
    scope: str
    runs: list[str] | None   # the runs whose rows are in scope (None: every row)
    k: int
    index_min_rows: int
    index_type: str
    nprobes: int
    refine_factor: int
    method: str
    block_min_rows: int
    progress: Any


@dataclass
class _Edges:
    """The near pairs found: each pair's smallest distance and its column."""

    pairs: dict[tuple[str, str], tuple[float, str]] = field(default_factory=dict)

    def add(self, a: str, b: str, dist: float, column: str) -> None:
        key = (a, b) if a < b else (b, a)
        if key not in self.pairs or dist < self.pairs[key][0]:
            self.pairs[key] = (float(dist), column)


def _scope_vectors(s: _Search, column: str) -> tuple[list[str], np.ndarray]:
    """The content ids in scope with a vector in ``column`` and their vectors (one per id: its first row)."""
    data = s.table.search().where(f"{s.scope} AND {column} IS NOT NULL").select([*s.kind.content, column]) \
        .limit(None).to_arrow()
    first: dict[str, int] = {}
    for i, cid in enumerate(content_ids(data, s.kind.content).to_pylist()):
        first.setdefault(cid, i)
    ids = list(first)
    if not ids:
        return ids, np.zeros((0, 0), dtype=np.float32)
    flat = data.column(column).combine_chunks()
    dim = flat.type.list_size
    vectors = flat.values.to_numpy(zero_copy_only=False).reshape(-1, dim)
    if len(first) != data.num_rows:
        vectors = vectors[list(first.values())]
    return ids, vectors


def uses_block(table: Any, column: str, *, run_id: str | Sequence[str] | None, method: str,
               block_min_rows: int = BLOCK_MIN_ROWS,
               kind: RowKind = IMAGES) -> bool:
    """Whether dedup searches ``column`` by block: ``method``, or for ``auto`` whether the scope is large
    enough, in rows and in share of the table, for the whole-column search to pay."""
    if method != "auto":
        return method == "block"
    scope = _scope(kind, _runs(run_id))
    in_scope = table.count_rows(f"{scope} AND {column} IS NOT NULL")
    total = in_scope if run_id is None else table.count_rows(f"{kind.valid} AND {column} IS NOT NULL")
    return in_scope >= block_min_rows and in_scope >= BLOCK_SHARE * total


def _block_pairs(s: _Search, column: str, threshold: float) -> tuple[list[str], list[str], np.ndarray, int, str]:
    """(ids, hit ids, distances, vectors in scope, description) of :func:`~.blockdedup.block_pairs` over the
    whole column: one vector per content id (its first row), in scope when one of its rows is."""
    import pyarrow.compute as pc

    from .blockdedup import block_pairs, compact_rows, read_vectors

    keys, x = read_vectors(s.table, column, s.kind.valid, [*s.kind.content, "run_id"])
    cids = content_ids(keys, s.kind.content)
    flag = pc.is_in(keys.column("run_id"), value_set=pa.array(s.runs)) if s.runs is not None \
        else pa.repeat(pa.scalar(True), keys.num_rows)
    first = pa.table({"cid": cids, "i": pa.array(np.arange(keys.num_rows)), "s": flag}) \
        .group_by("cid").aggregate([("i", "min"), ("s", "max")]).sort_by("i_min")
    del keys
    rows = first.column("i_min").to_numpy()
    if len(rows) < len(x):
        x = compact_rows(x, rows)
        cids = cids.take(pa.array(rows))
    scope = first.column("s_max").combine_chunks().to_numpy(zero_copy_only=False)
    found = block_pairs(x, threshold, scope=None if s.runs is None else scope, per_row=s.k,
                        progress=(lambda m: s.progress(f"[raycurate] dedup {column}: {m}")) if s.progress else None)
    del x
    return (cids.take(pa.array(found.i)).to_pylist(), cids.take(pa.array(found.j)).to_pylist(), found.dist,
            int(scope.sum()), found.describe())


def _column_pairs(s: _Search, column: str, threshold: float, uf: UnionFind, edges: _Edges,
                  result: DedupResult) -> None:
    """Find the near pairs in one vector column: join them in ``uf`` and record them in ``edges``."""
    if uses_block(s.table, column, run_id=s.runs, method=s.method, block_min_rows=s.block_min_rows,
                  kind=s.kind):
        qs, hs, ds, n, result.method[column] = _block_pairs(s, column, threshold)
        state = result.indexed[column] = "none (block search)"
    else:
        ids, vectors = _scope_vectors(s, column)
        n = len(ids)
        if not ids:
            result.pairs[column] = 0
            return
        state = ensure_vector_index(s.table, column, min_rows=s.index_min_rows, index_type=s.index_type)
        result.indexed[column] = state
        kind = None if state == "none (exact search)" else index_kind(s.table, column, s.index_type)
        result.method[column] = f"ann ({kind or 'exact'}, k {s.k})"
        qs, hs, ds = near_pairs(s.table, column, ids, vectors.astype(np.float32, copy=False),
                                threshold=threshold, k=s.k, index=kind, nprobes=s.nprobes,
                                refine_factor=s.refine_factor, progress=s.progress, content=s.kind.content)
    before = len(edges.pairs)
    uf.union(qs, hs)
    for a, b, dist in zip(qs, hs, ds):
        edges.add(a, b, dist, column)
    result.pairs[column] = len({(a, b) if a < b else (b, a) for a, b in zip(qs, hs)})
    if s.progress is not None:
        s.progress(f"[raycurate] dedup {column}: {n} vectors, {result.pairs[column]} pairs within "
                   f"{threshold} ({len(edges.pairs) - before} new), {result.method[column]}, index: {state}")


def _earlier_pairs(base: pa.Table, columns: Mapping[str, float | None], uf: UnionFind, edges: _Edges) -> set[str]:
    """Add the pairs earlier dedups marked (a member and its keeper, at the stored distance) to ``uf`` and
    ``edges``, when they still hold under today's thresholds; return the content ids whose marks no longer
    hold (beyond the column's threshold, a column no longer used, a mark from before keeper-first grouping
    that names a keeper it is not near), with the keepers they name, so their groups are formed again."""
    import pyarrow.compute as pc

    marked = base.filter(pc.is_valid(base.column("duplicate_of"))) \
        .select(["cid", "duplicate_of", "duplicate_distance", "duplicate_column"]).to_pylist()
    stale: set[str] = set()
    for r in marked:
        cid, keeper, dist, column = r["cid"], r["duplicate_of"], r["duplicate_distance"], r["duplicate_column"]
        if cid == keeper:                          # a copy of the keeper's bytes: no pair needed
            continue
        limit = columns.get(column) if column else None
        if limit is None or dist is None or dist > limit + 1e-6:
            stale.update((cid, keeper))
            continue
        uf.union([cid], [keeper])
        edges.add(cid, keeper, dist, column)
    return stale


def _touched_groups(uf: UnionFind, scope_ids: Iterable[str], stale: set[str], copied: set[str]
                    ) -> dict[str, set[str]]:
    """The connected components of the pairs that hold a row in scope or a stale mark, and those ids alone
    when they have copies or a stale mark (a lone id in scope has nothing to mark). Components only bound
    the work: groups are formed inside them by :func:`~.keepers.keeper_first`, never by linkage."""
    members = uf.components()
    root_of = {cid: root for root, group in members.items() for cid in group}
    touched: dict[str, set[str]] = {}
    for cid in (*scope_ids, *stale):
        root = root_of.get(cid)
        if root is not None:
            touched[root] = members[root]
        elif cid in copied or cid in stale:
            touched[cid] = {cid}
    return touched


def _marks(*, s: _Search, touched: Mapping[str, set[str]], rows_of: Mapping[str, list[dict[str, Any]]],
           keep_by: Sequence[str], edges: _Edges, result: DedupResult) -> list[dict[str, Any]]:
    """The dedup columns of the rows of the touched components whose marks change: keeper-first groups
    (:mod:`.keepers`), each member marked with its keeper and its distance to it; copies of one content are
    the same group. Rows that end up in no group lose earlier marks."""
    marks: list[dict[str, Any]] = []
    key = s.kind.key
    near: dict[str, list[tuple[str, tuple[float, str]]]] = {}
    for (a, b), pair in edges.pairs.items():
        near.setdefault(a, []).append((b, pair))
        near.setdefault(b, []).append((a, pair))
    for component in touched.values():
        order = sorted((cid for cid in component if cid in rows_of),
                       key=lambda cid: _sort_key(rows_of[cid][0], keep_by))
        local = {(a, b) if a < b else (b, a): pair for a in order for b, pair in near.get(a, ())}
        owner = keeper_first(order, local)
        groups: dict[str, list[str]] = {}
        for cid in order:
            claim = owner[cid]
            groups.setdefault(cid if claim is None else claim[0], []).append(cid)
        for best, group in groups.items():
            single = len(group) == 1 and len(rows_of[best]) == 1
            result.groups += 0 if single else 1
            # among copies of the best bytes, the row kept before stays kept (stable across runs), else the
            # smallest key (uri, run)
            keeper = min(rows_of[best], key=lambda r: (not (r["duplicate_group"] and r["duplicate_of"] is None),
                                                       *[r[c] for c in key]))
            for cid in group:
                _, dist, col = owner[cid] or (best, 0.0, "id")
                for r in rows_of[cid]:
                    is_keeper = r is keeper
                    new = {"duplicate_group": None if single else best,
                           "duplicate_of": None if is_keeper else best,
                           "duplicate_distance": None if is_keeper else dist,
                           "duplicate_column": None if is_keeper else col}
                    result.marked += 0 if is_keeper else 1
                    if not _same_marks(r, new):
                        marks.append({**{c: r[c] for c in key}, **new})
    return marks


def _same_marks(row: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether ``row`` already holds the marks ``new`` (distances equal to float32 precision)."""
    for c in MARK_COLUMNS:
        a, b = row.get(c), new[c]
        if c == "duplicate_distance" and a is not None and b is not None:
            if abs(a - b) > 1e-6:
                return False
        elif a != b:
            return False
    return True


def _write_marks(table: Any, kind: RowKind, marks: list[dict[str, Any]]) -> None:
    """Write the marks with ``merge_insert``: on the row key, except that the content ids whose rows all get
    the same marks (all but a keeper with copies) are merged on ``id_column`` alone, through its BTREE index
    (made when missing; :func:`maintain` makes it anyway): on 1M rows a merge on the three-column key scans
    the table for ~30-45 s, one on the indexed id takes ~0.1 s."""
    from .schema import DEDUP_FIELDS

    schema = pa.schema(DEDUP_FIELDS)   # the marks' types, in images and in frames alike
    if kind.id_column is None or not marks:
        write_columns(table, marks, MARK_COLUMNS, kind.key, schema=schema)
        return
    by_id: dict[str, list[dict[str, Any]]] = {}
    for m in marks:
        by_id.setdefault(m[kind.id_column], []).append(m)
    invalid = set()       # ids that also name rows dedup leaves alone (a merge on the id would mark them)
    if table.count_rows(f"NOT ({kind.valid})"):
        invalid = set(table.search().where(f"NOT ({kind.valid})").select([kind.id_column]).limit(None)
                      .to_arrow().column(0).to_pylist())
    alike, rest = [], []
    for cid, group in by_id.items():
        if cid not in invalid and all(all(m[c] == group[0][c] for c in MARK_COLUMNS) for m in group):
            alike.append({kind.id_column: cid, **{c: group[0][c] for c in MARK_COLUMNS}})
        else:
            rest += group
    if alike:
        if not has_index(table, kind.id_column):
            from lancedb.index import BTree

            table.create_index(kind.id_column, config=BTree())
        write_columns(table, alike, MARK_COLUMNS, (kind.id_column,), schema=schema)
    write_columns(table, rest, MARK_COLUMNS, kind.key, schema=schema)
