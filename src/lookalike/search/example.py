"""Search by example: cosine shortlist, re-ranked with the library's centring and database-side augmentation.

Plain cosine on EfficientNet-Lite's mean-pooled features is dominated by what all photos share. Measured
side by side (``bench/retrieval.py``; pooling: GeM, R-MAC, multi-scale; PCA-whitening with shrinkage, power
normalisation, fewer dims; alpha query expansion; database-side augmentation; k-reciprocal re-ranking), what
helped class-by-example search on every labelled set without hurting copy search was:

1. centring: subtract the collection's mean vector (fitted without labels on the library's own vectors,
   stored with it: ``models/whitening.py``, refitted when the collection has doubled or halved), then L2.
   Full or partial PCA-whitening fitted on a few hundred photos hurt (it equalises noise axes), centring
   alone does not;
2. database-side augmentation (DBA): every candidate is replaced by itself plus its ``DBA_K`` nearest
   neighbours in the whole collection, weighted by their centred cosine to the power ``DBA_ALPHA``, then
   L2 (Radenovic et al. 2018's alpha-DBA). Neighbours are found at query time, among the query's
   ``POOL x SHORTLIST`` nearest images (one search; a candidate's own neighbours are mostly there), so nothing
   is stored per image and no vector is ever stale (DBA over the whole collection, which precomputed
   neighbours would give, scored the same: 0.667 vs 0.670 on tuxpaint);
3. alpha query expansion: the query blended the same way with its ``DBA_K`` best augmented candidates.

Measured (bench/retrieval.py, precision@10 before -> after): tuxpaint 0.610 -> 0.671, fashion (never tuned
on) 0.672 -> 0.712, mvtb/interior photos 0.970 -> 0.979; copy recall@1 on the edit suite 0.9983 -> 0.9975.
Pooling variants (GeM, R-MAC, multi-scale) did not help on these sets, so the model's vectors are unchanged.

A query costs one search of depth ``POOL x SHORTLIST`` that hands back the pool's vectors as the index holds
them (``Store.knn_vectors``: faiss's float32 copies, a compressed index's decoded 8-bit codes, PostgreSQL's
rows in the same statement; no second read, no exact re-rank of 3x the pool), a few matrix products
(vectorised: a 100 x 300 similarity matrix, top-3 by partition, one einsum), and a read of the returned
results' stored vectors for their exact plain cosines (``Hit.cosine``, on which copy checks decide). Measured
per query against plain cosine: ``bench/example_cost.py``. ``score`` is the centred cosine of the expanded
query to the augmented candidate: lower than a raw cosine (a close match ~0.4-0.9, unrelated ~0); copy
detection (``dupes``, ``verify``, ``eval``) never uses it and keeps its calibrated raw-cosine thresholds.

Graph diffusion on the shortlist (``diffuse``: manifold ranking on the shortlist's mutual k-NN graph, Iscen et
al. 2017 truncated to the shortlist, on top of DBA/QE) is kept as an option (``DIFFUSE``, off): tuned on
tuxpaint (k=10, alpha 0.5) it gained 0.670 -> 0.688 there but only +0.006 / +0.002 held out on fashion /
photos (alpha 0.9 hurt photos: 0.943), and copy recall@1 fell 0.9975 -> 0.9958 (README "Search by
example"), so it is not the default.

Constants: DBA_K=3 and DBA_ALPHA=3 are Radenovic et al.'s usual values (k=3 was also about the best of 1-8
on tuxpaint and photos); with SHORTLIST=100 the default matched re-ranking every image (0.671 vs 0.667 on
tuxpaint, 0.712 vs 0.709 on fashion). MIN_FIT (models/whitening.py) is a floor, not a measured value.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from lookalike.models.base import l2_normalize
from lookalike.models.whitening import DEFAULT, MIN_FIT, Whitening
from lookalike.stores.base import Filters, Hit

SHORTLIST = 100  # candidates (by plain cosine) that get re-ranked; at least 2x the results asked for
DBA_K = 3  # neighbours blended into each candidate
DBA_ALPHA = 3.0  # their weight: centred cosine ** alpha
POOL = 3  # neighbours are looked for among the query's POOL x SHORTLIST nearest (one search, not one each)
DIFFUSE: dict | None = None  # graph diffusion on the shortlist (``diffuse``'s keywords); None: off


class ExampleStore(Protocol):
    def search_transform(self) -> tuple[str, int, bytes] | None: ...
    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]: ...
    def knn_vectors(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[list[Hit], np.ndarray]: ...
    def vector_map(self, ids: Sequence[int]) -> dict[int, np.ndarray]: ...


class FitStore(Protocol):
    def count(self) -> int: ...
    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...
    def search_transform(self) -> tuple[str, int, bytes] | None: ...
    def set_search_transform(self, model_version: str, fitted_on: int, data: bytes | None) -> None: ...


def load_transform(store: ExampleStore, model_version: str) -> Whitening | None:
    """The library's stored transform, when it was fitted on this model's vectors."""
    stored = store.search_transform()
    if stored is None or stored[0] != model_version:
        return None
    return Whitening.from_bytes(stored[2])


def refresh_transform(store: FitStore, model_version: str, *, force: bool = False) -> dict[str, object]:
    """Fit the library's transform on all its vectors (no labels) when there is none for this model, or the
    collection has doubled or halved since (``Whitening.stale``); drop it below MIN_FIT images. Every search
    then uses the one stored transform: vectors are never stored transformed, so none are ever mixed."""
    n = store.count()
    stored = store.search_transform()
    if n < MIN_FIT:
        if stored is not None:
            store.set_search_transform(model_version, 0, None)
        return {"search_transform": None, "images": n}
    current = Whitening.from_bytes(stored[2]) if stored is not None and stored[0] == model_version else None
    if current is not None and not force and not current.stale(n):
        return {"search_transform": "centred", "fitted_on": current.fitted_on, "refitted": False}
    fitted = Whitening.fit_batches((emb for _, emb in store.iter_vectors()), **DEFAULT)  # type: ignore[arg-type]
    store.set_search_transform(model_version, fitted.fitted_on, fitted.to_bytes())
    return {"search_transform": "centred", "fitted_on": fitted.fitted_on, "refitted": True}


def example_hits(store: ExampleStore, query: np.ndarray, limit: int, filters: Filters | None,
                 transform: Whitening | None, *, shortlist: int = SHORTLIST,
                 diffusion: dict | None | str = "default") -> list[Hit]:
    """The ``limit`` best images for the example embedding ``query`` (raw, L2-normalised). Without a fitted
    ``transform`` (a new or tiny library): plain cosine. ``diffusion``: ``diffuse``'s keywords, None for none,
    "default" for ``DIFFUSE``."""
    if diffusion == "default":
        diffusion = DIFFUSE
    if transform is None:
        return store.knn(query, limit, filters)
    depth = max(shortlist, 2 * limit)
    # the shortlist and the neighbourhood around it, with their vectors (one search, one read)
    pool_hits, raw = store.knn_vectors(query, POOL * depth, filters)
    if not pool_hits:
        return []
    pool = transform.apply(raw)
    cand = pool[:depth]
    n = len(cand)
    # each candidate's DBA_K nearest neighbours (centred cosine) among the pool, itself left out
    sims = cand @ pool.T
    sims[np.arange(n), np.arange(n)] = -np.inf
    k = min(DBA_K, len(pool) - 1)
    augmented = cand
    if k > 0:
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        augmented = augment(cand, pool[nearest], np.take_along_axis(sims, nearest, axis=1))
    # the query too: alpha query expansion with its DBA_K best augmented candidates
    q = q0 = transform.apply(query[None, :])[0]
    s = augmented @ q
    first = _top(s, min(DBA_K, n))
    q = augment(q[None, :], augmented[first][None], s[first][None])[0]
    scores = augmented @ q
    if isinstance(diffusion, dict):
        opts = {k: v for k, v in diffusion.items() if k != "on"}
        if diffusion.get("on", "dba") == "dba":
            scores = diffuse(augmented, scores, **opts)
        else:  # on the centred candidates and query alone (no DBA/QE)
            scores = diffuse(cand, cand @ q0, **opts)
    order = _top(scores, limit)
    order = order[np.lexsort((order, -scores[order]))]  # best first, ties in shortlist order
    # the plain cosine of each result (copy checks decide on it), from its stored vector: a compressed
    # index's pool vectors are decoded codes, a few thousandths off
    ids = [pool_hits[i].id for i in order]
    stored = store.vector_map(ids)  # without the ids deleted since the index answered
    return [Hit(ids[n], float(scores[i]), float(stored[ids[n]] @ query)) for n, i in enumerate(order) if ids[n] in stored]


def augment(vectors: np.ndarray, neighbours: np.ndarray, sims: np.ndarray, alpha: float = DBA_ALPHA) -> np.ndarray:
    """alpha-DBA / alpha-QE: each v_i + sum_j max(0, cos(v_i, nb_ij)) ** alpha * nb_ij, then L2, for all rows
    at once (``neighbours`` (n, k, D) and their cosines ``sims`` (n, k); vectors transformed and L2-normalised)."""
    w = np.clip(sims, 0.0, None) ** alpha
    return l2_normalize(vectors + np.einsum("nk,nkd->nd", w.astype(np.float32), neighbours))


def diffuse(vectors: np.ndarray, seeds: np.ndarray, k: int = 10, alpha: float = 0.9, gamma: float = 3.0,
            mutual: bool = True) -> np.ndarray:
    """Manifold ranking on the shortlist's own k-NN graph (Iscen et al. 2017, truncated to the shortlist):
    affinities max(0, cos) ** gamma, each row's ``k`` strongest kept (``mutual``: only pairs in each other's k),
    symmetrically normalised (S); f = (I - alpha S)^-1 y with y the query's affinities (a 100 x 100 solve).
    Returned rescaled so the best equals the best of ``seeds``: the ranking is f's, the scale stays a cosine's."""
    n = len(vectors)
    y = np.clip(seeds, 0.0, None) ** gamma
    if n < 3 or not y.any():
        return seeds
    a = np.clip(vectors @ vectors.T, 0.0, None) ** gamma
    np.fill_diagonal(a, 0.0)
    k = min(k, n - 1)
    keep = np.zeros_like(a, dtype=bool)
    np.put_along_axis(keep, np.argpartition(-a, k - 1, axis=1)[:, :k], True, axis=1)
    keep = keep & keep.T if mutual else keep | keep.T
    w = np.where(keep, a, 0.0)
    d = w.sum(1)
    d[d == 0] = 1.0
    r = 1.0 / np.sqrt(d)
    f = np.linalg.solve(np.eye(n) - alpha * (r[:, None] * w * r[None, :]), y)
    top = float(f.max())
    return (f * (float(seeds.max()) / top)).astype(np.float32) if top > 0 else seeds


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores (in no particular order)."""
    if k >= len(scores):
        return np.arange(len(scores))
    return np.argpartition(-scores, k - 1)[:k]
