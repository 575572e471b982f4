"""`lookalike dupes` with copy features on phone-sized JPEGs: the features that keep the 320-px gray (format 2)
against the same features without it (format 1: each pair that passes the screen decodes both files again).

The packages' sample photos enlarged to 12 MP (4000 px long side, JPEG quality 90), each with three edited
copies (crop 25%, rotate 10 degrees, JPEG 40), indexed once with ``--copy-features``; a copy of the library
is made in which every image's features are cut back to format 1 (the same points, no gray). Then, in
alternating rounds, ``Library.dupes`` on a fresh copy of each (no kept verdicts): wall and CPU seconds, the
pairs screened / settled on pixels / sent to SIFT, the files decoded for the pixel check, the groups.

    python bench/copy_features_gray.py            # a table
    python bench/copy_features_gray.py --json     # {"rows": [...], "median": {...}, "load_average": [...]}
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation.edits import apply  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.samples import sample_photos  # noqa: E402
from lookalike.search import verify  # noqa: E402

EDITS = ("crop25", "rotate10", "jpeg40")
LONG_SIDE = 4000


def make_photos(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    for name in sorted(sample_photos())[:count]:
        with Image.open(sample_photos()[name]) as im:
            im = im.convert("RGB")
            s = LONG_SIDE / max(im.size)
            big = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BICUBIC)
        big.save(folder / f"{name}.jpg", quality=90)
        for edit in EDITS:
            apply(edit, big, seed=name).save(folder / f"{name}-{edit}.jpg", quality=90)


def first_format(db: Path) -> None:
    """Cut every image's copy features back to format 1 (the points only), in place."""
    con = sqlite3.connect(db)
    rows = []
    for image_id, data in con.execute("SELECT image_id, data FROM copy_features"):
        rows.append((verify.points_only(data), image_id))
    con.executemany("UPDATE copy_features SET data = ? WHERE image_id = ?", rows)
    con.commit()
    con.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=30, help="sample photos enlarged (each with 3 copies)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lookalike-cf-gray-"))
    try:
        make_photos(work / "photos", args.photos)
        with Library(work / "lib", copy_features=True) as lib:
            lib.index([work / "photos"])
        db = work / "lib" / "lookalike.db"
        shutil.copy(db, work / "gray.db")
        shutil.copy(db, work / "points.db")
        first_format(work / "points.db")
        rows = []
        for rnd in range(args.rounds):
            for kind in ("points", "gray"):
                shutil.copy(work / f"{kind}.db", db)
                with Library(work / "lib", copy_features=True) as lib:
                    t, c = time.perf_counter(), time.process_time()
                    r = lib.dupes()
                    rows.append({"round": rnd, "features": kind, "wall_s": round(time.perf_counter() - t, 3),
                                 "cpu_s": round(time.process_time() - c, 3), "uncertain": r.uncertain,
                                 "screened": r.screened, "aligned": r.aligned, "sift": r.verified,
                                 "decoded": r.decoded, "groups": len(r.groups)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    median = {k: {m: statistics.median(r[m] for r in rows if r["features"] == k) for m in ("wall_s", "cpu_s")}
              for k in ("points", "gray")}
    median["cpu_ratio"] = round(median["gray"]["cpu_s"] / median["points"]["cpu_s"], 3)
    out = {"rows": rows, "median": median, "load_average": [round(v, 2) for v in os.getloadavg()]}
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{args.photos * (1 + len(EDITS))} JPEGs of 12 MP, {args.rounds} rounds alternating")
    print("round  features                 wall s  CPU s  screened/aligned/SIFT  decoded  groups")
    for r in rows:
        label = "gray kept (format 2)" if r["features"] == "gray" else "points only (format 1)"
        print(f"{r['round']:>5}  {label:<23} {r['wall_s']:>6.2f} {r['cpu_s']:>6.2f}  "
              f"{r['screened']}/{r['aligned']}/{r['sift']:<17} {r['decoded']:>7}  {r['groups']:>6}")
    print(f"median CPU, gray kept / points only: {median['cpu_ratio']}  (load average {out['load_average']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
