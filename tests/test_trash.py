"""Moving duplicate copies away (lookalike/trash.py) with real photos: where they may not go (checked before
anything moves), and the undo log of names that are not plain ASCII."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lookalike.errors import LookalikeError
from lookalike.library import Library
from lookalike.samples import copy_samples
from lookalike.trash import actions, remove_copies, undo


@pytest.fixture
def with_copy(new_library, tmp_path: Path):  # type: ignore[no-untyped-def]
    photos = tmp_path / "photos"
    copy_samples(photos, ["china", "flower"])
    (photos / "china-copy.jpg").write_bytes((photos / "china.jpg").read_bytes())
    lib = new_library()
    lib.index([photos])
    keep = lib.store.get_by_path(str(photos / "china.jpg")).id
    copy = lib.store.get_by_path(str(photos / "china-copy.jpg")).id
    return lib, photos, [(keep, [copy])]


def unchanged(lib: Library, photos: Path) -> bool:
    return (sorted(p.name for p in photos.iterdir()) == ["china-copy.jpg", "china.jpg", "flower.jpg"]
            and len(lib.store.file_states()) == 3 and not actions(lib))


def test_a_quarantine_whose_name_is_not_utf8_is_refused_before_anything_moves(with_copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lib, photos, groups = with_copy
    bad = os.fsdecode(os.fsencode(tmp_path) + b"/dupes\xff")  # the copies moved, then the log could not be written
    with pytest.raises(LookalikeError, match=r"not valid UTF-8 .* nothing was moved"):
        remove_copies(lib, groups, quarantine=bad)
    assert unchanged(lib, photos) and not os.path.exists(bad)


def test_a_quarantine_inside_a_folder_of_indexed_photos_is_refused(with_copy) -> None:  # type: ignore[no-untyped-def]
    lib, photos, groups = with_copy
    for inside in (photos, photos / "dupes"):  # renamed beside the originals, indexed again next time
        with pytest.raises(LookalikeError, match=r"inside .*a folder of indexed photos.*nothing was moved"):
            remove_copies(lib, groups, quarantine=inside)
        assert unchanged(lib, photos) and not (photos / "dupes").exists()


def test_a_non_ascii_quarantine_is_logged_and_undone(with_copy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lib, photos, groups = with_copy
    dest = tmp_path / "doublons élagués"
    action = remove_copies(lib, groups, quarantine=dest)
    assert [m.to for m in action.items] == [str(dest / "china-copy.jpg")]
    assert len(lib.store.file_states()) == 2 and not (photos / "china-copy.jpg").exists()
    (logged,) = actions(lib)
    assert logged.items[0].to == str(dest / "china-copy.jpg")
    _, done = undo(lib)
    assert done == [(str(photos / "china-copy.jpg"), "restored")]
    assert len(lib.store.file_states()) == 3
