"""Learned PCA-whitening of image embeddings, fitted without labels on a collection's own vectors.

For L2-normalised embeddings ``x`` (n, D):

1. power normalisation: ``sign(x) * |x| ** power`` (0.5: the signed square root, which tames the few large
   activations of a ReLU network), then L2;
2. centring on the collection's mean, and projection onto its principal axes, each divided by
   ``(eigenvalue + shrink * mean eigenvalue) ** (beta / 2)``: beta=1 is full, shrunk whitening (with fewer
   photos than dimensions the weak axes, noise, are not blown up), beta=0 centring alone, in between a
   partial whitening; optionally only the first ``dims`` axes;
3. L2 again, so that the inner product is a cosine.

Whitened cosines are not the raw ones: copy-detection thresholds are calibrated on the raw embeddings, which
the stores keep; whitening is the search representation only.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from lookalike.models.base import l2_normalize


@dataclass(frozen=True)
class Whitening:
    mean: np.ndarray  # (D,) float32, of the power-normalised vectors
    projection: np.ndarray  # (D, d) float32: principal axes scaled by 1/sqrt(eigenvalue + shrink*mean)
    power: float
    shrink: float
    beta: float
    fitted_on: int  # how many vectors it was fitted on

    @property
    def dim(self) -> int:
        return int(self.projection.shape[1])

    @classmethod
    def fit(cls, x: np.ndarray, *, dims: int = 0, shrink: float = 0.1, power: float = 0.5,
            beta: float = 1.0) -> "Whitening":
        y = _power(np.asarray(x, np.float32), power).astype(np.float64)
        mean = y.mean(0)
        y -= mean
        # the covariance's eigen-decomposition via the SVD of the centred data (n may be < D)
        _, sing, vt = np.linalg.svd(y, full_matrices=False)
        eig = sing ** 2 / max(1, len(y) - 1)
        keep = min(dims or vt.shape[0], vt.shape[0])
        scale = (eig[:keep] + shrink * float(eig.mean()) + 1e-12) ** (-beta / 2)
        proj = (vt[:keep].T * scale).astype(np.float32)
        return cls(mean.astype(np.float32), proj, float(power), float(shrink), float(beta), int(len(x)))

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return l2_normalize((_power(x, self.power) - self.mean) @ self.projection)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, mean=self.mean, projection=self.projection,
                 meta=np.array([self.power, self.shrink, self.beta, self.fitted_on], np.float64))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Whitening":
        z = np.load(io.BytesIO(data))
        power, shrink, beta, n = (float(v) for v in z["meta"])
        return cls(z["mean"].astype(np.float32), z["projection"].astype(np.float32), power, shrink, beta, int(n))


def _power(x: np.ndarray, power: float) -> np.ndarray:
    if power == 1.0:
        return l2_normalize(x)
    return l2_normalize(np.sign(x) * np.abs(x) ** power)
