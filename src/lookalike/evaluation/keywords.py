"""Keyword search quality on a labelled folder set: each sub-folder's name is the query word, the photos in
it are the relevant results (``root/bird/*.jpg`` are the right answers to "bird").

    from lookalike.evaluation.keywords import evaluate_keywords, build_tuxpaint_set
    root = build_tuxpaint_set("/tmp/kwset")              # 230 real photo cut-outs in 15 folders
    report = evaluate_keywords(library, root, k=10)      # indexes root if needed
    report["mean"]["precision"], report["classes"]["bird"]["ap"]

precision@k is the share of relevant photos among the first k results, its denominator capped at the
number of photos in the folder (a folder of 9 insects can still score 1.0 at k=10). AP is average precision
over the whole ranked list (up to ``depth`` results), so it also rewards recall.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from lookalike.errors import LookalikeError, NotFound
from lookalike.stores.base import Filters

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}

# The generic words the issue is about (ImageNet-1k has no class for most of them).
GENERIC = ("bird", "fish", "insect", "fruit", "vegetable", "flower")

TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")  # Debian package tuxpaint-stamps-default
# folder (= query word) -> stamp folders whose photographic (non-cartoon) PNGs belong to it
TUXPAINT_SET: dict[str, tuple[str, ...]] = {
    "bird": ("animals/birds",),
    "fish": ("animals/fish",),
    "insect": ("animals/insects",),
    "fruit": ("food/fruit",),
    "vegetable": ("food/vegetables",),
    "flower": ("plants/flowers",),
    "mushroom": ("plants/mushrooms",),
    "tree": ("plants/trees",),
    "nut": ("food/nuts",),
    "cattle": ("animals/mammals/bovines",),
    "rodent": ("animals/mammals/rodents",),
    "tool": ("household/tools",),
    "hat": ("clothes/hats",),
    "planet": ("space/planets",),
    "musical instrument": ("hobbies/music/brass", "hobbies/music/percussion", "hobbies/music/string",
                           "hobbies/music/wind"),
}
# tuxpaint files that sit in a folder they do not belong to (a slug and a woodlouse are not insects)
TUXPAINT_EXCLUDE = {"animals/insects/Brown_slug.png", "animals/insects/Woodlouse.png"}


def build_tuxpaint_set(dest: str | os.PathLike[str], stamps: Path = TUXPAINT_STAMPS, max_side: int = 512,
                       words: Sequence[str] | None = None) -> Path:
    """Copy tuxpaint's photographic stamps into ``dest/<word>/*.jpg`` (composited on white, at most
    ``max_side`` px; only the folders ``words`` when given). Needs the Debian package
    ``tuxpaint-stamps-default``. Idempotent."""
    from PIL import Image

    from lookalike.io.read import to_rgb

    if not stamps.is_dir():
        raise NotFound(f"{stamps} not found: apt-get install tuxpaint-stamps-default (the labelled photos)")
    dest = Path(dest)
    for word, folders in TUXPAINT_SET.items():
        if words is not None and word not in words:
            continue
        out = dest / word
        out.mkdir(parents=True, exist_ok=True)
        for folder in folders:
            for src in sorted((stamps / folder).glob("*.png")):
                rel = src.relative_to(stamps).as_posix()
                target = out / (src.stem.lower().replace(" ", "_") + ".jpg")
                if rel in TUXPAINT_EXCLUDE or target.exists():
                    continue
                with Image.open(src) as im:
                    rgb = to_rgb(im)
                    rgb.thumbnail((max_side, max_side))
                    rgb.save(target, quality=90)
    return dest


# sample photos (lookalike.samples) added to the set: into a labelled folder, or as unlabelled distractors
SAMPLE_LABELS = {"gold_fish": "fish", "fighter_fish": "fish", "flower": "flower"}
DISTRACTORS = "_other"  # folders starting with "_" are indexed but never queried


def build_labelled_set(dest: str | os.PathLike[str]) -> Path:
    """The keyword benchmark's folder set: tuxpaint's photographic stamps (:func:`build_tuxpaint_set`) plus
    every sample photo of the installed packages (gold fish, flower -> their folders; the cat, coffee,
    astronaut, 39 interiors, ... -> ``_other``, as distractors)."""
    from lookalike.samples import copy_samples, sample_photos

    dest = build_tuxpaint_set(dest)
    for name in sorted(sample_photos()):
        folder = dest / SAMPLE_LABELS.get(name, DISTRACTORS)
        if not (folder / f"{name}.jpg").exists():
            copy_samples(folder, [name])
    return dest


def labelled_folders(root: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Query word -> absolute paths of its photos (sub-folders without images are ignored)."""
    root = Path(root)
    if not root.is_dir():
        raise NotFound(f"labelled folder set not found: {root}")
    out: dict[str, list[str]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        files = sorted(str(p.resolve()) for p in sub.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if files:
            out[sub.name.replace("_", " ")] = files
    if not out:
        raise LookalikeError(f"no labelled sub-folders with images in {root}")
    return out


def precision_at(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    if not relevant:
        return 0.0
    hits = sum(1 for p in ranked[:k] if p in relevant)
    return hits / min(k, len(relevant))


def average_precision(ranked: Sequence[str], relevant: set[str]) -> float:
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for i, p in enumerate(ranked, start=1):
        if p in relevant:
            hits += 1
            total += hits / i
    return total / len(relevant)


def evaluate_keywords(library, labelled_root: str | os.PathLike[str], k: int = 10,  # type: ignore[no-untyped-def]
                      words: Sequence[str] | None = None, depth: int = 100, index: bool = True,
                      synonyms: bool = False, **search_options: object) -> dict:
    """Per class word: precision@k and AP of ``library.search(text=word)`` restricted to the labelled set
    (``--folder labelled_root``); plus means over all words and over the generic ones (GENERIC).
    ``synonyms``: also every other word of :data:`lookalike.evaluation.sets.QUERIES` for the folder
    (reported as "word (folder)"). ``search_options`` go to ``Library.search`` (e.g. ``expand=False``)."""
    from lookalike.evaluation.sets import QUERIES

    root = Path(labelled_root).resolve()
    folders = labelled_folders(root)
    if index:
        library.index([root])
    chosen = list(words) if words is not None else list(folders)
    unknown = [w for w in chosen if w not in folders]
    if unknown:
        raise LookalikeError(f"no folder for {', '.join(unknown)} in {root}")
    asked = [(w, w, w) for w in chosen]
    if synonyms:
        asked += [(f"{q} ({w})", q, w) for w in chosen for q in QUERIES.get(w, ())[1:]]
    filters = Filters(folder=str(root))
    classes: dict[str, dict[str, object]] = {}
    for label, word, folder in asked:
        relevant = set(folders[folder])
        res = library.search(text=word, limit=max(k, depth), filters=filters, **search_options)
        ranked = [r.path for r in res.results]
        classes[label] = {
            "precision": round(precision_at(ranked, relevant, k), 4),
            "ap": round(average_precision(ranked, relevant), 4),
            "relevant": len(relevant),
            "top": [os.path.relpath(p, root) for p in ranked[:k]],
        }

    def mean(names: Sequence[str]) -> dict[str, float]:
        names = [n for n in names if n in classes]
        if not names:
            return {"precision": 0.0, "ap": 0.0}
        return {m: round(sum(float(classes[n][m]) for n in names) / len(names), 4) for m in ("precision", "ap")}

    images = sum(1 for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())
    return {"k": k, "root": str(root), "images": images, "labelled": sum(len(v) for v in folders.values()),
            "classes": classes, "mean": mean(chosen), "generic": mean([w for w in GENERIC if w in classes]),
            "with_synonyms": mean(list(classes))}


def default_set_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False)) / "keyword-set"


def remove_set(path: str | os.PathLike[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)
