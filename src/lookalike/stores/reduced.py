"""The ``ivf-pca-sq8`` vector index: candidates from an IVF over 8-bit codes of a PCA-reduced copy of each
vector, re-scored exactly enough with 8-bit codes of what the reduction dropped. Both live in memory; no
database read per query.

Why: at 1M x 1280 a query of ``ivf-sq8-fast`` spends ~85% of its time scanning 1280-byte codes (~300 ns each,
~10,000 codes a query; docs/scale.md). Scanning a ``REDUCED_DIMS``-d copy costs a third of that per code; the
few candidates the reduced scores rank wrong are put right by re-scoring the best ``REFINE_CANDIDATES``.

A vector x is held as two codes: its rotation ``R^T x`` (``REDUCED_DIMS``-d) in the IVF's residual 8-bit codes,
standing for some r, and what those leave over, ``e = x - R r`` (full-d: the dropped directions, ~7% of the
energy, plus the first code's error), in flat 8-bit codes standing for e'. Its cosine with a query q is then
``(R^T q) . r + q . e'``: the first term is the score the IVF scan returns, the second one dot product with the
second code; the only error left is the second code's, over e's small range. (Re-scoring with 8-bit codes
of the whole vector, over its whole range, lost 1.2 points of recall@10 at 1M: 0.9885 -> 0.976 on the tuning
queries; adding only the dropped directions ``x - R R^T x`` to the first score lost as much at 200k, 0.9868
-> 0.976: the 384-d codes' own error, concentrated on a few wide dimensions, is what it left.)

1. **Rotation**: the top ``REDUCED_DIMS`` eigenvectors of the training sample's second-moment matrix (not
   centred: the same linear map for stored vectors and queries). A faiss ``LinearTransform`` without bias,
   inside an ``IndexPreTransform`` over the IVF, so the whole index serialises as one faiss object
   (an ``IndexRefine`` whose refine part holds the dropped parts' codes; it is added to and searched here,
   never through ``IndexRefine``'s own add/search, which would treat those codes as whole vectors).
2. **Candidates**: the reduced query probes its clusters as ``ivf-sq8-fast`` does (an HNSW graph over the
   centroids, then the adaptive probing of stores/probing.py), keeping the best ``REFINE_CANDIDATES``
   (or 5 x k past 20 results), with their reduced scores.
3. **Re-scoring**: each candidate's score plus the query's dot product with its second code, computed from the
   bytes (an 8-bit code stands for ``offset_i + c x step_i`` per dimension, faiss's QT_8bit, so no decoding);
   the best k are returned with those scores.

Tuned (faiss alone, thread CPU, 1M real-structured vectors of ``bench/search_scale.py``, tuning queries
``--query-seed 1``; a prototype re-scoring the candidates exactly, which the two codes approach): reduced
256 / 384 / 512 dims at nprobe 64, 100 candidates: recall@10 0.9635 (with 8-bit whole-vector re-scoring) /
0.9885 / 0.9908, 384 keeping 93.5% of the energy at 1,680 B per image; 200 candidates instead of 100: no gain
(0.9885 -> 0.9915 at np96). Reported on the default query set in docs/scale.md.
"""

from __future__ import annotations

from lookalike.stores.faiss_lazy import faiss
import numpy as np

from lookalike.stores.probing import adaptive_search

REDUCED_DIMS = 384  # dims of the scanned copy (tuning above)
REFINE_CANDIDATES = 100  # candidates re-scored at k <= 20 (tuning above)
RESCORE_FLOATS = 32_000_000  # queries re-scored together: at most this many code values as float32 (128 MB)


def reduced_dims(dim: int) -> int:
    return min(dim, REDUCED_DIMS)


def create(dim: int, nlist: int, coarse_m: int) -> faiss.IndexRefine:
    """An untrained index: IndexRefine(IndexPreTransform(rotation, IVF-HNSW-SQ8 of the rotated vector),
    SQ8 of what the first code leaves over)."""
    d = reduced_dims(dim)
    rotation = faiss.LinearTransform(dim, d, False)
    ivf = faiss.index_factory(d, f"IVF{nlist}_HNSW{coarse_m},SQ8", faiss.METRIC_INNER_PRODUCT)
    base = faiss.IndexPreTransform(rotation, ivf)  # faiss's Python layer keeps rotation and ivf alive with it
    rest = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexRefine(base, rest)


