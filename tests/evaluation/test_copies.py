"""The quality benchmark's code on real photos: edited copies, per-method figures, the labelled set, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from lookalike.cli import main
from lookalike.evaluation.copies import evaluate_copies, evaluate_labelled, format_report
from lookalike.evaluation.edits import EDITS, HARD, apply
from lookalike.library import Library
from lookalike.samples import copy_samples

ORIGINALS = ["chelsea", "coffee", "astronaut", "rocket", "china", "interior_pexels-6707631"]
DISTRACTORS = ["black_cat", "flower", "guitar", "interior_pexels-cup-of-couple-7303788"]


def test_edits_are_deterministic_and_do_what_they_say() -> None:
    img = Image.new("RGB", (200, 100), (200, 30, 30))
    assert apply("crop40", img, 1).size == (120, 60)
    assert apply("downscale4", img).size == (50, 25)
    assert apply("mirror", img).size == img.size
    g = apply("grayscale", img).getpixel((5, 5))
    assert g[0] == g[1] == g[2]
    a, b = apply("text", img, 3), apply("text", img, 3)
    assert a.tobytes() == b.tobytes() and a.tobytes() != img.tobytes()
    assert set(HARD) <= set(EDITS) and len(EDITS) == 16
    with pytest.raises(KeyError, match="unknown edit"):
        apply("blur", img)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, model) -> dict:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("quality")
    originals = copy_samples(root / "originals", ORIGINALS)
    distractors = copy_samples(root / "distractors", DISTRACTORS)
    lib = Library(root / "library")
    out = evaluate_copies(lib, originals, distractors, edits=["crop40", "rotate20", "mirror", "jpeg20"])
    lib.close()
    return out


def test_copy_report_per_method_and_edit(report: dict) -> None:
    assert report["originals"] == 6 and report["distractors"] == 4 and report["queries"] == 24
    assert set(report["methods"]) == {"embedding", "tags", "phash", "verified"}
    for m in report["methods"].values():
        assert set(m["edits"]) == {"crop40", "rotate20", "mirror", "jpeg20"}
        for v in m["edits"].values():
            assert 0 <= v["tpr_at_zero_fp"] <= v["recall_at_1"] + 1e-9 <= 1 + 1e-9
    emb, ver, ph = (report["methods"][k] for k in ("embedding", "verified", "phash"))
    assert emb["recall_at_1"] >= 0.95 and ver["recall_at_1"] >= 0.95  # ranking the original first: easy
    assert ver["tpr_at_zero_fp"] >= emb["tpr_at_zero_fp"]  # deciding: verification helps
    assert ver["tpr_at_zero_fp"] >= 0.9 and ver["hard_tpr_at_zero_fp"] >= 0.8
    assert ph["edits"]["mirror"]["recall_at_1"] < 0.5  # a perceptual hash does not survive a mirror
    assert ver["false_positives_at_default"] == 0 and ver["tpr_at_default"] >= 0.9
    assert len(ver["hardest_non_copies"]) == 5
    text = format_report({"copies": report})
    assert "verified" in text and "crop40*" in text


def test_labelled_image_queries(tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    copy_samples(tmp_path / "set" / "cat", ["chelsea", "black_cat"])
    copy_samples(tmp_path / "set" / "fish", ["gold_fish", "fighter_fish"])
    copy_samples(tmp_path / "set" / "room", ["interior_pexels-7303773", "interior_pexels-cup-of-couple-7303788"])
    lib = Library(tmp_path / "library")
    out = evaluate_labelled(lib, tmp_path / "set", k=1)
    lib.close()
    assert out["images"] == 6 and out["classes"] == 3
    assert out["methods"]["embedding"]["precision_at_k"] >= 2 / 3
    assert 0 <= out["methods"]["phash"]["map"] <= 1


def test_eval_command(tmp_path: Path, capsys, model) -> None:  # type: ignore[no-untyped-def]
    copy_samples(tmp_path / "photos", ["chelsea", "coffee", "rocket"])
    copy_samples(tmp_path / "other", ["guitar", "tent"])
    assert main(["eval", str(tmp_path / "photos"), "--distractors", str(tmp_path / "other"),
                 "--edits", "mirror,crop25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copies"]["queries"] == 6 and out["copies"]["distractors"] == 2
    assert out["copies"]["methods"]["verified"]["recall_at_1"] == 1.0
    assert main(["eval", str(tmp_path / "photos"), "--edits", "blur"]) == 2
    assert "unknown edit" in capsys.readouterr().err
