"""Keyword precision evaluation on a labelled folder set of real photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from lookalike.errors import LookalikeError, NotFound
from lookalike.evaluation.keywords import average_precision, evaluate_keywords, labelled_folders, precision_at
from lookalike.samples import copy_samples


def test_precision_and_ap() -> None:
    rel = {"a", "b"}
    assert precision_at(["a", "x", "b"], rel, 10) == 1.0  # denominator capped at the 2 relevant
    assert precision_at(["x", "a"], rel, 1) == 0.0
    assert average_precision(["a", "x", "b"], rel) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([], rel) == 0.0 and precision_at(["a"], set(), 10) == 0.0


def test_evaluate_on_labelled_photos(new_library, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "set"
    copy_samples(root / "cat", ["chelsea", "black_cat"])
    copy_samples(root / "fish", ["gold_fish", "fighter_fish"])
    copy_samples(root / "_other", ["coffee", "rocket", "puppy"])  # indexed, never queried
    assert set(labelled_folders(root)) == {"cat", "fish"}
    lib = new_library()
    report = evaluate_keywords(lib, root, k=10)
    assert report["images"] == 7 and report["labelled"] == 4
    assert report["classes"]["cat"]["precision"] == 1.0 and report["classes"]["cat"]["ap"] == 1.0
    assert report["classes"]["fish"]["relevant"] == 2
    assert 0.5 <= report["mean"]["precision"] <= 1.0
    assert report["generic"]["precision"] == report["classes"]["fish"]["precision"]  # fish is a generic word
    base = evaluate_keywords(lib, root, k=10, index=False, expand=False, semantic=False)
    assert base["classes"]["cat"]["precision"] == 1.0
    with pytest.raises(LookalikeError, match="no folder for dog"):
        evaluate_keywords(lib, root, words=["dog"], index=False)


def test_bad_roots(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        labelled_folders(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(LookalikeError, match="no labelled sub-folders"):
        labelled_folders(tmp_path)
