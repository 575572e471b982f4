"""Search through the library API on real photos: by example (edited copies), by keyword, by tags, filters."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.errors import LookalikeError, NotFound
from lookalike.library import Library
from lookalike.stores.base import Filters


def _edited(src: Path, dest: Path, edit: str) -> Path:
    with Image.open(src) as im:
        im = im.convert("RGB")
        if edit == "mirror":
            im = ImageOps.mirror(im)
        elif edit == "crop":
            w, h = im.size
            im = im.crop((int(w * 0.12), int(h * 0.1), int(w * 0.88), int(h * 0.9)))
        elif edit == "recompress":
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=25)
            im = Image.open(io.BytesIO(buf.getvalue()))
        out = dest / f"{src.stem}-{edit}.jpg"
        im.save(out, quality=90)
    return out


@pytest.mark.parametrize("edit", ["mirror", "crop", "recompress"])
def test_edited_copy_finds_original_first(indexed: Library, photos: Path, tmp_path: Path, edit: str) -> None:
    query = _edited(photos / "chelsea.jpg", tmp_path, edit)
    res = indexed.search(image=query, limit=3)
    assert res.results[0].path == str(photos / "chelsea.jpg")
    assert res.results[0].score > 0.8
    assert res.results[0].score - res.results[1].score > 0.15


@pytest.mark.parametrize("name", ["coffee", "rocket", "china"])
def test_every_kind_of_edit_finds_its_original_first(indexed: Library, photos: Path, name: str) -> None:
    """Cropped 10-40%, rotated 5-20 degrees, mirrored, text/logo watermarked, JPEG 20/40, downscaled to a
    quarter, brightness/contrast, grayscale, recoloured: the original ranks first."""
    from lookalike.evaluation.edits import EDITS, apply

    with Image.open(photos / f"{name}.jpg") as im:
        original = im.convert("RGB")
    misses = []
    for edit in EDITS:
        buf = io.BytesIO()
        apply(edit, original, seed=name).save(buf, "PNG")
        top = indexed.search(image=buf.getvalue(), limit=1).results[0]
        if top.path != str(photos / f"{name}.jpg"):
            misses.append(edit)
    assert not misses


def test_image_bytes_and_id_queries(indexed: Library, photos: Path) -> None:
    data = (photos / "coffee.jpg").read_bytes()
    by_bytes = indexed.search(image=data, limit=1).results[0]
    assert by_bytes.path == str(photos / "coffee.jpg") and by_bytes.score > 0.999
    more = indexed.search(image_id=by_bytes.id, limit=2)
    assert more.results[0].id == by_bytes.id


def test_keyword_cat(indexed: Library, photos: Path) -> None:
    res = indexed.search("cat", limit=5)
    top2 = {Path(r.path).stem for r in res.results[:2]}
    assert top2 == {"chelsea", "black_cat"}
    others = [r.score for r in res.results[2:]]
    assert all(s < min(r.score for r in res.results[:2]) for s in others)


@pytest.mark.parametrize("word", ["coffee", "espresso"])
def test_keyword_coffee(indexed: Library, word: str) -> None:
    assert Path(indexed.search(word, limit=3).results[0].path).stem == "coffee"


@pytest.mark.parametrize("word, stem", [("dog", "puppy"), ("fish", "gold_fish"), ("rocket", "rocket"),
                                        ("guitar", "guitar"), ("tent", "tent")])
def test_keywords_reach_their_photo(indexed: Library, word: str, stem: str) -> None:
    assert Path(indexed.search(word, limit=3).results[0].path).stem == stem


def test_keyword_result_shape_and_explain(indexed: Library) -> None:
    res = indexed.search(text="tabby cat", limit=2)
    d = res.as_dict()
    assert d["query"] == "tabby cat" and d["results"]
    r = d["results"][0]
    assert set(r) >= {"path", "score", "tags", "id", "width", "height"}
    assert r["tags"] and {"name", "wnid", "score"} <= set(r["tags"][0])
    assert any(c["name"] == "tabby" for c in res.explain["classes"])  # type: ignore[union-attr]


def test_unknown_word_gives_no_results(indexed: Library) -> None:
    assert indexed.search("xqzzyvv", limit=5).results == []


def test_by_tags_visual_words(indexed: Library, photos: Path) -> None:
    res = indexed.search(image=photos / "chelsea.jpg", by="tags", limit=3)
    assert res.by == "tags"
    assert Path(res.results[0].path).stem == "chelsea"
    assert Path(res.results[1].path).stem == "black_cat"  # shares the cat classes
    # the score is the inner product of class-score vectors
    _, cls = indexed.store.vectors([res.results[0].id])
    assert cls is not None and abs(float(cls[0] @ cls[0]) - res.results[0].score) < 1e-2


def test_threshold_and_limit(indexed: Library, photos: Path) -> None:
    res = indexed.search(image=photos / "rocket.jpg", limit=10, threshold=0.5)
    assert [Path(r.path).stem for r in res.results] == ["rocket"]
    assert len(indexed.search(image=photos / "rocket.jpg", limit=4).results) == 4
    for bad in (-0.1, 1.5):  # every score is in [0, 1]: such a threshold would keep everything or nothing
        with pytest.raises(LookalikeError, match="threshold must be between 0 and 1"):
            indexed.search("cat", threshold=bad)


def test_folder_filter(indexed: Library, photos: Path, tmp_path: Path) -> None:
    res = indexed.search(image=photos / "chelsea.jpg", limit=5, filters=Filters(folder=str(tmp_path)))
    assert res.results == []
    res = indexed.search("cat", limit=5, filters=Filters(folder=str(photos)))
    assert res.results


def test_min_size_filter(indexed: Library, photos: Path) -> None:
    res = indexed.search(image=photos / "chelsea.jpg", limit=20, filters=Filters(min_size=500))
    assert res.results and all(min(r.width, r.height) >= 500 for r in res.results)


def test_bad_queries(indexed: Library, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        indexed.search(image=tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_text("hello")
    with pytest.raises(LookalikeError, match="not an image"):
        indexed.search(image=bad)
    with pytest.raises(LookalikeError, match="exactly one"):
        indexed.search("cat", text="dog")
    with pytest.raises(NotFound):
        indexed.search(image_id=999_999)


def test_query_preprocessing_matches_indexing(indexed: Library, photos: Path) -> None:
    """One preprocessing path: a query of an indexed file reproduces its stored vector."""
    info = indexed.store.get_by_path(str(photos / "astronaut.jpg"))
    assert info is not None
    stored, _ = indexed.store.vectors([info.id])
    from lookalike.search.plan import Query

    # one byte after the JPEG's end: bytes the library does not hold (decoded and embedded), the same pixels
    data = (photos / "astronaut.jpg").read_bytes() + b"\0"
    q, _ = indexed.query_vectors(Query("image_bytes", data))
    assert float(np.dot(stored[0], q)) > 0.9999


def test_query_of_indexed_bytes_reuses_their_vectors(indexed: Library, photos: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A query image whose bytes the library holds (a file from the library, uploaded) gets their stored
    vectors: no decode, no forward pass; the same answer a fresh embedding gives."""
    from lookalike.search.plan import Query

    path = photos / "chelsea.jpg"
    info = indexed.store.get_by_path(str(path))
    assert info is not None
    stored, stored_cls = indexed.store.vectors([info.id])
    fresh = indexed.search(image=path.read_bytes() + b"\0", limit=5, copies=False)  # not held: embedded
    passes: list[int] = []
    monkeypatch.setattr(indexed.query_model, "encode", lambda images: passes.append(len(images)))
    for q in (Query("image_bytes", path.read_bytes()), Query("image_path", str(path))):
        emb, cls = indexed.query_vectors(q)
        assert np.array_equal(emb, stored[0]) and stored_cls is not None and np.array_equal(cls, stored_cls[0])
    again = indexed.search(image=path.read_bytes(), limit=5, copies=False)
    assert passes == []
    assert [r.id for r in again.results] == [r.id for r in fresh.results]
    assert again.results[0].id == info.id and again.results[0].score > 0.999


