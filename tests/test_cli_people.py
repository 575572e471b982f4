"""lookalike people: list (text, --json, --grid), name (merge), name --face (split), show, unname; bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lookalike.cli import main


@pytest.fixture
def lib(people_index: Path, tmp_path: Path) -> str:
    shutil.copytree(people_index, tmp_path / "lib")
    return str(tmp_path / "lib")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_list_name_show_and_search(lib: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "people", "--library", lib, "--json")
    people = json.loads(out)["people"]
    assert rc == 0 and [p["faces"] for p in people] == [5, 5, 5] and all(p["sample"]["box"] for p in people)
    rc, out, _ = run(capsys, "people", "--library", lib, "--grid", str(tmp_path / "people.png"))
    assert rc == 0 and "grid written to" in out and out.count(" faces ") == 3
    with Image.open(tmp_path / "people.png") as sheet:
        assert sheet.width > 3 * 200 and sheet.height > 200
    pid = str(people[0]["id"])
    rc, out, _ = run(capsys, "people", "name", pid, "Alice", "--library", lib)
    assert rc == 0 and out.startswith(f"person {pid} is Alice (5 faces in 5 photos)")
    rc, out, _ = run(capsys, "info", "--library", lib)
    assert rc == 0 and "people:   3 (1 named)" in out
    rc, out, _ = run(capsys, "people", "show", "alice", "--library", lib, "--json")
    d = json.loads(out)
    assert d["person"]["name"] == "Alice" and len(d["faces"]) == 5 and all(Path(f["path"]).is_file() for f in d["faces"])
    rc, out, _ = run(capsys, "search", "Alice", "--library", lib, "--json")
    res = json.loads(out)["results"]
    assert rc == 0 and len(res) == 5 and {Path(r["path"]).parent for r in res} == {Path(d["faces"][0]["path"]).parent}
    # merge by naming, split by naming one face
    other = str(people[1]["id"])
    rc, out, _ = run(capsys, "people", "name", other, "ALICE", "--library", lib)
    assert rc == 0 and "(10 faces in 10 photos)" in out
    face = d["faces"][0]
    rc, out, _ = run(capsys, "people", "name", f"{face['image_id']}:{face['index']}", "Bob", "--library", lib)
    assert rc == 0 and "is now Bob" in out and "1 faces" in out
    rc, out, _ = run(capsys, "people", "unname", "Bob", "--library", lib)
    assert rc == 0 and "has no name now" in out


@pytest.mark.parametrize("argv, message", [
    (["people", "name", "1"], "usage: lookalike people name PERSON NAME"),
    (["people", "name", "1", "7"], "a name needs a letter"),
    (["people", "name", "999999", "Zed"], "no person with id 999999"),
    (["people", "show", "Nobody"], "no person named 'Nobody'"),
    (["people", "name", "999999:0", "Zed"], "no face stored for image id 999999"),
    (["people", "list", "extra"], "usage: lookalike people [--min-faces N]"),
])
def test_bad_input_is_one_line(lib: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    rc, out, err = run(capsys, *argv, "--library", lib)
    assert rc in (1, 2) and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
