"""Taught words and relevance feedback on real photos (search/concepts.py, search/teach.py, Library.teach)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from lookalike.errors import LookalikeError, ModelMismatch, NotFound
from lookalike.library import Library
from lookalike.samples import copy_samples, sample_photos
from lookalike.stores.base import Filters

OTHERS = ["chelsea", "black_cat", "puppy", "coffee", "astronaut", "rocket", "gold_fish", "guitar", "tent", "china",
          "flower", "motorcycle_left", "coins", "page", "hubble_deep_field", "sunrise"]


def interiors(n: int) -> list[str]:
    return sorted(name for name in sample_photos() if name.startswith("interior_"))[:n]


@pytest.fixture(scope="module")
def concept_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """rooms/: 12 interior photos; other/: 16 photos of other things, and a mirrored, cropped copy of the
    puppy (a photo confusable with the puppy); outside/: 2 interiors that are not indexed."""
    root = tmp_path_factory.mktemp("concept-photos")
    rooms = interiors(14)
    copy_samples(root / "rooms", rooms[:12])
    copy_samples(root / "outside", rooms[12:])
    copy_samples(root / "other", OTHERS)
    with Image.open(root / "other" / "puppy.jpg") as im:
        w, h = im.size
        ImageOps.mirror(im).crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(root / "other" / "puppy_copy.jpg")
    return root


@pytest.fixture(scope="module")
def lib(concept_photos: Path, tmp_path_factory: pytest.TempPathFactory, model):  # type: ignore[no-untyped-def]
    library = Library(tmp_path_factory.mktemp("concept-lib"), model=model)
    summary = library.index([concept_photos / "rooms", concept_photos / "other"])
    assert summary.indexed == 12 + len(OTHERS) + 1, summary.skipped
    yield library
    library.close()


def paths(res) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path for r in res.results]


def test_four_examples_find_the_rest_of_their_kind_first(lib: Library, concept_photos: Path) -> None:
    rooms = sorted(str(p) for p in (concept_photos / "rooms").glob("*.jpg"))
    info = lib.teach("our place", rooms[:4])
    assert len(info["examples"]) == 4 and info["validation"]["folds"] == 4
    res = lib.search("our place", limit=12)
    assert res.kind == "text" and res.explain["terms"]["concept:our place"]["words"] == ["our", "place"]
    top = paths(res)
    assert set(top[:4]) == set(rooms[:4])  # the examples themselves first
    held_out = set(rooms[4:])
    # then the other rooms: at least 6 of the 8 first, among 17 photos of other things
    assert top[4] in held_out and len(held_out & set(top[4:12])) >= 6
    assert all(0.0 <= r.score <= 1.0 for r in res.results)
    assert [r.score for r in res.results] == sorted((r.score for r in res.results), reverse=True)
    # --threshold on the probability: what stays is what the concept calls a room
    kept = lib.search("our place", limit=30, threshold=0.5)
    assert kept.results and all(r.score >= 0.5 for r in kept.results)
    assert sum(p in held_out or p in rooms[:4] for p in paths(kept)) >= 0.8 * len(kept.results)
    # filters apply: only the other photos
    other = lib.search("our place", limit=5, filters=Filters(folder=str(concept_photos / "other")))
    assert other.results and all("/other/" in p for p in paths(other))
    lib.forget("our place")


def test_a_counter_example_moves_the_confusable_photos_down(lib: Library, concept_photos: Path) -> None:
    other = concept_photos / "other"
    cats = [str(other / "chelsea.jpg"), str(other / "black_cat.jpg")]
    copy = str(other / "puppy_copy.jpg")
    lib.teach("pet", cats)
    before = lib.search("pet", limit=40)
    rank_before, p_before = paths(before).index(copy), before.results[paths(before).index(copy)].score
    lib.teach("pet", [], [str(other / "puppy.jpg")])  # "not a pet": teaching again adds the counter-example
    (info,) = [c for c in lib.concepts() if c["word"] == "pet"]
    assert info["examples"] == cats and info["counter_examples"] == [str(other / "puppy.jpg")]
    after = lib.search("pet", limit=40)
    rank_after, p_after = paths(after).index(copy), after.results[paths(after).index(copy)].score
    assert p_after < p_before and rank_after > rank_before
    assert set(paths(after)[:2]) == set(cats)
    lib.forget("pet")


def test_examples_by_id_folder_json_and_outside_the_library(lib: Library, concept_photos: Path) -> None:
    rooms = sorted(str(p) for p in (concept_photos / "rooms").glob("*.jpg"))
    first = lib.store.get_by_path(rooms[0])
    outside = sorted(str(p) for p in (concept_photos / "outside").glob("*.jpg"))
    info = lib.teach("indoors", [first.id, f"id:{lib.store.get_by_path(rooms[1]).id}", outside[0]])
    assert set(info["examples"]) == {rooms[0], rooms[1], outside[0]}  # the outside file was embedded
    from lookalike.search.teach import examples_from_json

    listed = json.dumps(lib.search("indoors", limit=3).as_dict())
    assert examples_from_json(listed) == paths(lib.search("indoors", limit=3))
    info = lib.teach("indoors", [str(concept_photos / "rooms")])  # a folder: every image below it
    assert len(info["examples"]) == 13
    for bad, error in (([], LookalikeError), (["id:999999"], NotFound), (["/no/such/photo.jpg"], NotFound)):
        with pytest.raises(error):
            lib.teach("indoors", bad)
    with pytest.raises(LookalikeError, match="at least one example"):
        lib.teach("counter only", [], [rooms[0]])
    before = [c for c in lib.concepts() if c["word"] == "indoors"]
    with pytest.raises(LookalikeError, match="both as an example .* and as a counter-example"):
        lib.teach("indoors", [rooms[2], rooms[3]], [rooms[3]])  # before: the counter-example won, silently
    assert [c for c in lib.concepts() if c["word"] == "indoors"] == before  # nothing changed
    with pytest.raises(LookalikeError):
        examples_from_json("not json")
    lib.forget("indoors")
    with pytest.raises(NotFound):
        lib.forget("indoors")


def test_taught_word_combined_with_vocabulary_words(lib: Library, concept_photos: Path) -> None:
    other = concept_photos / "other"
    lib.teach("my pets", [str(other / "chelsea.jpg"), str(other / "black_cat.jpg")])
    res = lib.search("my pets guitar", limit=4)
    assert res.explain["terms"]["concept:my pets"]["taught"] and res.explain.get("classes")
    top = paths(res)
    assert str(other / "guitar.jpg") in top and {str(other / "chelsea.jpg"), str(other / "black_cat.jpg")} & set(top)
    assert all(0.0 <= r.score <= 1.0 for r in res.results)
    lib.forget("my pets")


def test_relevance_feedback(lib: Library, concept_photos: Path) -> None:
    other = concept_photos / "other"
    rooms = sorted(str(p) for p in (concept_photos / "rooms").glob("*.jpg"))
    ids = {p: lib.store.get_by_path(p).id for p in [*rooms, str(other / "puppy.jpg"), str(other / "puppy_copy.jpg")]}
    # more like two rooms, with no query at all: rooms first
    res = lib.search(more_like=[ids[rooms[0]], ids[rooms[1]]], limit=10)
    assert res.kind == "feedback" and sum(p in rooms for p in paths(res)) >= 9
    # an image query re-ranked: less like the puppy drops it and pushes its copy down
    q = str(other / "puppy_copy.jpg")
    plain = lib.search(image=str(other / "puppy.jpg"), limit=10)
    assert paths(plain)[1] == q
    marked = lib.search(image=str(other / "puppy.jpg"), limit=10, less_like=[ids[str(other / "puppy.jpg")]])
    assert str(other / "puppy.jpg") not in paths(marked)
    assert marked.explain["feedback"]["less_like"] == [ids[str(other / "puppy.jpg")]]
    # keywords re-ranked towards the marked rooms
    fed = lib.search("dining table", limit=10, more_like=[ids[rooms[2]], ids[rooms[3]]])
    assert sum(p in rooms for p in paths(fed)) >= sum(p in rooms for p in paths(lib.search("dining table", limit=10)))
    # the shown probabilities go down the fused list, so a threshold keeps its top
    for found in (res, marked, fed):
        scores = [r.score for r in found.results]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    cut = lib.search("dining table", limit=10, more_like=[ids[rooms[2]], ids[rooms[3]]], threshold=fed.results[4].score)
    assert paths(cut) == paths(fed)[:len(paths(cut))] and len(paths(cut)) >= 5
    with pytest.raises(LookalikeError):
        lib.search("dog", more_like=[ids[rooms[0]]], less_like=[ids[rooms[0]]])
    with pytest.raises(NotFound):
        lib.search(more_like=[10**9])


def test_model_switch_refits_from_examples_or_refuses(tmp_path: Path, model, fake_model) -> None:  # type: ignore[no-untyped-def]
    photos = tmp_path / "photos"
    rooms = interiors(6)
    copy_samples(photos, rooms[:4] + ["chelsea", "puppy", "coffee", "guitar"])
    copy_samples(tmp_path / "outside", rooms[4:])
    with Library(tmp_path / "lib", model=model) as lib:
        lib.index([photos])
        lib.teach("room", sorted(str(p) for p in photos.glob("interior_*.jpg"))[:3])
        lib.teach("elsewhere", sorted(str(p) for p in (tmp_path / "outside").glob("*.jpg")))
    shutil.rmtree(tmp_path / "outside")  # the only examples of "elsewhere" are gone
    with Library(tmp_path / "lib", model=fake_model) as switched:
        switched.index([photos])  # another model: every photo re-embedded
        res = switched.search("room", limit=3)  # re-fitted from its examples' new vectors
        assert res.results and {c["word"]: c["model"]["name"] for c in switched.concepts()}["room"] == fake_model.name
        with pytest.raises(ModelMismatch, match="teach it again"):
            switched.search("elsewhere")
