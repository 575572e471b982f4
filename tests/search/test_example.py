"""Tests for search by example (lookalike.search.example): the library's centring, fitted at index time, and
database-side augmentation over a cosine shortlist, on a library of real photos."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.evaluation.edits import apply
from lookalike.evaluation.retrieval import ArrayStore
from lookalike.models.whitening import MIN_FIT, Whitening
from lookalike.search.example import SHORTLIST, example_hits, load_transform, refresh_transform
from lookalike.samples import copy_samples, sample_photos

INTERIORS = sorted(n for n in sample_photos() if n.startswith("interior_"))[:10]


@pytest.fixture(scope="module")
def library(photos: Path, tmp_path_factory: pytest.TempPathFactory, model):  # type: ignore[no-untyped-def]
    """CORE_PHOTOS + 10 interiors: above MIN_FIT, so indexing fits the transform."""
    from lookalike.library import Library

    root = tmp_path_factory.mktemp("example-photos")
    for p in photos.iterdir():
        (root / p.name).write_bytes(p.read_bytes())
    copy_samples(root / "interiors", INTERIORS)
    lib = Library(tmp_path_factory.mktemp("example-lib"))
    summary = lib.index([root])
    assert summary.indexed >= MIN_FIT
    assert summary.search_transform == {"search_transform": "centred", "fitted_on": summary.indexed, "refitted": True}
    yield lib, root
    lib.close()


def test_an_edited_copy_finds_its_original_first(library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lib, root = library
    for edit in ("crop25", "rotate10", "grayscale"):
        edited = apply(edit, Image.open(root / "chelsea.jpg"), seed="chelsea")
        edited.save(tmp_path / f"{edit}.jpg")
        res = lib.search(image=str(tmp_path / f"{edit}.jpg"), limit=5)
        assert res.results[0].path == str(root / "chelsea.jpg"), edit
        assert res.explain["rerank"] == "centred + database-side augmentation"


def test_interiors_find_interiors(library) -> None:  # type: ignore[no-untyped-def]
    lib, root = library
    res = lib.search(image=str(root / "interiors" / f"{INTERIORS[0]}.jpg"), limit=6)
    assert res.results[0].path.endswith(f"{INTERIORS[0]}.jpg")
    assert sum("/interiors/" in r.path for r in res.results[1:]) >= 3  # 10 interiors among 26 photos


def test_results_are_the_cosine_shortlist_re_ranked(library) -> None:  # type: ignore[no-untyped-def]
    lib, root = library
    q = lib.store.vectors([3])[0][0]
    transform = load_transform(lib.store, lib.model.version)
    hits = example_hits(lib.store, q, 10, None, transform, shortlist=12)
    shortlist = {h.id for h in lib.store.knn(q, 20)}  # depth = max(shortlist, 2 * limit)
    assert len(hits) == 10 and {h.id for h in hits} <= shortlist
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert SHORTLIST >= 2 * 50  # the default re-ranks at least 100 for the usual limits


def test_every_score_shown_is_in_the_unit_interval(library) -> None:  # type: ignore[no-untyped-def]
    """The centred cosine is below 0 for the photos least like the query: shown as 0, the order kept."""
    lib, root = library
    res = lib.search(image=str(root / "rocket.jpg"), limit=100)
    q = lib.store.vectors([res.results[0].id])[0][0]
    raw = example_hits(lib.store, q, len(res.results), None, load_transform(lib.store, lib.model.version))
    assert min(h.score for h in raw) < 0  # the case this is about occurs on these photos
    scores = [r.score for r in res.results]
    assert len(scores) == len(raw) and all(0.0 <= s <= 1.0 for s in scores) and min(scores) == 0.0
    assert scores == sorted(scores, reverse=True) and [r.id for r in res.results] == [h.id for h in raw]
    for query in ("cat", "a photo of a room"):
        assert all(0.0 <= r.score <= 1.0 for r in lib.search(query, limit=50).results)


def test_diffusion_keeps_an_edited_copy_first(library, tmp_path: Path,  # type: ignore[no-untyped-def]
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Shortlist diffusion (off by default: it did not pay, README) still finds the original first."""
    from lookalike.search import example

    monkeypatch.setattr(example, "DIFFUSE", {"k": 5, "alpha": 0.9})
    test_an_edited_copy_finds_its_original_first(library, tmp_path)
    lib, _ = library
    q = lib.store.vectors([3])[0][0]
    hits = example_hits(lib.store, q, 10, None, load_transform(lib.store, lib.model.version))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_no_transform_is_plain_cosine(library) -> None:  # type: ignore[no-untyped-def]
    lib, _ = library
    q = lib.store.vectors([5])[0][0]
    plain = lib.store.knn(q, 8)
    assert [(h.id, h.score) for h in example_hits(lib.store, q, 8, None, None)] == [(h.id, h.score) for h in plain]
    assert load_transform(lib.store, "another-model/version") is None  # fitted on another model's vectors


def test_refit_only_when_the_collection_doubled_or_halved(new_library, photos: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    lib = new_library()
    small = tmp_path / "small"
    small.mkdir()
    for p in sorted(photos.iterdir())[:6]:
        (small / p.name).write_bytes(p.read_bytes())
    summary = lib.index([small])
    assert summary.search_transform == {"search_transform": None, "images": 6}  # below MIN_FIT: plain cosine
    res = lib.search(image=str(small / sorted(p.name for p in small.iterdir())[0]), limit=3)
    assert res.explain["rerank"] is None and "lookalike index" in str(res.explain["hint"])
    store, version = lib.store, lib.model.version
    monkeypatch.setattr("lookalike.search.example.MIN_FIT", 4)  # so that these 6 photos get a transform
    fitted = Whitening.fit_batches((e for _, e in store.iter_vectors()))
    store.set_search_transform(version, 3, replace(fitted, fitted_on=3).to_bytes())  # as if fitted on 3
    assert refresh_transform(store, version)["refitted"] is True  # 6 >= 2 x 3: refitted on all 6...
    assert store.search_transform()[1] == 6
    assert refresh_transform(store, version)["refitted"] is False  # ... and then kept
    np.testing.assert_allclose(Whitening.from_bytes(store.search_transform()[2]).mean, fitted.mean, atol=1e-6)


class _Deleting(ArrayStore):
    """A store that loses one image between answering the shortlist and reading its vectors."""

    gone = 2

    def vector_map(self, ids):  # type: ignore[no-untyped-def]
        return {i: v for i, v in super().vector_map(ids).items() if i != self.gone}


def test_an_image_deleted_meanwhile_is_left_out_not_misaligned(library) -> None:  # type: ignore[no-untyped-def]
    lib, _ = library
    _, emb = next(lib.store.iter_vectors())
    store = _Deleting(emb)
    transform = Whitening.fit_batches([emb])
    hits = example_hits(store, emb[2], 5, None, transform)
    assert 2 not in {h.id for h in hits}
    full = example_hits(ArrayStore(emb), emb[4], 5, None, transform)
    assert full[0].id == 4  # an indexed image finds itself first
