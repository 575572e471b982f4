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


def test_copy_checks_reuse_the_features_of_recent_images(indexed: Library, photos: Path, tmp_path: Path) -> None:
    """A second query around the same photos takes the verified images' local features (and the query's own)
    from the process's cache: the same flags and scores, no decode or SIFT again."""
    from lookalike.search.copies import CACHE, clear_cache

    with Image.open(photos / "coffee.jpg") as im:
        w, h = im.size
        im.convert("RGB").crop((0, 0, int(w * 0.6), int(h * 0.6))).save(tmp_path / "coffee_crop.jpg", quality=90)
    clear_cache()
    first = indexed.search(image=tmp_path / "coffee_crop.jpg", limit=6)
    assert Path(first.results[0].path).stem == "coffee" and first.results[0].copy is True
    misses = CACHE.misses
    assert misses >= 2 and CACHE.hits == 0  # the query's features and at least one verified result's
    again = indexed.search(image=tmp_path / "coffee_crop.jpg", limit=6)
    assert [(r.id, r.copy, r.copy_score) for r in again.results] == [(r.id, r.copy, r.copy_score) for r in first.results]
    assert CACHE.misses == misses and CACHE.hits == misses  # every lookup of the first query, now from the cache
    clear_cache()
    assert CACHE.hits == 0 and CACHE.misses == 0
