"""Combined queries: words + an example image (+ a face), fused by weighted reciprocal rank."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.errors import LookalikeError, NotFound
from lookalike.library import Library


def names(res) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(r.path).stem for r in res.results]


def test_text_plus_image(extras_lib: Library, extras_photos: Path) -> None:
    res = extras_lib.search(text="cat", image=extras_photos / "misc" / "coffee.jpg", limit=10)
    assert res.kind == "combined" and res.by == "text+image"
    assert set(names(res)[:3]) == {"chelsea", "black_cat", "coffee"}
    assert res.explain["signals"] == {"text": {"weight": 1.0, "hits": res.explain["signals"]["text"]["hits"]},  # type: ignore[index]
                                      "image": {"weight": 1.0, "hits": 10}}


def test_weights_move_the_ranking(extras_lib: Library, extras_photos: Path) -> None:
    coffee = extras_photos / "misc" / "coffee.jpg"
    q = {"text": "cat", "image": coffee, "limit": 10}
    text_heavy = names(extras_lib.search(weights={"text": 4, "image": 1}, **q))  # type: ignore[arg-type]
    assert set(text_heavy[:2]) == {"chelsea", "black_cat"}
    # a zero weight switches a signal off: what is left is that signal's own ranking
    image_only = names(extras_lib.search(weights={"text": 0}, **q))  # type: ignore[arg-type]
    assert image_only == names(extras_lib.search(image=coffee, limit=10))
    text_only = names(extras_lib.search(weights={"image": 0}, **q))  # type: ignore[arg-type]
    assert text_only == names(extras_lib.search(text="cat", limit=10))
    assert "coffee" not in text_only


def test_positional_query_and_face(extras_lib: Library, extras_photos: Path) -> None:
    res = extras_lib.search("space suit", face=extras_photos / "people" / "astronaut.jpg", limit=3)
    assert res.by == "text+face"
    assert names(res)[:2] == ["astronaut", "astronaut_mirror_small"]


def test_bad_combinations(extras_lib: Library, extras_photos: Path) -> None:
    with pytest.raises(LookalikeError, match="exactly one text"):
        extras_lib.search("cat", text="dog")
    with pytest.raises(LookalikeError, match="at most one example image"):
        extras_lib.search(image=extras_photos / "misc" / "coffee.jpg", image_id=1)
    with pytest.raises(LookalikeError, match="unknown signal"):
        extras_lib.search(text="cat", image=extras_photos / "misc" / "coffee.jpg", weights={"sound": 1})
    with pytest.raises(LookalikeError, match="must not be negative"):
        extras_lib.search(text="cat", image=extras_photos / "misc" / "coffee.jpg", weights={"text": -1})
    for bad in (float("nan"), float("inf")):
        with pytest.raises(LookalikeError, match="finite number"):
            extras_lib.search(text="cat", image=extras_photos / "misc" / "coffee.jpg", weights={"image": bad})
    with pytest.raises(LookalikeError, match="is a folder, not an image"):
        extras_lib.search(text="cat", image=extras_photos / "misc")
    with pytest.raises(LookalikeError, match="is a folder, not an image"):
        extras_lib.search(text="cat", face=extras_photos / "misc")
    with pytest.raises(LookalikeError, match="no words"):
        extras_lib.search(text=" ", image=extras_photos / "misc" / "coffee.jpg")
    with pytest.raises(NotFound):
        extras_lib.search(text="cat", face=extras_photos / "nobody.jpg")
    with pytest.raises(LookalikeError, match="give a query"):
        extras_lib.search()
