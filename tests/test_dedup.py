"""Near-duplicate grouping inside LanceDB, on the published neardup set and across runs."""
import json
import shutil

import numpy as np
import pyarrow as pa
import pytest

from raycurate.analyzers.content_vector import hamming
from raycurate.cli import main
from raycurate.ingest import names_of
from raycurate.schemas import images_schema
from raycurate.store import open_images_table
from raycurate.store.dedup import dedup_table, has_vector_index

from .conftest import IMAGES

# Only the analysers dedup needs: no faces, no NSFW, no gates on them.
LIGHT = ["--set", "analyzers.face.enabled=false", "--set", "analyzers.nsfw.enabled=false",
         "--set", "filter.min_faces=null", "--set", "filter.max_nsfw_score=null", "--set", "video.enabled=false"]


def _run(inp, out, *extra, db=None):
    argv = ["run", str(inp), "--out", str(out), *LIGHT, *extra] + (["--db", str(db)] if db else [])
    assert main(argv) == 0
    return json.loads((out / "manifest.json").read_text())


def _rows(db):
    return {r["uri"].rsplit("/", 1)[1] + "@" + r["run_id"][-8:]: r
            for r in open_images_table(str(db)).to_arrow().to_pylist()}


@pytest.fixture(scope="module")
def neardup(tmp_path_factory, ray_session):
    inp = tmp_path_factory.mktemp("neardup")
    shutil.copytree(IMAGES / "neardup" / "mixed_images", inp / "mixed")
    shutil.copytree(IMAGES / "neardup" / "base_images", inp / "base")
    out = tmp_path_factory.mktemp("out")
    manifest = _run(inp, out)
    rows = {r["uri"].split("/neardup")[1].split("/", 1)[1]: r
            for r in open_images_table(str(out / "db")).to_arrow().to_pylist()}
    return {"manifest": manifest, "rows": rows, "names": names_of(str(out / "db"))}


def test_resize_is_grouped_with_its_original_and_flip_and_rotation_are_not(neardup):
    rows = neardup["rows"]
    # base/ukbench00120.jpg and mixed/ukbench00120.jpg hold the same bytes: one row, under the smaller name
    orig, resize = rows["base/ukbench00120.jpg"], rows["mixed/ukbench00120_resize.jpg"]
    assert hamming(orig["content_phash"], resize["content_phash"]) <= 2     # the published pHash distance
    assert resize["duplicate_group"] == orig["duplicate_group"] is not None
    # the content vector (a DCT of the whole picture) does not survive a mirror or a rotation
    for variant in ("hflip", "rotation"):
        assert rows[f"mixed/ukbench00120_{variant}.jpg"]["duplicate_group"] is None
    # the larger of original and resize is kept
    kept = [r for r in (orig, resize) if r["duplicate_of"] is None]
    assert len(kept) == 1 and kept[0]["width"] * kept[0]["height"] == max(
        r["width"] * r["height"] for r in (orig, resize))
    assert resize["duplicate_column"] in ("content_vector", "id") and resize["duplicate_distance"] < 0.15


def test_no_duplicate_among_the_distinct_base_images_and_corrupt_is_an_error_row(neardup):
    rows = neardup["rows"]
    groups = [r["duplicate_group"] for name, r in rows.items() if name.startswith("base/")]
    named = [g for g in groups if g is not None]
    assert len(named) == len(set(named))      # no two distinct base images share a group
    # the two base images that are byte-identical copies of mixed ones: one row each (read and analysed once),
    # both names recorded
    names = neardup["names"]
    for name in ("ukbench00120.jpg", "ukbench09268.jpg"):
        assert f"mixed/{name}" not in rows
        assert [n.split("/neardup")[1].split("/", 1)[1] for n in names[rows[f"base/{name}"]["id"]]] == \
            [f"base/{name}", f"mixed/{name}"]
    corrupt = rows["mixed/ukbench09268_corrupt.jpg"]
    assert corrupt["error"] and corrupt["duplicate_group"] is None
    assert neardup["manifest"]["ingest"]["duplicate_files"] == 2
    assert neardup["manifest"]["dedup"]["rows_in_scope"] == 13     # 16 files, 2 copies, one corrupt


def test_every_marked_photo_is_within_the_threshold_of_its_keeper(neardup):
    """The grouping invariant on the published neardup photos: recomputed from the stored vectors."""
    rows = {r["id"]: r for r in neardup["rows"].values()}
    marked = [r for r in rows.values() if r["duplicate_of"] is not None]
    assert marked                                   # the resize is marked
    for r in marked:
        keeper = rows[r["duplicate_of"]]
        assert keeper["duplicate_of"] is None
        a, b = np.asarray(r["content_vector"]), np.asarray(keeper["content_vector"])
        assert 1.0 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) <= 0.15


