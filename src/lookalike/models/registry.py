"""Model names to loaded models, cached (the one piece of global state)."""

from __future__ import annotations

import threading

from lookalike.errors import LookalikeError
from lookalike.models.base import Model

_CACHE: dict[tuple[str, str, int], Model] = {}
_LOCK = threading.Lock()

MODEL_NAMES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "clip:<arch>:<weights-file>")


def load_model(name: str, device: str = "cpu", threads: int = 0) -> Model:
    key = (name, device, threads)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(name, device, threads)
        return _CACHE[key]


def _build(name: str, device: str, threads: int) -> Model:
    if name.startswith("efficientnet-lite"):
        from lookalike.models.efficientnet import EfficientNetLite

        return EfficientNetLite(name, device=device, threads=threads)
    if name.startswith("clip:"):
        from lookalike.models.clip import ClipModel

        return ClipModel.from_spec(name, device=device, threads=threads)
    raise LookalikeError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


def embeds_text(name: str) -> bool:
    """Whether the named model also embeds free text into its image space (without loading it)."""
    return name.startswith("clip:")
