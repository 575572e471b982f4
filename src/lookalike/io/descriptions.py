"""User descriptions or captions from a file: path -> text.

Accepted forms:
- JSON object: ``{"photos/cat.jpg": "our cat on the sofa", ...}``
- JSON list: ``[{"path": "photos/cat.jpg", "description": "..."}, ...]`` (text key: description, caption or text)
- CSV with a header naming a path column (path, file, filename) and a text column (description, caption,
  text), or a headerless CSV of two columns: path, text.

The file may also be a pipe (``<(make-captions)``) or ``-`` (standard input); at most ``MAX_BYTES`` are read.
"""

from __future__ import annotations

import csv
import io
import json
import os

from lookalike.errors import LookalikeError, NotFound

PATH_KEYS = ("path", "file", "filename", "image")
TEXT_KEYS = ("description", "caption", "text")
MAX_BYTES = 50_000_000


def read_descriptions(file: str | os.PathLike[str]) -> list[tuple[str, str]]:
    path = "/dev/stdin" if os.fspath(file) == "-" else os.path.expanduser(os.fspath(file))
    if os.path.isdir(path):
        raise LookalikeError(f"the descriptions file {file} is a folder: give a .json or .csv file")
    if not os.path.exists(path):
        raise NotFound(f"descriptions file not found: {file}")
    if os.path.isfile(path) and os.path.getsize(path) > MAX_BYTES:
        raise LookalikeError(f"descriptions file too large (> {MAX_BYTES // 1_000_000} MB): {file}")
    try:  # a pipe or standard input too: read up to the cap
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as err:
        raise LookalikeError(f"cannot read descriptions file {file}: {err.strerror or err}") from None
    if len(data) > MAX_BYTES:
        raise LookalikeError(f"descriptions file too large (> {MAX_BYTES // 1_000_000} MB): {file}")
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise LookalikeError(f"descriptions file is not UTF-8 text: {file}") from None
    stripped = raw.lstrip()
    if path.lower().endswith(".json") or stripped.startswith(("{", "[")):
        entries = _from_json(raw, file)
    else:
        entries = _from_csv(raw, file)
    return [(p.strip(), " ".join(t.split())) for p, t in entries if p.strip() and t.strip()]


def _from_json(raw: str, file: object) -> list[tuple[str, str]]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as err:
        raise LookalikeError(f"descriptions file {file} is not valid JSON: {err.msg} at line {err.lineno}") from None
    except RecursionError:
        raise LookalikeError(f"descriptions file {file}: its JSON is nested too deeply") from None
    if isinstance(data, dict):
        bad = [k for k, v in data.items() if not isinstance(v, str)]
        if bad:
            raise LookalikeError(f"descriptions file {file}: the text for {bad[0]!r} is not a string")
        return list(data.items())
    if isinstance(data, list):
        out = []
        for n, item in enumerate(data, start=1):
            if not isinstance(item, dict):
                raise LookalikeError(f"descriptions file {file}: entry {n} is not an object with path and text")
            p = next((item[k] for k in PATH_KEYS if isinstance(item.get(k), str)), None)
            t = next((item[k] for k in TEXT_KEYS if isinstance(item.get(k), str)), None)
            if p is None or t is None:
                raise LookalikeError(f"descriptions file {file}: entry {n} needs a path and a description")
            out.append((p, t))
        return out
    raise LookalikeError(f"descriptions file {file}: expected an object (path -> text) or a list of entries")


def _from_csv(raw: str, file: object) -> list[tuple[str, str]]:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_BYTES))  # a long description, as JSON takes it (128 KB)
    try:
        rows = list(csv.reader(io.StringIO(raw)))
    except csv.Error as err:
        raise LookalikeError(f"descriptions file {file} is not valid CSV: {err}") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        return []
    head = [c.strip().lower() for c in rows[0]]
    pi = next((head.index(k) for k in PATH_KEYS if k in head), None)
    ti = next((head.index(k) for k in TEXT_KEYS if k in head), None)
    if pi is not None and ti is not None:
        body = rows[1:]
    else:
        pi, ti, body = 0, 1, rows
    out = []
    for n, r in enumerate(body, start=2 if body is not rows else 1):
        if len(r) <= max(pi, ti):
            raise LookalikeError(f"descriptions file {file}: row {n} needs a path and a text column")
        out.append((r[pi], r[ti]))
    return out
