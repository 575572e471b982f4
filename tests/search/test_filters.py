"""Filters (folder, after, before, camera, min_size) on every kind of search: keywords, example image (by
embedding and by tags), face, text in photos, combined — through the library API."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.library import Library
from lookalike.stores.base import Filters


def stems(res) -> set[str]:  # type: ignore[no-untyped-def]
    return {Path(r.path).stem for r in res.results}


def searches(lib: Library, photos: Path) -> dict[str, dict[str, object]]:
    """One call of each kind; each, unfiltered, reaches both cats. Example images by id (their stored vectors:
    the query-by-file path is tested elsewhere; the filters do not depend on it)."""
    chelsea = lib.store.get_by_path(str(photos / "cats" / "chelsea.jpg")).id  # type: ignore[union-attr]
    black_cat = lib.store.get_by_path(str(photos / "cats" / "black_cat.jpg")).id  # type: ignore[union-attr]
    return {
        "keywords": {"text": "cat"},
        "image": {"image_id": chelsea},
        "tags": {"image_id": chelsea, "by": "tags"},
        "combined": {"text": "cat", "image_id": black_cat, "weights": {"image": 0.5}},
    }


def test_exif_date_and_camera_were_read(extras_lib: Library, extras_photos: Path) -> None:
    info = extras_lib.store.get_by_path(str(extras_photos / "cats" / "black_cat.jpg"))
    assert info is not None and info.taken_at == "2023-01-02T08:30:00" and info.camera == "NIKON D750"
    info = extras_lib.store.get_by_path(str(extras_photos / "cats" / "chelsea.jpg"))
    assert info is not None and info.camera == "Canon EOS 5D"


@pytest.mark.parametrize("kind", ["keywords", "image", "tags", "combined"])
def test_filters_on_every_search_kind(extras_lib: Library, extras_photos: Path, kind: str) -> None:
    kw = searches(extras_lib, extras_photos)[kind]
    assert {"chelsea", "black_cat"} <= stems(extras_lib.search(limit=20, **kw))  # type: ignore[arg-type]

    def only(**f: object) -> set[str]:
        return stems(extras_lib.search(limit=20, filters=Filters(**f), **kw)) & {"chelsea", "black_cat"}  # type: ignore[arg-type]

    assert only(after="2020-01-01") == {"black_cat"}
    assert only(before="2020-01-01") == {"chelsea"}
    assert only(camera="nikon") == {"black_cat"}
    res = extras_lib.search(limit=20, filters=Filters(folder=str(extras_photos / "cats")), **kw)  # type: ignore[arg-type]
    assert {Path(r.path).stem for r in res.results} == {"chelsea", "black_cat"}


def test_more_filter_forms(extras_lib: Library, extras_photos: Path) -> None:
    def only(**f: object) -> set[str]:
        return stems(extras_lib.search(text="cat", limit=20, filters=Filters(**f))) & {"chelsea", "black_cat"}

    assert only(after="2019-05-01", before="2019-06-01") == {"chelsea"}
    assert only(after="2019-05-04T10:00:01") == {"black_cat"}  # date and time
    assert only(camera="canon eos") == {"chelsea"}
    assert only(camera="Leica") == set()
    assert only(folder=str(extras_photos / "misc")) == set()
    assert only(folder=str(extras_photos / "cats"), camera="nikon", after="2022-12-31") == {"black_cat"}


def test_min_size_filter_on_keywords(extras_lib: Library) -> None:
    all_ = extras_lib.search(text="cat", limit=20)
    big = extras_lib.search(text="cat", limit=20, filters=Filters(min_size=400))
    assert all(min(r.width, r.height) >= 400 for r in big.results)
    assert "chelsea" in stems(all_) and "chelsea" not in stems(big)  # chelsea is 451x300


def test_filters_on_face_search(extras_lib: Library, extras_photos: Path) -> None:
    q = extras_photos / "people" / "astronaut.jpg"
    assert stems(extras_lib.search(face=q)) == {"astronaut", "astronaut_mirror_small"}
    assert stems(extras_lib.search(face=q, filters=Filters(camera="canon"))) == {"astronaut"}
    assert stems(extras_lib.search(face=q, filters=Filters(min_size=400))) == {"astronaut"}
    assert stems(extras_lib.search(face=q, filters=Filters(before="2016-01-01"))) == {"astronaut"}
    assert stems(extras_lib.search(face=q, filters=Filters(folder=str(extras_photos / "cats")))) == set()


def test_date_filter_falls_back_to_file_date(extras_lib: Library, extras_photos: Path) -> None:
    """coffee.jpg has no EXIF date; its file date (2021-06-01) is used."""
    res = extras_lib.search(text="coffee", limit=5, filters=Filters(after="2021-05-31", before="2021-06-02"))
    assert stems(res) == {"coffee"}


def test_filters_on_text_in_photos(extras_lib: Library, extras_photos: Path) -> None:
    assert "page" in stems(extras_lib.search(text="markers", limit=3))
    res = extras_lib.search(text="markers", limit=3, filters=Filters(folder=str(extras_photos / "misc")))
    assert "page" not in stems(res)
