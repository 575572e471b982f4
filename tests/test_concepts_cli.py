"""`lookalike teach / concepts / forget` and `search --more-like/--less-like` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lookalike.samples import copy_samples

SRC = str(Path(__file__).resolve().parents[1] / "src")


def run(*args: str, library: Path, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(library)}
    out = subprocess.run([sys.executable, "-m", "lookalike.cli", *args], env=env, capture_output=True, text=True,
                         timeout=300, input=stdin if stdin is not None else "")
    if check:
        assert out.returncode == 0, out.stderr
    return out


def test_teach_search_list_forget(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["chelsea", "black_cat", "puppy", "coffee", "rocket", "guitar"])
    lib = tmp_path / "lib"
    run("index", str(photos), "-q", library=lib)
    out = run("teach", "Whiskers", str(photos / "chelsea.jpg"), "--not", str(photos / "puppy.jpg"), library=lib)
    assert out.stdout.startswith("taught 'whiskers': 1 examples, 1 counter-examples")
    # a previous search's results, piped in: teaching again adds them
    found = run("search", "cat", "--limit", "2", "--json", library=lib).stdout
    out = run("teach", "whiskers", "--json", library=lib, stdin=found)
    info = json.loads(out.stdout)
    assert sorted(Path(p).name for p in info["examples"]) == ["black_cat.jpg", "chelsea.jpg"]
    res = json.loads(run("search", "whiskers", "--json", "--limit", "3", library=lib).stdout)
    assert {Path(r["path"]).name for r in res["results"][:2]} == {"chelsea.jpg", "black_cat.jpg"}
    assert all(0 <= r["score"] <= 1 for r in res["results"])
    listed = run("concepts", library=lib).stdout
    assert listed.startswith("whiskers") and "2 examples" in listed and "1 counter" in listed
    assert json.loads(run("concepts", "--json", library=lib).stdout)["concepts"][0]["word"] == "whiskers"
    # relevance feedback from the command line: the marked photo is dropped
    ids = {Path(r["path"]).name: r["id"] for r in json.loads(run("search", "whiskers", "--json", library=lib).stdout)["results"]}
    fed = json.loads(run("search", "whiskers", "--less-like", f"id:{ids['coffee.jpg']}", "--json", library=lib).stdout)
    assert all(r["id"] != ids["coffee.jpg"] for r in fed["results"]) and len(fed["results"]) == len(ids) - 1
    more = json.loads(run("search", "--more-like", str(ids["rocket.jpg"]), "--json", library=lib).stdout)
    assert more["kind"] == "feedback" and more["results"][0]["id"] == ids["rocket.jpg"]
    assert run("forget", "whiskers", library=lib).stdout.strip() == "forgot 'whiskers'"
    assert "no taught words" in run("concepts", library=lib).stdout


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    copy_samples(photos, ["chelsea", "coffee"])
    lib = tmp_path / "lib"
    run("index", str(photos), "-q", library=lib)
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (tmp_path / "empty").mkdir()
    for args, said in ((("teach", "rex", str(tmp_path / "empty")), "no images in the folder"),
                       (("teach", "--", "-rex", str(photos / "coffee.jpg")), "starts with '-'"),
                       (("teach", "rex", "--from-json", str(tmp_path / "deep.json")), "nested too deeply")):
        out = run(*args, library=lib, check=False)
        assert out.returncode == 2 and said in out.stderr.strip().splitlines()[-1], (args, out.stderr)
    for args in (("teach", "rex"), ("teach", "rex", "id:424242"), ("teach", "rex", "/no/such.jpg"),
                 ("teach", "rex", "--from-json", str(tmp_path / "bad.json")), ("forget", "rex"),
                 ("teach", "id:3", str(photos / "coffee.jpg")), ("search", "cat", "--more-like", "x")):
        out = run(*args, library=lib, check=False)
        assert out.returncode == 2, (args, out.stderr)
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("lookalike") and "error:" in last and "Traceback" not in out.stderr, out.stderr
    # nothing piped (stdin not a terminal, but empty): asked for examples, not told that "" is not JSON
    out = run("teach", "rex", library=lib, stdin="", check=False)
    assert out.returncode == 2 and "give examples of 'rex'" in out.stderr
    out = run("teach", "rex", library=lib, stdin="not json", check=False)
    assert out.returncode == 2 and "stdin is not JSON" in out.stderr


def test_a_folder_of_examples_skips_what_it_cannot_read(tmp_path: Path) -> None:
    from PIL import Image

    photos = tmp_path / "photos"
    copy_samples(photos, ["chelsea", "coffee", "rocket"])
    lib = tmp_path / "lib"
    run("index", str(photos), "-q", library=lib)
    examples = tmp_path / "cats"
    copy_samples(examples, ["black_cat"])
    Image.new("1", (30000, 30000)).save(examples / "bomb.png")  # 900 MP declared: the bomb guard refuses it
    (examples / "empty.jpg").write_bytes(b"")
    out = run("teach", "kitty", str(examples), str(photos / "chelsea.jpg"), "--json", library=lib)
    info = json.loads(out.stdout)
    assert sorted(Path(p).name for p in info["examples"]) == ["black_cat.jpg", "chelsea.jpg"]
    assert sorted(Path(s["path"]).name for s in info["skipped"]) == ["bomb.png", "empty.jpg"]
    out = run("teach", "kitty", str(examples / "bomb.png"), library=lib, check=False)  # named: refused
    assert out.returncode == 2 and "decompression bomb" in out.stderr and "Traceback" not in out.stderr
    os.mkfifo(tmp_path / "pipe.jpg")
    out = run("teach", "kitty", str(tmp_path / "pipe.jpg"), library=lib, check=False)
    assert out.returncode == 2 and "not a regular file: a FIFO" in out.stderr
