"""Text inside photos (index --ocr), descriptions and automatic captions, searched like tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.errors import LookalikeError, NotFound
from lookalike.library import Library


def test_ocr_text_is_stored_and_searchable(extras_lib: Library, extras_photos: Path) -> None:
    page = extras_lib.store.get_by_path(str(extras_photos / "docs" / "page.jpg"))
    assert page is not None and "markers" in page.texts["ocr"]
    res = extras_lib.search(text="find the photo of the page that mentions markers", limit=3)
    assert Path(res.results[0].path).stem == "page"
    assert "markers" in res.results[0].texts["ocr"]
    assert Path(extras_lib.search(text="histogram", limit=1).results[0].path).stem == "page"


def test_photos_without_text_have_no_ocr(extras_lib: Library, extras_photos: Path) -> None:
    for rel in ("misc/coffee.jpg", "people/astronaut.jpg"):
        info = extras_lib.store.get_by_path(str(extras_photos / rel))
        assert info is not None and not info.texts.get("ocr")


def test_automatic_captions(extras_lib: Library, extras_photos: Path) -> None:
    coffee = extras_lib.store.get_by_path(str(extras_photos / "misc" / "coffee.jpg"))
    assert coffee is not None and coffee.texts["caption"] == "a photo of an espresso"
    chelsea = extras_lib.store.get_by_path(str(extras_photos / "cats" / "chelsea.jpg"))
    assert chelsea is not None and chelsea.texts["caption"].startswith("a photo of a ") and "cat" in chelsea.texts["caption"]


def test_descriptions_from_json_and_csv(extras_lib: Library, extras_photos: Path, tmp_path: Path) -> None:
    js = tmp_path / "desc.json"
    js.write_text(json.dumps({
        str(extras_photos / "misc" / "gold_fish.jpg"): "Nemo's cousin in grandma's aquarium",
        "nowhere/else.jpg": "not indexed",
    }))
    out = extras_lib.import_descriptions(js)
    assert out == {"imported": 1, "missing": ["nowhere/else.jpg"], "entries": 2}
    res = extras_lib.search(text="grandma aquarium", limit=1)
    assert Path(res.results[0].path).stem == "gold_fish"
    assert res.results[0].texts["description"] == "Nemo's cousin in grandma's aquarium"

    csv_file = extras_photos / "descriptions.csv"  # relative paths: from the file's folder
    csv_file.write_text('path,description\nmisc/puppy.jpg,"our neighbour\'s labrador, Biscuit"\n')
    try:
        assert extras_lib.import_descriptions(csv_file)["imported"] == 1
    finally:
        csv_file.unlink()
    assert Path(extras_lib.search(text="Biscuit", limit=1).results[0].path).stem == "puppy"


def test_description_errors(extras_lib: Library, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        extras_lib.import_descriptions(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LookalikeError, match="not valid JSON"):
        extras_lib.import_descriptions(bad)
