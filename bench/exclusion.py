"""``-word`` in a keyword query ("X -Y"), on the labelled sets of lookalike.evaluation.sets: how much of folder Y
it leaves out, how much else it takes with it, and what it does to the precision of the words searched for.

For every exclusion word Y (a folder's word) over the whole set:

* ``caught``: the share of folder Y's photos that "-Y" leaves out by P(Y) >= EXCLUDE_P alone (the relative
  rule, P(Y) > P(X), depends on X: it shows in the next two columns);
* ``collateral``: the share of the other folders' photos it leaves out too.

For every pair of folders X != Y, "X" against "X -Y", top 10 within the set:

* ``Y in top``: folder-Y photos among the top 10 (summed over the pairs): what the user wanted gone;
* ``P@10``: precision of the X folder, mean over the pairs (it drops when X photos are taken as Y);
* ``ms``: median wall time of a search "X" and of "X -Y" (the second runs the word's own search too).

Rules side by side: P(Y) >= EXCLUDE_P alone, and "or P(Y) > P(X)" (EXCLUDE_RELATIVE). The default, 0.5 (more
likely than not: the keyword scores are calibrated probabilities) with the relative rule, was picked on tuxpaint. ``photos`` is held out (nothing was tuned on it);
the keyword calibration was fitted on ``tuxpaint``.

    python bench/exclusion.py [--sets photos,tuxpaint] [--p 0.2,0.3,0.5] [--json]
Needs the sets as bench/keyword_quality.py does (`make bench-data`, mvtb-data).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation.keywords import labelled_folders, precision_at  # noqa: E402
from lookalike.evaluation.sets import bench_sets  # noqa: E402
from lookalike.search import run  # noqa: E402
from lookalike.search.plan import MAX_LIMIT  # noqa: E402
from lookalike.stores.base import Filters  # noqa: E402

K = 10


def measure(lib, root: Path, p: float, relative: bool) -> dict:  # type: ignore[no-untyped-def, type-arg]
    folders = {w: set(paths) for w, paths in labelled_folders(root).items()}
    everyone = set().union(*folders.values())
    f = Filters(folder=str(root))
    saved = run.EXCLUDE_P, run.EXCLUDE_RELATIVE
    run.EXCLUDE_P, run.EXCLUDE_RELATIVE = p, relative
    try:
        caught, collateral = [], []
        for y, ys in folders.items():
            gone = {r.path for r in lib.search(text=y, limit=MAX_LIMIT, threshold=p, filters=f).results}
            caught.append(len(gone & ys) / len(ys))
            collateral.append(len(gone - ys) / len(everyone - ys))
        y_before = y_after = 0
        p_before, p_after = [], []
        t_plain: list[float] = []
        t_excl: list[float] = []
        for x, xs in folders.items():
            t = time.perf_counter()
            plain = [r.path for r in lib.search(text=x, limit=K, filters=f).results]
            t_plain.append(time.perf_counter() - t)
            for y, ys in folders.items():
                if y == x:
                    continue
                t = time.perf_counter()
                res = lib.search(text=f'{x} -"{y}"', limit=K, filters=f)
                t_excl.append(time.perf_counter() - t)
                ranked = [r.path for r in res.results]
                y_before += sum(1 for q in plain if q in ys and q not in xs)
                y_after += sum(1 for q in ranked if q in ys and q not in xs)
                p_before.append(precision_at(plain, xs, K))
                p_after.append(precision_at(ranked, xs, K))
    finally:
        run.EXCLUDE_P, run.EXCLUDE_RELATIVE = saved
    n = len(p_before)
    return {"folders": len(folders), "photos": len(everyone), "pairs": n,
            "caught": round(sum(caught) / len(caught), 3), "collateral": round(sum(collateral) / len(collateral), 3),
            "y_in_top_before": y_before, "y_in_top_after": y_after,
            "p_at_10_before": round(sum(p_before) / n, 3), "p_at_10_after": round(sum(p_after) / n, 3),
            "ms_plain": round(1000 * statistics.median(t_plain), 1), "ms_excluding": round(1000 * statistics.median(t_excl), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="photos,tuxpaint")
    ap.add_argument("--p", default="0.2,0.3,0.5", help="values of EXCLUDE_P, side by side")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    opened = bench_sets(args.cache, args.sets, "exclusion")
    if opened is None:
        return 2
    out: dict[str, dict[str, dict]] = {}  # type: ignore[type-arg]
    for name, (root, lib) in opened.items():
        out[name] = {}
        for relative in (False, True):
            for p in (float(v) for v in args.p.split(",")):
                t = time.perf_counter()
                out[name][f"{p:g}{' or >P(X)' if relative else ''}"] = (
                    measure(lib, Path(root), p, relative) | {"seconds": round(time.perf_counter() - t, 1)})
        lib.close()
    if args.json:
        print(json.dumps(out))
        return 0
    for name, rows in out.items():
        first = next(iter(rows.values()))
        tuned = "calibration fitted on this set" if name == "tuxpaint" else "held out: nothing tuned on it"
        print(f"\n{name}: {first['photos']} labelled photos, {first['folders']} folders, {first['pairs']} pairs; {tuned}")
        print(f"{'rule: P(Y) >=':>15s} {'caught':>7s} {'collateral':>10s} {'Y in top10':>16s} {'P@10 of X':>15s}"
              f" {'ms X / X -Y':>14s}")
        for p, r in rows.items():
            print(f"{p:>15s} {r['caught']:7.3f} {r['collateral']:10.3f} {r['y_in_top_before']:>7d} -> {r['y_in_top_after']:<5d}"
                  f" {r['p_at_10_before']:6.3f} -> {r['p_at_10_after']:.3f} {r['ms_plain']:6.1f} / {r['ms_excluding']:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
