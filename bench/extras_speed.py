"""Cost of the extras, side by side in one run on the installed sample photos: indexing without extras, with
--ocr, with --faces; keyword query latency with the vocabulary alone, + sentence model, + visual expansion;
face search latency.

    python bench/extras_speed.py [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.library import Library  # noqa: E402
from lookalike.samples import copy_samples  # noqa: E402

QUERIES = ["cat", "a cup of coffee", "sea", "ocean waves", "kitty on the sofa", "page with markers"]


def _index(photos: Path, lib_dir: Path, **opts: object) -> dict[str, float]:
    warm = Library(lib_dir / "warm-up", **opts)  # models loaded before the timed run
    warm.index([next(photos.glob("*.jpg"))])
    warm.close()
    lib = Library(lib_dir, **opts)
    t = time.perf_counter()
    s = lib.index([photos])
    dt = time.perf_counter() - t
    lib.close()
    return {"images": s.indexed, "seconds": round(dt, 2), "images_per_s": round(s.indexed / dt, 2)}


def _latency(fn, n: int = 3) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return round(statistics.median(times) * 1000, 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = Path(tmp) / "photos"
        copy_samples(photos)
        out: dict[str, object] = {"indexing": {
            "plain": _index(photos, Path(tmp) / "a"),
            "--ocr": _index(photos, Path(tmp) / "b", ocr=True),
            "--faces": _index(photos, Path(tmp) / "c", faces=True),
        }}
        lib = Library(Path(tmp) / "d", ocr=True, faces=True)
        lib.index([photos])
        out["query_ms"] = {
            "vocabulary": statistics.median(_latency(lambda q=q: lib.search(text=q, expand=False, semantic=False)) for q in QUERIES),
            "+sentence model": statistics.median(_latency(lambda q=q: lib.search(text=q, expand=False)) for q in QUERIES),
            "+visual expansion": statistics.median(_latency(lambda q=q: lib.search(text=q)) for q in QUERIES),
            "face": _latency(lambda: lib.search(face=photos / "astronaut.jpg")),
        }
        out["faces_stored"] = sum(len(v) for v in lib.store.faces(range(1, 10_000)).values())
        lib.close()
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{'indexing':12s} {'images':>6s} {'seconds':>8s} {'img/s':>7s}")
    for name, r in out["indexing"].items():  # type: ignore[union-attr]
        print(f"{name:12s} {r['images']:6d} {r['seconds']:8.2f} {r['images_per_s']:7.2f}")
    print("median query latency (ms): " + ", ".join(f"{k} {v}" for k, v in out["query_ms"].items()))  # type: ignore[union-attr]
    print(f"faces stored: {out['faces_stored']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
