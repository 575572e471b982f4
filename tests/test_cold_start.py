"""CPU search paths never import torch: each `lookalike search` variant runs in a fresh process and the
process's own import log (python -X importtime) is checked for torch and sentence-transformers; nor, in a
library small enough for the exact index, faiss (stores/exact.py), the indexing stage or the URL fetcher."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = re.compile(r"\|\s+(torch|sentence_transformers|transformers)\s*$", re.M)
# what a search of a small library does not need (a keyword search: 0.651 -> 0.577 s of CPU without them,
# bench/cli_latency.py medians, docs/speed.md)
UNNEEDED = re.compile(r"\|\s+(faiss|lookalike\.indexer|lookalike\.io\.fetch|http\.client)\s*$", re.M)


@pytest.fixture(scope="module")
def library(indexed) -> Path:  # type: ignore[no-untyped-def]
    from lookalike.models.text import text_model

    text_model()  # the ONNX export is made (with torch) once, here, in this process
    return Path(indexed.settings.library)


@pytest.mark.parametrize("query", [
    ["cat"], ["selfie with grandma"], ["a cup of coffee on a table", "--explain"], ["cat", "--by", "tags"],
    ["IMAGE"], ["IMAGE", "--by", "tags"], ["id:1"], ["cat", "--json", "--no-semantic"],
])
def test_search_imports_no_torch(library: Path, photos: Path, query: list[str]) -> None:
    args = [str(photos / "chelsea.jpg") if q == "IMAGE" else q for q in query]
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(library)}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "lookalike.cli", "search", *args, "--limit", "3"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip()  # it found something
    heavy = sorted(set(HEAVY.findall(out.stderr)))
    assert heavy == [], f"{args} imported {heavy}"
    unneeded = sorted(set(UNNEEDED.findall(out.stderr)))
    assert unneeded == [], f"{args} imported {unneeded}"
    if "selfie" in args[0]:  # a word no vocabulary knows: the sentence model did run, without torch
        assert re.search(r"\|\s+tokenizers\s*$", out.stderr, re.M)


# what an indexing run without a terminal (cron, -q, --json) does not need: its start-up is what every extra
# concurrent indexer pays (bench/shared_index.py --startup-runs: 0.80 -> 0.72 s of CPU per process without
# the progress bar library, numpy.ma and the class JSON, docs/speed.md)
INDEX_UNNEEDED = re.compile(r"\|\s+(torch|scipy|faiss|tqdm|numpy\.ma|lookalike\.io\.fetch)\s*$", re.M)


def test_a_quiet_index_run_imports_only_what_it_uses(photos: Path, tmp_path: Path, model) -> None:  # type: ignore[no-untyped-def]
    """(``model``: the ONNX export exists, made with torch once, as on any machine after its first run)"""
    env = {**os.environ, "PYTHONPATH": SRC, "LOOKALIKE_LIBRARY": str(tmp_path / "lib")}
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "lookalike.cli", "index", str(photos), "-q"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    unneeded = sorted(set(INDEX_UNNEEDED.findall(out.stderr)))
    assert unneeded == [], f"an indexing run imported {unneeded}"
