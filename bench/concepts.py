"""Few-shot precision@10 of taught concepts (k = 1, 3, 5, 10 examples) on classes ImageNet-1k lacks, the time
to teach, and what concepts cost per indexed image.

The set: lookalike.evaluation.concepts.build_concept_set (tuxpaint stamps by category, mvtb-data folders,
tiktok interior photos; everything else as distractors). Figures are for the TEST classes unless asked
(--classes dev was the only set the classifier's constants were tuned on).

    python bench/concepts.py                    # a table (TEST classes)
    python bench/concepts.py --json             # one JSON object
    python bench/concepts.py --classes dev      # the tuning classes
    python bench/concepts.py --library DIR      # reuse an indexed library of the set (faster reruns)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from lookalike.errors import LookalikeError  # noqa: E402
from lookalike.evaluation.concepts import DEV, TEST, class_means, build_concept_set, evaluate_concepts, library_vectors  # noqa: E402
from lookalike.library import Library  # noqa: E402


def default_set_dir() -> Path:
    from lookalike.evaluation.keywords import default_set_dir as kw

    return kw().parent / "concept-set"


def teach_timings(lib: Library, root: Path, classes: list[str], ks: list[int]) -> dict[str, dict[str, float]]:
    """Wall time of ``Library.teach`` (examples by path: id look-up, library sample, fit, cross-validation,
    store), and of a search by the taught word; median over the classes."""
    if not hasattr(lib.store, "put_concept"):
        return {}
    from lookalike.evaluation.keywords import labelled_folders

    folders = labelled_folders(root)
    out: dict[str, dict[str, float]] = {}
    for k in ks:
        teach, search = [], []
        for word in classes:
            files = folders.get(word, [])[:k]
            if len(files) < k:
                continue
            name = f"bench {word} {k}"
            t = time.perf_counter()
            lib.teach(name, files)
            teach.append(time.perf_counter() - t)
            t = time.perf_counter()
            lib.search(name, limit=10)
            search.append(time.perf_counter() - t)
            lib.forget(name)
        if teach:
            out[f"k{k}"] = {"teach_ms": round(1000 * float(np.median(teach)), 1),
                            "search_ms": round(1000 * float(np.median(search)), 1)}
    return out


def scoring_cost(dim: int, n: int = 100_000, concepts: int = 10) -> dict[str, float]:
    """Query-time cost per indexed image: one inner product per concept, ms per search over ``n`` vectors
    (exact, numpy) -- the upper bound of what the vector index does for a concept query."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    w = rng.standard_normal((concepts, dim), dtype=np.float32)
    x @ w[0]
    t = time.perf_counter()
    for c in range(concepts):
        s = x @ w[c]
        np.argpartition(-s, 10)[:10]
    per = (time.perf_counter() - t) / concepts
    return {"exact_search_ms_at": n, "exact_search_ms": round(per * 1000, 2), "ns_per_image": round(per / n * 1e9, 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", help="the labelled folder set (default: build it)")
    ap.add_argument("--library", help="library folder (default: a temporary one)")
    ap.add_argument("--classes", choices=("test", "dev", "all"), default="test")
    ap.add_argument("--draws", type=int, default=20, help="random draws of the examples per class and k")
    ap.add_argument("--ks", default="1,3,5,10")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--l2", type=float, help="override the classifier's L2 (tuning on --classes dev only)")
    ap.add_argument("--estimate", action="store_true",
                    help="also compare the cross-validated precision estimate with the measured one (slower)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--progress", action="store_true", help="always show the progress bar")
    args = ap.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    classes = list({"test": TEST, "dev": DEV, "all": DEV + TEST}[args.classes])
    try:
        root = Path(args.root) if args.root else build_concept_set(default_set_dir())
    except LookalikeError as err:
        print(f"concepts: {err}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(args.library or Path(tmp) / "library")
        t = time.perf_counter()
        summary = lib.index([root])
        index_s = time.perf_counter() - t
        paths, vectors = library_vectors(lib.store)
        fit = {"l2": args.l2} if args.l2 is not None else {}
        report = evaluate_concepts(paths, vectors, root, classes=classes, ks=ks, draws=args.draws, seed=args.seed,
                                   progress=sys.stderr.isatty() or args.progress, estimate=args.estimate, **fit)
        report["teach"] = teach_timings(lib, root, classes, ks)
        lib.close()
    report.update({"set": str(root), "split": args.classes, "indexed": summary.indexed, "index_s": round(index_s, 1),
                   "cost": {"index_time_per_image": 0.0, **scoring_cost(vectors.shape[1])},
                   "machine": "shared 2-core machine (other jobs running)"})
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"taught concepts, precision@{report['at']} over {report['draws']} random draws of k examples; "
          f"{report['images']} images, classes: {args.classes}")
    head = "class".ljust(16) + "".join(f"{'k=' + str(k):>16}" for k in ks)
    print(head + "\n" + "-" * len(head))
    for word, row in report["classes"].items():
        cells = []
        for k in ks:
            c = row.get(f"k{k}")
            cells.append(f"{c['concept']:>8.2f} ({c['baseline']:.2f})" if c else f"{'-':>16}")
        print(f"{word[:15]:<16}" + "".join(f"{c:>16}" for c in cells) + f"   n={row['photos']}")
    print("-" * len(head))
    m = report["mean"]
    if args.classes == "all":  # the tuning classes and the reported ones apart
        for name, cl in (("mean DEV", DEV), ("mean TEST", TEST)):
            sub = class_means({w: r for w, r in report["classes"].items() if w in cl}, ks)
            report[name.split()[1].lower()] = sub
            print(name.ljust(16) + "".join(f"{sub[f'k{k}']['concept']:>8.2f} ({sub[f'k{k}']['baseline']:.2f})"
                                            if f"k{k}" in sub else f"{'-':>16}" for k in ks))
    print("mean".ljust(16) + "".join(f"{m[f'k{k}']['concept']:>8.2f} ({m[f'k{k}']['baseline']:.2f})"
                                      if f"k{k}" in m else f"{'-':>16}" for k in ks))
    print("(in brackets: the baseline, the examples' mean embedding by cosine)")
    if args.estimate:
        print(f"precision@{report['at']}: cross-validated estimate / measured with the labels (mean abs. error per draw)")
        for name, cl in (("DEV", DEV), ("TEST", TEST)):
            sub = class_means({w: r for w, r in report["classes"].items() if w in cl}, ks)
            cells = [f"{sub[f'k{k}']['cv_precision']:.2f}/{sub[f'k{k}']['measured_precision']:.2f} "
                     f"({sub[f'k{k}']['abs_error']:.2f})" if "cv_precision" in sub.get(f"k{k}", {}) else "-" for k in ks]
            if any(c != "-" for c in cells):
                print(name.ljust(16) + "".join(f"{c:>18}" for c in cells))
    print(f"fit: median {report['fit_ms'].get('median')} ms, p95 {report['fit_ms'].get('p95')} ms (classifier only)")
    for k, t in report["teach"].items():
        print(f"teach {k}: {t['teach_ms']} ms (lookup, sample, fit, cross-validation, store); search {t['search_ms']} ms")
    c = report["cost"]
    print(f"cost per indexed image: 0 at index time (nothing stored per image); at query time one inner product "
          f"({c['ns_per_image']} ns/image exact, {c['exact_search_ms']} ms per concept over {c['exact_search_ms_at']} vectors)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
