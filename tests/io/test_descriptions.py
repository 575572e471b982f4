"""Descriptions files: JSON object, JSON list, CSV with and without a header; clear one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.errors import LookalikeError, NotFound
from lookalike.io.descriptions import read_descriptions


def test_json_object_and_list(tmp_path: Path) -> None:
    f = tmp_path / "d.json"
    f.write_text(json.dumps({"a.jpg": "  our   cat ", "b.jpg": ""}))
    assert read_descriptions(f) == [("a.jpg", "our cat")]  # blank texts are skipped
    f.write_text(json.dumps([{"path": "a.jpg", "caption": "x"}, {"file": "b.jpg", "description": "y"}]))
    assert read_descriptions(f) == [("a.jpg", "x"), ("b.jpg", "y")]


def test_csv_forms(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("filename,notes,caption\nx/a.jpg,ignored,\"a cat, sleeping\"\n")
    assert read_descriptions(f) == [("x/a.jpg", "a cat, sleeping")]
    f.write_text("a.jpg,first\n\nb.jpg,second\n")
    assert read_descriptions(f) == [("a.jpg", "first"), ("b.jpg", "second")]
    f.write_text("\ufeffpath,description\nc.jpg,with BOM\n")
    assert read_descriptions(f) == [("c.jpg", "with BOM")]


@pytest.mark.parametrize("content, match", [
    ("{broken", "not valid JSON"),
    ('{"a.jpg": 3}', "not a string"),
    ('[{"path": "a.jpg"}]', "needs a path and a description"),
    ("[1, 2]", "not an object"),
    ('"just text"', "expected an object"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # RecursionError in json
])
def test_json_errors(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "d.json"
    f.write_text(content)
    with pytest.raises(LookalikeError, match=match) as err:
        read_descriptions(f)
    assert "\n" not in str(err.value)


def test_csv_and_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("only-one-column\n")
    with pytest.raises(LookalikeError, match="row 1 needs a path and a text"):
        read_descriptions(f)
    with pytest.raises(NotFound):
        read_descriptions(tmp_path / "missing.csv")
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(LookalikeError, match="not UTF-8"):
        read_descriptions(f)
    with pytest.raises(LookalikeError, match="is a folder"):  # it said "not found"
        read_descriptions(tmp_path)


def test_a_long_description_in_a_csv(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("path,description\na.jpg," + "word " * 60_000 + "\n")  # 300 KB, past csv's 128 KB field cap
    assert read_descriptions(f) == [("a.jpg", " ".join(["word"] * 60_000))]


def test_a_pipe_is_read(tmp_path: Path) -> None:
    """``lookalike describe <(make-captions)``: a FIFO, read to its end (it said "not found")."""
    import os
    import threading

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w") as fh:
            fh.write("path,description\na.jpg,a cup of coffee\n")

    t = threading.Thread(target=feed)
    t.start()
    assert read_descriptions(fifo) == [("a.jpg", "a cup of coffee")]
    t.join(10)
