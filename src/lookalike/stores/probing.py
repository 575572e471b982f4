"""Query-adaptive probing of an IVF index: a query scans only the clusters whose centroid is nearly as close
as its nearest one, instead of a fixed ``nprobe`` of them.

The clusters are found as before (the index's coarse quantizer, ``nprobe`` of them, best first); those whose
centroid cosine is more than :data:`PROBE_MARGIN` below the best one's are dropped, keeping at least
``nprobe // MIN_PROBE_DIVISOR``; the rest are scanned by faiss (``search_preassigned``). A query near the
middle of a cluster scans a few lists; one between clusters scans up to ``nprobe``. At 1M (nlist 4096, nprobe
64, ``bench/search_scale.py``): ~57% of the codes of a fixed nprobe 64, at the same recall@10. The margin is in
cosine units of L2-normalised embeddings: the smallest of 0.10 / 0.12 / 0.15 whose recall@10 at 1M reached
0.98 on the tuning queries (``--query-seed 1``); reported on the default query set (docs/scale.md).
"""

from __future__ import annotations

from lookalike.stores.faiss_lazy import faiss
import numpy as np

PROBE_MARGIN = 0.15  # cosine below the nearest centroid's past which a cluster is not scanned
MIN_PROBE_DIVISOR = 8  # at least nprobe // 8 clusters are scanned whatever their margin


def adaptive_search(ivf: faiss.IndexIVF, q: np.ndarray, k: int, nprobe: int, margin: float,
                    sel: faiss.IDSelector | None = None, coarse_params: faiss.SearchParameters | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(scores, slots), each (len(q), k), of an inner-product IVF index, probing the clusters within
    ``margin`` of each query's nearest centroid (at most ``nprobe``)."""
    nprobe = min(nprobe, ivf.nlist)
    cdis, assign = ivf.quantizer.search(q, nprobe, params=coarse_params)
    drop = cdis < cdis[:, :1] - margin
    drop[:, : max(1, nprobe // MIN_PROBE_DIVISOR)] = False
    assign[drop] = -1  # faiss skips the -1 entries
    scores = np.empty((len(q), k), np.float32)
    slots = np.empty((len(q), k), np.int64)
    params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
    ivf.search_preassigned_c(len(q), faiss.swig_ptr(q), k, faiss.swig_ptr(assign), faiss.swig_ptr(cdis),
                             faiss.swig_ptr(scores), faiss.swig_ptr(slots), False, params)
    return scores, slots


__all__ = ["PROBE_MARGIN", "MIN_PROBE_DIVISOR", "adaptive_search"]
