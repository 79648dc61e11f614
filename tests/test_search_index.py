"""A table's indexes read in one place (raycurate/store/indexes.py) and how a search query uses them
(raycurate/search/index.py), on a real LanceDB table with real IVF and scalar indexes: LanceDB's own query
plan shows the partitions probed and the candidates re-ranked that the search settings asked for."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from raycurate.cli import main
from raycurate.config import load_config, typed
from raycurate.search.index import COSINE_ONLY, METRIC_TO_COSINE, plan
from raycurate.settings import SearchSettings
from raycurate.store.indexes import (has_index, has_vector_index, index_kind, indexed_columns, indexes,
                                     vector_index)

N, DIM = 600, 16


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    import lancedb
    from lancedb.index import Bitmap, BTree, IvfFlat, IvfHnswSq, IvfPq

    vecs = np.random.default_rng(0).normal(size=(N, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vecs.ravel()), DIM)
    db = lancedb.connect(str(tmp_path_factory.mktemp("idx") / "db"))
    # (an IVF index on a column named "flat" panics in lance-index 13: the columns are named otherwise)
    t = db.create_table("t", pa.table({"id": [f"{i:04d}" for i in range(N)], "kind": ["a", "b"] * (N // 2),
                                       "pq": column, "hnsw": column, "ivf": column, "bare": column}))
    t.create_index("pq", config=IvfPq(distance_type="cosine", num_partitions=4, num_sub_vectors=4))
    t.create_index("hnsw", config=IvfHnswSq(distance_type="l2", num_partitions=2))
    t.create_index("ivf", config=IvfFlat(distance_type="cosine", num_partitions=2))
    t.create_index("id", config=BTree())
    t.create_index("kind", config=Bitmap())
    return t, vecs


def test_kinds_columns_and_metrics_of_every_index(table):
    t, _ = table
    assert {(i.kind, i.columns, i.is_vector) for i in indexes(t)} == {
        ("IVF_PQ", ("pq",), True), ("IVF_HNSW_SQ", ("hnsw",), True), ("IVF_FLAT", ("ivf",), True),
        ("BTREE", ("id",), False), ("BITMAP", ("kind",), False)}
    assert {c: (vector_index(t, c).kind, vector_index(t, c).metric) for c in ("pq", "hnsw", "ivf")} == {
        "pq": ("IVF_PQ", "cosine"), "hnsw": ("IVF_HNSW_SQ", "l2"), "ivf": ("IVF_FLAT", "cosine")}
    assert vector_index(t, "bare") is None and vector_index(t, "id") is None   # a scalar index is no vector index
    assert has_vector_index(t, "ivf") and not has_vector_index(t, "bare") and not has_vector_index(t, "id")
    assert has_index(t, "id") and has_index(t, "pq") and not has_index(t, "bare")
    assert index_kind(t, "hnsw", "IVF_FLAT") == "IVF_HNSW_SQ" and index_kind(t, "bare", "IVF_PQ") == "IVF_PQ"
    assert indexed_columns(t) == {"pq", "hnsw", "ivf", "id", "kind"}


def test_the_search_settings_reach_lancedb_query_plan(table):
    """``search.nprobes`` is the least number of partitions probed; ``search.refine_factor`` x the limit is the
    number of ANN candidates re-ranked on the full vectors."""
    t, vecs = table
    for nprobes, refine in ((3, 7), (32, 10)):
        query, method, scale = plan(t.search(vecs[0], vector_column_name="ivf"), t, "ivf", 5,
                                    SearchSettings(nprobes=nprobes, refine_factor=refine))
        shown = query.limit(5).explain_plan(True)
        assert (method, scale) == ("ann:ivf_idx (IVF_FLAT, cosine)", 1.0)
        assert f"minimum_nprobes={nprobes}," in shown and f"k={5 * refine}," in shown, shown
    query, method, scale = plan(t.search(vecs[0], vector_column_name="hnsw"), t, "hnsw", 5, SearchSettings())
    assert method == "ann:hnsw_idx (IVF_HNSW_SQ, l2)" and scale == METRIC_TO_COSINE["l2"] == 0.5
    hits = query.limit(5).to_arrow()   # squared l2 of unit vectors, x 0.5: cosine distance
    cosine = 1.0 - vecs[[int(i) for i in hits.column("id").to_pylist()]] @ vecs[0]
    assert np.allclose(hits.column("_distance").to_numpy() * scale, cosine, atol=1e-2)
    assert typed(load_config()).search == SearchSettings(nprobes=32, refine_factor=10)


def test_an_index_whose_metric_cannot_give_cosine_is_bypassed(table):
    """Face vectors (dlib's are not unit length) take only a cosine index: an l2 one is bypassed, the search exact."""
    t, vecs = table
    query, method, scale = plan(t.search(vecs[0], vector_column_name="hnsw"), t, "hnsw", 5, SearchSettings(),
                                COSINE_ONLY)
    shown = query.limit(5).explain_plan(True)
    assert (method, scale) == ("exact", 1.0) and "ANN" not in shown and "metric=cosine" in shown, shown
    query, method, _ = plan(t.search(vecs[0], vector_column_name="bare"), t, "bare", 5, SearchSettings())
    assert method == "exact" and "ANN" not in query.limit(5).explain_plan(True)
    exact = query.limit(5).to_arrow()
    assert exact.column("id").to_pylist()[0] == "0000" and abs(exact.column("_distance")[0].as_py()) < 1e-5


def test_search_refuses_a_bad_search_setting_in_one_line(tmp_path, capsys):
    assert main(["search", str(tmp_path), "--id", "abcd", "--set", "search.nprobes=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "search.nprobes" in err, err
