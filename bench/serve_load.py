#!/usr/bin/env python3
"""Load on the REST API: N concurrent clients for a fixed time against a loopback `lookalike serve`, mixing
keyword, uploaded-image and "more like this" queries, while an indexing job runs in the same server.

    python bench/serve_load.py [--clients 16] [--duration 20] [--index-images 400] [--json]

Set-up (not timed): the sample photos from installed packages are copied into a temporary folder, a server is
started (`python -m lookalike.cli serve`, its own process), and the photos are indexed through the API. Then an
indexing job starts on a folder of new, distinct images (edited copies of the samples) and the clients run.
Prints requests/s, p50/p90/p99/max latency and the error count (overall and per query kind), and how much the
indexing job did meanwhile. `--json` prints one object with keys rps, p50_ms, p99_ms, errors (and more).

Side by side on a shared machine: ``--batching-off`` also measures this code with query batching off
(LOOKALIKE_QUERY_BATCHING=0), ``--compare SRC`` the code of another checkout (e.g. ``git archive main`` of
the commit before a change, unpacked); each variant gets a fresh server and library, the variants alternate
for ``--rounds`` rounds, and ``side_by_side`` gives per-variant medians and ratios to this code (requests/s
per round, and the capacity bound from CPU per request, which contention disturbs least).

    python bench/serve_load.py --batching-off --compare /tmp/before --rounds 2 --duration 15

``--servers 1,2`` also runs this code as 2 ``lookalike serve`` processes on the one library (what a reverse
proxy in front of several servers would give): the first indexes and runs the indexing job, the clients are
split between them round-robin, CPU is the servers' sum, CPU per request is measured on the first.
``--workers 2`` runs this code as one ``lookalike serve --workers 2`` (one port: the kernel spreads the
connections; worker 0 runs the indexing job, the other forwards job requests to it); CPU is the process tree's.

Target (issue 14): 2x the requests/s of the code before at p99 <= 0.5 s, zero errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from PIL import Image, ImageEnhance, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from lookalike.samples import copy_samples  # noqa: E402

KEYWORDS = ["cat", "dog", "guitar", "coffee", "fish", "flower", "rocket", "motorcycle", "tent", "chair", "sofa",
            "lamp", "bed", "table", "kitchen", "window", "plant", "car", "person", "sunrise", "snow", "book",
            "bottle", "clock", "mountain"]
MIX = (("keywords", 0.5), ("image", 0.35), ("similar", 0.15))
COPIES: dict[str, str] = {}  # --copies: the image queries' copies parameter (none: the server's default)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k, _ in MIX})
    errors: dict[str, int] = field(default_factory=lambda: {k: 0 for k, _ in MIX})
    samples: list[str] = field(default_factory=list)  # first few error messages
    by_worker: dict[str, int] = field(default_factory=dict)  # answers per X-Lookalike-Worker (serve --workers)
    closed: int = 0  # answers that closed their connection (Connection: close)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, error: str | None, r: httpx.Response | None = None) -> None:
        with self.lock:
            worker = r.headers.get("x-lookalike-worker") if r is not None else None
            self.closed += r is not None and r.headers.get("connection", "").lower() == "close"
            if worker is not None:
                self.by_worker[worker] = self.by_worker.get(worker, 0) + 1
            if error is None:
                self.latencies[kind].append(seconds)
            else:
                self.errors[kind] += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{kind}: {error}")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_edits(sources: list[Path], dest: Path, n: int, seed: int = 0) -> None:
    """n distinct JPEGs (crop, flip, rotate, colour, size) made from the sample photos: new content to index."""
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        src = sources[i % len(sources)]
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            w, h = im.size
            f = rng.uniform(0.6, 0.95)
            x, y = rng.randint(0, int(w * (1 - f))), rng.randint(0, int(h * (1 - f)))
            im = im.crop((x, y, x + int(w * f), y + int(h * f)))
            if rng.random() < 0.5:
                im = ImageOps.mirror(im)
            im = im.rotate(rng.uniform(-8, 8), expand=False)
            im = ImageEnhance.Color(im).enhance(rng.uniform(0.6, 1.4))
            scale = min(1.0, 1024 / max(im.size))
            im = im.resize((max(1, int(im.width * scale)), max(1, int(im.height * scale))))
            im.save(dest / f"edit_{i:05d}.jpg", quality=88)


def make_queries(sources: list[Path], dest: Path) -> None:
    """The sample photos at their own size, cropped by 2 % and saved again (quality 90): photos like the
    library's whose bytes it does not hold (upload queries that need a decode and a forward pass)."""
    dest.mkdir(parents=True, exist_ok=True)
    for src in sources:
        with Image.open(src) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            w, h = im.size
            im.crop((w // 100, h // 100, w - w // 100, h - h // 100)).save(dest / src.name, quality=90)


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:  # type: ignore[type-arg]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            if httpx.get(url + "api/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("server did not start")


def run_job(client: httpx.Client, folder: Path) -> str:
    r = client.post("api/index", json={"folder": str(folder)})
    r.raise_for_status()
    return r.json()["id"]


def wait_job(client: httpx.Client, job_id: str, timeout: float = 600) -> dict:  # type: ignore[type-arg]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        job = client.get(f"api/index/{job_id}").json()
        if job["state"] not in ("queued", "scanning", "running"):
            return job
        time.sleep(0.25)
    raise SystemExit("indexing job did not finish")


def worker(base: str, stop: float, stats: Stats, uploads: list[tuple[str, bytes]], ids: list[int], seed: int,
           only: str | None = None) -> None:
    rng = random.Random(seed)
    kinds, weights = zip(*((k, w) for k, w in MIX if only in (None, k)))
    with httpx.Client(base_url=base, timeout=30) as client:
        while time.monotonic() < stop:
            kind = rng.choices(kinds, weights)[0]
            t = time.perf_counter()
            error = None
            r = None
            try:
                if kind == "keywords":
                    r = client.get("api/search", params={"q": rng.choice(KEYWORDS), "limit": 24})
                elif kind == "image":
                    name, data = rng.choice(uploads)
                    r = client.post("api/search/upload", params={"limit": 24, **COPIES},
                                    files={"image": (name, data, "image/jpeg")})
                else:
                    r = client.get(f"api/images/{rng.choice(ids)}/similar", params={"limit": 24, **COPIES})
                if r.status_code != 200:
                    error = f"HTTP {r.status_code}: {r.text[:200]}"
                elif "results" not in r.json():
                    error = "no results key"
            except httpx.HTTPError as err:
                error = f"{type(err).__name__}: {err}"
            stats.add(kind, time.perf_counter() - t, error, r)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its running descendants (a `serve --workers N`
    supervisor's workers; Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return 0.0
    return own + sum(cpu_seconds(int(k)) for k in kids)


def load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def phase(args: argparse.Namespace, urls: list[str], uploads: list[tuple[str, bytes]], ids: list[int],
          pids: list[int], admin: httpx.Client, job_id: str | None) -> dict[str, object]:
    """Run the clients for args.duration seconds, split round-robin over the servers at ``urls``; measure
    latencies, errors, the servers' CPU use (their sum)."""
    stats = Stats()

    def cpu_seconds_all() -> float:
        return sum(cpu_seconds(p) for p in pids)

    cpu0, own0, start = cpu_seconds_all(), time.process_time(), time.monotonic()
    stop = start + args.duration
    threads = [threading.Thread(target=worker, args=(urls[i % len(urls)], stop, stats, uploads, ids, i))
               for i in range(args.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start
    cpu = cpu_seconds_all() - cpu0
    own = time.process_time() - own0  # the clients themselves: on a small machine they share its cores
    job = admin.get(f"api/index/{job_id}").json() if job_id else None
    all_lat = [x for v in stats.latencies.values() for x in v]
    errors = sum(stats.errors.values())
    n = len(all_lat) + errors
    out: dict[str, object] = {
        "rps": round(n / elapsed, 2), "p50_ms": round(percentile(all_lat, 50) * 1000, 1),
        "p99_ms": round(percentile(all_lat, 99) * 1000, 1), "errors": errors,
        "p90_ms": round(percentile(all_lat, 90) * 1000, 1), "max_ms": round(max(all_lat, default=0) * 1000, 1),
        "requests": n, "clients": args.clients, "servers": len(urls), "duration_s": round(elapsed, 2),
        "cpus": os.cpu_count(),
        "server_cpu_s": round(cpu, 1), "server_cpu_share": round(cpu / (elapsed * (os.cpu_count() or 1)), 3),
        # answered per second of the server's CPU under this load: throughput with the machine's share factored out
        "requests_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
        # the load generator's own CPU (this process, 16 client threads): with the server's, what the machine gave
        "client_cpu_share": round(own / (elapsed * (os.cpu_count() or 1)), 3),
        "load_average_1m": load_average(),
        "by_kind": {k: {"requests": len(v) + stats.errors[k], "errors": stats.errors[k],
                        "p50_ms": round(percentile(v, 50) * 1000, 1), "p99_ms": round(percentile(v, 99) * 1000, 1)}
                    for k, v in stats.latencies.items()},
        "indexing": None,
        "error_samples": stats.samples,
        "answers_by_worker": dict(sorted(stats.by_worker.items())),
        "connections_closed": stats.closed,
    }
    if job:
        running = job["state"] in ("queued", "scanning", "running")
        out["indexing"] = {
            "state": job["state"], "done": job["done"], "total": job["total"],
            "busy_fraction": 1.0 if running else round(min(1.0, job["elapsed_s"] / elapsed), 3),
            "images_per_s": round(job["done"] / min(elapsed, job["elapsed_s"] or elapsed), 2),
        }
    return out


def cpu_cost(url: str, uploads: list[tuple[str, bytes]], ids: list[int], pid: int, seconds: float) -> dict[str, float]:
    """Server CPU milliseconds per request of each kind: one client, one kind at a time, no indexing. Unlike
    latency, this hardly depends on what else runs on the machine; 1000 * cores / cost is a capacity bound."""
    out = {}
    for kind, _ in MIX:
        stats = Stats()
        cpu0 = cpu_seconds(pid)
        worker(url, time.monotonic() + seconds, stats, uploads, ids, 0, only=kind)
        n = len(stats.latencies[kind]) + stats.errors[kind]
        out[kind] = round((cpu_seconds(pid) - cpu0) * 1000 / max(n, 1), 1)
    return out


def summary_line(ph: dict[str, object]) -> str:
    return (f"{ph['rps']} requests/s, p50 {ph['p50_ms']} ms, p99 {ph['p99_ms']} ms, {ph['errors']} errors, "
            f"server CPU {ph['server_cpu_s']} s ({float(ph['server_cpu_share']) * 100:.0f}% of the machine, "  # type: ignore[arg-type]
            f"{ph['requests_per_cpu_s']} requests per CPU second; clients "
            f"{float(ph['client_cpu_share']) * 100:.0f}%), load average {ph['load_average_1m']}"
            + (f", indexing {ph['indexing']['images_per_s']} images/s" if ph.get("indexing") else ""))  # type: ignore[index]


def print_phase(name: str, ph: dict[str, object]) -> None:
    ix = ph["indexing"]
    print(f"\n[{name}] {ph['clients']} clients for {ph['duration_s']} s on {ph['cpus']} CPUs"
          f"{', indexing job running' if ix else ', no indexing'}")
    print(f"{'kind':10s} {'requests':>9s} {'errors':>7s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for k, v in ph["by_kind"].items():  # type: ignore[union-attr]
        print(f"{k:10s} {v['requests']:9d} {v['errors']:7d} {v['p50_ms']:8.1f} {v['p99_ms']:8.1f}")
    print(f"{'all':10s} {ph['requests']:9d} {ph['errors']:7d} {ph['p50_ms']:8.1f} {ph['p99_ms']:8.1f}")
    print(summary_line(ph))
    if ix:
        print(f"indexing job: {ix['state']}, {ix['done']}/{ix['total']} images read "  # type: ignore[index]
              f"({ix['images_per_s']} images/s), busy {float(ix['busy_fraction']) * 100:.0f}% of the run")  # type: ignore[index]
    for s in ph["error_samples"]:  # type: ignore[union-attr]
        print("error:", s)


def measure(args: argparse.Namespace, tmp: Path, base_dir: Path, new_dir: Path, src: Path,
            env_extra: dict[str, str], log, servers: int = 1,  # type: ignore[no-untyped-def]
            workers: int = 1) -> dict[str, object]:
    """``servers`` server processes (code from ``src``, extra environment ``env_extra``; each ``serve --workers
    workers`` when that is above 1) on one fresh library: set-up, CPU per request, the optional baseline and
    the load phase. They are stopped before this returns."""
    sources = sorted(base_dir.glob("*.jpg"))
    query_dir = tmp / "queries"
    if args.uploads == "new" and not query_dir.is_dir():
        make_queries(sources[:: max(1, len(sources) // 12)], query_dir)
    lib_dir = Path(tempfile.mkdtemp(prefix="library-", dir=tmp))
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOKALIKE_")}
    env["PYTHONPATH"] = str(src / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra)
    procs: list[subprocess.Popen] = []  # type: ignore[type-arg]
    urls: list[str] = []

    def start_server() -> None:
        port = free_port()
        urls.append(f"http://127.0.0.1:{port}/")
        cmd = [sys.executable, "-m", "lookalike.cli", "serve", "--library", str(lib_dir), "--port", str(port),
               "--index-root", str(tmp), "--threads", str(args.server_threads)]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        wait_health(urls[-1], procs[-1])

    try:
        start_server()
        url, proc = urls[0], procs[0]
        with httpx.Client(base_url=url, timeout=60) as admin:
            t = time.perf_counter()
            job = wait_job(admin, run_job(admin, base_dir))
            log(f"set-up: indexed {job['summary']['indexed']} sample photos in {time.perf_counter() - t:.1f} s")
            for _ in range(servers - 1):  # the others open the indexed library
                start_server()
            ids = [r["id"] for r in admin.get("api/search", params={"q": "cat dog guitar chair sofa lamp fish",
                                                                     "limit": 200}).json()["results"]]
            ids = ids or [1]
            picked = sources[:: max(1, len(sources) // 12)]
            if args.uploads == "new":  # not in the library: every upload is decoded and embedded
                picked = [query_dir / p.name for p in picked]
            uploads = [(p.name, p.read_bytes()) for p in picked]
            cost = None if args.no_cost else cpu_cost(url, uploads, ids, proc.pid, 4.0)
            if cost:
                log(f"server CPU ms per request, one client at a time: {cost}")
            phases: dict[str, dict[str, object]] = {}
            pids = [p.pid for p in procs]
            if args.baseline:
                phases["baseline"] = phase(args, urls, uploads, ids, pids, admin, None)
                log(f"baseline (no indexing): {summary_line(phases['baseline'])}")
            job_id = None if args.no_index else run_job(admin, new_dir)
            if job_id:
                time.sleep(0.5)  # let the job get past scanning
            phases["load"] = phase(args, urls, uploads, ids, pids, admin, job_id)
            log(f"load{' (indexing)' if job_id else ''}: {summary_line(phases['load'])}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    result = dict(phases["load"])
    result["phases"] = phases
    if cost:
        mixed = sum(cost[k] * w for k, w in MIX)
        result["cpu_ms_per_request"] = {**cost, "mix": round(mixed, 1)}
        result["capacity_rps_bound"] = round(1000 * (os.cpu_count() or 1) / mixed, 1)
    if "baseline" in phases:
        result["baseline"] = phases["baseline"]
    return result


def variants(args: argparse.Namespace) -> list[tuple[str, Path, dict[str, str], int, int]]:
    """(name, source tree, extra environment, server processes, workers of each) of each variant; "this"
    first."""
    counts = dict.fromkeys(max(1, int(x)) for x in args.servers.split(",") if x.strip()) or {1: None}
    out = [("this" if n == 1 else f"this-{n}-servers", ROOT, {}, n, 1) for n in counts]
    out += [(f"this-workers-{w}", ROOT, {}, 1, w)
            for w in dict.fromkeys(int(x) for x in args.workers.split(",") if x.strip()) if w > 1]
    if args.batching_off:
        out.append(("no-batching", ROOT, {"LOOKALIKE_QUERY_BATCHING": "0"}, 1, 1))
    if args.compare:
        out.append(("compare", Path(args.compare).resolve(), {}, 1, args.compare_workers))
    return out


def median(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def side_by_side(runs: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    """Per variant: medians over rounds of rps, p99 and CPU per request; ratios to the first variant (per
    round, then the median)."""
    first = next(iter(runs))
    out: dict[str, object] = {}
    for name, rs in runs.items():
        row: dict[str, object] = {
            "rps": round(median([float(r["rps"]) for r in rs]), 2),  # type: ignore[arg-type]
            "p50_ms": round(median([float(r["p50_ms"]) for r in rs]), 1),  # type: ignore[arg-type]
            "p99_ms": round(median([float(r["p99_ms"]) for r in rs]), 1),  # type: ignore[arg-type]
            "errors": sum(int(r["errors"]) for r in rs),  # type: ignore[call-overload]
            "requests_per_cpu_s": round(median([float(r["requests_per_cpu_s"] or 0) for r in rs]), 1),  # type: ignore[arg-type]
            "server_cpu_share": round(median([float(r["server_cpu_share"]) for r in rs]), 3),  # type: ignore[arg-type]
            "client_cpu_share": round(median([float(r.get("client_cpu_share") or 0) for r in rs]), 3),  # type: ignore[arg-type]
            "rounds": len(rs),
            "answers_by_worker": [r.get("answers_by_worker") for r in rs],
            "connections_closed": [r.get("connections_closed") for r in rs],
        }
        mix = [float(r["cpu_ms_per_request"]["mix"]) for r in rs if r.get("cpu_ms_per_request")]  # type: ignore[index]
        if mix:
            row["cpu_ms_mix"] = round(median(mix), 1)
            row["capacity_rps_bound"] = round(1000 * (os.cpu_count() or 1) / median(mix), 1)
        if name != first:
            pairs = list(zip(runs[first], rs))
            row[f"{first}_rps_ratio"] = round(median([float(a["rps"]) / float(b["rps"]) for a, b in pairs]), 3)  # type: ignore[arg-type]
            row[f"{first}_per_cpu_ratio"] = round(median([float(a["requests_per_cpu_s"] or 0) / float(b["requests_per_cpu_s"] or 1)  # type: ignore[arg-type]
                                                         for a, b in pairs]), 3)
            if mix:
                row[f"{first}_capacity_ratio"] = round(median(
                    [float(b["cpu_ms_per_request"]["mix"]) / float(a["cpu_ms_per_request"]["mix"])  # type: ignore[index]
                     for a, b in pairs]), 3)
        out[name] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    ap.add_argument("--index-images", type=int, default=400, help="new images the indexing job works through")
    ap.add_argument("--no-index", action="store_true", help="no indexing job during the load")
    ap.add_argument("--baseline", action="store_true",
                    help="first run the same load without an indexing job, and report both (side by side)")
    ap.add_argument("--no-cost", action="store_true", help="skip measuring CPU per request of each kind")
    ap.add_argument("--server-threads", type=int, default=1, help="the server's --threads (torch threads per call)")
    ap.add_argument("--batching-off", action="store_true",
                    help="also measure this code with query batching off (LOOKALIKE_QUERY_BATCHING=0), side by side")
    ap.add_argument("--compare", metavar="SRC",
                    help="also measure the code of another checkout (its src/ folder), e.g. the main branch before a change")
    ap.add_argument("--copies", choices=("on", "off"),
                    help="image queries ask for copy verification of their top results (default: the server's "
                         "default, on); off compares with code from before that verification existed")
    ap.add_argument("--uploads", choices=("library", "new"), default="library",
                    help="uploaded query photos: the library's own sample photos (default; a server may answer "
                         "them from the vectors it holds) or copies of them cropped by 2%% that it does not hold")
    ap.add_argument("--servers", default="1", metavar="N[,N...]",
                    help="server processes on the one library, a variant of this code each (e.g. 1,2)")
    ap.add_argument("--workers", default="1", metavar="N[,N...]",
                    help="also one `lookalike serve --workers N` of this code, a variant each N above 1 (e.g. 2)")
    ap.add_argument("--compare-workers", type=int, default=1, metavar="N",
                    help="run the --compare code as `lookalike serve --workers N` too (default 1: one process)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds over the variants, alternating (medians)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()

    if args.copies:
        COPIES["copies"] = "true" if args.copies == "on" else "false"
    tmp = Path(tempfile.mkdtemp(prefix="lookalike-serve-load-"))
    try:
        log = (lambda *a: print(*a, file=sys.stderr)) if args.json else print
        base_dir, new_dir = tmp / "photos", tmp / "incoming"
        copy_samples(base_dir, None)
        make_edits(sorted(base_dir.glob("*.jpg")), new_dir, 0 if args.no_index else args.index_images)
        todo = variants(args)
        runs: dict[str, list[dict[str, object]]] = {name: [] for name, *_ in todo}
        for r in range(args.rounds):
            for name, src, env_extra, servers, workers in todo:
                if len(todo) > 1 or args.rounds > 1:
                    log(f"\n== round {r + 1}/{args.rounds}: {name} ({src}{' ' + str(env_extra) if env_extra else ''})")
                runs[name].append(measure(args, tmp, base_dir, new_dir, src, env_extra, log, servers, workers))
        result = dict(runs[todo[0][0]][-1])
        phases = result.pop("phases")
        if len(todo) > 1 or args.rounds > 1:
            result["side_by_side"] = side_by_side(runs)
            result["load_average_1m_end"] = load_average()
        errors = sum(int(x["errors"]) for rs in runs.values() for x in rs)  # type: ignore[call-overload]
        if args.json:
            print(json.dumps(result))
        else:
            for name, ph in phases.items():  # type: ignore[attr-defined]
                print_phase(name, ph)
            if result.get("cpu_ms_per_request"):
                print(f"\nserver CPU per request (ms): {result['cpu_ms_per_request']}; the mix on "
                      f"{os.cpu_count()} idle cores could serve at most {result['capacity_rps_bound']} requests/s")
            if "side_by_side" in result:
                print(f"\nside by side ({args.rounds} round(s), variants alternating; medians):")
                for name, row in result["side_by_side"].items():  # type: ignore[union-attr]
                    print(f"  {name:12s} " + ", ".join(f"{k} {v}" for k, v in row.items()))
        return 0 if errors == 0 else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
