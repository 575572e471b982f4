"""The ``ivf-pca-sq8`` vector index: candidates from an IVF over 8-bit codes of a PCA-reduced copy of each
vector, re-scored with 8-bit codes of the whole vector. Both live in memory; no database read per query.

Why: at 1M x 1280 a query of ``ivf-sq8-fast`` spends ~85% of its time scanning 1280-byte codes (~300 ns each,
~10,000 codes a query; docs/scale.md). Scanning a ``REDUCED_DIMS``-d copy costs a third of that per code, and
the few candidates the reduced scores get wrong are put right by re-scoring the best ``REFINE_CANDIDATES``
with the full codes (their scores are within ~0.001 of the exact cosine, as ``ivf-sq8-fast``'s are).

1. **Rotation**: the top ``REDUCED_DIMS`` eigenvectors of the training sample's second-moment matrix (not
   centred: the same linear map for the stored vectors and the queries, so a reduced inner product is the
   full one minus what the dropped directions hold, and ranks are kept wherever those are small). A faiss
   ``LinearTransform`` without bias, inside an ``IndexPreTransform``, so adding goes through faiss and the
   whole index serialises as one.
2. **Candidates**: the reduced query probes its clusters as ``ivf-sq8-fast`` does (an HNSW graph over the
   centroids, then the adaptive probing of stores/probing.py), keeping the best ``REFINE_CANDIDATES``
   (or 5 x k past 20 results).
3. **Re-scoring**: their full 8-bit codes (faiss ``IndexRefine``'s refine index, by slot) are scored against
   the full query straight from the bytes (an 8-bit code is an affine map of its value per dimension, so the
   score is one dot product with the query scaled by the codes' ranges); the best k are returned with those
   scores.

Tuned constants (faiss alone, thread CPU, 1M real-structured vectors of ``bench/search_scale.py`` with the
tuning query set ``--query-seed 1``; reported on the default query set in docs/scale.md): see
``REDUCED_DIMS`` and ``REFINE_CANDIDATES``.
"""

from __future__ import annotations

import faiss
import numpy as np

from lookalike.stores.probing import adaptive_search

REDUCED_DIMS = 384  # dims of the scanned copy (1M, tuning set: see the module docstring's table in docs/scale.md)
REFINE_CANDIDATES = 100  # candidates re-scored with the full codes at k <= 20
RESCORE_FLOATS = 8_000_000  # queries re-scored together: at most this many code values as float32 (32 MB)


def reduced_dims(dim: int) -> int:
    return min(dim, REDUCED_DIMS)


def create(dim: int, nlist: int, coarse_m: int) -> faiss.IndexRefine:
    """An untrained index: IndexRefine(IndexPreTransform(rotation, IVF-HNSW-SQ8 of the reduced copy), SQ8)."""
    d = reduced_dims(dim)
    rotation = faiss.LinearTransform(dim, d, False)
    ivf = faiss.index_factory(d, f"IVF{nlist}_HNSW{coarse_m},SQ8", faiss.METRIC_INNER_PRODUCT)
    base = faiss.IndexPreTransform(rotation, ivf)  # faiss's Python layer keeps rotation and ivf alive with it
    full = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexRefine(base, full)


