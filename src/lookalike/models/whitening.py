"""Learned PCA-whitening of image embeddings, fitted without labels on a collection's own vectors.

For L2-normalised embeddings ``x`` (n, D):

1. power normalisation: ``sign(x) * |x| ** power`` (0.5: the signed square root, which tames the few large
   activations of a ReLU network), then L2; ``power=1`` skips it;
2. centring on the collection's mean, and (``beta > 0``) projection onto its principal axes, each divided by
   ``(eigenvalue + shrink * mean eigenvalue) ** (beta / 2)``: beta=1 is full, shrunk whitening (with fewer
   photos than dimensions the weak axes, noise, are not blown up), in between a partial whitening;
   optionally only the first ``dims`` axes. ``beta=0`` without ``dims`` is centring alone: no matrix kept;
3. L2 again, so that the inner product is a cosine.

The library's default (:data:`DEFAULT`) is centring alone: on the labelled sets of ``bench/retrieval.py``
every PCA-whitening fitted on a collection of a few hundred photos lowered precision@10 (0.61 -> 0.44-0.59 on
tuxpaint), centring raised it (0.61 -> 0.64). Whitened cosines are not the raw ones: copy-detection thresholds
are calibrated on the raw embeddings, which the stores keep; this is the search representation only.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from lookalike.models.base import l2_normalize

DEFAULT = {"power": 1.0, "beta": 0.0, "dims": 0, "shrink": 0.0}  # centring (see the module text)
MIN_FIT = 20  # a collection smaller than this gets no transform (plain cosine)
REFIT_GROWTH = 2.0  # refit when the collection has grown (or shrunk) by this factor since the fit


@dataclass(frozen=True)
class Whitening:
    mean: np.ndarray  # (D,) float32, of the power-normalised vectors
    projection: np.ndarray | None  # (D, d) float32: principal axes scaled; None = centring alone
    power: float = 1.0
    shrink: float = 0.0
    beta: float = 0.0
    fitted_on: int = 0  # how many vectors it was fitted on

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0] if self.projection is None else self.projection.shape[1])

    @classmethod
    def fit(cls, x: np.ndarray, *, dims: int = 0, shrink: float = 0.1, power: float = 0.5,
            beta: float = 1.0) -> "Whitening":
        return cls.fit_batches([np.asarray(x, np.float32)], dims=dims, shrink=shrink, power=power, beta=beta)

    @classmethod
    def fit_batches(cls, batches: Iterable[np.ndarray], *, dims: int = 0, shrink: float = 0.0, power: float = 1.0,
                    beta: float = 0.0) -> "Whitening":
        """Fit from batches of vectors (streamed: the mean and, when whitening, the D x D second moment)."""
        n, total, second = 0, None, None
        need_cov = beta > 0 or bool(dims)
        for b in batches:
            y = _power(np.asarray(b, np.float32), power).astype(np.float64)
            if not len(y):
                continue
            n += len(y)
            total = y.sum(0) if total is None else total + y.sum(0)
            if need_cov:
                second = y.T @ y if second is None else second + y.T @ y
        if total is None:
            raise ValueError("no vectors to fit on")
        mean = total / n
        proj = None
        if need_cov:
            cov = (second - n * np.outer(mean, mean)) / max(1, n - 1)  # type: ignore[operator]
            eig, vec = np.linalg.eigh(cov)
            eig, vec = np.clip(eig[::-1], 0.0, None), vec[:, ::-1]
            keep = min(dims or len(eig), len(eig), max(1, n - 1))
            scale = (eig[:keep] + shrink * float(eig.mean()) + 1e-12) ** (-beta / 2)
            proj = (vec[:, :keep] * scale).astype(np.float32)
        return cls(mean.astype(np.float32), proj, float(power), float(shrink), float(beta), int(n))

    def apply(self, x: np.ndarray) -> np.ndarray:
        y = _power(np.asarray(x, np.float32), self.power) - self.mean
        return l2_normalize(y if self.projection is None else y @ self.projection)

    def stale(self, count: int) -> bool:
        """Whether a collection of ``count`` images has grown or shrunk past REFIT_GROWTH since the fit."""
        return count >= REFIT_GROWTH * self.fitted_on or count * REFIT_GROWTH <= self.fitted_on

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {"mean": self.mean, "meta": np.array([self.power, self.shrink, self.beta, self.fitted_on], np.float64)}
        if self.projection is not None:
            arrays["projection"] = self.projection
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Whitening":
        z = np.load(io.BytesIO(bytes(data)), allow_pickle=False)
        power, shrink, beta, n = (float(v) for v in z["meta"])
        proj = z["projection"].astype(np.float32) if "projection" in z.files else None
        return cls(z["mean"].astype(np.float32), proj, power, shrink, beta, int(n))


def _power(x: np.ndarray, power: float) -> np.ndarray:
    if power == 1.0:
        return l2_normalize(x)
    return l2_normalize(np.sign(x) * np.abs(x) ** power)
