#!/usr/bin/env python
"""LanceDB dedup and search at scale, against exact brute force (numpy) on the same data, in one run.

Data: ``--n`` unit vectors of ``--dim`` dimensions, drawn around ``--clusters``
centres (members of a cluster are ~0.27 apart in cosine distance, like photos of
one subject), with ``--pairs`` planted near duplicates: a copy of a random row
turned by a cosine distance drawn uniformly in [0.002, 0.8 x threshold]. They
are written to an ``images`` table (raycurate's schema, the ``clip_embedding``
column) and deduplicated with raycurate's own ``dedup_table`` (the code a run
uses) by ``--method``: ``block`` (exact search inside partitions, no index),
``ann`` (LanceDB's index per row; the index is built first and timed apart) or
``auto`` (what a run picks: block for this many rows). Wall and CPU seconds
(all threads of the process) are printed, with the machine's load average.

Brute force: exact cosine distances in float32 blocks (numpy BLAS). All pairs
when ``--n`` <= ``--bf-full-max``; above that, every row of a sample of
``--bf-sample`` query rows (the members of planted pairs first, then random
rows) against all ``--n`` rows, and the pair figures are computed on that
sample. Dedup's groups are keeper-first (raycurate/store/keepers.py): two rows
within the threshold need not share a group, but they must not both be kept.
Printed: the share of brute force's pairs with at least one row marked, the
share in one group, the planted pairs with a row marked, and the largest cosine
distance of a marked row from its keeper, recomputed from the vectors (the
invariant: at most the threshold; the script exits 1 when it is broken).

Search: top-10 latency (p50 / p95) of ``--queries`` stored vectors with a
prefilter (``width >= 800``: ~22% of rows), through the IVF index (queried as
raycurate.search.index queries it, with the configured search.nprobes and
search.refine_factor) and with the index bypassed (exact), plus the
indexed search's recall@10 against the exact one (the index is built for it
when dedup did not build one; ``--queries 0`` skips the search part).

    .venv/bin/python scripts/bench_store.py                          # 1,000,000 x 512
    .venv/bin/python scripts/bench_store.py --n 100000 --pairs 1000  # all-pairs brute force too
    .venv/bin/python scripts/bench_store.py --method ann              # LanceDB's IVF index per row
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_vectors(n: int, dim: int, clusters: int, pairs: int, threshold: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vec = np.empty((n, dim), dtype=np.float32)
    for s in range(0, n, 100_000):
        m = min(n, s + 100_000) - s
        block = centres[rng.integers(0, clusters, m)] + rng.normal(scale=0.6 / math.sqrt(dim), size=(m, dim))
        vec[s:s + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    order = rng.permutation(n)
    src, dst = order[:pairs], order[pairs:2 * pairs]
    want = rng.uniform(0.002, 0.8 * threshold, pairs)          # cosine distance of each planted copy
    u = rng.normal(size=(pairs, dim)).astype(np.float32)
    u -= (u * vec[src]).sum(1, keepdims=True) * vec[src]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    cos = 1.0 - want
    vec[dst] = (cos[:, None] * vec[src] + np.sqrt(1 - cos ** 2)[:, None] * u).astype(np.float32)
    vec[dst] /= np.linalg.norm(vec[dst], axis=1, keepdims=True)
    planted = {(min(a, b), max(a, b)) for a, b in zip(src.tolist(), dst.tolist())}
    width = rng.integers(200, 1200, n).astype(np.int32)
    return vec, planted, width


def write_table(db: str, vec: np.ndarray, width: np.ndarray):
    import lancedb

    from raycurate.schemas import images_schema

    schema = images_schema()
    table = lancedb.connect(db).create_table("images", schema=schema)
    n, dim = vec.shape
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        m = e - s
        data = {f.name: pa.nulls(m, f.type) for f in schema}
        data.update(id=pa.array([f"{i:016x}" for i in range(s, e)]), uri=pa.array([f"mem://{i}" for i in range(s, e)]),
                    run_id=pa.array(["bench"] * m), media_type=pa.array(["image"] * m),
                    width=pa.array(width[s:e]), height=pa.array(np.full(m, 600, np.int32)),
                    clip_embedding=pa.FixedSizeListArray.from_arrays(pa.array(vec[s:e].ravel()), dim))
        table.add(pa.table(data, schema=schema))
    return table


def brute_pairs(vec: np.ndarray, queries: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    """Exact: every (query, row) pair within ``threshold`` (query != row), as sorted index pairs."""
    out: set[tuple[int, int]] = set()
    block = max(64, int(2e8 // len(vec)))                          # ~800 MB of similarities at a time
    for s in range(0, len(queries), block):
        q = queries[s:s + block]
        sims = vec[q] @ vec.T                                      # block x n, float32
        qi, rj = np.nonzero(sims >= 1.0 - threshold)
        for a, b in zip(q[qi].tolist(), rj.tolist()):
            if a != b:
                out.add((min(a, b), max(a, b)))
    return out


def read_marks(table) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Each row's keeper (its own index when kept) and the groups (keeper -> members, keeper included)."""
    rows = table.search().select(["id", "duplicate_of"]).limit(None).to_arrow()
    ids = np.array([int(c, 16) for c in rows.column("id").to_pylist()])
    keeper = np.empty(len(ids), dtype=np.int64)
    keeper[ids] = [i if k is None else int(k, 16) for i, k in zip(ids.tolist(), rows.column("duplicate_of").to_pylist())]
    groups: dict[int, list[int]] = {}
    for i in np.nonzero(keeper != np.arange(len(keeper)))[0].tolist():
        groups.setdefault(int(keeper[i]), [int(keeper[i])]).append(i)
    return keeper, groups


