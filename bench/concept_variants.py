"""Variants of the taught-concept classifier tried on the DEV classes of bench/concepts.py, side by side.

Each variant ranks every other photo of the concept set from k random examples (the protocol of
lookalike.evaluation.concepts: precision@10, denominator capped at the class's remaining photos, the same
draws for every variant, 256 library photos as negatives). What is tried (issue 11): the shipped classifier
(logistic on the raw unit embeddings) and the examples' mean embedding; the same after centring + L2 as
search/example.py does; database-side augmentation (each photo's vector blended with its 3 nearest, alpha 3);
transductive refinement (the 5 best unlabelled photos as extra positives at half weight, re-fitted); the
ImageNet class scores (square root, centred) beside the embedding; the class scores summed over each WordNet
ancestor (<= 200 classes) beside it; other ridge penalties; a prototype + logistic ensemble; the library
sample's weight; label spreading over the library's kNN graph (Zhou et al.), alone and added to the logistic. Tune on DEV only; ``--classes test`` reports.

    python bench/concept_variants.py --library DIR     # DEV classes (the library of bench/concepts.py --library)
    python bench/concept_variants.py --classes test --only shipped,dba
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import numpy as np  # noqa: E402

from lookalike.evaluation.concepts import DEV, TEST, build_concept_set  # noqa: E402
from lookalike.evaluation.keywords import labelled_folders  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.models.base import l2_normalize  # noqa: E402
from lookalike.models.concepts import fit_concept, fit_logistic, mean_direction  # noqa: E402


def dba(f: np.ndarray, k: int = 3, alpha: float = 3.0) -> np.ndarray:
    s = f @ f.T
    np.fill_diagonal(s, -np.inf)
    nb = np.argsort(-s, axis=1)[:, :k]
    w = np.clip(np.take_along_axis(s, nb, 1), 0, None) ** alpha
    return l2_normalize(f + np.einsum("nk,nkd->nd", w, f[nb]))


def ancestors(scores: np.ndarray, max_classes: int = 200) -> np.ndarray:
    from lookalike.models.vocab import load_classes

    classes = load_classes()
    words = sorted({w for c in classes for w, _ in c.hypernyms})
    at = {w: i for i, w in enumerate(words)}
    a = np.zeros((len(classes), len(words)), np.float32)
    for c in classes:
        for w, _ in c.hypernyms:
            a[c.index, at[w]] = 1
    a = a[:, (a.sum(0) <= max_classes)]
    h = np.sqrt(np.maximum(scores, 0) @ np.hstack([np.eye(len(classes), dtype=np.float32), a]))
    return centred(h)


def centred(f: np.ndarray) -> np.ndarray:
    f = l2_normalize(f)
    return l2_normalize(f - f.mean(0))


def logistic(f, ex, lib, l2=0.01):  # type: ignore[no-untyped-def]
    return f @ fit_concept(f[ex], None, f[lib], l2=l2).w


def proto(f, ex, lib):  # type: ignore[no-untyped-def]
    return f @ mean_direction(f[ex])


def transductive(f, ex, lib, m=5, weight=0.5):  # type: ignore[no-untyped-def]
    s = logistic(f, ex, lib)
    s[ex] = -np.inf
    top = np.argsort(-s)[:m]
    neg = np.setdiff1d(lib, top)
    x = np.vstack([f[ex], f[top], f[neg]])
    y = np.r_[np.ones(len(ex) + m), np.zeros(len(neg))]
    c = np.r_[np.full(len(ex), 1 / len(ex)), np.full(m, weight / m), np.full(len(neg), 1 / len(neg))]
    return f @ fit_logistic(x, y, c).w


def lr_weighted(f, ex, lib, library_weight=1.0):  # type: ignore[no-untyped-def]
    """The shipped fit with the library sample weighing ``library_weight`` positives in total."""
    x = np.vstack([f[ex], f[lib]])
    y = np.r_[np.ones(len(ex)), np.zeros(len(lib))]
    c = np.r_[np.full(len(ex), 1 / len(ex)), np.full(len(lib), library_weight / len(lib))]
    return f @ fit_logistic(x, y, c).w


def zscore(s: np.ndarray, ex: np.ndarray) -> np.ndarray:
    rest = np.setdiff1d(np.arange(len(s)), ex)
    return (s - s[rest].mean()) / (s[rest].std() + 1e-9)


def prototype_ensemble(f, ex, lib, mix=0.5):  # type: ignore[no-untyped-def]
    """Logistic + mean-embedding scores, each standardised over the library, summed (still linear)."""
    return zscore(logistic(f, ex, lib), ex) + mix * zscore(proto(f, ex, lib), ex)


class Spreading:
    """Label spreading (Zhou et al. 2004) over the library's 10-NN graph (cosine^3, symmetric-normalised):
    F = (I - alpha S)^-1 Y with the examples as Y; alone, or standardised and added to the logistic score."""

    def __init__(self, f: np.ndarray, k: int = 10, alpha: float = 0.8) -> None:
        s = f @ f.T
        np.fill_diagonal(s, -np.inf)
        nb = np.argsort(-s, axis=1)[:, :k]
        w = np.zeros_like(s)
        r = np.arange(len(f))[:, None]
        w[r, nb] = np.clip(s[r, nb], 0, None) ** 3
        w = np.maximum(w, w.T)
        d = 1 / np.sqrt(w.sum(1) + 1e-12)
        self.inv = np.linalg.inv(np.eye(len(f)) - alpha * (d[:, None] * w * d[None]))

    def __call__(self, f, ex, lib, mix=None):  # type: ignore[no-untyped-def]
        spread = self.inv[:, ex].sum(1)
        return spread if mix is None else zscore(logistic(f, ex, lib), ex) + mix * zscore(spread, ex)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", help="an indexed library of the concept set (default: index one)")
    ap.add_argument("--classes", choices=("dev", "test"), default="dev")
    ap.add_argument("--draws", type=int, default=10)
    ap.add_argument("--only", help="comma-separated variant names")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from lookalike.evaluation.keywords import default_set_dir

    root = build_concept_set(default_set_dir().parent / "concept-set")
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(args.library or Path(tmp) / "library")
        lib.index([root])
        by_id = {st.id: p for p, st in lib.store.file_states().items()}
        ids = sorted(by_id)
        x, scores = lib.store.vectors(ids)
        lib.close()
    paths = [os.path.realpath(by_id[i]) for i in ids]
    where = {p: n for n, p in enumerate(paths)}
    folders = labelled_folders(root)
    classes = list(DEV if args.classes == "dev" else TEST)
    members = {w: np.array([where[os.path.realpath(p)] for p in folders.get(w, [])]) for w in classes}
    xc = centred(x)
    xd = dba(xc)
    cls = centred(np.sqrt(np.maximum(scores.astype(np.float32), 0)))
    anc = ancestors(scores.astype(np.float32))
    spread8, spread9 = Spreading(x, alpha=0.8), Spreading(x, alpha=0.9)
    both = lambda a, b, g: l2_normalize(np.hstack([a, g * b]))  # noqa: E731
    variants = {
        "shipped": (logistic, x), "mean embedding": (proto, x),
        "centred": (logistic, xc), "centred mean": (proto, xc),
        "centred+dba": (logistic, xd), "centred+dba mean": (proto, xd),
        "transductive": (transductive, xc), "transductive+dba": (transductive, xd),
        "class scores x0.5": (logistic, both(xc, cls, 0.5)), "class scores only": (logistic, cls),
        "wordnet ancestors x0.5": (logistic, both(xc, anc, 0.5)),
        "proto+lr 0.5": (prototype_ensemble, x), "proto+lr 1": (lambda f, e, l: prototype_ensemble(f, e, l, 1.0), x),
        "library weight 0.5": (lambda f, e, l: lr_weighted(f, e, l, 0.5), x),
        "library weight 2": (lambda f, e, l: lr_weighted(f, e, l, 2.0), x),
        "library weight 4": (lambda f, e, l: lr_weighted(f, e, l, 4.0), x),
        "spreading 0.8": (lambda f, e, l: spread8(f, e, l), x), "spreading 0.9": (lambda f, e, l: spread9(f, e, l), x),
        "lr+spreading 0.8": (lambda f, e, l: spread8(f, e, l, 0.5), x),
        "lr+spreading 0.9": (lambda f, e, l: spread9(f, e, l, 0.5), x),
        "l2 0.003": (lambda f, e, l: logistic(f, e, l, 0.003), xc), "l2 0.03": (lambda f, e, l: logistic(f, e, l, 0.03), xc),
    }
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only.split(",")}
    n = len(x)
    report: dict[str, dict[str, float]] = {}
    for name, (fn, f) in variants.items():
        rng = np.random.default_rng(0)  # the same draws for every variant
        got: dict[int, list[float]] = {}
        t = time.perf_counter()
        for w in classes:
            mem = members[w]
            for k in (1, 3, 5, 10):
                if len(mem) < k + 1:
                    continue
                per = []
                for _ in range(args.draws):
                    ex = rng.choice(mem, size=k, replace=False)
                    rest = np.setdiff1d(np.arange(n), ex)
                    libs = rng.choice(rest, size=min(256, len(rest)), replace=False)
                    s = fn(f, ex, libs)
                    top = rest[np.argsort(-s[rest], kind="stable")[:10]]
                    rel = set(np.setdiff1d(mem, ex).tolist())
                    per.append(sum(int(i in rel) for i in top) / min(10, len(rel)))
                got.setdefault(k, []).append(float(np.mean(per)))
        report[name] = {f"k{k}": round(float(np.mean(v)), 3) for k, v in got.items()}
        report[name]["s"] = round(time.perf_counter() - t, 1)
        if not args.json:
            print(f"{name:<24}" + "".join(f"{report[name].get(f'k{k}', float('nan')):>8.3f}" for k in (1, 3, 5, 10)),
                  flush=True)
    if args.json:
        print(json.dumps({"classes": args.classes, "draws": args.draws, "variants": report}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
