"""lookalike: offline image search by example, keyword and text; duplicates and edited copies."""

from __future__ import annotations

__version__ = "0.1.0"

from lookalike.errors import LookalikeError  # noqa: E402

__all__ = ["Library", "LookalikeError", "__version__"]


def __getattr__(name: str):  # lazy: importing the package must not load torch
    if name == "Library":
        from lookalike.library import Library

        return Library
    raise AttributeError(name)