def grouped_pairs(groups: dict[int, list[int]]) -> set[tuple[int, int]]:
    out = set()
    for members in groups.values():
        members = sorted(members)
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                out.add((a, b))
    return out


def farthest_from_keeper(vec: np.ndarray, keeper: np.ndarray) -> tuple[float, int]:
    """The largest cosine distance of a marked row from its keeper, from the vectors (the invariant: at most
    the threshold), and the number of marked rows."""
    marked = np.nonzero(keeper != np.arange(len(keeper)))[0]
    if not len(marked):
        return 0.0, 0
    dist = 1.0 - np.einsum("ij,ij->i", vec[marked], vec[keeper[marked]])
    return float(dist.max()), len(marked)


def search_latency(table, vec, args, settings):
    """Top-10 latency with a prefilter, through the index (built here when dedup built none; queried as search
    queries it, with ``settings``: the search section) and bypassing it, and the indexed results' recall@10
    against the exact ones."""
    from raycurate.search.index import ann_query
    from raycurate.store.dedup import ensure_vector_index
    from raycurate.store.indexes import vector_index

    t = time.perf_counter()
    state = ensure_vector_index(table, "clip_embedding", min_rows=1, index_type=args.index_type)
    if not state.startswith("present"):
        print(f"index for search: {state}: {time.perf_counter() - t:.1f} s", flush=True)
    index = vector_index(table, "clip_embedding")
    rng = np.random.default_rng(2)
    qrows = rng.choice(args.n, size=args.queries, replace=False)
    lat = {"indexed": [], "exact": []}
    hits = {"indexed": [], "exact": []}
    for mode in ("exact", "indexed"):
        for i in qrows:
            q = (table.search(vec[i], vector_column_name="clip_embedding").distance_type("cosine")
                 .where("width >= 800", prefilter=True).select(["id", "_distance"]).limit(10))
            q = q.bypass_vector_index() if mode == "exact" else ann_query(q, index, 10, settings)[0]
            t = time.perf_counter()
            got = q.to_arrow()
            lat[mode].append(time.perf_counter() - t)
            hits[mode].append(set(got.column("id").to_pylist()))
    return lat, float(np.mean([len(a & b) / max(1, len(b)) for a, b in zip(hits["indexed"], hits["exact"])]))


