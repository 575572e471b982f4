"""Progress bars for long work (indexing, verification, evaluation): tqdm on stderr, off unless asked."""

from __future__ import annotations

import sys


def progress_bar(total: int, enabled: bool, desc: str, unit: str = "img"):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True, desc=desc,
                smoothing=0.1)
