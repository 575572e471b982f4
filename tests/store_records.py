"""A small record for the store tests of one role (dupe pairs, copy features): DIM-d unit embedding, seeded."""

from __future__ import annotations

import numpy as np

from lookalike.stores.base import ImageRecord

DIM = 16


def record(i: int, **kw: object) -> ImageRecord:
    v = np.random.default_rng(i).normal(size=DIM).astype(np.float32)
    values = dict(path=f"/photos/a/img{i:04d}.jpg", size=1000 + i, mtime=1_600_000_000.0 + i, sha=f"{i:064x}",
                  width=640, height=480, embedding=v / np.linalg.norm(v))
    values.update(kw)
    return ImageRecord(**values)  # type: ignore[arg-type]
