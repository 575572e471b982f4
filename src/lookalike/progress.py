"""Progress bars for long work (indexing, verification, evaluation): tqdm on stderr, off unless asked."""

from __future__ import annotations

import sys


class _Off:
    """What callers use of a bar (``update``, ``close``), doing nothing: a run that shows no bar (``-q``,
    ``--json``, not a terminal) does not import tqdm (~0.03 s of CPU per process)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, enabled: bool, desc: str, unit: str = "img"):  # type: ignore[no-untyped-def]
    if not enabled:
        return _Off()
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True, desc=desc,
                smoothing=0.1)
