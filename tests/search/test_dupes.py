"""Duplicates on real photos: exact copies, edited copies, distinct photos; the best copy first; nothing
changed unless asked; the CLI and the library API agree."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from lookalike.cli import main
from lookalike.evaluation.edits import apply
from lookalike.library import Library
from lookalike.samples import copy_samples
from lookalike.stores.base import Filters

DISTINCT = ["chelsea", "black_cat", "guitar", "interior_pexels-7303773", "interior_pexels-cup-of-couple-7303788"]


@pytest.fixture(scope="module")
def dupes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """originals/: coffee, astronaut + DISTINCT (two of them shots of the same kitchen corner); copies/: a
    byte-for-byte copy of coffee, coffee cropped 40%, rotated 20 degrees, mirrored and recompressed at JPEG
    quality 20; the astronaut downscaled to a quarter with a text watermark."""
    root = tmp_path_factory.mktemp("dupes")
    copy_samples(root / "originals", ["coffee", "astronaut", *DISTINCT])
    copies = root / "copies"
    copies.mkdir()
    (copies / "coffee-same.jpg").write_bytes((root / "originals" / "coffee.jpg").read_bytes())
    with Image.open(root / "originals" / "coffee.jpg") as im:
        for edit in ("crop40", "rotate20", "mirror", "jpeg20"):
            apply(edit, im, seed="t").save(copies / f"coffee-{edit}.jpg", quality=90)
    with Image.open(root / "originals" / "astronaut.jpg") as im:
        apply("text", apply("downscale4", im), seed="t").save(copies / "astronaut-small.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def dupes_lib(dupes_dir: Path, tmp_path_factory: pytest.TempPathFactory, model) -> Library:  # type: ignore[no-untyped-def]
    lib = Library(tmp_path_factory.mktemp("dupes-lib"))
    s = lib.index([dupes_dir])
    # coffee-same.jpg is embedded, or its vectors are copied when coffee.jpg went in an earlier batch
    assert s.indexed + s.reused == 13 and not s.skipped, s
    yield lib
    lib.close()


def names(group) -> list[str]:  # type: ignore[no-untyped-def]
    return [os.path.basename(i.path) for i in group.items]


def test_verified_finds_exact_and_edited_copies_and_nothing_else(dupes_lib: Library) -> None:
    report = dupes_lib.dupes()
    assert report.method == "verified" and report.threshold == 0.5 and report.images == 13
    assert len(report.groups) == 2, [names(g) for g in report.groups]
    coffee = next(g for g in report.groups if any("coffee" in n for n in names(g)))
    astro = next(g for g in report.groups if g is not coffee)
    assert set(names(coffee)) == {"coffee.jpg", "coffee-same.jpg", "coffee-crop40.jpg", "coffee-rotate20.jpg",
                                  "coffee-mirror.jpg", "coffee-jpeg20.jpg"}
    assert coffee.kind == "near" and names(astro) == ["astronaut.jpg", "astronaut-small.jpg"]
    best = coffee.items[0]
    assert best.best and names(coffee)[0] in ("coffee.jpg", "coffee-same.jpg")  # full size, least compressed
    assert [i.exact for i in coffee.items[:2]] == [True, True] and not coffee.items[2].exact
    assert all(0.5 < i.score <= 1.0 for g in report.groups for i in g.items)
    assert report.verified > 0  # some pairs needed the second look


def test_methods_thresholds_and_filters(dupes_lib: Library, dupes_dir: Path) -> None:
    emb = dupes_lib.dupes(method="embedding")
    groups = [set(names(g)) for g in emb.groups]
    assert any("coffee-same.jpg" in g for g in groups)
    coffee = next(g for g in groups if "coffee.jpg" in g)
    assert "coffee-crop40.jpg" not in coffee  # the cosine alone misses the hard crop; verification catches it
    ph = dupes_lib.dupes(method="phash")
    assert any({"coffee.jpg", "coffee-jpeg20.jpg"} <= set(names(g)) for g in ph.groups)
    assert not any("coffee-mirror.jpg" in names(g) for g in ph.groups)  # a hash does not survive a mirror
    strict = dupes_lib.dupes(threshold=0.999)  # pixel-exact after alignment: a mirror, a rotation; not a crop
    assert len(strict.groups) == 1
    assert {"coffee.jpg", "coffee-same.jpg", "coffee-mirror.jpg"} <= set(names(strict.groups[0]))
    assert "coffee-crop40.jpg" not in names(strict.groups[0])
    only = dupes_lib.dupes(filters=Filters(folder=str(dupes_dir / "copies")))
    assert only.images == 6 and all("/copies/" in i.path for g in only.groups for i in g.items)
    with pytest.raises(Exception, match="method"):
        dupes_lib.dupes(method="magic")


def test_cli_lists_then_moves_only_when_asked(dupes_dir: Path, tmp_path: Path, capsys, model) -> None:  # type: ignore[no-untyped-def]
    photos = tmp_path / "photos"
    copy_samples(photos, ["china", "flower"])
    (photos / "china-copy.jpg").write_bytes((photos / "china.jpg").read_bytes())
    lib = str(tmp_path / "lib")
    assert main(["index", "--library", lib, str(photos), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["dupes", "--library", lib, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [len(g["items"]) for g in out["groups"]] == [2] and out["groups"][0]["kind"] == "exact"
    assert (photos / "china-copy.jpg").exists()  # listing changes nothing
    assert main(["dupes", "--library", lib, "--move-to", str(tmp_path / "extra")]) == 0
    text = capsys.readouterr().out
    assert "moved to" in text
    assert sorted(p.name for p in photos.iterdir()) == ["china.jpg", "flower.jpg"]
    assert [p.name for p in (tmp_path / "extra").iterdir()] == ["china-copy.jpg"]
    assert main(["dupes", "--library", lib, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["groups"] == []  # dropped from the index too
    assert main(["dupes", "--library", lib, "--delete", "--move-to", "x"]) == 2
    assert "not both" in capsys.readouterr().err


def test_images_without_vectors_do_not_shift_the_others(tmp_path: Path) -> None:
    import numpy as np

    from lookalike.config import Settings
    from lookalike.search.dupes import find_duplicates
    from lookalike.stores.base import ImageRecord
    from lookalike.stores.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path)
    store.set_model_info("m", "1", 4)
    vecs = {"a": [1, 0, 0, 0], "b": [0, 1, 0, 0], "c": [0, 1, 0.01, 0], "d": [0, 0, 0, 1]}
    store.write(upserts=[ImageRecord(path=f"/p/{k}.jpg", size=1, mtime=1.0, sha=k, width=9, height=9,
                                     embedding=np.array(v, np.float32) / np.linalg.norm(v)) for k, v in vecs.items()])
    first = store.get_by_path("/p/a.jpg").id  # type: ignore[union-attr]
    store.conn.execute("DELETE FROM vectors WHERE image_id = ?", (first,))  # e.g. left by an interrupted re-embed
    report = find_duplicates(store, Settings.from_env({}, library=tmp_path), method="embedding")
    assert [sorted(os.path.basename(i.path) for i in g.items) for g in report.groups] == [["b.jpg", "c.jpg"]]


def test_nearest_rank_is_the_pairs_rank_at_its_nearer_end() -> None:
    from lookalike.search.dupes import nearest_rank

    cos = {(1, 2): 0.9, (1, 3): 0.8, (1, 4): 0.7, (3, 4): 0.6, (2, 4): 0.65}
    # image 4's candidates: 1 (0.7), 2 (0.65), 3 (0.6); image 3's: 1 (0.8), 4 (0.6)
    assert nearest_rank(cos).tolist() == [0, 0, 0, 1, 1]


def test_a_thumbnail_the_embedding_loses_is_found_by_its_perceptual_hash(tmp_path: Path, model, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Shrunk to 64 px, china's embedding drifts below the candidate floor (cosine ~0.46) while its perceptual
    hash stays the same: the shared hash makes the pair a candidate, and verification groups it."""
    import lookalike.search.dupes as dupes

    copy_samples(tmp_path / "p", ["china", "chelsea", "coffee"])
    with Image.open(tmp_path / "p" / "china.jpg") as im:
        small = im.convert("RGB")
        small.thumbnail((64, 64))
        small.save(tmp_path / "p" / "china-thumb.jpg", quality=90)
    with Library(tmp_path / "lib") as lib:
        lib.index([tmp_path / "p"])
        ids = {Path(p).name: st.id for p, st in lib.store.file_states().items()}
        emb, _ = lib.store.vectors([ids["china.jpg"], ids["china-thumb.jpg"]])
        assert float(emb[0] @ emb[1]) < dupes.CANDIDATE_COSINE  # the embedding alone does not pair them
        report = lib.dupes()
        assert report.phash_pairs == 1
        assert [sorted(names(g)) for g in report.groups] == [["china-thumb.jpg", "china.jpg"]]
        monkeypatch.setattr(dupes, "PHASH_SAME_MAX", 1)  # no shared-hash candidates: as before
        assert lib.dupes().groups == []
