"""Keyword search quality on labelled real photos: precision@10 and AP per query word, before and after the
WordNet vocabulary, on the two labelled sets of lookalike.evaluation.sets.

* ``tuxpaint``: 230 tuxpaint photo cut-outs in 15 folders + sample photos as distractors. The vocabulary's
  constants and the keyword calibration were set on this set, so its figures are not held out.
* ``photos``: mvtb-data buildings, flowers, tomatoes, sharks; 39 interiors ("room", "furniture"); 200
  Fashion-MNIST garments (10 labels, most of them not ImageNet classes). Nothing was tuned on it.

Each folder is asked with its own word and with its synonyms, plurals and broader words (QUERIES); "mean
words" is over the folder words, "mean all" over every query. Variants, side by side in one run:

* ``before``: the ImageNet-only vocabulary (class lemmas + hypernyms) + sentence model + one round of visual expansion,
  i.e. the default before the WordNet lexicon;
* ``after``: the default now (all WordNet nouns, one round of visual expansion);
* ``after, second round``: the same with the second visual round (REFINE_SEEDS = 5; off by default);
* ``after, no expansion``: the same without visual-neighbour expansion.

    python bench/keyword_quality.py [--sets tuxpaint,photos] [--json] [--cache DIR]
Needs: tuxpaint-stamps-default, dataset-fashion-mnist (Debian; `make bench-data`), mvtb-data (pip).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation.keywords import evaluate_keywords  # noqa: E402
from lookalike.evaluation.sets import SETS, bench_sets  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.models.vocab import Vocabulary  # noqa: E402
from lookalike.search import keywords  # noqa: E402

VARIANTS = {  # name -> (Vocabulary options, search options, search.keywords constants)
    "before": ({"wordnet": False}, {"expand": True}, {"REFINE_SEEDS": 0}),
    "after": ({}, {"expand": True}, {}),
    "after, second round": ({}, {"expand": True}, {"REFINE_SEEDS": 5}),
    "after, no expansion": ({}, {"expand": False}, {}),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--cache", type=Path, default=None, help="folder for the sets and their libraries")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    opened = bench_sets(args.cache, args.sets, "keyword_quality")
    if opened is None:
        return 2
    out: dict[str, dict] = {}
    for name, (root, lib) in opened.items():
        out[name] = {}
        for variant, (vocab_opts, search_opts, constants) in VARIANTS.items():
            view = Library(lib.settings, store=lib.store, model=lib.model, vocabulary=Vocabulary(**vocab_opts))
            saved = {c: getattr(keywords, c) for c in constants}
            t = time.perf_counter()
            try:
                for c, v in constants.items():
                    setattr(keywords, c, v)
                r = evaluate_keywords(view, root, k=args.k, index=False, synonyms=True, **search_opts)
            finally:
                for c, v in saved.items():
                    setattr(keywords, c, v)
            r["seconds"] = round(time.perf_counter() - t, 1)
            out[name][variant] = r
        lib.close()
    if args.json:
        print(json.dumps({n: {v: {k: r[k] for k in ("images", "labelled", "mean", "with_synonyms", "seconds", "classes")}
                              for v, r in rs.items()} for n, rs in out.items()}))
        return 0
    names = list(VARIANTS)
    for name, reports in out.items():
        first = reports[names[0]]
        tuned = "tuned on this set" if name == "tuxpaint" else "held out: nothing tuned on it"
        print(f"\n{name}: precision@{args.k} / AP, {first['images']} photos ({first['labelled']} labelled); {tuned}")
        print(f"{'query (folder)':28s} {'n':>3s}  " + "  ".join(f"{n:>20s}" for n in names))
        for word, c in first["classes"].items():
            row = "  ".join(f"{reports[n]['classes'][word]['precision']:9.2f} / {reports[n]['classes'][word]['ap']:.2f}  "
                            for n in names)
            print(f"{word[:28]:28s} {c['relevant']:3d}  {row}")
        for label, key in (("mean words", "mean"), ("mean all (with synonyms)", "with_synonyms")):
            row = "  ".join(f"{reports[n][key]['precision']:9.3f} / {reports[n][key]['ap']:.3f}" for n in names)
            print(f"{label:28s} {'':3s}  {row}")
        print("seconds per variant: " + ", ".join(f"{n} {reports[n]['seconds']}" for n in names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
