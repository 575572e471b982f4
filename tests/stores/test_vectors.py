"""The faiss vector indexes: every kind finds what exact search finds, filters, removals, persistence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.stores.reduced import reduced_dims
from lookalike.stores.vectors import (AUTO_LARGE, FLAT_MAX, KINDS, VectorIndex, auto_kind, default_nlist,
                                      default_nprobe, pqfs_m)


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


@pytest.mark.parametrize("kind", ["flat", "ivf-sq8", "ivf-sq8-fast", "ivf-pca-sq8", "ivf-pqfs-sq8", "hnsw"])
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
    assert auto_kind(10) == "flat" and auto_kind(FLAT_MAX) == AUTO_LARGE == "ivf-pca-sq8"
    assert default_nlist(1_000_000) == 4096 and default_nlist(10) == 16 and default_nlist(3000) == 64
    assert pqfs_m(1280) == 128 and 64 % pqfs_m(64) == 0 and default_nprobe(4096, AUTO_LARGE) == 64
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


# -- the kinds scored in memory (ivf-pca-sq8, auto above FLAT_MAX; ivf-sq8-fast; ivf-pqfs-sq8) on vectors with the structure of real embeddings -----------------
@pytest.fixture(scope="module")
def real_structured(photos: Path, model) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(6,000 collection vectors, 60 queries), 1280-d: EfficientNet-Lite0 embeddings of the sample photos and
    of random crops of them, topped up with mixtures of two real vectors plus noise (clipped at 0 like the
    network's pooled features, L2-normalised); the queries are other crops and fresh mixtures, none stored."""
    from PIL import Image

    rng = np.random.default_rng(0)
    views: list[Image.Image] = []
    for p in sorted(photos.iterdir()):
        img = Image.open(p).convert("RGB")
        img.thumbnail((512, 512))
        w, h = img.size
        views.append(img)
        for _ in range(7):
            f = rng.uniform(0.5, 0.9)
            cw, ch = max(1, int(w * f)), max(1, int(h * f))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            views.append(img.crop((x, y, x + cw, y + ch)))
    emb = model.encode(views).embeddings.astype(np.float32)
    held = emb[7::8]  # one crop of each photo is a query, never stored
    real = np.delete(emb, np.arange(7, len(emb), 8), axis=0)
    spread = real.std(0)

    def mix(n: int) -> np.ndarray:
        a, b = real[rng.integers(0, len(real), n)], real[rng.integers(0, len(real), n)]
        lam = rng.uniform(0, 1, (n, 1)).astype(np.float32)
        x = lam * a + (1 - lam) * b + 0.5 * spread * rng.standard_normal((n, real.shape[1]), dtype=np.float32)
        np.maximum(x, 0, out=x)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    base = np.concatenate([real, mix(6000 - len(real))])
    return base.astype(np.float32), np.concatenate([held, mix(60 - len(held))]).astype(np.float32)


def _exact_top(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, keep: np.ndarray | None = None) -> list[int]:
    s = vecs @ q
    if keep is not None:
        s = np.where(keep, s, -np.inf)
    return [int(ids[i]) for i in np.argsort(-s, kind="stable")[:k]]


