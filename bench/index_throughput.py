#!/usr/bin/env python
"""Indexing throughput: model-only forward vs end-to-end ``lookalike index``, side by side in one run.

The image set is built from the real sample photos that installed packages carry (lookalike.samples; the
interior photos are up to 1920x2888), upscaled and re-encoded as phone-camera JPEGs: 4:3, the sizes given by
``--sizes`` (megapixels), quality 90, a little sensor-like grain so the files weigh what phone photos weigh,
portrait shots stored landscape with an EXIF orientation tag (as phones do) and a slightly different crop,
shift and colour per copy so every file is distinct. The set is cached in the temp folder.

Each round measures, one after the other on the same files and batch size:
  model-only   the engine's forward pass alone on preprocessed batches of these photos (in this process)
  decode-only  reading, hashing, decoding and preprocessing alone, with the indexer's decoding threads
  end-to-end   ``python -m lookalike.cli index`` in a fresh process on a fresh library (its own figure
               excludes start-up and model loading; peak RSS is the child's)
and the table gives the medians over ``--repeat`` rounds; ratio = end-to-end / model-only, computed per
round (side by side) and then the median. ``--count 100,200,400`` adds one row per count, to show that peak
memory stays flat as the collection grows.

Two more views make the figures readable on a machine shared with others:
  shared-core ceiling  1 / (1/model-only + 1/decode-only): the best end-to-end can do when both stages must
                       share the same cores (every image costs a forward pass AND a decode)
  CPU ms per image     process CPU time per image of each stage; CPU ratio = model / end-to-end CPU per image
                       is the throughput ratio that cores of our own would show (contention changes CPU
                       time far less than wall time); cpu_of_ceiling = (model + decode CPU per image) /
                       end-to-end CPU per image, the shared-core ceiling in CPU time
  decode vs djpeg      the indexer's decode-only CPU per image / ``djpeg -scale 1/8``'s on the same files
                       (``decode_vs_djpeg``; Debian libjpeg-turbo-progs; target <= 1.2)
On a GPU (``--device cuda``) the decode-only figure is the decode ceiling: ``of_decode_ceiling`` =
end-to-end / decode-only.

    python bench/index_throughput.py                      # 128 images of 12/8/5/2 MP, CPU
    python bench/index_throughput.py --count 64,128,256 --repeat 3
    python bench/index_throughput.py --engine torch --json
    python bench/index_throughput.py --device cuda        # on a machine with a GPU
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BUILD_VERSION = "1"  # bump when the builder's output changes
GRAIN_SIGMA = 4.0


# -- the image set ---------------------------------------------------------------------------------------
def _sources() -> list[Path]:
    from PIL import Image

    from lookalike.samples import sample_photos

    out = []
    for _, p in sorted(sample_photos().items()):
        with Image.open(p) as im:
            if min(im.size) >= 400:
                out.append(p)
    return out


def _make_one(args: tuple[str, str, float, int]) -> int:
    """One phone-camera JPEG from a source photo; returns its size in bytes."""
    from PIL import Image, ImageChops, ImageEnhance

    from lookalike.io.read import to_rgb

    src, dest, mp, seed = args
    rng = np.random.default_rng(seed)
    with Image.open(src) as im:
        img = to_rgb(im).copy()
    portrait = img.height > img.width
    aspect = 3 / 4 if portrait else 4 / 3  # width / height
    w, h = img.size
    cw, ch = (w, round(w / aspect)) if w / h < aspect else (round(h * aspect), h)
    keep = rng.uniform(0.88, 1.0)  # crop a little, at a random place
    cw, ch = max(64, round(cw * keep)), max(64, round(ch * keep))
    left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((left, top, left + cw, top + ch))
    for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhancer(img).enhance(float(rng.uniform(0.92, 1.08)))
    long_side = round((mp * 1e6 * 4 / 3) ** 0.5)
    short_side = round(long_side * 3 / 4)
    size = (short_side, long_side) if portrait else (long_side, short_side)
    img = img.resize(size, Image.Resampling.BICUBIC)
    grain = Image.effect_noise(size, GRAIN_SIGMA)  # sensor-like noise: files weigh what phone photos weigh
    img = ImageChops.add(img, Image.merge("RGB", (grain, grain, grain)), 1.0, -128)
    exif = Image.Exif()
    exif[271], exif[272] = "LookalikeBench", f"Phone {mp:g}MP"
    exif[306] = f"2024:0{1 + seed % 9}:1{seed % 10} 12:00:00"
    if portrait:  # phones store portrait shots as landscape pixels + orientation 6 (rotate 90 CW to view)
        img = img.transpose(Image.Transpose.ROTATE_90)
        exif[0x0112] = 6
    tmp = dest + ".tmp"
    img.save(tmp, "JPEG", quality=90, exif=exif.tobytes())
    os.replace(tmp, dest)
    return os.path.getsize(dest)


def build_set(count: int, sizes: list[float], seed: int, cache: Path) -> list[Path]:
    """The first ``count`` images of the set for (sizes, seed), building only those missing."""
    key = hashlib.sha1(f"{BUILD_VERSION}|{sizes}|{seed}|{GRAIN_SIGMA}".encode()).hexdigest()[:10]
    folder = cache / f"set-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    sources = _sources()
    if not sources:
        raise SystemExit("no sample photos found: install the photo packages (make install)")
    paths = [folder / f"img{i:05d}-{sizes[i % len(sizes)]:g}mp.jpg" for i in range(count)]
    todo = [(str(sources[(i * 7) % len(sources)]), str(p), sizes[i % len(sizes)], seed * 100_003 + i)
            for i, p in enumerate(paths) if not p.is_file()]
    if todo:
        print(f"building {len(todo)} phone-size JPEGs in {folder} ...", file=sys.stderr)
        with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
            list(pool.map(_make_one, todo, chunksize=4))
    return paths


def link_dir(paths: list[Path], cache: Path) -> Path:
    """A folder holding exactly these files (hard links), for ``lookalike index FOLDER``."""
    key = hashlib.sha1("|".join(map(str, paths)).encode()).hexdigest()[:10]
    d = cache / f"run-{len(paths)}-{key}"
    if not d.is_dir():
        tmp = Path(tempfile.mkdtemp(dir=cache))
        for p in paths:
            try:
                os.link(p, tmp / p.name)
            except OSError:
                os.symlink(p, tmp / p.name)
        os.replace(tmp, d)
    return d


# -- measurements ----------------------------------------------------------------------------------------
def model_only(model, inputs: np.ndarray, count: int, batch: int, min_s: float = 2.0) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(images/s, CPU ms per image) of the forward pass alone, over at least ``count`` images and ``min_s`` s."""
    model.forward(inputs[:batch])  # warm-up
    done, t0, c0, i = 0, time.perf_counter(), time.process_time(), 0
    while done < count or time.perf_counter() - t0 < min_s:
        idx = [(i + k) % len(inputs) for k in range(batch)]
        model.forward(inputs[idx])
        i += batch
        done += batch
    return done / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / done


