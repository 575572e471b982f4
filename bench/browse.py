"""Browsing the library in the web page (GET /api/browse -> Store.browse): one page, newest first by date taken.

N image rows (a third with EXIF dates, the others dated by file time, in 100 folders) are written straight into
a real SQLite library, then pages at several offsets are asked through ``SQLiteStore.browse``, with the date
index of migration 5 and with it dropped (what a sort of the whole library costs). The rows have no vectors:
browsing never reads them.

    python bench/browse.py --n 200000          # a table
    python bench/browse.py --n 1000000 --json  # {"n", "with_index_ms": {...}, "without_index_ms": {...}}
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.stores.base import Filters  # noqa: E402
from lookalike.stores.sqlite import SQLiteStore  # noqa: E402

OFFSETS = (0, 1_000, 10_000)


def fill(store: SQLiteStore, n: int) -> None:
    rng = random.Random(1)
    rows = ((f"/p/{i % 100}/img{i}.jpg", f"/p/{i % 100}", 1000, 1.6e9 + rng.random() * 1e8, f"{i:064x}", 640, 480,
             None if i % 3 else f"20{10 + i % 14:02d}-0{1 + i % 9}-01T12:00:00", None, None, 0) for i in range(n))
    with store.conn:
        store.conn.executemany("INSERT INTO images(path, folder, size, mtime, sha, width, height, taken_at, camera, "
                               "phash, indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)


def timings(store: SQLiteStore, repeat: int) -> dict[str, float]:
    out = {}
    for label, filters in (("all", None), ("one folder", Filters(folder="/p/7"))):
        for off in OFFSETS:
            samples = []
            for _ in range(repeat):
                t = time.perf_counter()
                store.browse(filters, off, 30)
                samples.append((time.perf_counter() - t) * 1000)
            out[f"{label} @{off}"] = round(statistics.median(samples), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lookalike-browse-") as tmp:
        store = SQLiteStore(tmp)
        fill(store, args.n)
        with_index = timings(store, args.repeat)
        store.conn.execute("DROP INDEX images_taken")
        without = timings(store, args.repeat)
        store.close()
    if args.json:
        print(json.dumps({"n": args.n, "with_index_ms": with_index, "without_index_ms": without}))
        return
    print(f"browse, {args.n} images, a page of 30, median of {args.repeat} (ms)")
    print(f"{'page':<20}{'with index':>12}{'without':>12}")
    for k in with_index:
        print(f"{k:<20}{with_index[k]:>12}{without[k]:>12}")


if __name__ == "__main__":
    main()
