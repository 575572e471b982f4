"""search --face through the library: the same person found in a mirrored, rescaled copy; others not."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.errors import LookalikeError, NotFound
from lookalike.library import Library


def test_same_person_found(extras_lib: Library, extras_photos: Path) -> None:
    res = extras_lib.search(face=extras_photos / "people" / "astronaut.jpg")
    assert res.kind == "face" and res.by == "face"
    assert [Path(r.path).stem for r in res.results] == ["astronaut", "astronaut_mirror_small"]
    assert res.results[0].score > 0.99 and 0.4 < res.results[1].score < 0.99  # 1 - L2 distance
    assert res.explain["face"]["faces_in_query"] >= 1  # type: ignore[index]


def test_other_person_not_found(extras_lib: Library, extras_photos: Path) -> None:
    """The interior photo has a face too (a different person): it is stored but never matches."""
    info = extras_lib.store.get_by_path(str(extras_photos / "people" / "interior_pexels-2560067.jpg"))
    assert info is not None and extras_lib.store.faces([info.id])[info.id]
    res = extras_lib.search(face=extras_photos / "people" / "interior_pexels-2560067.jpg")
    assert [Path(r.path).stem for r in res.results] == ["interior_pexels-2560067"]


def test_query_by_stored_face_and_bytes(extras_lib: Library, extras_photos: Path) -> None:
    info = extras_lib.store.get_by_path(str(extras_photos / "people" / "astronaut_mirror_small.jpg"))
    assert info is not None
    res = extras_lib.search(face=f"id:{info.id}")
    assert {Path(r.path).stem for r in res.results} == {"astronaut", "astronaut_mirror_small"}
    data = (extras_photos / "people" / "astronaut.jpg").read_bytes()
    assert len(extras_lib.search(face=data).results) == 2


def test_no_face_in_query(extras_lib: Library, extras_photos: Path) -> None:
    with pytest.raises(LookalikeError, match="no face found"):
        extras_lib.search(face=extras_photos / "misc" / "coffee.jpg")
    cat = extras_lib.store.get_by_path(str(extras_photos / "cats" / "chelsea.jpg"))
    with pytest.raises(NotFound, match="no face stored"):
        extras_lib.search(face=f"id:{cat.id}")  # type: ignore[union-attr]


def test_stored_boxes_are_in_full_size_pixels(extras_lib: Library, extras_photos: Path) -> None:
    big = extras_lib.store.get_by_path(str(extras_photos / "people" / "astronaut.jpg"))
    small = extras_lib.store.get_by_path(str(extras_photos / "people" / "astronaut_mirror_small.jpg"))
    fb = extras_lib.store.faces([big.id])[big.id][0].box  # type: ignore[union-attr]
    fs = extras_lib.store.faces([small.id])[small.id][0].box  # type: ignore[union-attr]
    # the astronaut's face, 512 px image: around (175, 76, 91, 91); mirrored in a 300 px copy
    assert 150 < fb[0] < 200 and 50 < fb[1] < 100 and 70 < fb[2] < 120
    assert abs((300 - fs[0] - fs[2]) - fb[0] * 300 / 512) < 20
