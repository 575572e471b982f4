"""Indexing hooks: automatic captions, OCR/faces during indexing and added later to an indexed library."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from lookalike.extras import caption
from lookalike.models.vocab import Vocabulary
from lookalike.samples import copy_samples, sample_photos


def test_caption_from_tags() -> None:
    v = Vocabulary()
    assert caption([(281, 0.6), (282, 0.3)], v) == "a photo of a tabby or a tiger cat"
    assert caption([(967, 0.9), (504, 0.05)], v) == "a photo of an espresso"
    assert caption([(967, 0.01)], v) == ""
    assert caption([], v) == ""


def test_extras_added_to_an_indexed_library(new_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    photos = tmp_path / "photos"
    copy_samples(photos, ["page", "coffee"])
    with Image.open(sample_photos()["astronaut"]) as im:
        ImageOps.mirror(im.convert("RGB")).save(photos / "astro.jpg")
    lib = new_library("lib")
    first = lib.index([photos])
    assert first.indexed == 3 and first.extras == 0
    page = lib.store.get_by_path(str(photos / "page.jpg"))
    assert "ocr" not in page.texts and page.texts["caption"]
    assert len(lib.store.missing_extras("ocr")) == 3

    again = new_library("lib", ocr=True, faces=True)  # the same library, now with --ocr --faces
    summary = again.index([photos])
    assert summary.indexed == 0 and summary.unchanged == 3 and summary.extras == 3
    assert "extras" in summary.as_dict() and "ocr/faces/copy features added to 3" in summary.line()
    page = again.store.get_by_path(str(photos / "page.jpg"))
    assert "markers" in page.texts["ocr"] and page.texts["caption"]
    astro = again.store.get_by_path(str(photos / "astro.jpg"))
    assert len(again.store.faces([astro.id])[astro.id]) >= 1
    assert again.store.missing_extras("ocr") == [] and again.store.missing_extras("faces") == []
    assert again.index([photos]).extras == 0  # nothing left to do

    # a copy of an indexed file reuses its vectors and texts; its faces are found again by the backfill
    (photos / "astro-copy.jpg").write_bytes((photos / "astro.jpg").read_bytes())
    s = again.index([photos])
    assert s.reused == 1 and s.extras == 1
    copy = again.store.get_by_path(str(photos / "astro-copy.jpg"))
    assert len(again.store.faces([copy.id])[copy.id]) == len(again.store.faces([astro.id])[astro.id])
