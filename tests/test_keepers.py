"""Keeper-first grouping: a chain of near rows never stretches a group beyond the threshold."""
import numpy as np
import pyarrow as pa
import pytest

from raycurate.schemas import frames_schema, images_schema
from raycurate.store.dedup import dedup_frames, dedup_table
from raycurate.store.keepers import keeper_first

T = 0.05


def test_a_chain_is_cut_where_it_leaves_the_keeper():
    # a ~ b ~ c ~ d, each step within the threshold, a and c (and b and d) not
    pairs = {("a", "b"): (0.04, "v"), ("b", "c"): (0.04, "v"), ("c", "d"): (0.04, "v")}
    owner = keeper_first(["a", "b", "c", "d"], pairs)
    assert owner == {"a": None, "b": ("a", 0.04, "v"), "c": None, "d": ("c", 0.04, "v")}
    # best first: b claims a and c; d has no pair with b and keeps itself
    owner = keeper_first(["b", "a", "c", "d"], pairs)
    assert owner["a"][0] == owner["c"][0] == "b" and owner["d"] is None and owner["b"] is None


def test_a_claimed_id_joins_the_best_keeper_it_is_near_and_ids_outside_the_order_are_ignored():
    pairs = {("k1", "m"): (0.04, "v"), ("k2", "m"): (0.01, "v"), ("k1", "x"): (0.0, "v")}
    owner = keeper_first(["k1", "k2", "m"], pairs)
    assert owner == {"k1": None, "k2": None, "m": ("k1", 0.04, "v")}


def _unit(v):
    return (v / np.linalg.norm(v)).astype(np.float32)


def _chain(n, step, dim=63, seed=0):
    """``n`` unit vectors, each ``step`` (cosine distance) from the one before, walking away from the first."""
    rng = np.random.default_rng(seed)
    x = [_unit(rng.normal(size=dim))]
    for _ in range(n - 1):
        # a direction orthogonal to the walk so far keeps the chain from folding back
        d = rng.normal(size=dim)
        for y in x:
            d -= (d @ y) * y
        d = _unit(d)
        angle = np.arccos(1 - step)
        x.append(_unit(np.cos(angle) * x[-1] + np.sin(angle) * d))
    return np.stack(x)


def _table(tmp_path, vectors, runs, widths, name="db"):
    import lancedb

    schema = images_schema()
    rows = [{"id": f"{i:02d}", "uri": f"mem://{i:02d}", "run_id": run, "media_type": "image", "width": w,
             "height": 100, "content_vector": v.tolist()} for i, (v, run, w) in enumerate(zip(vectors, runs, widths))]
    table = lancedb.connect(str(tmp_path / name)).create_table("images", schema=schema)
    table.add(pa.Table.from_pylist(rows, schema=schema))
    return table


def _check_invariant(table, vectors, threshold):
    """Every marked row is within the threshold of its keeper, the keeper is not marked, and a group's
    members all name the same keeper. Returns the rows by id."""
    rows = {r["id"]: r for r in table.to_arrow().to_pylist()}
    for r in rows.values():
        if r["duplicate_of"] is None:
            continue
        keeper = rows[r["duplicate_of"]]
        assert keeper["duplicate_of"] is None, (r["id"], "points at a marked row")
        assert r["duplicate_group"] == keeper["id"] == keeper["duplicate_group"]
        dist = 1.0 - float(vectors[int(r["id"])] @ vectors[int(keeper["id"])])
        assert dist <= threshold + 1e-5, (r["id"], keeper["id"], dist)
        assert r["duplicate_distance"] == pytest.approx(dist, abs=1e-4)
    return rows


