"""Tune the shortlist diffusion (search/example.py ``diffuse``) on ONE set (tuxpaint by default), then print
the chosen parameters' figures on the others, which were never looked at while choosing.

    python bench/diffusion_tune.py [--cache DIR] [--tune tuxpaint]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import retrieval as B  # noqa: E402

from lookalike.evaluation import retrieval as R  # noqa: E402


def p10(data: dict, diffusion: dict | None) -> float:
    raw = B._vec(data["pooled"], "mean")
    wh = R.fit_whitening(raw, **{k: v for k, v in B.CENTRE.items() if k != "fit"})
    s = R.example_scores(raw, raw, wh["w"], self_query=True, diffusion=diffusion)
    return R.labelled_metrics(s, data["labels"])["precision_at_10"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/retrieval")
    ap.add_argument("--tune", default="tuxpaint")
    args = ap.parse_args()
    tune = B.load_sets(Path(args.cache), progress=False, only=(args.tune,))[args.tune]
    best = (p10(tune, None), None)
    print(f"{args.tune}: default {best[0]:.3f}", flush=True)
    # coordinate search (each evaluation is a full leave-one-out pass): k, then alpha, then graph and base
    cur = {"on": "dba", "k": 10, "alpha": 0.9, "gamma": 3.0, "mutual": True}
    for key, values in (("k", (5, 10, 20)), ("alpha", (0.5, 0.8, 0.99)), ("mutual", (False,)), ("on", ("centred",))):
        for v in values:
            d = {**(best[1] or cur), key: v}
            if d == best[1]:
                continue
            p = p10(tune, d)
            print(f"{args.tune}: {d} {p:.3f}", flush=True)
            if p > best[0]:
                best = (p, d)
    print(f"best on {args.tune}: {best}", flush=True)
    sets = B.load_sets(Path(args.cache), progress=False, only=B.LABELLED)  # the others only now
    for name in B.labelled(sets):
        if name != args.tune:
            print(f"held out {name}: default {p10(sets[name], None):.3f}  chosen {p10(sets[name], best[1]):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
