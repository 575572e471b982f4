"""faiss, imported on first use: ``from lookalike.stores.faiss_lazy import faiss``.

Importing faiss costs ~0.08 s of CPU beyond numpy's (``python -c "import numpy, faiss"`` 0.23-0.25 s against
0.16-0.17 s for numpy alone; up to 0.27 s of wall time from a cold page cache, ``python -X importtime``). A
small library's index is exact (``flat``) and derived data that nothing saves, so ``lookalike index`` into it
needs no faiss at all (``LoggedIndex.optimize``'s flat path); every module of the vector index reaches faiss
through this proxy, so only what builds, loads or searches an index imports it. Small: the start-up CPU of an
indexing run (``bench/shared_index.py --n "" --startup-runs 7 --compare``) was 0.68 s against 0.70 s before,
within its run-to-run spread; it matters where several indexers share one library, each paying the start-up.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)


if TYPE_CHECKING:  # type checkers see the module itself
    import faiss as faiss
else:
    faiss = _LazyModule("faiss")
