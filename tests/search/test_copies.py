"""Image queries: the score is the cosine, and the top results say whether they are an edited copy of the
query, verified as dupes does (search/copies.py)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from lookalike.library import Library


def test_edited_copy_is_flagged_and_others_are_not(indexed: Library, photos: Path, tmp_path: Path) -> None:
    with Image.open(photos / "china.jpg") as im:
        w, h = im.size
        edited = im.convert("RGB").crop((int(w * 0.2), int(h * 0.1), int(w * 0.9), int(h * 0.85))).rotate(8)
        edited.save(tmp_path / "china_edited.jpg", quality=85)
    res = indexed.search(image=tmp_path / "china_edited.jpg", limit=5)
    first, rest = res.results[0], res.results[1:]
    assert Path(first.path).stem == "china" and first.copy is True and first.copy_score > 0.5
    assert 0.0 <= first.score <= 1.0  # the score stays the cosine
    assert rest and all(r.copy is False and r.copy_score < 0.5 for r in rest)
    d = res.as_dict()["results"][0]
    assert d["copy"] is True and "copy_score" in d  # type: ignore[index, operator]
    assert "copy" not in indexed.search("cat", limit=1).as_dict()["results"][0]  # type: ignore[index, operator]
    off = indexed.search(image=tmp_path / "china_edited.jpg", limit=5, copies=False)
    assert off.results[0].copy is None


def test_threshold_on_image_queries_is_on_the_cosine(indexed: Library, photos: Path) -> None:
    res = indexed.search(image=photos / "chelsea.jpg", limit=10, threshold=0.5)
    assert res.results and all(r.score >= 0.5 for r in res.results)
    assert Path(res.results[0].path).stem == "chelsea" and res.results[0].copy is True
