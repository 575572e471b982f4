"""What checking an original's bytes against the indexed content hash costs (server/files.py): GET
/api/images/N/file on a fresh file (its bytes hashed before the first is sent), the same file again (its ctime
already verified: not hashed), and reading the file alone, side by side in one run.

The photo is a real one (a package's sample) scaled up to camera sizes, with sensor-like noise so that the JPEG
files have a camera's sizes.

    python bench/original_check.py [--sizes 3,12,24] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from lookalike.library import Library  # noqa: E402
from lookalike.samples import copy_samples  # noqa: E402
from lookalike.server import files  # noqa: E402
from lookalike.server.app import create_app  # noqa: E402


def ms(f, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3,12,24", help="megapixels")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        src = copy_samples(Path(tmp) / "src", ["chelsea"])[0]
        folder = Path(tmp) / "photos"
        folder.mkdir()
        rng = np.random.default_rng(0)
        with Image.open(src) as im:
            for mp in (int(v) for v in args.sizes.split(",")):
                w = int((mp * 1e6 * 4 / 3) ** 0.5)
                big = np.asarray(im.convert("RGB").resize((w, w * 3 // 4)), np.int16)
                grain = rng.normal(0, 6, big.shape).astype(np.int16)  # sensor noise: camera-like file sizes
                Image.fromarray(np.clip(big + grain, 0, 255).astype(np.uint8)).save(folder / f"{mp}mp.jpg", quality=92)
        lib = Library(Path(tmp) / "lib")
        lib.index([folder])
        client = TestClient(create_app(lib))
        print(f"{'photo':>6s} {'MB':>6s} {'read only':>10s} {'GET, hashed':>12s} {'GET, verified':>14s}  (ms, median of {args.repeat})")
        for mp in (int(v) for v in args.sizes.split(",")):
            path = folder / f"{mp}mp.jpg"
            info = lib.store.get_by_path(str(path))
            url = f"/api/images/{info.id}/file"

            def hashed() -> None:
                files._VERIFIED.clear()  # as for a file not served before (or touched since)
                assert client.get(url).status_code == 200

            def verified() -> None:
                assert client.get(url).status_code == 200

            verified()  # warm: page cache, the verified entry
            print(f"{mp:>4d}MP {path.stat().st_size / 1e6:6.1f} {ms(path.read_bytes, args.repeat):10.1f}"
                  f" {ms(hashed, args.repeat):12.1f} {ms(verified, args.repeat):14.1f}")
        lib.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
