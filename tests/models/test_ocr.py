"""RapidOCR on real photos: skimage's page (printed text) and photos without text."""

from __future__ import annotations

from PIL import Image

from lookalike.models.ocr import OCR, ocr_engine
from lookalike.samples import sample_photos


def test_reads_the_page() -> None:
    engine = ocr_engine()
    assert isinstance(engine, OCR) and ocr_engine() is engine
    with Image.open(sample_photos()["page"]) as im:
        lines = engine.read(im.convert("RGB"))
    text = " ".join(ln.text for ln in lines).lower()
    for word in ("markers", "coins", "background", "segmentation"):
        assert word in text
    assert all(0.6 <= ln.score <= 1.0 and len(ln.box) == 4 for ln in lines)
    tops = [min(y for _, y in ln.box) for ln in lines]
    assert tops == sorted(tops)  # top to bottom


def test_large_image_is_scaled_and_boxes_come_back_in_its_pixels() -> None:
    with Image.open(sample_photos()["page"]) as im:
        big = im.convert("RGB").resize((im.width * 5, im.height * 5))  # 1920 px wide > max_side
    lines = ocr_engine().read(big)
    assert "markers" in " ".join(ln.text for ln in lines)
    assert max(x for ln in lines for x, _ in ln.box) > 1280  # scaled back to the big image


def test_no_text_in_a_photo_without_text() -> None:
    with Image.open(sample_photos()["coffee"]) as im:
        assert ocr_engine().text(im.convert("RGB")) == ""