def pct(values, q):
    return float(np.percentile(np.asarray(values) * 1000.0, q))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--threshold", type=float, default=0.05)
    ap.add_argument("--index-type", default="IVF_FLAT", choices=("IVF_FLAT", "IVF_PQ", "IVF_HNSW_SQ"))
    ap.add_argument("--nprobes", type=int, default=8, help="dedup's nprobes (configs/default.yaml dedup.nprobes)")
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--method", default="auto", choices=("auto", "ann", "block"), help="dedup.method")
    ap.add_argument("--bf-full-max", type=int, default=200_000, help="all-pairs brute force up to this many rows")
    ap.add_argument("--bf-sample", type=int, default=10_000, help="brute-force query rows above --bf-full-max")
    ap.add_argument("--queries", type=int, default=200, help="search queries timed")
    ap.add_argument("--dir", help="where to build the table (default: a temporary folder, removed)")
    args = ap.parse_args()

    from raycurate.config import load_config, typed
    from raycurate.store.dedup import dedup_table, ensure_vector_index, uses_block

    search = typed(load_config()).search   # search's nprobes and refine_factor (configs/default.yaml search:)

    root = args.dir or tempfile.mkdtemp(prefix="rc-bench-store-")
    os.makedirs(root, exist_ok=True)
    db = os.path.join(root, "db")
    shutil.rmtree(db, ignore_errors=True)
    print(f"machine: {os.cpu_count()} logical CPUs; n={args.n:,} dim={args.dim} clusters={args.clusters} "
          f"planted pairs={args.pairs:,} threshold={args.threshold} index={args.index_type} nprobes={args.nprobes} "
          f"k={args.k}", flush=True)
    t = time.perf_counter()
    vec, planted, width = make_vectors(args.n, args.dim, args.clusters, args.pairs, args.threshold)
    print(f"vectors made: {time.perf_counter() - t:.1f} s", flush=True)
    t = time.perf_counter()
    table = write_table(db, vec, width)
    t_write = time.perf_counter() - t
    print(f"LanceDB table written: {t_write:.1f} s", flush=True)

    block = uses_block(table, "clip_embedding", run_id=None, method=args.method)
    t_index = c_index = 0.0
    state = "not built (block search needs none)"
    if not block:
        t, c = time.perf_counter(), time.process_time()
        state = ensure_vector_index(table, "clip_embedding", min_rows=1, index_type=args.index_type)
        t_index, c_index = time.perf_counter() - t, time.process_time() - c
    print(f"index: {state}: {t_index:.1f} s (CPU {c_index:.1f} s)", flush=True)
    load0 = os.getloadavg()
    t, c = time.perf_counter(), time.process_time()
    res = dedup_table(table, run_id=None, columns={"clip_embedding": args.threshold}, keep_by=["pixels"],
                      k=args.k, index_type=args.index_type, nprobes=args.nprobes, method=args.method,
                      progress=lambda m: print(m, flush=True))
    t_dedup, c_dedup = time.perf_counter() - t, time.process_time() - c
    load1 = os.getloadavg()
    how = res.method["clip_embedding"]
    print(f"dedup ({how}): {t_dedup:.1f} s wall, {c_dedup:.1f} s CPU ({args.n / t_dedup:,.0f} rows/s), "
          f"{res.groups:,} groups, {res.marked:,} marked; load average {load0[0]:.2f} before, {load1[0]:.2f} "
          f"after (1 min), {load1[1]:.2f} (5 min)", flush=True)
    keeper, groups = read_marks(table)
    found = grouped_pairs(groups)
    farthest, n_marked = farthest_from_keeper(vec, keeper)

    full = args.n <= args.bf_full_max
    if full:
        queries = np.arange(args.n)
    else:
        rng = np.random.default_rng(1)
        members = np.array(sorted({i for p in planted for i in p}))
        take = members[rng.permutation(len(members))[: args.bf_sample // 2]]
        rest = np.setdiff1d(rng.choice(args.n, size=args.bf_sample, replace=False), take)[: args.bf_sample - len(take)]
        queries = np.concatenate([take, rest])
    t = time.perf_counter()
    truth = brute_pairs(vec, queries, args.threshold)
    t_bf = time.perf_counter() - t
    qset = set(queries.tolist())
    found_here = {p for p in found if p[0] in qset or p[1] in qset} if not full else found
    # keeper-first groups: two rows within the threshold need not share a group (each is near its own
    # keeper); what dedup must do is leave no such pair with both rows kept
    kept = keeper == np.arange(len(keeper))
    both_kept = {p for p in truth if kept[p[0]] and kept[p[1]]}
    resolved = 1.0 - len(both_kept) / max(1, len(truth))
    recall = len(found_here & truth) / max(1, len(truth))
    planted_here = {p for p in planted if p[0] in qset or p[1] in qset}
    recall_planted = len({p for p in planted_here if not (kept[p[0]] and kept[p[1]])}) / max(1, len(planted_here))

    lat, recall10 = search_latency(table, vec, args, search) if args.queries else (None, None)
    print()
    print(f"| {args.n:,} x {args.dim} | time | pairs within the threshold with a row marked | same group | "
          f"planted pairs with a row marked | farthest marked row from its keeper |")
    print("|---|---|---|---|---|---|")
    scope = "all pairs" if full else f"{len(queries):,} query rows x {args.n:,} rows"
    print(f"| raycurate dedup, {how} | {t_dedup:.1f} s, CPU {c_dedup:.1f} s (+ index {t_index:.1f} s) | "
          f"{resolved:.4f} | {recall:.4f} | {recall_planted:.4f} | {farthest:.4f} ({n_marked:,} marked; "
          f"threshold {args.threshold}) |")
    print(f"| numpy brute force, exact ({scope}) | {t_bf:.1f} s | {len(truth):,} pairs | | | |")
    if not full:
        rate_bf = len(queries) / t_bf
        print(f"brute force: {rate_bf:,.0f} query rows/s vs dedup {args.n / t_dedup:,.0f} rows/s "
              f"({(args.n / t_dedup) / rate_bf:.1f}x); the pair figures are over the pairs that touch the "
              f"{len(queries):,} brute-forced rows")
    else:
        print(f"dedup / brute force time: {t_dedup / t_bf:.2f}x (index build not included; "
              f"{(t_dedup + t_index) / t_bf:.2f}x with it)")
    print(f"pairs within the threshold left with both rows kept: {len(both_kept):,} of {len(truth):,}"
          + ("" if full else " (those touching the brute-forced rows)") + "; planted pairs with both rows kept: "
          f"{sum(1 for a, b in planted if kept[a] and kept[b]):,} of {len(planted):,}")
    if farthest > args.threshold + 1e-5:
        print(f"INVARIANT BROKEN: a marked row lies {farthest:.4f} from its keeper (threshold {args.threshold})")
        return 1
    if lat is not None:
        print()
        print(f"top-10 search, prefilter `width >= 800`, {args.queries} queries: "
              f"indexed p50 {pct(lat['indexed'], 50):.1f} ms p95 {pct(lat['indexed'], 95):.1f} ms; "
              f"exact (index bypassed) p50 {pct(lat['exact'], 50):.1f} ms p95 {pct(lat['exact'], 95):.1f} ms; "
              f"indexed recall@10 vs exact {recall10:.4f} (nprobes >= {search.nprobes}, "
              f"refine {search.refine_factor})")
    print(f"table write {t_write:.1f} s; total {time.perf_counter() - t_start_all:.1f} s")
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)
    return 0


t_start_all = time.perf_counter()

if __name__ == "__main__":
    sys.exit(main())
