"""A library indexed with every extra (OCR, faces, captions) over real photos carrying EXIF dates and cameras."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from lookalike.samples import copy_samples, sample_photos

DATETIME_ORIGINAL, EXIF_IFD, MAKE, MODEL = 36867, 0x8769, 271, 272


def with_exif(src: Path, dest: Path, taken: str | None = None, make: str = "", model: str = "") -> Path:
    """A copy of a real photo with EXIF date taken and camera set (as a camera would write them)."""
    with Image.open(src) as im:
        im = im.convert("RGB")
        exif = Image.Exif()
        if make:
            exif[MAKE] = make
        if model:
            exif[MODEL] = model
        if taken:
            exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken
        im.save(dest, quality=92, exif=exif.tobytes())
    return dest


@pytest.fixture(scope="session")
def extras_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """cats/: chelsea (2019, Canon), black_cat (2023, Nikon); people/: astronaut (2015, Canon), the astronaut
    mirrored and rescaled to 300 px (no EXIF), an interior photo with another person's face; docs/: page and
    text (skimage's text images); misc/: coffee (file date 2021-06-01), gold_fish, puppy."""
    root = tmp_path_factory.mktemp("extras-photos")
    src = sample_photos()
    for sub in ("cats", "people", "docs", "misc"):
        (root / sub).mkdir()
    tmp = tmp_path_factory.mktemp("raw")
    copy_samples(tmp, ["chelsea", "black_cat", "astronaut", "coffee"])
    with_exif(tmp / "chelsea.jpg", root / "cats" / "chelsea.jpg", "2019:05:04 10:00:00", "Canon", "Canon EOS 5D")
    with_exif(tmp / "black_cat.jpg", root / "cats" / "black_cat.jpg", "2023:01:02 08:30:00", "NIKON CORPORATION", "NIKON D750")
    with_exif(tmp / "astronaut.jpg", root / "people" / "astronaut.jpg", "2015:07:01 12:00:00", "Canon", "Canon PowerShot G7")
    with Image.open(src["astronaut"]) as im:
        ImageOps.mirror(im.convert("RGB")).resize((300, 300)).save(root / "people" / "astronaut_mirror_small.jpg", quality=92)
    copy_samples(root / "people", ["interior_pexels-2560067"])
    copy_samples(root / "docs", ["page", "text"])
    copy_samples(root / "misc", ["coffee", "gold_fish", "puppy"])
    t = 1622505600  # 2021-06-01 UTC
    os.utime(root / "misc" / "coffee.jpg", (t, t))
    return root


@pytest.fixture(scope="session")
def extras_lib(extras_photos: Path, tmp_path_factory: pytest.TempPathFactory, model):  # type: ignore[no-untyped-def]
    from lookalike.library import Library

    lib = Library(tmp_path_factory.mktemp("extras-lib"), ocr=True, faces=True)
    summary = lib.index([extras_photos])
    assert summary.indexed == 10, summary.skipped
    yield lib
    lib.close()

