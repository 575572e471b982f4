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
