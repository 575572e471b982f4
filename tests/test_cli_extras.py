"""The CLI for the extras: index --ocr --faces, search --face/--image/--weight/--explain, describe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from lookalike.cli import main
from lookalike.samples import copy_samples, sample_photos


@pytest.fixture(scope="module")
def cli_lib(tmp_path_factory: pytest.TempPathFactory, model) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    photos = tmp_path_factory.mktemp("cli-photos")
    copy_samples(photos, ["page", "chelsea", "coffee", "astronaut"])
    with Image.open(sample_photos()["astronaut"]) as im:
        ImageOps.mirror(im.convert("RGB")).resize((320, 320)).save(photos / "astro-mirror.jpg")
    lib = tmp_path_factory.mktemp("cli-lib")
    assert main(["index", "--library", str(lib), "--ocr", "--faces", "-q", "--json", str(photos)]) == 0
    return photos, lib


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_face_search(cli_lib: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    photos, lib = cli_lib
    capsys.readouterr()
    rc, out, _ = run(capsys, "search", "--library", str(lib), "--face", str(photos / "astronaut.jpg"), "--json")
    d = json.loads(out)
    assert rc == 0 and d["kind"] == "face"
    assert [Path(r["path"]).name for r in d["results"]] == ["astronaut.jpg", "astro-mirror.jpg"]
    rc, out, _ = run(capsys, "search", "--library", str(lib), "--face", str(photos / "astronaut.jpg"), "--explain")
    assert "face at (" in out and "astro-mirror.jpg" in out


def test_ocr_words_and_explain(cli_lib: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    photos, lib = cli_lib
    rc, out, _ = run(capsys, "search", "--library", str(lib), "the", "page", "with", "markers", "--explain", "-n", "1")
    assert rc == 0 and "page.jpg" in out and "text 1 hits" in out
    rc, out, _ = run(capsys, "search", "--library", str(lib), "kitty", "--explain", "-n", "1")
    assert "query became: tabby" in out and "chelsea.jpg" in out and "expanded with photos like ids" in out
    rc, out, _ = run(capsys, "search", "--library", str(lib), "sea", "--explain", "--no-expand", "-n", "1")
    # the WordNet link ("sea: meaning", the lexicon's own) and, since the links of "sea" are weak ones, the
    # sentence model asked at query time too
    assert "seashore (0.6, sea: meaning + sentence model)" in out


def test_combined_and_weights(cli_lib: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    photos, lib = cli_lib
    rc, out, _ = run(capsys, "search", "--library", str(lib), "cat", "--image", str(photos / "coffee.jpg"),
                     "--weight", "image=0.5", "--json")
    d = json.loads(out)
    assert rc == 0 and d["kind"] == "combined" and d["by"] == "text+image"
    assert Path(d["results"][0]["path"]).name == "chelsea.jpg"
    rc, _, err = run(capsys, "search", "--library", str(lib), "cat", "--image", str(photos / "coffee.jpg"),
                     "--weight", "image")
    assert rc == 2 and "--weight wants NAME=NUMBER" in err
    rc, _, err = run(capsys, "search", "--library", str(lib), "--face", str(photos / "coffee.jpg"))
    assert rc == 2 and err.count("\n") == 1 and "no face found" in err


def test_describe(cli_lib: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    photos, lib = cli_lib
    f = tmp_path / "captions.csv"
    f.write_text(f"path,caption\n{photos / 'coffee.jpg'},morning brew at the harbour cafe\nmissing.jpg,x\n")
    rc, out, _ = run(capsys, "describe", "--library", str(lib), str(f))
    assert rc == 0 and "imported 1 of 2" in out and "missing.jpg" in out
    rc, out, _ = run(capsys, "search", "--library", str(lib), "harbour", "cafe", "--json", "--explain")
    # the caption's words find the photo through the full-text list (the words' weak WordNet links to
    # piers and ships may add a tag hit of the same fused rank)
    d = json.loads(out)
    assert d["explain"]["signals"]["text"] == 1
    assert "coffee.jpg" in [Path(r["path"]).name for r in d["results"][:2]]
    rc, _, err = run(capsys, "describe", "--library", str(lib), str(tmp_path / "nope.json"))
    assert rc == 2 and "not found" in err
