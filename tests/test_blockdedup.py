"""Dedup by exact blockwise search inside partitions (raycurate/store/blockdedup.py), against brute force, and
the same groups as the ANN path; the frames table's dedup."""
import numpy as np
import pyarrow as pa
import pytest

from raycurate.schemas import frames_schema, images_schema
from raycurate.store.blockdedup import block_pairs, compact_rows, read_vectors
from raycurate.store.dedup import dedup_frames, dedup_table


def _clustered(n, dim, clusters, seed=0):
    """Unit vectors around ``clusters`` centres (members ~0.3 apart in cosine distance)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] / np.sqrt(dim) + rng.normal(scale=0.7 / np.sqrt(dim), size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), rng


def _plant(x, rng, pairs, lo, hi):
    """Overwrite rows with copies of others turned by a cosine distance drawn in [lo, hi]; the planted pairs."""
    order = rng.permutation(len(x))
    src, dst = order[:pairs], order[pairs:2 * pairs]
    want = rng.uniform(lo, hi, pairs)
    u = rng.normal(size=(pairs, x.shape[1]))
    u -= (u * x[src]).sum(1, keepdims=True) * x[src]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    x[dst] = (1 - want)[:, None] * x[src] + np.sqrt(1 - (1 - want) ** 2)[:, None] * u
    return {(min(a, b), max(a, b)) for a, b in zip(src.tolist(), dst.tolist())}


def _brute(x, threshold, scope=None):
    out = set()
    for s in range(0, len(x), 4096):
        a, b = np.nonzero(x[s:s + 4096] @ x.T >= np.float32(1 - threshold))
        a += s
        keep = a < b
        out |= set(zip(a[keep].tolist(), b[keep].tolist()))
    return out if scope is None else {(a, b) for a, b in out if scope[a] or scope[b]}


def test_block_pairs_equal_brute_force_and_find_every_planted_pair():
    x, rng = _clustered(20_000, 64, 400)          # 400 clusters in 40 partitions: boundaries cut pairs
    planted = _plant(x, rng, 400, 0.002, 0.04)
    res = block_pairs(x, 0.05, partition_rows=500)
    found = set(zip(res.i.tolist(), res.j.tolist()))
    truth = _brute(x, 0.05)
    assert planted <= truth and len(truth) >= 400
    assert found == truth                                  # recall 1.0 and precision 1.0
    assert res.stats["partitions"] == 40 and res.stats["probes_per_row"] > 0
    d = dict(zip(zip(res.i.tolist(), res.j.tolist()), res.dist.tolist()))
    a, b = next(iter(planted))
    assert d[(a, b)] == pytest.approx(1 - float(x[a].astype(np.float64) @ x[b]), abs=1e-5)
    # without the probes of the partitions next door, pairs split by a boundary are missed
    alone = block_pairs(x, 0.05, partition_rows=500, max_probes=0)
    assert len(truth) * 0.8 < len(alone.i) < len(truth)


def test_pairs_just_over_the_threshold_are_not_reported():
    x, rng = _clustered(6000, 64, 20, seed=1)
    inside = _plant(x, rng, 100, 0.046, 0.048)
    rest = np.setdiff1d(np.arange(len(x)), [i for p in inside for i in p])
    y = x[rest].copy()
    outside = {(int(rest[a]), int(rest[b])) for a, b in _plant(y, rng, 100, 0.052, 0.054)}
    x[rest] = y
    res = block_pairs(x, 0.05, partition_rows=300)
    found = set(zip(res.i.tolist(), res.j.tolist()))
    assert inside <= found and not (outside & found)
    assert res.dist.max() <= 0.05 + 1e-6


def test_scope_keeps_the_pairs_touching_it():
    x, rng = _clustered(8000, 32, 30, seed=2)
    _plant(x, rng, 300, 0.001, 0.03)
    scope = np.zeros(len(x), dtype=bool)
    scope[rng.choice(len(x), 1500, replace=False)] = True
    res = block_pairs(x, 0.05, scope=scope, partition_rows=400)
    truth = _brute(x, 0.05, scope)
    assert set(zip(res.i.tolist(), res.j.tolist())) == truth and len(truth) > 30


def test_a_clump_of_identical_rows_is_joined_with_few_pairs():
    from raycurate.store.unionfind import DisjointSets

    x, _ = _clustered(3000, 32, 10, seed=4)
    x[100:400] = x[100]                           # 300 identical frames: 44,850 pairs in all
    res = block_pairs(x, 0.05, partition_rows=200, per_row=4)
    assert len(res.i) <= 300 * 4 * 2
    sets = DisjointSets(len(x))
    sets.union(res.i, res.j)
    assert len(set(sets.roots()[100:400].tolist())) == 1
    assert len(block_pairs(x, 0.05, partition_rows=200).i) >= 300 * 299 // 2


def test_compact_rows_in_place():
    x = np.arange(40, dtype=np.float32).reshape(10, 4)
    keep = np.array([0, 3, 4, 9])
    want = x[keep].copy()
    assert np.array_equal(compact_rows(x, keep), want)


def _images_table(tmp_path, name, n=3000, dim=63, seed=0):
    """``n`` images, every 10th a near copy of the one before, 200 exact copies (same id, another uri and
    run), every 7th in run ``b`` (the others in ``a``)."""
    import lancedb

    x, rng = _clustered(n, dim, 40, seed)
    for i in range(1, n, 10):
        x[i] = x[i - 1] + rng.normal(scale=0.03, size=dim).astype(np.float32) * np.linalg.norm(x[i - 1])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    schema = images_schema()
    copies = list(range(0, min(n, 2000), 10))
    ids = [f"{i:08d}" for i in range(n)] + [f"{i:08d}" for i in copies]
    m = len(ids)
    vec = np.concatenate([x, x[copies]])
    data = {f.name: pa.nulls(m, f.type) for f in schema}
    data.update(id=pa.array(ids), uri=pa.array([f"mem://{i}" for i in range(m)]),
                run_id=pa.array(["b" if i % 7 == 0 or i >= n else "a" for i in range(m)]),
                media_type=pa.array(["image"] * m), width=pa.array(rng.integers(100, 1000, m).astype(np.int32)),
                height=pa.array([100] * m, pa.int32()),
                content_vector=pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), dim))
    table = lancedb.connect(str(tmp_path / name)).create_table("images", schema=schema)
    table.add(pa.table(data, schema=schema))
    return table


MARKS = ["id", "uri", "duplicate_group", "duplicate_of", "duplicate_column"]


def _marks(table):
    rows = table.search().select(MARKS + ["duplicate_distance"]).limit(None).to_list()
    return {r["uri"]: tuple(r[c] for c in MARKS) for r in rows}, \
        {r["uri"]: r["duplicate_distance"] or 0.0 for r in rows}


@pytest.mark.parametrize("run_id", [None, "b"])
def test_block_and_ann_give_the_same_groups(tmp_path, run_id):
    marks, results = {}, {}
    for method in ("ann", "block"):
        table = _images_table(tmp_path, method)
        res = dedup_table(table, run_id=run_id, columns={"content_vector": 0.05}, keep_by=["pixels"],
                          index_min_rows=10**9, method=method)
        marks[method], results[method] = _marks(table), res
    assert results["block"].method["content_vector"].startswith("block")
    assert results["ann"].method["content_vector"].startswith("ann")
    assert marks["block"][0] == marks["ann"][0]
    assert marks["block"][1] == pytest.approx(marks["ann"][1], abs=1e-5)
    for field in ("rows_in_scope", "exact_groups", "pairs", "groups", "marked"):
        assert getattr(results["block"], field) == getattr(results["ann"], field), field
    assert results["block"].marked > 200 and results["block"].exact_groups > 0


def test_auto_takes_block_for_a_large_scope(tmp_path):
    table = _images_table(tmp_path, "auto", n=1000)
    res = dedup_table(table, run_id=None, columns={"content_vector": 0.05}, keep_by=["pixels"], block_min_rows=500)
    assert res.method["content_vector"].startswith("block") and res.indexed["content_vector"].startswith("none")
    small = dedup_table(table, run_id="b", columns={"content_vector": 0.05}, keep_by=["pixels"], block_min_rows=500)
    assert small.method["content_vector"].startswith("ann")
    with pytest.raises(ValueError, match="dedup method"):
        dedup_table(table, run_id=None, columns={}, keep_by=[], method="fast")


def _frames_table(tmp_path):
    """Two videos' frames in run ``r1``: v1's frames 0 and 5 near each other (5 scores higher in Stage 2),
    v2's frame 0 far from both, v1's frame 9 without a vector (stopped at Stage 1); run ``r2`` holds v1's
    frames 0 and 5 again (the same video read again: exact copies)."""
    import lancedb

    rng = np.random.default_rng(3)
    base = rng.normal(size=(3, 63)).astype(np.float32)
    near = base[0] + 0.02 * rng.normal(size=63).astype(np.float32) * np.linalg.norm(base[0]) / np.sqrt(63)
    frames = [("v1", 0, base[0], 0.5, "r1"), ("v1", 5, near, 0.9, "r1"), ("v2", 0, base[2], 0.7, "r1"),
              ("v1", 9, None, None, "r1"), ("v1", 0, base[0], 0.5, "r2"), ("v1", 5, near, 0.9, "r2")]
    schema = frames_schema()
    rows = [{"video_id": v, "video_uri": f"/videos/{v}.mp4", "run_id": run, "frame_index": i,
             "width": 640, "height": 360, "stage2_score": score,
             "content_vector": None if vec is None else (vec / np.linalg.norm(vec)).tolist()}
            for v, i, vec, score, run in frames]
    table = lancedb.connect(str(tmp_path / "fdb")).create_table("frames", schema=schema)
    table.add(pa.Table.from_pylist(rows, schema=schema))
    return table


@pytest.mark.parametrize("method", ["ann", "block"])
def test_frames_dedup_marks_the_right_frames(tmp_path, method):
    table = _frames_table(tmp_path)
    res = dedup_frames(table, run_id="r1", columns={"content_vector": 0.05, "clip_embedding": 0.06},
                       keep_by=["stage3_score", "pixels"], method=method, index_min_rows=10**9)
    rows = {(r["video_id"], r["frame_index"], r["run_id"]): r for r in table.to_arrow().to_pylist()}
    keeper = rows[("v1", 5, "r1")]         # the higher Stage 2 score of the two near frames
    assert keeper["duplicate_of"] is None and keeper["duplicate_group"] == "v1:5"
    for run in ("r1", "r2"):
        assert rows[("v1", 0, run)]["duplicate_of"] == "v1:5"
        assert rows[("v1", 0, run)]["duplicate_column"] == "content_vector"
        assert 0 < rows[("v1", 0, run)]["duplicate_distance"] < 0.05
    copy = rows[("v1", 5, "r2")]           # the same frame read in another run: an exact duplicate
    assert copy["duplicate_of"] == "v1:5" and copy["duplicate_column"] == "id" and copy["duplicate_distance"] == 0
    for other in (("v2", 0, "r1"), ("v1", 9, "r1")):
        assert rows[other]["duplicate_group"] is None and rows[other]["duplicate_of"] is None
    assert res.pairs == {"content_vector": 1, "clip_embedding": 0} and res.groups == 1 and res.marked == 3


def test_read_vectors_streams_unit_rows(tmp_path):
    table = _frames_table(tmp_path)
    keys, x = read_vectors(table, "content_vector", "run_id = 'r1'", ["video_id", "frame_index"])
    assert keys.num_rows == len(x) == 3 and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)


def test_marks_skip_a_row_that_failed_to_decode_with_the_same_id(tmp_path):
    """Marks alike for every row of an id are merged on the id alone: not onto its rows that are errors."""
    import lancedb

    schema = images_schema()
    v = np.ones(63, dtype=np.float32) / np.sqrt(63)
    w = v.copy()
    w[0] += 0.05
    rows = [{"id": "a", "uri": "u1", "run_id": "r", "media_type": "image", "width": 10, "height": 10,
             "content_vector": v.tolist()},
            {"id": "a", "uri": "u2", "run_id": "r", "media_type": "image", "error": "truncated"},
            {"id": "b", "uri": "u3", "run_id": "r", "media_type": "image", "width": 20, "height": 20,
             "content_vector": (w / np.linalg.norm(w)).tolist()}]
    table = lancedb.connect(str(tmp_path / "db")).create_table("images", schema=schema)
    table.add(pa.Table.from_pylist(rows, schema=schema))
    res = dedup_table(table, run_id=None, columns={"content_vector": 0.05}, keep_by=["pixels"])
    got = {r["uri"]: r for r in table.to_arrow().to_pylist()}
    assert got["u1"]["duplicate_of"] == "b" and got["u3"]["duplicate_group"] == "b" and res.marked == 1
    assert got["u2"]["duplicate_group"] is None and got["u2"]["duplicate_of"] is None
