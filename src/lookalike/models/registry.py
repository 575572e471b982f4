"""Model names to loaded models, cached (the one piece of global state)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

from lookalike.errors import LookalikeError
from lookalike.models.base import Model

T = TypeVar("T")


def process_wide(factory: Callable[[], T]) -> Callable[[], T]:
    """A zero-argument loader whose result is built once per process (thread-safe) and then shared."""
    lock = threading.Lock()
    built: list[T] = []

    @functools.wraps(factory)
    def get() -> T:
        with lock:
            if not built:
                built.append(factory())
            return built[0]

    return get


_CACHE: dict[tuple[str, str, int, str], Model] = {}
_LOCK = threading.Lock()

MODEL_NAMES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", "clip:<arch>:<weights-file>")


def load_model(name: str, device: str = "cpu", threads: int = 0, engine: str = "auto") -> Model:
    """``engine`` (auto | torch | onnx) applies to the EfficientNet-Lite models; others ignore it."""
    key = (name, device, threads, engine)
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _build(name, device, threads, engine)
        return _CACHE[key]


def _build(name: str, device: str, threads: int, engine: str = "auto") -> Model:
    if name.startswith("efficientnet-lite"):
        from lookalike.models.efficientnet import EfficientNetLite

        return EfficientNetLite(name, device=device, threads=threads, engine=engine)
    if name.startswith("clip:"):
        from lookalike.models.clip import ClipModel

        return ClipModel.from_spec(name, device=device, threads=threads)
    raise LookalikeError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")


def embeds_text(name: str) -> bool:
    """Whether the named model also embeds free text into its image space (without loading it)."""
    return name.startswith("clip:")
