"""Keyword search quality on labelled real photos: precision@10 and AP per class word, side by side for
the vocabulary alone (baseline), + the sentence model, + visual-neighbour expansion (the default).

The set: tuxpaint's photographic stamps (Debian tuxpaint-stamps-default; `make bench-data` installs it), one
folder per word (bird, fish, insect, fruit, vegetable, flower, + 9 more), plus every sample photo of the
installed packages (two fish and a flower into their folders, ~70 others as unlabelled distractors).

    python bench/keyword_quality.py            # a table
    python bench/keyword_quality.py --json     # one JSON object
    python bench/keyword_quality.py --root DIR # your own labelled folders (folder name = query word)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.errors import LookalikeError  # noqa: E402
from lookalike.evaluation.keywords import GENERIC, build_labelled_set, default_set_dir, evaluate_keywords  # noqa: E402
from lookalike.library import Library  # noqa: E402

VARIANTS = {
    "vocabulary": {"expand": False, "semantic": False},
    "+sentence model": {"expand": False, "semantic": None},
    "+visual expansion": {"expand": True, "semantic": None},
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="labelled folder set (default: build the tuxpaint + samples set)")
    ap.add_argument("--library", help="library folder to use (default: a temporary one)")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        root = Path(args.root) if args.root else build_labelled_set(default_set_dir())
    except LookalikeError as err:
        print(f"keyword_quality: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(args.library or Path(tmp) / "library")
        t = time.perf_counter()
        summary = lib.index([root])
        index_s = time.perf_counter() - t
        reports = {}
        for name, opts in VARIANTS.items():
            t = time.perf_counter()
            reports[name] = evaluate_keywords(lib, root, k=args.k, index=False, **opts)
            reports[name]["seconds"] = round(time.perf_counter() - t, 2)
        lib.close()
    first = next(iter(reports.values()))
    out = {
        "set": str(root), "images": first["images"], "labelled": first["labelled"], "k": args.k,
        "index": {"indexed": summary.indexed, "seconds": round(index_s, 1)},
        "variants": {n: {"generic": r["generic"], "all": r["mean"], "seconds": r["seconds"],
                         "classes": {w: {"precision": c["precision"], "ap": c["ap"], "relevant": c["relevant"]}
                                     for w, c in r["classes"].items()}} for n, r in reports.items()},
    }
    if args.json:
        print(json.dumps(out))
        return 0
    names = list(reports)
    print(f"keyword precision@{args.k} / AP on {out['images']} photos ({out['labelled']} labelled) in {root}")
    print(f"{'word':20s} {'n':>3s}  " + "  ".join(f"{n:>20s}" for n in names))
    for word, c in first["classes"].items():
        row = "  ".join(f"{reports[n]['classes'][word]['precision']:9.2f} / {reports[n]['classes'][word]['ap']:.2f}  "
                        for n in names)
        print(f"{word + (' *' if word in GENERIC else ''):20s} {c['relevant']:3d}  {row}")
    for label, key in (("mean generic (*)", "generic"), ("mean all", "mean")):
        row = "  ".join(f"{reports[n][key]['precision']:9.3f} / {reports[n][key]['ap']:.3f}" for n in names)
        print(f"{label:20s} {'':3s}  {row}")
    print("seconds per variant: " + ", ".join(f"{n} {reports[n]['seconds']}" for n in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