def test_info(indexed: Library) -> None:
    info = indexed.info()
    assert info["images"] == info["vectors"] == 16
    assert info["model"]["name"] == "efficientnet-lite0"  # type: ignore[index]


def test_composition_root_takes_its_parts_and_shares_them(tmp_path: Path, fake_model) -> None:  # type: ignore[no-untyped-def]
    from lookalike.config import Settings
    from lookalike.samples import copy_samples
    from lookalike.stores.sqlite import SQLiteStore

    copy_samples(tmp_path / "photos", ["chelsea", "rocket"])
    store = SQLiteStore(tmp_path / "lib")
    settings = Settings(library=tmp_path / "lib")
    lib = Library(settings, store=store, model=fake_model)
    assert lib.store is store and lib.model is fake_model
    assert lib.index([tmp_path / "photos"]).indexed == 2
    strict = lib.with_settings(Settings(library=tmp_path / "lib", max_pixels=1000))
    assert strict.settings.max_pixels == 1000 and lib.settings.max_pixels != 1000
    assert strict.store is store and strict.model is fake_model  # shared, not reopened
    assert lib.with_settings(settings) is lib
    with pytest.raises(LookalikeError, match="decompression bomb guard"):  # the view searches under its own guards
        strict.search(image=tmp_path / "photos" / "rocket.jpg")
    assert Path(lib.search(image=tmp_path / "photos" / "rocket.jpg", limit=1).results[0].path).name == "rocket.jpg"
    lib.close()
    assert store.count() == 2  # a handed-in store is the caller's to close
    store.close()
    assert Library(tmp_path / "lib", model="efficientnet-lite0").settings.model == "efficientnet-lite0"
    assert Library(settings=settings).settings is settings


def test_each_signal_explains_itself(indexed: Library, photos: Path) -> None:
    from lookalike.search.plan import signal_parts
    from lookalike.search.run import search_signal

    parts = signal_parts("cat", image=photos / "rocket.jpg")
    text = search_signal(indexed, "text", parts["text"], "embedding", 10, None)
    image = search_signal(indexed, "image", parts["image"], "embedding", 10, None)
    assert text.hits and text.explain["classes"] and text.explain["signals"]  # the keyword signal's own lists
    assert image.hits and image.explain["rerank"] is None  # 16 photos, below MIN_FIT: plain cosine, and why
    assert "lookalike index" in str(image.explain["hint"])
    combined = indexed.search("cat", image=photos / "rocket.jpg", limit=5)
    assert combined.explain["classes"] == text.explain["classes"]
    signals = combined.explain["signals"]
    assert signals["image"] == {"weight": 1.0, "hits": 16}  # depth max(3 x 5, 50): every indexed photo
    assert signals["text"]["weight"] == 1.0 and signals["text"]["hits"] > 0
