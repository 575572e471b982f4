"""The model protocol. An indexer hands a model lists of images; batching and device are the model's business.

Two steps so that the expensive, GIL-free part (decode + resize) runs in threads ahead of inference:
``preprocess`` (one PIL image -> uint8 HxWx3 array, thread-safe) and ``forward`` (stacked arrays -> Encoded).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image


@dataclass
class Encoded:
    embeddings: np.ndarray  # float32 (n, dim), L2-normalised
    class_scores: np.ndarray | None = None  # float32 (n, num_classes), softmax probabilities


@runtime_checkable
class Model(Protocol):
    name: str  # e.g. "efficientnet-lite0"
    version: str  # changes whenever vectors would change (weights, preprocessing)
    dim: int
    input_size: int
    num_classes: int  # 0 when the model does not classify
    device: str

    def preprocess(self, image: Image.Image) -> np.ndarray: ...

    def forward(self, batch: np.ndarray) -> Encoded: ...

    def encode(self, images: Sequence[Image.Image]) -> Encoded: ...


@runtime_checkable
class TextEncoder(Protocol):
    """Models that also embed text into the image space (CLIP-style)."""

    def encode_text(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made a library's vectors: name, version (changes whenever vectors would) and dimension.
    Stored by the store as text (``model_info()``); compared here, in one place, by the library and indexer."""

    name: str
    version: str
    dim: int

    @classmethod
    def of(cls, model: "Model") -> "ModelIdentity":
        return cls(model.name, model.version, int(model.dim))

    @classmethod
    def stored(cls, info: Mapping[str, str] | None) -> "ModelIdentity | None":
        """From a store's ``model_info()`` (None when no model is recorded; a missing dim reads as 0)."""
        if not info:
            return None
        dim = str(info.get("dim") or "0")
        return cls(info["name"], info.get("version") or "", int(dim) if dim.isdigit() else 0)

    def matches(self, model: "Model") -> bool:
        """The model makes vectors comparable with these: same name, version and dimension."""
        return self == ModelIdentity.of(model)

    def mismatch(self, model: "Model") -> str | None:
        """Why vectors of ``model`` cannot be searched against these, for the user (None when they can)."""
        if self.name != model.name or self.dim != int(model.dim):
            return (f"this index was built with {self.name}; search with --model {self.name} "
                    f"or re-index with {model.name}")
        if self.version != model.version:  # same name, other weights
            return (f"this index was built with {self.name} version {self.version}, but that "
                    f"model is now {model.version}; re-index to re-embed with it")
        return None


def resize_center_crop(image: Image.Image, size: int, crop_fraction: float = 0.875) -> np.ndarray:
    """Shorter side to size/crop_fraction, then the central size x size square, as uint8 HxWx3."""
    short = round(size / crop_fraction)
    w, h = image.size
    scale = short / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (nw - size) // 2, (nh - size) // 2
    if (nw, nh) != (w, h) and scale > 0.5:
        # resample only the central square: the pixels of resizing the whole image to (nw, nh) and cropping
        # (up to rounding), for about half the work. The usual case: a JPEG draft-decoded to a short side in
        # [256, 512) has scale > 0.5.
        sx, sy = w / nw, h / nh
        box = (left * sx, top * sy, (left + size) * sx, (top + size) * sy)
        image = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
    else:
        if (nw, nh) != (w, h):  # large reductions first reduce by an integer factor, aligned to the image
            image = image.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=2.0)
        image = image.crop((left, top, left + size, top + size))
    arr = np.asarray(image, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return arr


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


class BaseModel:
    """Shared plumbing: ``encode`` = preprocess + stack + forward."""

    name: str
    version: str
    dim: int
    input_size: int
    num_classes: int = 0
    device: str = "cpu"

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return resize_center_crop(image, self.input_size)

    def forward(self, batch: np.ndarray) -> Encoded:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, images: Sequence[Image.Image]) -> Encoded:
        if not images:
            return Encoded(np.zeros((0, self.dim), np.float32),
                           np.zeros((0, self.num_classes), np.float32) if self.num_classes else None)
        return self.forward(np.stack([self.preprocess(im) for im in images]))
