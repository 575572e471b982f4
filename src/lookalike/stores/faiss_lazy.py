"""faiss, imported on first use: ``from lookalike.stores.faiss_lazy import faiss``.

Importing faiss costs ~0.27 s of CPU (its SWIG module; ``python -X importtime``), more than the rest of an
indexing process's start-up beside numpy. A small library's index is exact (``flat``) and derived data that
nothing saves, so ``lookalike index`` into it needs no faiss at all (``LoggedIndex.optimize``'s flat path);
every module of the vector index reaches faiss through this proxy, so only what actually builds, loads or
searches an index imports it. Measured with ``bench/shared_index.py`` (several indexers each pay the start-up).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


faiss: Any = _LazyModule("faiss")
