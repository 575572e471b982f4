"""The faiss vector indexes: every kind finds what exact search finds, filters, removals, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.stores.vectors import FLAT_MAX, KINDS, VectorIndex, auto_kind, default_nlist


def clustered(n: int, dim: int = 64, centres: int = 40, seed: int = 0) -> np.ndarray:
    """Non-negative, L2-normalised vectors around a few centres (embeddings have clusters, not noise)."""
    rng = np.random.default_rng(seed)
    c = np.abs(rng.standard_normal((centres, dim)))
    x = c[rng.integers(0, centres, n)] + 0.6 * np.abs(rng.standard_normal((n, dim)))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    s = vecs @ q
    return [int(ids[i]) for i in np.argsort(-s, kind="stable")[:k]]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "auto"])
def test_every_kind_finds_the_exact_neighbours(kind: str) -> None:
    vecs = clustered(3000)
    ids = np.arange(100, 3100, dtype=np.int64)
    idx = VectorIndex.build(64, [(ids[:1500], vecs[:1500]), (ids[1500:], vecs[1500:])], kind=kind, n=3000)
    assert idx.kind == kind and len(idx) == 3000
    queries = clustered(40, seed=1)
    recall = np.mean([len(set(exact(vecs, ids, q, 10)) & {i for i, _ in idx.search(q, 10)}) / 10 for q in queries])
    assert recall >= {"flat": 1.0, "ivf": 0.9, "hnsw": 0.9}.get(kind, 0.3 if "pq" in kind else 0.8), recall  # PQ trades recall for 32x less memory
    # a stored vector finds itself first, with its cosine
    hits = idx.search(vecs[7], 3)
    assert hits[0][0] == 107 and hits[0][1] == pytest.approx(1.0, abs=0.02 if "pq" in kind else 0.005)


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "hnsw"])
def test_remove_readd_and_filters(kind: str) -> None:
    vecs = clustered(2000)
    ids = np.arange(2000, dtype=np.int64)
    idx = VectorIndex.build(64, [(ids, vecs)], kind=kind, n=2000)
    idx.remove([5, 6])
    assert all(i not in (5, 6) for i, _ in idx.search(vecs[5], 10))
    idx.add(np.array([5]), vecs[6:7])  # re-embedded: the id comes back with a new vector
    assert idx.search(vecs[6], 1)[0][0] == 5 and len(idx) == 1999
    allowed = [3, 900, 1500, 1999]
    got = [i for i, _ in idx.search(vecs[900], 10, allowed)]
    assert got[0] == 900 and set(got) == set(allowed)
    big = list(range(0, 2000, 2))  # a filter too large for the exact subset path
    got = [i for i, _ in idx.search(vecs[3], 10, big)]
    assert len(got) == 10 and all(i % 2 == 0 for i in got)
    assert idx.search(vecs[0], 5, []) == []


def test_auto_kind_and_rebuild_policy() -> None:
    assert auto_kind(10) == "flat" and auto_kind(FLAT_MAX) == "ivf-sq8"
    assert default_nlist(1_000_000) == 4096 and default_nlist(10) == 16 and default_nlist(3000) == 64
    idx = VectorIndex.build(64, [(np.arange(3000), clustered(3000))], kind="ivf-sq8", n=3000)
    assert not idx.needs_rebuild(3000, "ivf-sq8")
    assert idx.needs_rebuild(7000, "ivf-sq8")  # grown more than twice since training
    assert idx.needs_rebuild(3000, "flat")
    idx.remove(list(range(1200)))
    assert idx.needs_rebuild(1800, "ivf-sq8")  # tombstones over a quarter


def test_save_and_load_atomically(tmp_path: Path) -> None:
    vecs = clustered(3000)
    idx = VectorIndex.build(64, [(np.arange(3000) * 3, vecs)], kind="ivf-sq8", n=3000)
    idx.remove([0])
    idx.seq = 42
    path = tmp_path / "vectors.index"
    (tmp_path / ".vectors.index.999999999.tmp").write_bytes(b"half of a save killed with -9")
    idx.save(path, {"model": "m"})
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.index"]  # no temporary file left behind
    back, header = VectorIndex.load(path)
    assert header["model"] == "m" and back.seq == 42 and back.kind == "ivf-sq8" and len(back) == 2999
    assert back.search(vecs[10], 1) == idx.search(vecs[10], 1)
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(Exception):
        VectorIndex.load(path)
