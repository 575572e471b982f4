"""Copy detection and image-query quality on real photos, per method (embeddings, class-score vectors,
perceptual hash, and the verified method `lookalike dupes` uses). Same code as `lookalike eval`.

The default set: every sample photo of the installed packages as originals (each edited 16 ways: crop
10/25/40%, rotate 5/10/20 degrees, mirror, text and logo watermark, JPEG quality 20/40, downscale to 1/4
and 1/2, brightness/contrast, grayscale, recolour) and, when installed (`make bench` installs it),
mvtb-data's 121 photos as distractors; the labelled set is tuxpaint's photo stamps (Debian
tuxpaint-stamps-default, `make bench-data`) when present.

    python bench/quality.py               # tables
    python bench/quality.py --json        # one JSON object: {"copies": {...per method, per edit}, "labelled": {...}}
    python bench/quality.py --originals DIR --distractors DIR --labelled DIR
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.errors import LookalikeError  # noqa: E402
from lookalike.evaluation.copies import evaluate_copies, evaluate_labelled, format_report, image_files  # noqa: E402
from lookalike.evaluation.keywords import build_labelled_set, default_set_dir  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.samples import copy_samples, package_dir  # noqa: E402


def mvtb_photos() -> list[Path]:
    root = package_dir("mvtbdata")
    return image_files(root) if root else []


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--originals", help="folder of photos to edit (default: the packages' sample photos)")
    ap.add_argument("--distractors", action="append", help="folder of distractor photos (default: mvtb-data)")
    ap.add_argument("--labelled", help="labelled folder set (default: tuxpaint stamps + samples, when installed)")
    ap.add_argument("--edits", help="comma-separated subset of the edits")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lookalike-quality-"))
    try:
        if args.originals:
            originals = image_files(args.originals)
        else:
            originals = copy_samples(tmp / "originals", as_jpeg=False)
        distractors = [p for d in args.distractors for p in image_files(d)] if args.distractors else mvtb_photos()
        lib = Library(tmp / "library")
        report: dict[str, object] = {
            "copies": evaluate_copies(lib, originals, distractors, progress=not args.json,
                                      edits=args.edits.split(",") if args.edits else None)}
        try:
            labelled = Path(args.labelled) if args.labelled else build_labelled_set(default_set_dir())
            report["labelled"] = evaluate_labelled(Library(tmp / "labelled"), labelled)
        except LookalikeError as err:
            print(f"quality: labelled set skipped: {err}", file=sys.stderr)
        lib.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
