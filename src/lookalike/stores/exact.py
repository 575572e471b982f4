"""The ``flat`` vector index without faiss: the float32 vectors in one numpy array, every one scored.

Why not faiss's ``IndexFlatIP``: a library below ``vectors.FLAT_MAX`` images (most personal ones) is searched
exactly, and its index is derived data rebuilt from the database by each process that searches. Importing
faiss for that costs ~0.08 s of CPU per process (it also imports ``numpy.ma``), a sixth of a keyword search
from the command line; a matrix product and a partial sort are all a flat search is. Same scores (float32
inner products through BLAS), same slots, same answers: ties are broken by the lower slot (the earlier
indexed), also where they cross the cut at k (exact copies share one vector), which faiss does not promise.
Batches of ``FAISS_FROM`` or more queries go to faiss's exact search (below), asked for one more than k: a
row whose extra answer ties with its last is scored again in numpy, so a batch answers as its queries one
at a time. A flat index written by ``VectorIndex.save`` goes to faiss's format
(``to_faiss``), so saved files stay one format; a faiss flat read back from one keeps working as before.

Thread contract: none of its own (the store locks, as for every VectorIndex).
"""

from __future__ import annotations

import numpy as np

SCORE_FLOATS = 16_000_000  # queries scored together: at most this many scores as float32 (64 MB)
# From this many queries at once (dupes' knn_many, batched API searches) faiss's own exact search is used: it
# selects the top k in its threads while numpy's argpartition runs on one (10k x 10k x 1280: 1.6 s against
# 2.4 s wall); faiss's import is nothing beside such a batch. Fewer queries (a search) stay in numpy.
FAISS_FROM = 32


class ExactIndex:
    """What VectorIndex asks of a faiss flat index: ``d``, ``ntotal``, ``is_trained``, ``add``, ``search``
    (with a boolean mask of the allowed slots instead of faiss's selector), ``reconstruct_batch``."""

    is_trained = True

    def __init__(self, dim: int) -> None:
        self.d = dim
        self.ntotal = 0
        self._x = np.zeros((0, dim), np.float32)

    @property
    def vectors(self) -> np.ndarray:
        return self._x[: self.ntotal]

    def add(self, x: np.ndarray) -> None:
        """Append ``x`` (their slots follow the last ones); the array grows by a quarter at a time."""
        x = np.asarray(x, dtype=np.float32).reshape(-1, self.d)
        end = self.ntotal + len(x)
        if end > len(self._x):
            grown = np.zeros((max(end, len(self._x) * 5 // 4, 64), self.d), np.float32)
            grown[: self.ntotal] = self.vectors
            self._x = grown
        self._x[self.ntotal:end] = x
        self.ntotal = end

    def reconstruct_batch(self, slots: np.ndarray) -> np.ndarray:
        return self._x[np.asarray(slots, dtype=np.int64)].copy()

    def search(self, q: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores, slots), each (len(q), k), best first; ``allowed``: a boolean mask over the slots (None:
        all); slot -1 with score -inf where fewer than k are allowed."""
        q = np.asarray(q, dtype=np.float32).reshape(-1, self.d)
        if allowed is not None or len(q) < FAISS_FROM or not self.ntotal or k <= 0:
            return self._exact(q, k, allowed)
        from lookalike.stores.faiss_lazy import faiss

        scores, slots = _empty(len(q), k)
        n = self.ntotal
        kk = min(k, n)
        # one more than asked: where it ties with the last one, a tie crosses the cut and that row is scored
        # again in numpy, so that a batch answers exactly as the same queries one at a time
        extra = min(kk + 1, n)
        got, top = faiss.knn(np.ascontiguousarray(q), np.ascontiguousarray(self.vectors), extra, metric=faiss.METRIC_INNER_PRODUCT)
        got = np.where(top >= 0, got, -np.inf).astype(np.float32)
        order = np.lexsort((top, -got), axis=1)[:, :kk]  # best score first, then the lower slot
        scores[:, :kk] = np.take_along_axis(got, order, axis=1)
        slots[:, :kk] = np.take_along_axis(top, order, axis=1)
        if extra > kk:
            crossing = np.flatnonzero(got[:, kk] == got[:, kk - 1])
            if len(crossing):
                scores[crossing], slots[crossing] = self._exact(q[crossing], k, None)
        return scores, slots

    def _exact(self, q: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """numpy's exact search: the best ``k`` by score, ties (also across the cut) to the lower slot."""
        scores, slots = _empty(len(q), k)
        n, x = self.ntotal, self.vectors
        if not n or k <= 0:
            return scores, slots
        kk = min(k, n)
        chunk = max(1, SCORE_FLOATS // n)
        for lo in range(0, len(q), chunk):
            s = q[lo:lo + chunk] @ x.T
            if allowed is not None:
                s[:, ~allowed[:n]] = -np.inf
            part = np.argpartition(-s, kk - 1, axis=1)[:, :kk] if kk < n else np.broadcast_to(np.arange(n), s.shape)
            got = np.take_along_axis(s, part, axis=1)
            if kk < n:  # argpartition picks any of the scores equal to the k-th: take the lower slots of those
                last = got.min(axis=1)  # -inf where fewer than k are allowed: those rows hold all there is
                for r in np.flatnonzero(np.isfinite(last) & ((s >= last[:, None]).sum(axis=1) > kk)):
                    inside = np.flatnonzero(s[r] >= last[r])
                    keep = inside[np.lexsort((inside, -s[r, inside]))[:kk]]
                    part[r], got[r] = keep, s[r, keep]
            order = np.lexsort((part, -got), axis=1)  # best score first, then the lower slot
            top = np.take_along_axis(part, order, axis=1)
            best = np.take_along_axis(got, order, axis=1)
            scores[lo:lo + len(s), :kk] = best
            slots[lo:lo + len(s), :kk] = np.where(np.isfinite(best), top, -1)
        return scores, slots

    def to_faiss(self):  # type: ignore[no-untyped-def]
        """The same vectors in a faiss ``IndexFlatIP`` (for saving in faiss's format)."""
        from lookalike.stores.faiss_lazy import faiss

        index = faiss.IndexFlatIP(self.d)
        if self.ntotal:
            index.add(np.ascontiguousarray(self.vectors))
        return index


def _empty(rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores -inf and slots -1: what a search answers where fewer than k vectors are allowed."""
    return np.full((rows, k), -np.inf, np.float32), np.full((rows, k), -1, np.int64)


__all__ = ["ExactIndex"]