def test_new_rows_are_compared_with_earlier_runs_and_a_better_one_takes_over(tmp_path, ray_session):
    db = tmp_path / "db"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(IMAGES / "faces" / "pillow_hopper.jpg", tmp_path / "a")                 # 128 x 128
    shutil.copy(IMAGES / "faces" / "matplotlib_grace_hopper.jpg", tmp_path / "b")       # 512 x 600
    first = _run(tmp_path / "a", tmp_path / "out_a", db=db)
    assert first["counts"]["kept"] == 1
    second = _run(tmp_path / "b", tmp_path / "out_b", db=db)
    rows = {r["uri"].rsplit("/", 1)[1]: r for r in open_images_table(str(db)).to_arrow().to_pylist()}
    small, large = rows["pillow_hopper.jpg"], rows["matplotlib_grace_hopper.jpg"]
    assert small["duplicate_of"] == large["id"] and large["duplicate_of"] is None      # the larger is kept
    # a 128x128 re-encode of the portrait (the media's README): a near duplicate by truth, at any distance under
    # the threshold that marked it (0.11 measured on content_vector)
    threshold = second["config"]["dedup"]["columns"]["content_vector"]
    assert small["duplicate_column"] == "content_vector" and 0 < small["duplicate_distance"] <= threshold
    assert second["counts"]["kept"] == 1 and second["dedup"]["groups"] == 1


def _synthetic_table(tmp_path, n, dim=63, seed=0):
    """``n`` rows with random unit content vectors, every 10th one a near copy of the one before."""
    import lancedb

    rng = np.random.default_rng(seed)
    vec = rng.normal(size=(n, dim)).astype(np.float32)
    planted = []
    for i in range(1, n, 10):
        vec[i] = vec[i - 1] + rng.normal(scale=0.05, size=dim)
        planted.append((f"{i - 1:08d}", f"{i:08d}"))
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    schema = images_schema()
    data = {f.name: pa.nulls(n, f.type) for f in schema}
    data.update(id=pa.array([f"{i:08d}" for i in range(n)]), uri=pa.array([f"mem://{i}" for i in range(n)]),
                run_id=pa.array(["r"] * n), media_type=pa.array(["image"] * n),
                width=pa.array(rng.integers(100, 1000, n).astype(np.int32)), height=pa.array([100] * n, pa.int32()),
                content_vector=pa.FixedSizeListArray.from_arrays(pa.array(vec.ravel()), dim))
    table = lancedb.connect(str(tmp_path / "db")).create_table("images", schema=schema)
    table.add(pa.table(data, schema=schema))
    return table, vec, planted


@pytest.mark.parametrize("index_min_rows", [10**9, 1000])
def test_planted_pairs_found_with_exact_search_and_with_the_ann_index(tmp_path, index_min_rows):
    table, vec, planted = _synthetic_table(tmp_path, 3000)
    res = dedup_table(table, run_id=None, columns={"content_vector": 0.05}, keep_by=["pixels"],
                      index_min_rows=index_min_rows)
    assert has_vector_index(table, "content_vector") == (index_min_rows == 1000)
    rows = {r["id"]: r for r in table.to_arrow().to_pylist()}
    # brute force on the same vectors: every pair within the threshold
    sims = vec @ vec.T
    truth = {(f"{i:08d}", f"{j:08d}") for i, j in zip(*np.nonzero(np.triu(1.0 - sims <= 0.05, 1)))}
    assert set(planted) <= truth
    found = {(a, b) for a, b in truth if rows[a]["duplicate_group"] and rows[a]["duplicate_group"] ==
             rows[b]["duplicate_group"]}
    assert len(found) >= 0.98 * len(truth)
    for a, b in planted[:20]:
        loser = rows[a] if rows[a]["width"] < rows[b]["width"] else rows[b]
        winner = rows[b] if loser is rows[a] else rows[a]
        if (a, b) in found and loser["width"] != winner["width"]:
            assert loser["duplicate_of"] == winner["id"] and winner["duplicate_of"] is None
    assert res.marked == sum(1 for r in rows.values() if r["duplicate_of"])


def test_union_find_components_of_keys_and_of_rows():
    from raycurate.store.unionfind import DisjointSets, UnionFind

    uf = UnionFind()
    uf.union(["a", "c", "x"], ["b", "d", "x"])
    uf.union(["b"], ["d"])
    assert "x" in uf and "y" not in uf
    assert sorted(map(sorted, uf.components().values())) == [["a", "b", "c", "d"], ["x"]]
    assert uf.find("d") == uf.find("a")
    sets = DisjointSets(6)
    sets.union([0, 4, 2], [4, 2, 0])
    roots = sets.roots()
    assert roots[0] == roots[2] == roots[4] and len(set(roots.tolist())) == 4