@pytest.mark.parametrize("method", ["ann", "block"])
def test_a_slow_pan_is_not_one_group(tmp_path, method):
    """Twelve rows, each 0.03 from the one before: union-find made one group reaching 0.24 from its keeper."""
    x = _chain(12, 0.03)
    assert 1.0 - float(x[0] @ x[-1]) > 4 * T
    table = _table(tmp_path, x, ["r"] * 12, [1000 - i for i in range(12)])     # row 0 the largest
    res = dedup_table(table, run_id=None, columns={"content_vector": T}, keep_by=["pixels"], method=method,
                      block_min_rows=1, index_min_rows=10**9)
    rows = _check_invariant(table, x, T)
    keepers = sorted(i for i, r in rows.items() if r["duplicate_of"] is None)
    assert len(keepers) >= 4 and keepers[0] == "00"
    assert res.marked == 12 - len(keepers)


def test_groups_of_an_earlier_run_stay_valid_when_new_rows_arrive(tmp_path):
    x = _chain(6, 0.03, seed=1)
    # run a: rows 0, 1 (row 0 kept). run b: rows 2..5, row 3 the best of all
    table = _table(tmp_path, x, ["a", "a", "b", "b", "b", "b"], [900, 800, 500, 1000, 400, 300])
    first = dedup_table(table, run_id="a", columns={"content_vector": T}, keep_by=["pixels"])
    assert first.marked == 1 and table.to_arrow().to_pylist()[1]["duplicate_of"] == "00"
    dedup_table(table, run_id="b", columns={"content_vector": T}, keep_by=["pixels"])
    rows = _check_invariant(table, x, T)
    # 3 is the best: it claims 2 and 4 (its neighbours); 1, taken from 0 only if 3 is near it, is not
    assert rows["03"]["duplicate_of"] is None
    assert rows["02"]["duplicate_of"] == rows["04"]["duplicate_of"] == "03"
    assert rows["00"]["duplicate_of"] is None and rows["01"]["duplicate_of"] == "00"


def test_a_stale_mark_is_undone_and_its_group_formed_again(tmp_path):
    """A mark written by chaining (or under a larger threshold) is beyond today's threshold: undone."""
    x = _chain(3, 0.03, seed=2)
    table = _table(tmp_path, x, ["a", "a", "b"], [900, 800, 700])
    far = 1.0 - float(x[0] @ x[2])
    table.merge_insert("id").when_matched_update_all().execute(pa.Table.from_pylist(
        [{"id": "00", "duplicate_group": "00"},
         {"id": "01", "duplicate_group": "00", "duplicate_of": "00", "duplicate_distance": 0.03,
          "duplicate_column": "content_vector"},
         {"id": "02", "duplicate_group": "00", "duplicate_of": "00", "duplicate_distance": far,
          "duplicate_column": "content_vector"}],
        schema=pa.schema([images_schema().field(c) for c in ("id", "duplicate_group", "duplicate_of",
                                                               "duplicate_distance", "duplicate_column")])))
    res = dedup_table(table, run_id="a", columns={"content_vector": T}, keep_by=["pixels"])
    rows = _check_invariant(table, x, T)
    assert res.stale_marks == 2          # row 2 and the keeper it named
    assert rows["01"]["duplicate_of"] == "00" and rows["02"]["duplicate_of"] is None


def test_frames_follow_the_same_rule(tmp_path):
    import lancedb

    x = _chain(8, 0.03, seed=3)
    schema = frames_schema()
    rows = [{"video_id": "v", "video_uri": "/v.mp4", "run_id": "r", "frame_index": i, "width": 640,
             "height": 360, "stage2_score": 1.0 - i / 10, "content_vector": v.tolist()} for i, v in enumerate(x)]
    table = lancedb.connect(str(tmp_path / "f")).create_table("frames", schema=schema)
    table.add(pa.Table.from_pylist(rows, schema=schema))
    dedup_frames(table, run_id="r", columns={"content_vector": T}, keep_by=["stage3_score"])
    got = {r["frame_index"]: r for r in table.to_arrow().to_pylist()}
    for i, r in got.items():
        if r["duplicate_of"] is not None:
            k = int(r["duplicate_of"].split(":")[1])
            assert got[k]["duplicate_of"] is None
            assert 1.0 - float(x[i] @ x[k]) <= T + 1e-5
    assert sum(r["duplicate_of"] is None for r in got.values()) >= 3