class Reduced:
    """The parts of an ``ivf-pca-sq8`` faiss index a query needs, taken apart once (not per query)."""

    def __init__(self, index: faiss.Index) -> None:
        ref = faiss.downcast_index(index)
        pre = faiss.downcast_index(ref.base_index)
        self.rotation = faiss.downcast_VectorTransform(pre.chain.at(0))
        self.ivf = faiss.extract_index_ivf(pre)
        self.full = faiss.downcast_index(ref.refine_index)
        self.index = index
        self._rot = self._matrix()
        self._ranges = self._code_ranges()

    def _matrix(self) -> np.ndarray:
        """The rotation as a (dim, d) matrix, for ``q @ R``."""
        lt = self.rotation
        a = faiss.vector_to_array(lt.A)
        if not len(a):  # untrained
            return np.zeros((lt.d_in, lt.d_out), np.float32)
        return np.ascontiguousarray(a.reshape(lt.d_out, lt.d_in).T)

    def _code_ranges(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(step, offset) of the full 8-bit codes: a code c of dimension i stands for vmin_i + (c + 0.5) / 255 x
        vdiff_i (faiss's QT_8bit) = offset_i + c x step_i, so a query's score is an affine function of the raw
        bytes and needs no decoding."""
        sq = self.full.sq
        if sq.qtype != faiss.ScalarQuantizer.QT_8bit or not self.full.is_trained:
            return None
        trained = faiss.vector_to_array(sq.trained)
        vmin, vdiff = trained[: self.full.d], trained[self.full.d:]
        step = (vdiff / 255.0).astype(np.float32)
        return step, (vmin + 0.5 * step).astype(np.float32)

    def _scores(self, q: np.ndarray, cand: np.ndarray) -> np.ndarray:
        """(len(q), n) scores of the full codes of ``cand`` (slots, -1: none) against their query rows."""
        ok = cand >= 0
        safe = np.where(ok, cand, 0)
        if self._ranges is None:
            vecs = self.full.reconstruct_batch(safe.ravel()).reshape(*cand.shape, -1)
            s = np.matmul(vecs, q[:, :, None])[..., 0]
        else:
            step, offset = self._ranges
            codes = faiss.rev_swig_ptr(self.full.codes.data(), self.full.ntotal * self.full.code_size)
            c = codes.reshape(self.full.ntotal, self.full.code_size)[safe].astype(np.float32)  # (m, n, d)
            s = np.matmul(c, (q * step)[:, :, None])[..., 0] + (q @ offset)[:, None]
        s[~ok] = -np.inf
        return s

    def train(self, sample: np.ndarray) -> None:
        """Fit the rotation on ``sample``, then train the IVF (on the rotated sample) and the full codes."""
        lt = self.rotation
        moment = sample.T.astype(np.float64) @ sample / max(1, len(sample))
        w, v = np.linalg.eigh(moment)
        top = v[:, np.argsort(-w)[: lt.d_out]]  # (dim, d)
        faiss.copy_array_to_vector(np.ascontiguousarray(top.T, dtype=np.float32).ravel(), lt.A)
        lt.is_trained = True
        self.index.train(sample)
        self._rot = self._matrix()
        self._ranges = self._code_ranges()

    def search(self, q: np.ndarray, k: int, nprobe: int, margin: float, sel: faiss.IDSelector | None,
               coarse: faiss.SearchParameters | None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, slots), each (len(q), k), best first; slot -1 where fewer were found. ``margin`` 0 with
        ``nprobe`` = nlist is the widened search of a filter that the probes could not fill."""
        n_cand = max(REFINE_CANDIDATES, 5 * k)
        scores = np.full((len(q), k), -np.inf, np.float32)
        slots = np.full((len(q), k), -1, np.int64)
        chunk = max(1, RESCORE_FLOATS // (n_cand * self.full.d))  # 62 queries at 100 candidates of 1280-d
        for lo in range(0, len(q), chunk):
            qq = q[lo:lo + chunk]
            qr = np.ascontiguousarray(qq @ self._rot, dtype=np.float32)
            if margin:
                _, cand = adaptive_search(self.ivf, qr, n_cand, nprobe, margin, sel, coarse)
            else:
                params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel, quantizer_params=coarse)
                _, cand = self.ivf.search(qr, n_cand, params=params)
            s = self._scores(qq, cand)
            top = np.argsort(-s, axis=1, kind="stable")[:, :k]
            got = np.take_along_axis(s, top, axis=1)
            scores[lo:lo + len(qq)] = got
            slots[lo:lo + len(qq)] = np.where(np.isfinite(got), np.take_along_axis(cand, top, axis=1), -1)
        return scores, slots


__all__ = ["REDUCED_DIMS", "REFINE_CANDIDATES", "Reduced", "create", "reduced_dims"]