class Reduced:
    """An ``ivf-pca-sq8`` faiss index taken apart once: adding, training, searching, reconstructing."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = faiss.downcast_index(index)
        self.base = faiss.downcast_index(self.index.base_index)
        self.rotation = faiss.downcast_VectorTransform(self.base.chain.at(0))
        self.ivf = faiss.extract_index_ivf(self.base)
        self.rest = faiss.downcast_index(self.index.refine_index)
        self._rot = self._matrix()
        self._ranges = self._code_ranges()

    def _matrix(self) -> np.ndarray:
        """The rotation as a (dim, d) matrix, for ``q @ R``."""
        lt = self.rotation
        a = faiss.vector_to_array(lt.A)
        if not len(a):  # untrained
            return np.zeros((lt.d_in, lt.d_out), np.float32)
        return np.ascontiguousarray(a.reshape(lt.d_out, lt.d_in).T)

    def _code_ranges(self) -> tuple[np.ndarray, np.ndarray]:
        """(step, offset) of the second codes: a code c of dimension i stands for vmin_i + (c + 0.5) / 255 x
        vdiff_i (faiss's QT_8bit) = offset_i + c x step_i."""
        d = self.rest.d
        if not self.rest.is_trained:
            return np.zeros(d, np.float32), np.zeros(d, np.float32)
        trained = faiss.vector_to_array(self.rest.sq.trained)
        vmin, vdiff = trained[:d], trained[d:]
        step = (vdiff / 255.0).astype(np.float32)
        return step, (vmin + 0.5 * step).astype(np.float32)

    def _leftover(self, x: np.ndarray, reduced: np.ndarray) -> np.ndarray:
        """x minus what its IVF code stands for, lifted back to the full space: the second code's input."""
        return np.ascontiguousarray(x - reduced @ self._rot.T, dtype=np.float32)

    def train(self, sample: np.ndarray) -> None:
        """Fit the rotation on ``sample``, then train the IVF (on the rotated sample) and the second codes."""
        lt = self.rotation
        moment = np.zeros((lt.d_in, lt.d_in))
        for lo in range(0, len(sample), 16384):  # in float64, a slice at a time (not a float64 copy of it all)
            part = sample[lo:lo + 16384].astype(np.float64)
            moment += part.T @ part
        moment /= max(1, len(sample))
        w, v = np.linalg.eigh(moment)
        top = v[:, np.argsort(-w)[: lt.d_out]]  # (dim, d)
        faiss.copy_array_to_vector(np.ascontiguousarray(top.T, dtype=np.float32).ravel(), lt.A)
        lt.is_trained = True
        self._rot = self._matrix()
        self.base.train(sample)
        xr = np.ascontiguousarray(sample @ self._rot, dtype=np.float32)
        self.rest.train(self._leftover(sample, self.ivf.sa_decode(self.ivf.sa_encode(xr))))
        self.index.is_trained = True
        self._ranges = self._code_ranges()

    def add(self, x: np.ndarray) -> None:
        """Append ``x`` (its slots follow the last ones): the rotation to the IVF, then what its stored code
        leaves over to the second codes."""
        start = self.base.ntotal
        self.base.add(x)
        stored = self._first_codes(np.arange(start, start + len(x), dtype=np.int64))
        self.rest.add(self._leftover(x, stored))
        self.index.ntotal = self.base.ntotal

    def reconstruct(self, slots: np.ndarray) -> np.ndarray:
        """The vectors the two codes stand for."""
        slots = np.asarray(slots, dtype=np.int64)
        return self._first_codes(slots) @ self._rot.T + self.rest.reconstruct_batch(slots)

    def _first_codes(self, slots: np.ndarray) -> np.ndarray:
        """The reduced vectors the IVF's codes stand for at ``slots`` (slot -> list and offset: a direct map,
        made on first need and kept up by faiss on add)."""
        if not self.ivf.direct_map.type:
            self.ivf.make_direct_map()
        return self.ivf.reconstruct_batch(slots)

    def _rest_scores(self, q: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """(len(q), n) dot products of each query row with the second codes of its candidates ``cand``."""
        step, offset = self._ranges
        codes = faiss.rev_swig_ptr(self.rest.codes.data(), self.rest.ntotal * self.rest.code_size)
        c = codes.reshape(self.rest.ntotal, self.rest.code_size)[np.where(cand >= 0, cand, 0)]
        return np.matmul(c.astype(np.float32), (q * step)[:, :, None])[..., 0] + (q @ offset)[:, None]

    def search(self, q: np.ndarray, k: int, nprobe: int, margin: float, sel: faiss.IDSelector | None,
               coarse: faiss.SearchParameters | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, slots), each (len(q), k), best first; slot -1 where fewer were found. ``margin`` 0 with
        ``nprobe`` = nlist is the widened search of a filter that the probes could not fill."""
        n_cand = max(REFINE_CANDIDATES, 5 * k)
        scores = np.full((len(q), k), -np.inf, np.float32)
        slots = np.full((len(q), k), -1, np.int64)
        chunk = max(1, RESCORE_FLOATS // (n_cand * self.rest.d))  # 250 queries at 100 candidates of 1280-d
        for lo in range(0, len(q), chunk):
            qq = q[lo:lo + chunk]
            qr = np.ascontiguousarray(qq @ self._rot, dtype=np.float32)
            if margin:
                part, cand = adaptive_search(self.ivf, qr, n_cand, nprobe, margin, sel, coarse)
            else:
                params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel, quantizer_params=coarse)
                part, cand = self.ivf.search(qr, n_cand, params=params)
            s = np.where(cand >= 0, part + self._rest_scores(qq, cand), -np.inf)
            top = np.argsort(-s, axis=1, kind="stable")[:, :k]
            got = np.take_along_axis(s, top, axis=1)
            scores[lo:lo + len(qq)] = got
            slots[lo:lo + len(qq)] = np.where(np.isfinite(got), np.take_along_axis(cand, top, axis=1), -1)
        return scores, slots


__all__ = ["REDUCED_DIMS", "REFINE_CANDIDATES", "Reduced", "create", "reduced_dims"]
