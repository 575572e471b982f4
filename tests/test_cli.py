"""The command line as other tools use it: env LOOKALIKE_LIBRARY, --json contract, grid, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from lookalike.samples import copy_samples

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(*args: str, library: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(library)}
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", *args], env=env, capture_output=True, text=True,
                         timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_index_search_contract(tmp_path: Path) -> None:
    photos = tmp_path / "фото"  # a unicode folder
    copy_samples(photos, ["chelsea", "coffee", "black_cat", "rocket"])
    lib = tmp_path / "lib"
    out = run("index", str(photos), "--json", library=lib)
    summary = json.loads(out.stdout)
    assert summary["indexed"] == 4 and summary["skipped"] == []

    out = run("search", "cat", "--limit", "2", "--json", library=lib)
    d = json.loads(out.stdout)  # stdout is exactly one JSON object
    assert d["query"] == "cat"
    assert {Path(r["path"]).name for r in d["results"]} == {"chelsea.jpg", "black_cat.jpg"}
    for r in d["results"]:
        assert os.path.isabs(r["path"]) and isinstance(r["score"], float) and isinstance(r["tags"], list)

    out = run("search", str(photos / "coffee.jpg"), "--limit", "1", "--json", library=lib)
    assert json.loads(out.stdout)["results"][0]["path"] == str(photos / "coffee.jpg")

    grid = tmp_path / "grid.png"
    out = run("search", str(photos / "chelsea.jpg"), "--limit", "3", "--grid", str(grid), library=lib)
    assert "chelsea.jpg" in out.stdout.splitlines()[0]
    with Image.open(grid) as im:
        assert im.width > 3 * 200 and im.height > 200

    out = run("info", "--json", library=lib)
    assert json.loads(out.stdout)["images"] == 4


def test_errors_are_one_line(tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    out = run("search", str(tmp_path / "missing.jpg"), library=lib, check=False)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "no lookalike library" in out.stderr
    out = run("index", str(tmp_path / "nowhere"), "--json", library=lib, check=False)
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "nothing to index" in out.stderr
    photos = tmp_path / "photos"
    copy_samples(photos, ["coffee"])
    out = run("index", str(tmp_path / "nowhere"), str(photos), "--json", library=lib)  # one of several: skipped
    assert json.loads(out.stdout)["skipped"][0]["reason"] == "no such file or folder"
    out = run("search", str(tmp_path / "missing.jpg"), library=lib, check=False)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "not found" in out.stderr
    for typo in ("id:abc", "id:"):  # not searched as the words "id" and "abc"
        out = run("search", typo, library=lib, check=False)
        assert out.returncode == 2 and out.stderr.count("\n") == 1 and "not an image id" in out.stderr
    for args, words in [((str(photos),), "is a folder, not an image"),  # before: searched as words
                        (("--image", str(photos)), "is a folder, not an image"),
                        (("",), "the query has no words"), (("  ",), "the query has no words"),
                        (("cat " * 300,), "at most 1000 are searched"),
                        (("cat", "--image", str(photos / "coffee.jpg"), "--weight", "text=nan"), "finite number"),
                        (("cat", "--grid", str(tmp_path / "grid.txt")), "must end in .png"),  # before: searched,
                        (("cat", "--grid", str(photos)), "is a folder"),  # then an unexpected error
                        (("cat", "--grid", str(tmp_path / "no" / "such" / "g.png")), "does not exist"),
                        (("cat", "--paths", "--json"), "--paths or --json")]:
        out = run("search", *args, library=lib, check=False)  # one line, or argparse's usage and then one line
        assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
        assert words in out.stderr.strip().splitlines()[-1] and out.stdout == "", (args, out.stderr)
    assert not (tmp_path / "no").exists() and not (tmp_path / "grid.txt").exists()
    out = run("search", "cat", "--folder", str(tmp_path / "typo"), library=lib)  # a typo is not silent
    assert out.stdout.strip() == f"no results (--folder {tmp_path / 'typo'} does not exist here)"
    for grid in ("/proc/grid.png", str(tmp_path / ("a" * 300 + ".png"))):  # writing it fails: one line, exit 1
        out = run("search", "cat", "--grid", grid, library=lib, check=False)
        last = out.stderr.strip().splitlines()[-1]
        assert out.returncode == 1 and last.startswith("lookalike: error: cannot write the contact sheet"), out.stderr
