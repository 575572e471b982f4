"""What "-word" costs on a larger library: "X" against "X -Y" at two depths of the word's own search
(search/run.py ``EXCLUDE_DEPTH``), alternating, median of ``--repeat`` searches each.

The library is ``--copies`` copies of the package's sample photos (74 real photos; copies reuse their vectors,
so it indexes in seconds). Copies make the lists degenerate (every photo many times), not their cost.

    python bench/exclusion_scale.py [--copies 135] [--repeat 15] [--depths 10000,1000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.library import Library  # noqa: E402
from lookalike.samples import copy_samples  # noqa: E402
from lookalike.search import run  # noqa: E402

QUERIES = ("animal", "animal -cat", "room -chair")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=135)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--depths", default="10000,1000")
    ap.add_argument("--keep", type=Path, default=None, help="build (or reuse) the library here")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="lookalike-exclusion-"))
    photos = base / "photos"
    if not photos.is_dir():
        originals = copy_samples(base / "originals", None)
        for i in range(args.copies):
            folder = photos / f"c{i:03d}"
            folder.mkdir(parents=True)
            for p in originals:
                shutil.copyfile(p, folder / p.name)
    lib = Library(base / "lib")
    t = time.perf_counter()
    s = lib.index([photos])
    print(f"library: {s.found} photos ({s.indexed} embedded, {s.reused} copies) in {time.perf_counter() - t:.1f} s")
    depths = [int(d) for d in args.depths.split(",")]
    times: dict[tuple[int, str], list[float]] = {}
    saved = run.EXCLUDE_DEPTH
    try:
        for _ in range(2):  # two rounds, the depths alternating
            for depth in depths:
                run.EXCLUDE_DEPTH = depth
                for q in QUERIES:
                    lib.search(q, limit=20)  # warm
                    for _ in range(args.repeat):
                        a = time.perf_counter()
                        lib.search(q, limit=20)
                        times.setdefault((depth, q), []).append(time.perf_counter() - a)
    finally:
        run.EXCLUDE_DEPTH = saved
        lib.close()
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{'query':16s} " + " ".join(f"{'depth ' + str(d):>12s}" for d in depths) + "   (ms, median)")
    for q in QUERIES:
        print(f"{q:16s} " + " ".join(f"{1000 * statistics.median(times[(d, q)]):12.1f}" for d in depths))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
