"""Indexers that share the work (stores/claims.py): concurrent `lookalike index` processes on the same folder
and library embed every file once between them, and a SIGKILLed one's claimed files are taken over (at once:
it ran on this host and its pid is gone)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.samples import copy_samples, sample_photos

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shared-photos")
    copy_samples(folder, sorted(sample_photos())[:40])
    return folder


def start(folder: Path, lib: Path, lease: float = 120) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_BATCH_SIZE": "4", "LOOKALIKE_CLAIM_LEASE": str(lease),
           "LOOKALIKE_THREADS": "1", "LOOKALIKE_WORKERS": "1"}
    return subprocess.Popen([sys.executable, "-m", "lookalike.cli", "index", str(folder), "--library", str(lib), "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def summary(proc: subprocess.Popen[str]) -> dict:  # type: ignore[type-arg]
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out)


def images(lib: Path) -> int:
    try:
        with sqlite3.connect(f"file:{lib / 'lookalike.db'}?mode=ro", uri=True, timeout=30) as c:
            return int(c.execute("SELECT COUNT(*) FROM images").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_two_indexers_embed_each_file_once(folder: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"  # a new library: both also create its schema at the same time
    a, b = start(folder, lib), start(folder, lib)
    sa, sb = summary(a), summary(b)
    n = len(list(folder.iterdir()))
    assert sa["indexed"] + sb["indexed"] == n  # nothing embedded twice, nothing missed
    for s in (sa, sb):
        assert s["indexed"] + s["copies"] + s["by_others"] + len(s["skipped"]) + s["unchanged"] == n, s
    assert images(lib) == n


def test_a_killed_indexers_files_are_taken_over(folder: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    n = len(list(folder.iterdir()))
    a = start(folder, lib, lease=600)  # far longer than the test: the takeover must not wait for it
    deadline = time.time() + 300
    while images(lib) < 8 and a.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert a.poll() is None, "the indexer finished before it could be killed"
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    committed = images(lib)
    assert 8 <= committed < n
    t = time.time()
    s = summary(start(folder, lib, lease=600))
    assert images(lib) == n  # nothing missed
    assert s["indexed"] == n - committed  # nothing the killed one had written is embedded again
    assert s["by_others"] == 0  # it took the killed one's claims over itself ...
    assert time.time() - t < 300  # ... at once: the killed one ran on this host and its pid is gone
    # (claims of an owner on another host expire with their lease: tests/stores/test_claims.py)