def decode_only(paths: list[Path], model, settings) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(images/s, CPU ms per image) of the indexer's own read + hash + decode + preprocess + phash step,
    with its decoding threads."""
    from lookalike.indexer import decode_workers, prepare
    from lookalike.io.crawl import FileEntry

    entries = [FileEntry(str(p), p.stat().st_size, p.stat().st_mtime) for p in paths]
    t0, c0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(decode_workers(settings, model)) as pool:  # results dropped as they come
        bad = [w.error for w in pool.map(lambda e: prepare(e, model, settings), entries) if w.error]
    if bad:
        raise SystemExit(f"decode failed: {bad[0]}")
    return len(paths) / (time.perf_counter() - t0), (time.process_time() - c0) * 1000 / len(paths)


def djpeg_only(paths: list[Path]) -> float | None:
    """CPU ms per image of libjpeg-turbo's own ``djpeg -scale 1/8`` (Debian libjpeg-turbo-progs) on the same
    files, one process per file (its start-up, ~1 ms, is included: the comparison flatters djpeg slightly
    less than it seems). None when djpeg is not installed."""
    import shutil

    djpeg = shutil.which("djpeg")
    if djpeg is None:
        return None
    before = os.times()
    for p in paths:
        subprocess.run([djpeg, "-scale", "1/8", "-outfile", os.devnull, str(p)], check=True)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return cpu * 1000 / len(paths)


def end_to_end(folder: Path, args: argparse.Namespace) -> tuple[float, float, float, int]:
    """(images/s, CPU ms per image, peak RSS MB, images indexed) of ``lookalike index`` in a fresh process
    and library."""
    with tempfile.TemporaryDirectory(prefix="lookalike-bench-lib-") as lib:
        hwm = Path(lib) / "peak-rss"
        cmd = [sys.executable, "-c", _PEAK_RSS_WRAPPER, str(hwm), "index", str(folder), "--library", lib, "--json",
               "--batch-size", str(args.batch_size), "--device", args.device, "--engine", args.engine]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # reap it ourselves: its own peak RSS, not all children's
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0), err.seek(0)
            stdout, stderr = out.read(), err.read()
        if proc.returncode:
            raise SystemExit(f"lookalike index failed: {stderr.decode(errors='replace').strip()[-500:]}")
        # VmHWM of the child's own memory; ru_maxrss would also count this (big) process's peak, which Linux
        # hands to a child when it execs
        rss_mb = int(hwm.read_text().split()[1]) / 1024 if hwm.is_file() else usage.ru_maxrss / 1024
    summary = json.loads(stdout)
    n = int(summary["indexed"])
    return float(summary["images_per_s"]), float(summary["cpu_s"]) * 1000 / max(n, 1), rss_mb, n


# ``lookalike`` CLI that writes its own peak RSS (VmHWM, Linux) to the file named by its first argument at exit
_PEAK_RSS_WRAPPER = """
import atexit, sys
out = sys.argv.pop(1)
def peak():
    try:
        line = next(x for x in open("/proc/self/status") if x.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return
    open(out, "w").write(line)
atexit.register(peak)
from lookalike.cli import main
sys.exit(main(sys.argv[1:]))
"""


# -- main ------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", default="128", help="images per run; a comma list gives one row per count")
    ap.add_argument("--sizes", default="12,8,5,2", help="megapixels of the phone JPEGs, used in turn")
    ap.add_argument("--batch-size", type=int, default=0, help="images per forward pass (default: the indexer's "
                    "choice, Settings.index_batch: 8 on the CPU, 32 on a GPU)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; the table gives medians")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--engine", default="auto", choices=("auto", "torch", "onnx"))
    ap.add_argument("--workers", type=int, default=0, help="decoding threads (default: the indexer's choice)")
    ap.add_argument("--threads", type=int, default=0, help="inference threads (default: all cores)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "lookalike-bench-images"))
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    from lookalike.config import DEFAULT_MODEL, Settings
    from lookalike.indexer import prepare
    from lookalike.io.crawl import FileEntry
    from lookalike.models.registry import load_model

    counts = [int(c) for c in args.count.split(",")]
    sizes = [float(s) for s in args.sizes.split(",")]
    cache = Path(args.cache)
    paths_all = build_set(max(counts), sizes, args.seed, cache)
    settings = Settings.from_env(device=args.device, engine=args.engine, batch_size=args.batch_size or None,
                                 workers=args.workers or None, threads=args.threads or None)
    model = load_model(settings.model or DEFAULT_MODEL, settings.device, settings.threads, settings.engine)
    args.batch_size = settings.index_batch(str(getattr(model, "device", settings.device)))
    sample = paths_all[: min(len(paths_all), 64)]
    inputs = np.stack([prepare(FileEntry(str(p), p.stat().st_size, p.stat().st_mtime), model, settings).pixels
                       for p in sample])  # type: ignore[misc]
    mb = [p.stat().st_size / 1e6 for p in paths_all]
    rows = []
    for count in counts:
        paths = paths_all[:count]
        folder = link_dir(paths, cache)
        m_runs, d_runs, e_runs, r_runs, rss_runs, mc, dc, ec = [], [], [], [], [], [], [], []  # type: ignore[var-annotated]
        dj_runs: list[float] = []
        for _ in range(args.repeat):
            m, m_cpu = model_only(model, inputs, count, args.batch_size)
            d, d_cpu = decode_only(paths, model, settings)
            dj = djpeg_only(paths)
            if dj:
                dj_runs.append(d_cpu / dj)
            e, e_cpu, rss, n = end_to_end(folder, args)
            if n != count:
                raise SystemExit(f"end-to-end indexed {n} of {count} images")
            m_runs.append(m), d_runs.append(d), e_runs.append(e), r_runs.append(e / m), rss_runs.append(rss)
            mc.append(m_cpu), dc.append(d_cpu), ec.append(e_cpu)
        rows.append({
            "images": count, "model_only_ips": round(statistics.median(m_runs), 1),
            "decode_only_ips": round(statistics.median(d_runs), 1),
            "end_to_end_ips": round(statistics.median(e_runs), 1), "ratio": round(statistics.median(r_runs), 3),
            # both stages on the same cores with perfect overlap: 1 / (1/model + 1/decode), per round
            "ceiling_ips": round(statistics.median(1 / (1 / m + 1 / d) for m, d in zip(m_runs, d_runs)), 1),
            "of_ceiling": round(statistics.median(e / (1 / (1 / m + 1 / d))
                                                  for m, d, e in zip(m_runs, d_runs, e_runs)), 3),
            "ratio_min": round(min(r_runs), 3), "ratio_max": round(max(r_runs), 3),
            # CPU time per image: what the wall-clock figures would be on cores of our own (contention-proof)
            "model_cpu_ms": round(statistics.median(mc), 2), "decode_cpu_ms": round(statistics.median(dc), 2),
            "end_to_end_cpu_ms": round(statistics.median(ec), 2),
            # the ceiling in CPU time: (model + decode CPU per image) / end-to-end CPU per image, per round;
            # unlike of_ceiling it hardly depends on the share of a shared machine each stage happened to get
            "cpu_of_ceiling": round(statistics.median((a + b) / c for a, b, c in zip(mc, dc, ec)), 3),
            "cpu_ratio": round(statistics.median(a / b for a, b in zip(mc, ec)), 3),
            # the indexer's read + hash + decode + preprocess + phash CPU per image / djpeg -scale 1/8's, per round
            "decode_vs_djpeg": round(statistics.median(dj_runs), 3) if dj_runs else None,
            "peak_rss_mb": round(max(rss_runs), 1), "device": f"{settings.device} ({getattr(model, 'engine', '?')}, "
                                                              f"{os.cpu_count()} cores)",
            "rounds": {"model_only": [round(x, 1) for x in m_runs], "decode_only": [round(x, 1) for x in d_runs],
                       "end_to_end": [round(x, 1) for x in e_runs], "model_cpu_ms": [round(x, 2) for x in mc],
                       "end_to_end_cpu_ms": [round(x, 2) for x in ec]},
        })
    last = rows[-1]
    result = {**{k: last[k] for k in ("model_only_ips", "end_to_end_ips", "ratio", "peak_rss_mb", "device")},
              "decode_only_ips": last["decode_only_ips"], "ceiling_ips": last["ceiling_ips"],
              "of_ceiling": last["of_ceiling"], "images": last["images"], "model_cpu_ms": last["model_cpu_ms"],
              "decode_cpu_ms": last["decode_cpu_ms"], "end_to_end_cpu_ms": last["end_to_end_cpu_ms"],
              "cpu_ratio": last["cpu_ratio"], "decode_vs_djpeg": last["decode_vs_djpeg"],
              "cpu_of_ceiling": last["cpu_of_ceiling"],
              "of_decode_ceiling": round(last["end_to_end_ips"] / last["decode_only_ips"], 3),
              "batch_size": args.batch_size, "sizes_mp": sizes, "mean_file_mb": round(float(np.mean(mb)), 2),
              "load_avg_1min": round(os.getloadavg()[0], 2), "rows": rows}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{len(paths_all)} phone JPEGs of {'/'.join(f'{s:g}' for s in sizes)} MP, mean {result['mean_file_mb']} MB;"
          f" batch {args.batch_size}; {args.repeat} rounds (medians); load average now {result['load_avg_1min']}")
    head = ("images", "model-only img/s", "decode-only img/s", "end-to-end img/s", "ratio (min-max)",
            "shared-core ceiling img/s", "end-to-end / ceiling", "CPU ms/img model | decode | end-to-end",
            "CPU ratio", "decode CPU / djpeg", "peak RSS MB", "device")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join([str(r["images"]), f"{r['model_only_ips']:.1f}", f"{r['decode_only_ips']:.1f}",
                          f"{r['end_to_end_ips']:.1f}", f"{r['ratio']:.2f} ({r['ratio_min']:.2f}-{r['ratio_max']:.2f})",
                          f"{r['ceiling_ips']:.1f}", f"{r['of_ceiling']:.2f}",
                          f"{r['model_cpu_ms']:.1f} | {r['decode_cpu_ms']:.1f} | {r['end_to_end_cpu_ms']:.1f}",
                          f"{r['cpu_ratio']:.2f}",
                          f"{r['decode_vs_djpeg']:.2f}" if r["decode_vs_djpeg"] else "no djpeg",
                          f"{r['peak_rss_mb']:.0f}", r["device"]]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
