"""A small real model for tests that need a model but not a good one: each image's 4 x 4 x 3 colour
thumbnail (block means of a 32 x 32 centre crop), L2-normalised, as its 48-d embedding. Deterministic, needs
neither torch nor weights, and tells different photos apart (so moves, copies and touches can be checked)."""

from __future__ import annotations

import numpy as np

from lookalike.models.base import BaseModel, Encoded, l2_normalize


class ThumbnailModel(BaseModel):
    name = "test-thumbnail"
    version = "1"
    dim = 48
    input_size = 32
    num_classes = 0

    def __init__(self) -> None:
        self.batches = 0  # forward() calls: a test can check that nothing was re-embedded

    def forward(self, batch: np.ndarray) -> Encoded:
        self.batches += 1
        x = np.asarray(batch, dtype=np.float32).reshape(len(batch), 4, 8, 4, 8, 3).mean(axis=(2, 4))
        x = x - x.mean(axis=(1, 2, 3), keepdims=True) + 1e-3  # contrast, not brightness
        return Encoded(l2_normalize(x.reshape(len(batch), -1)))
