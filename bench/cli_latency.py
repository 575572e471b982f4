#!/usr/bin/env python
"""Cold start of the command line: whole-process wall and CPU time of ``lookalike search``, side by side.

Each round runs, one after the other, fresh processes of:
  numpy     ``python -c "import numpy"`` (the floor: any Python tool that touches arrays pays this)
  vocab     ``lookalike search cat``            (a vocabulary word: no sentence model)
  oov       ``lookalike search "selfie with grandma"`` ("selfie" is in no vocabulary, WordNet's included:
            the sentence model runs; "ocean waves" no longer does since the vocabulary has all of WordNet)
  image     ``lookalike search PHOTO.jpg``      (the image model runs on the query)
  id        ``lookalike search id:N``           (an indexed image: vectors read from the index)
and reports per kind the median over ``--runs`` rounds of wall seconds, CPU seconds (user + system of the
child, from wait4) and the peak RSS (the largest of the rounds; the library is prepared in a child process so
that this one stays small, whose peak every child would otherwise inherit), plus each median as a ratio to numpy's in
the same run. ``oov_vs_vocab`` is oov's median wall / vocab's (target <= 2). ``torch`` says whether the
kind's process imported torch (one extra run under ``python -X importtime``; target: never on the CPU).

The library (the sample photos that installed packages carry, indexed once) is cached in the temp folder
unless ``--library`` names one. One warm-up round first: the page cache, the ONNX exports (made once per
user) and the bytecode are warm, as on any second use; the figures are of cold *processes*, not cold disks.

    python bench/cli_latency.py                 # 5 rounds
    python bench/cli_latency.py --runs 9 --json # {"vocab_s", "oov_s", "image_s", "id_s", "oov_vs_vocab", ...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
KINDS = ("numpy", "vocab", "oov", "image", "id")


def library(path: str | None) -> tuple[Path, Path, int]:
    """(library folder, a query photo, an indexed image id); builds and indexes the sample library once."""
    from lookalike.library import Library
    from lookalike.samples import copy_samples

    lib_dir = Path(path) if path else Path(tempfile.gettempdir()) / "lookalike-bench-cli" / "library"
    photos = lib_dir.parent / "photos"
    if not path and not photos.is_dir():
        copy_samples(photos)
    with Library(lib_dir) as lib:
        if not path:
            lib.index([photos])
        hits = lib.search("cat", limit=1).results
        if not hits:
            raise SystemExit(f"the library {lib_dir} finds nothing for 'cat'; index some photos first")
        return lib_dir, Path(hits[0].path), hits[0].id


def library_in_child(path: str | None) -> tuple[Path, Path, int]:
    """``library`` in a child process, so that this one stays small: Linux keeps a process's peak RSS across
    ``execve``, so every child measured by ``wait4`` would report at least this process's peak (the model
    loaded to index the samples: ~290 MB for ``import numpy`` before this)."""
    out = subprocess.run([sys.executable, __file__, "--prepare", path or ""], env=ENV, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(out.stderr.strip()[-500:] or f"preparing the library failed ({out.returncode})")
    lib, photo, image_id = json.loads(out.stdout.strip().splitlines()[-1])
    return Path(lib), Path(photo), int(image_id)


def commands(lib: Path, photo: Path, image_id: int) -> dict[str, list[str]]:
    search = [sys.executable, "-m", "lookalike.cli", "search", "--library", str(lib), "--limit", "5"]
    return {"numpy": [sys.executable, "-c", "import numpy"], "vocab": [*search, "cat"],
            "oov": [*search, "selfie with grandma"], "image": [*search, str(photo)], "id": [*search, f"id:{image_id}"]}


def measure(cmd: list[str]) -> tuple[float, float, float]:
    """(wall s, CPU s, peak RSS MB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[-1:])} failed ({proc.returncode}): {err.strip()[-300:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def imports_torch(cmd: list[str]) -> bool:
    out = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], env=ENV, capture_output=True, text=True)
    return any(line.rstrip().endswith("| torch") for line in out.stderr.splitlines())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", help="an indexed library (default: the sample photos, indexed once)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--prepare", metavar="LIBRARY", help=argparse.SUPPRESS)  # the child of library_in_child
    args = ap.parse_args()
    if args.prepare is not None:
        lib, photo, image_id = library(args.prepare or None)
        print(json.dumps([str(lib), str(photo), image_id]))
        return
    lib, photo, image_id = library_in_child(args.library)
    cmds = commands(lib, photo, image_id)
    for cmd in cmds.values():  # warm-up round
        measure(cmd)
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in KINDS}
    for _ in range(max(1, args.runs)):
        for kind in KINDS:
            runs[kind].append(measure(cmds[kind]))
    out: dict[str, object] = {"runs": args.runs, "cores": len(os.sched_getaffinity(0))}
    base_wall = statistics.median(r[0] for r in runs["numpy"])
    base_cpu = statistics.median(r[1] for r in runs["numpy"])
    table = []
    for kind in KINDS:
        wall = statistics.median(r[0] for r in runs[kind])
        cpu = statistics.median(r[1] for r in runs[kind])
        rss = max(r[2] for r in runs[kind])
        torch = imports_torch(cmds[kind]) if kind != "numpy" else False
        out.update({f"{kind}_s": round(wall, 3), f"{kind}_cpu_s": round(cpu, 3), f"{kind}_rss_mb": round(rss, 1),
                    f"{kind}_vs_numpy": round(wall / base_wall, 2), f"{kind}_cpu_vs_numpy": round(cpu / base_cpu, 2),
                    f"{kind}_torch": torch})
        table.append((kind, wall, cpu, rss, wall / base_wall, cpu / base_cpu, torch))
    out["oov_vs_vocab"] = round(float(out["oov_s"]) / float(out["vocab_s"]), 2)  # type: ignore[arg-type]
    out["oov_cpu_vs_vocab"] = round(float(out["oov_cpu_s"]) / float(out["vocab_cpu_s"]), 2)  # type: ignore[arg-type]
    if args.json:
        print(json.dumps(out))
        return
    print(f"lookalike search, cold processes: median of {args.runs} rounds, side by side ({out['cores']} cores)")
    print(f"{'query':8} {'wall s':>8} {'CPU s':>8} {'peak MB':>8} {'wall/numpy':>11} {'CPU/numpy':>10}  torch")
    for kind, wall, cpu, rss, rw, rc, torch in table:
        print(f"{kind:8} {wall:8.3f} {cpu:8.3f} {rss:8.0f} {rw:11.2f} {rc:10.2f}  {'yes' if torch else 'no'}")
    print(f"oov / vocab: wall {out['oov_vs_vocab']}x, CPU {out['oov_cpu_vs_vocab']}x (target: wall <= 2)")


if __name__ == "__main__":
    main()
