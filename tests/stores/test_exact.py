"""The flat index without faiss (stores/exact.py): the answers of faiss's IndexFlatIP on the same vectors,
masks honoured, ties to the lower slot, and a VectorIndex over it that saves in faiss's format."""

from __future__ import annotations

import numpy as np

from lookalike.stores.exact import ExactIndex
from lookalike.stores.vectors import VectorIndex


def unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_same_answers_as_faiss_flat() -> None:
    import faiss

    x, q = unit(3000, 64, 0), unit(25, 64, 1)
    exact, flat = ExactIndex(64), faiss.IndexFlatIP(64)
    for lo in range(0, len(x), 700):  # added in pieces: the array grows
        exact.add(x[lo:lo + 700])
        flat.add(x[lo:lo + 700])
    for queries in (q, unit(40, 64, 4)):  # a search in numpy; a batch (FAISS_FROM or more) through faiss.knn
        for k in (1, 10, 100):
            s1, i1 = exact.search(queries, k)
            s2, i2 = flat.search(queries, k)
            assert (i1 == i2).all() and np.abs(s1 - s2).max() < 1e-5
    assert exact.ntotal == 3000 and np.array_equal(exact.reconstruct_batch(np.array([5, 2999])), x[[5, 2999]])


def test_mask_short_lists_and_ties() -> None:
    x = unit(50, 16, 2)
    x[30] = x[10]  # the same vector twice: the earlier slot first
    exact = ExactIndex(16)
    exact.add(x)
    s, i = exact.search(x[10:11], 2)
    assert i[0].tolist() == [10, 30] and s[0, 0] == s[0, 1]
    allowed = np.zeros(50, bool)
    allowed[[3, 7]] = True
    s, i = exact.search(x[:4], 5, allowed)
    assert set(i[:, :2].ravel().tolist()) <= {3, 7} and (i[:, 2:] == -1).all() and np.isneginf(s[:, 2:]).all()
    assert ExactIndex(16).search(x[:1], 3)[1].tolist() == [[-1, -1, -1]]


def test_ties_across_the_cut_go_to_the_lower_slots_in_a_batch_and_alone() -> None:
    """Exact copies have one vector: with 12 copies and k = 5, a search returns the 5 earliest, whether it
    runs alone (numpy: argpartition picks any of the tied) or in a batch (faiss.knn, FAISS_FROM or more)."""
    from lookalike.stores.exact import FAISS_FROM

    x = unit(400, 16, 5)
    copies = [7, 40, 41, 90, 150, 151, 200, 260, 300, 333, 350, 399]
    x[copies] = x[7]
    exact = ExactIndex(16)
    exact.add(x[::-1].copy())  # the copies at other slots than their row numbers: 399 - row
    slots = sorted(399 - c for c in copies)
    queries = np.concatenate([x[[7]], unit(FAISS_FROM + 3, 16, 6)])
    batch_s, batch_i = exact.search(queries, 5)
    alone_s, alone_i = exact.search(queries[:1], 5)
    assert batch_i[0].tolist() == alone_i[0].tolist() == slots[:5]
    assert np.allclose(batch_s[0], alone_s[0])
    for r in range(1, len(queries)):  # untied rows: the same answers either way
        assert exact.search(queries[r:r + 1], 5)[1][0].tolist() == batch_i[r].tolist()
    allowed = np.ones(400, bool)
    allowed[slots[0]] = False
    assert exact.search(queries[:1], 3, allowed)[1][0].tolist() == slots[1:4]


def test_vector_index_over_it_filters_removes_and_saves_as_faiss(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = unit(200, 32, 3)
    idx = VectorIndex.create("flat", 32, 200)
    assert isinstance(idx.index, ExactIndex)
    idx.add(np.arange(1000, 1200), x)
    (best, score), = idx.search(x[5], 1)
    assert best == 1005 and score > 0.999
    idx.remove([1005])
    assert 1005 not in [i for i, _ in idx.search(x[5], 10)]
    assert {i for i, _ in idx.search(x[5], 10, allowed=[1001, 1002, 1005])} == {1001, 1002}
    idx.save(tmp_path / "v.index")
    back, _ = VectorIndex.load(tmp_path / "v.index")  # faiss's own flat, read back: the same answers
    assert not isinstance(back.index, ExactIndex)
    assert [i for i, _ in back.search(x[7], 5)] == [i for i, _ in idx.search(x[7], 5)]
    assert idx.memory_bytes() > 200 * 32 * 4