@pytest.mark.parametrize("kind", ["ivf-sq8-fast", "ivf-pca-sq8", "ivf-pqfs-sq8"])
def test_fast_ivf_on_real_embeddings_recall_scores_filters_and_save_load(real_structured, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    vecs, queries = real_structured
    n = len(vecs)
    ids = np.arange(10, 10 + n, dtype=np.int64) * 2
    idx = VectorIndex.build(vecs.shape[1], [(ids[i:i + 2000], vecs[i:i + 2000]) for i in range(0, n, 2000)],
                            kind=kind, n=n)
    assert idx.kind == kind and idx.compressed and not idx.rerank_from_store
    fixed = 4 * vecs.shape[1] * reduced_dims(vecs.shape[1]) if kind == "ivf-pca-sq8" else 0  # its rotation: 2 MB once
    # the 2 KB per image budget (1,280 B of 8-bit codes, + 64 B fast-scan or + 384 B of reduced codes)
    assert (idx.memory_bytes() - fixed) / n < 2048
    by_id = dict(zip(ids.tolist(), vecs))
    recalls, errors = [], []
    for q in queries:
        got = idx.search(q, 10)
        recalls.append(len({i for i, _ in got} & set(_exact_top(vecs, ids, q, 10))) / 10)
        errors += [abs(s - float(by_id[i] @ q)) for i, s in got]  # scores: 8-bit codes, near the cosine
    assert np.mean(recalls) >= 0.95, np.mean(recalls)
    assert max(errors) < 0.01 and np.mean(errors) < 0.003, (np.mean(errors), max(errors))

    # filters: a large allowed set (bitmap through the probes) and a small one (scored from the codes)
    keep = (ids // 2) % 3 == 0
    filtered = []
    for q in queries[:20]:
        got = [i for i, _ in idx.search(q, 10, ids[keep].tolist())]
        assert set(got) <= set(ids[keep].tolist()) and len(got) == 10
        filtered.append(len(set(got) & set(_exact_top(vecs, ids, q, 10, keep))) / 10)
    assert np.mean(filtered) >= 0.9, filtered
    few = ids[::500].tolist()
    assert [i for i, _ in idx.search(vecs[1000], 3, few)][0] == int(ids[1000])

    # tombstones and re-adds survive save + load; the loaded index answers as the saved one did
    idx.remove(ids[:50])
    idx.add(ids[:5], vecs[10:15])  # re-embedded: the first five ids come back with removed ones' vectors
    path = tmp_path / "vectors.index"
    idx.save(path, {"model": "m"})
    back, header = VectorIndex.load(path)
    assert header["kind"] == kind and back.kind == kind and len(back) == n - 45
    assert back.nprobe == idx.nprobe and back.k_factor == idx.k_factor
    for q in queries[:10]:
        assert back.search(q, 10) == idx.search(q, 10)
        assert not {i for i, _ in back.search(q, 50)} & set(ids[5:50].tolist())
    assert back.search(vecs[12], 1)[0][0] == int(ids[2])


def test_adaptive_probing_scans_fewer_codes_at_the_same_recall(real_structured) -> None:  # type: ignore[no-untyped-def]
    """ivf-sq8-fast scans only the clusters within ``probe_margin`` of a query's nearest centroid
    (stores/probing.py): fewer codes than a fixed nprobe, the same neighbours found; a margin no centroid
    falls outside of probes exactly what the fixed nprobe does."""
    import faiss

    vecs, queries = real_structured
    n = len(vecs)
    ids = np.arange(n, dtype=np.int64) + 1
    idx = VectorIndex.build(vecs.shape[1], [(ids, vecs)], kind="ivf-sq8-fast", n=n)
    assert idx.probe_margin > 0

    def run(margin: float) -> tuple[float, float, list]:  # type: ignore[type-arg]
        idx.probe_margin = margin
        faiss.cvar.indexIVF_stats.reset()
        got = [idx.search(q, 10) for q in queries]
        codes = faiss.cvar.indexIVF_stats.ndis / len(queries)
        recall = np.mean([len({i for i, _ in g} & set(_exact_top(vecs, ids, q, 10))) / 10 for g, q in zip(got, queries)])
        return float(recall), codes, got

    adaptive, fixed, everything = run(0.12), run(0.0), run(2.0)  # cosines lie in [-1, 1]: 2 drops nothing
    assert adaptive[1] < 0.8 * fixed[1], (adaptive[1], fixed[1])
    assert adaptive[0] >= fixed[0] - 0.02 and adaptive[0] >= 0.93, (adaptive[0], fixed[0])
    assert everything[2] == fixed[2] and everything[1] == fixed[1]


def test_reduced_scan_batches_reconstruction_and_scores(real_structured, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """ivf-pca-sq8: a batch answers as its queries do one by one (also when re-scored in several chunks), the
    two codes reconstruct a vector closely, and a score is the cosine of that reconstruction."""
    from lookalike.stores import reduced

    vecs, queries = real_structured
    n = len(vecs)
    idx = VectorIndex.build(vecs.shape[1], [(np.arange(n), vecs)], kind="ivf-pca-sq8", n=n)
    monkeypatch.setattr(reduced, "RESCORE_FLOATS", 3 * reduced.REFINE_CANDIDATES * vecs.shape[1])  # 3 per chunk
    ids, scores = idx.search_many(queries[:10], 10)
    for q, row, srow in zip(queries[:10], ids, scores):
        assert [i for i, _ in idx.search(q, 10)] == row.tolist()
        rec = idx.reconstruct(row)
        assert np.allclose(rec @ q, srow, atol=1e-4)
    rec = idx.reconstruct(np.arange(0, n, 97))
    assert np.abs(rec - vecs[::97]).max() < 0.01 and np.abs(np.sum(rec * vecs[::97], axis=1) - 1).max() < 0.002
