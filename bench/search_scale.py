"""Vector search at scale in the embedded store: approximate index vs exact, and vs a numpy brute-force scan.

The vectors keep the structure of real embeddings: EfficientNet-Lite0 embeddings of the packages' sample
photos (+ mvtb-data's when installed), of 16 edited copies and 8 random crops of each (~3,000 real vectors,
computed once and cached), topped up to N with perturbations of them: a random mix of two real vectors plus
Gaussian noise shaped by their principal components (one standard deviation per component), clipped at
zero like the network's pooled features, L2-normalised. Not uniform random: clusters, a low-rank spread.

What runs is the product path: N records written to a real SQLiteStore, ``store.optimize()`` builds and saves
the index (``auto``: ivf-sq8-fast from 25k vectors), then a fresh process opens the library, loads the saved
index and answers single queries on one thread through ``store.knn`` (after one untimed pass). Printed per
path (store.knn with the default, the index alone, store.knn with the k results re-scored exactly from
SQLite, the path before adaptive probing: fixed nprobe, the change log read per query; then ``--sweep``
settings on the same index): recall@10 vs exact, wall and thread-CPU p50/p99 (the CPU time is what a query
costs; the wall time also holds waits for a core on a shared machine), the scores' error against the exact
cosines, and the load average. The queries: held-out edits of real photos and fresh perturbations (not stored).

    nice -n 10 python bench/search_scale.py --n 1000000         # a table
    python bench/search_scale.py --n 1000000 --kind ivf-sq8-fast,ivf-pca-sq8   # two kinds side by side
    python bench/search_scale.py --n 100000 --json  # {"n", "recall_at_10", "p50_ms", "p99_ms", "cpu_p50_ms",
                                                    #  "bytes_per_image", "score_err_max", "runs", ...}; table on stderr
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.stores.base import ImageRecord  # noqa: E402
from lookalike.stores.sqlite import SQLiteStore  # noqa: E402
from lookalike.stores.vectors import VectorIndex  # noqa: E402

K = 10


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# -- real embeddings ------------------------------------------------------------------------------------------
def real_embeddings(cache_dir: Path, samples_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(collection-side real vectors, held-out real query vectors), cached by model and photo list."""
    from PIL import Image

    from lookalike.evaluation.copies import image_files
    from lookalike.evaluation.edits import EDITS, apply
    from lookalike.io.read import load
    from lookalike.models.registry import load_model
    from lookalike.samples import package_dir, sample_photos

    model = load_model("efficientnet-lite0")
    photos = [str(p) for p in sample_photos().values()]
    mv = package_dir("mvtbdata")
    photos += [str(p) for p in image_files(mv)] if mv and not samples_only else []
    key = hashlib.sha1(("\n".join(photos) + model.version).encode()).hexdigest()[:12]
    path = cache_dir / f"search-scale-real-{key}.npz"
    if path.is_file():
        d = np.load(path)
        return d["base"], d["held_out"]
    print(f"embedding {len(photos)} photos, their edits and crops (once; cached in {path})", file=sys.stderr)
    base, held = [], []
    rng = random.Random(0)
    for n, p in enumerate(photos):
        img = load(p, min_side=None).image
        img.thumbnail((1024, 1024), Image.Resampling.BILINEAR)
        views = [img]
        for _ in range(8):  # random crops of 50-90% of each side
            w, h = img.size
            f = rng.uniform(0.5, 0.9)
            cw, ch = max(1, int(w * f)), max(1, int(h * f))
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            views.append(img.crop((x, y, x + cw, y + ch)))
        edits = [apply(e, img, seed=n) for e in EDITS]
        base.append(model.encode(views).embeddings)
        enc = model.encode(edits).embeddings
        base.append(enc[::2])  # half the edits in the collection, half held out as queries
        held.append(enc[1::2])
        print(f"\r  {n + 1}/{len(photos)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    cache_dir.mkdir(parents=True, exist_ok=True)
    out = np.concatenate(base).astype(np.float32), np.concatenate(held).astype(np.float32)
    np.savez(path, base=out[0], held_out=out[1])
    return out


class Perturber:
    """Mixtures of two real vectors + principal-component-shaped noise, clipped at 0, L2-normalised."""

    def __init__(self, real: np.ndarray, noise: float = 1.0) -> None:
        self.real = real
        mean = real.mean(0)
        _, s, vt = np.linalg.svd(real - mean, full_matrices=False)
        self.basis = (vt * (s / np.sqrt(len(real)))[:, None] * noise).astype(np.float32)

    def __call__(self, n: int, rng: np.random.Generator) -> np.ndarray:
        a = self.real[rng.integers(0, len(self.real), n)]
        b = self.real[rng.integers(0, len(self.real), n)]
        lam = rng.uniform(0, 1, (n, 1)).astype(np.float32)
        x = lam * a + (1 - lam) * b + rng.standard_normal((n, len(self.basis)), dtype=np.float32) @ self.basis
        np.maximum(x, 0, out=x)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def dataset(n: int, n_queries: int, cache_dir: Path, samples_only: bool = False,
            alloc=None, query_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """(n collection vectors, queries); ``alloc(shape)`` makes the collection's array (e.g. a file-backed
    memmap, so that 1M x 1280 floats live in the page cache rather than in the process). ``query_seed``
    draws another query set (other held-out edits from the same pool, other perturbations) over the same
    collection: settings tuned on one seed are reported on another."""
    base, held = real_embeddings(cache_dir, samples_only)
    gen = Perturber(np.concatenate([base, held]))
    rng = np.random.default_rng(0)
    shape = (n, base.shape[1])
    x = alloc(shape) if alloc else np.empty(shape, np.float32)
    m = min(n, len(base))
    x[:m] = base[:m]
    for i in range(m, n, 65536):
        j = min(n, i + 65536)
        x[i:j] = gen(j - i, rng)
    half = n_queries // 2
    pick, fresh = (rng, np.random.default_rng(1)) if not query_seed else \
        (np.random.default_rng(1000 + query_seed), np.random.default_rng(2000 + query_seed))
    queries = np.concatenate([held[pick.choice(len(held), min(half, len(held)), replace=False)],
                              gen(n_queries - min(half, len(held)), fresh)])
    return x, queries


# -- the store ------------------------------------------------------------------------------------------------
def write_store(lib: Path, x: np.ndarray, kind: str) -> float:
    """Write the vectors as image records. Returns the seconds it took."""
    store = SQLiteStore(lib, vector_index=kind)
    store.set_model_info("efficientnet-lite0", "bench", x.shape[1])
    t = time.perf_counter()
    batch = 5000
    for i in range(0, len(x), batch):
        store.write(upserts=[ImageRecord(path=f"/bench/{j}.jpg", size=1, mtime=1.0, sha=f"{j:x}", width=1, height=1,
                                         embedding=x[j]) for j in range(i, min(len(x), i + batch))])
        print(f"\r  writing {min(len(x), i + batch)}/{len(x)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    store.close()
    return time.perf_counter() - t


def build_index(lib: Path, kind: str) -> float:
    """``optimize()``: train, add and save the index, as after ``lookalike index``. Returns seconds."""
    store = SQLiteStore(lib, vector_index=kind)
    t = time.perf_counter()
    store.optimize(progress=True)
    store.close()
    return time.perf_counter() - t


def timed(fn, queries: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """``fn(q)`` on every query: (results, wall ms, thread CPU ms)."""
    for q in queries[:5]:
        fn(q)  # warm up
    out, wall, cpu = [], [], []
    for q in queries:
        c, t = time.thread_time(), time.perf_counter()
        out.append(fn(q))
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return out, np.array(wall) * 1000, np.array(cpu) * 1000


def search_child(lib: str, queries: np.ndarray, nprobe: int, sweep: list[tuple[int, ...]],
                 out: "mp.Queue[dict]") -> None:
    """In a fresh process: open the library, load the saved index, answer single queries (one thread)."""
    import faiss

    faiss.omp_set_num_threads(1)
    before = rss_mb()
    t = time.perf_counter()
    store = SQLiteStore(lib, nprobe=nprobe)
    idx = store.vector_index()
    load_s = time.perf_counter() - t
    after = rss_mb()
    default = (idx.nprobe, idx.k_factor, idx.probe_margin)
    runs: dict[str, dict] = {}

    def record(name: str, fn) -> None:  # type: ignore[no-untyped-def]
        hits, wall, cpu = timed(fn, queries)
        runs[name] = {"hits": hits, "wall": wall.tolist(), "cpu": cpu.tolist(), "la": os.getloadavg()[0]}

    for q in queries:  # one untimed pass: every probed list touched once, so no path pays the first touches
        store.knn(q, K)
    record("store.knn", lambda q: [(h.id, h.score) for h in store.knn(q, K)])
    record("index alone", lambda q: idx.search(q, K))

    def exact_final(q: np.ndarray) -> list[tuple[int, float]]:
        """The product path, then the k results re-scored with their float32 vectors read from SQLite."""
        hits = store.knn(q, K)
        vec = store.index.embeddings([h.id for h in hits])
        return sorted(((h.id, float(vec[h.id] @ q)) for h in hits), key=lambda x: -x[1])

    record("store.knn + exact k from SQLite", exact_final)

    def before_path(q: np.ndarray) -> list[tuple[int, float]]:
        """As before this change: every probe of a fixed nprobe scanned, the change log read per query."""
        store.index._seen = None
        return [(h.id, h.score) for h in store.knn(q, K)]

    if default[2]:
        idx.probe_margin = 0.0
        record(f"before: fixed nprobe {default[0]}, log per query", before_path)
    for item in sweep:
        idx.nprobe, idx.k_factor, idx.probe_margin = item[0], item[1], (item[2] / 1000 if len(item) > 2 else 0.0)
        name = f"nprobe {item[0]}" + (f", k_factor {item[1]}" if idx.refined else "") + \
            (f", margin {idx.probe_margin:g}" if idx.probe_margin else "")
        record(name, lambda q: [(h.id, h.score) for h in store.knn(q, K)])
    idx.nprobe, idx.k_factor, idx.probe_margin = default
    ids = sorted({i for r in runs.values() for hits in r["hits"] for i, _ in hits})
    path_of = {info.id: int(info.path.rsplit("/", 1)[1].split(".")[0]) for info in store.get(ids)}
    exact = store.index.embeddings(ids)
    for r in runs.values():  # scores' error against the exact cosine; image id -> row of the matrix
        r["err"] = [abs(s - float(exact[i] @ q)) for hits, q in zip(r["hits"], queries) for i, s in hits]
        r["hits"] = [[(path_of[i], s) for i, s in hits] for hits in r["hits"]]
    out.put({"rss_delta_mb": after - before, "load_s": load_s, "index": idx.describe(),
             "index_bytes": idx.memory_bytes(), "runs": runs})
    store.close()


def brute_force(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    s = x @ q
    top = np.argpartition(-s, K)[:K]
    return top[np.argsort(-s[top])]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t.tolist())) / K for f, t in zip(found, truth)]))


def summary(run: dict, truth: np.ndarray) -> dict[str, float]:
    wall, cpu = np.array(run["wall"]), np.array(run["cpu"])
    err = np.array(run["err"]) if run["err"] else np.zeros(1)
    return {"recall_at_10": round(recall([[i for i, _ in h] for h in run["hits"]], truth), 4),
            "p50_ms": round(float(np.median(wall)), 3), "p99_ms": round(float(np.percentile(wall, 99)), 3),
            "max_ms": round(float(wall.max()), 3), "cpu_p50_ms": round(float(np.median(cpu)), 3),
            "cpu_p99_ms": round(float(np.percentile(cpu, 99)), 3), "qps": round(1000 / float(wall.mean()), 1),
            "score_err_mean": float(f"{err.mean():.2g}"), "score_err_max": float(f"{err.max():.2g}"),
            "load_avg": round(run["la"], 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the collection (default 100000)")
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--kind", default="auto",
                    help="vector index kind (default auto); several, comma-separated: each built in turn over the "
                         "same records and searched with the same queries, side by side")
    ap.add_argument("--nprobe", type=int, default=0, help="IVF clusters probed (HNSW: efSearch); 0 = default")
    ap.add_argument("--sweep", default="32:0,64:0,48:0:120,64:0:100,64:0:120,64:0:150",
                    help="other nprobe:k_factor[:margin in thousandths] settings measured on the same index "
                         "(k_factor: ivf-pqfs-sq8; margin: ivf-sq8-fast's adaptive probing, 0 = fixed nprobe; "
                         "'' for none)")
    ap.add_argument("--brute-queries", type=int, default=20, help="queries timed for the numpy scan")
    ap.add_argument("--dir", help="where to build the library (default: a temporary folder; needs ~5.5 KB/vector)")
    ap.add_argument("--query-seed", type=int, default=0,
                    help="another query set over the same collection (0: the default set)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --dir: search the library already built there (same --n), skip writing and building")
    ap.add_argument("--samples-only", action="store_true",
                    help="real vectors from the packages' sample photos only (not mvtb-data's: ~3x faster to embed)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import faiss

    from platformdirs import user_cache_dir

    cache = Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="lookalike-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    # the matrix is file-backed (page cache, not process memory): the bench's own copy of 5 GB at 1M
    x, queries = dataset(args.n, args.queries, cache, args.samples_only,
                         lambda shape: np.memmap(tmp / "vectors.f32", np.float32, "w+", shape=shape),
                         args.query_seed)
    gen_s = time.perf_counter() - t
    n, dim = x.shape
    _, truth = faiss.knn(queries, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    brute, brute_cpu, la_brute = [], [], os.getloadavg()[0]
    for qv in queries[: args.brute_queries]:
        c, t = time.thread_time(), time.perf_counter()
        brute_force(x, qv)
        brute.append(time.perf_counter() - t)
        brute_cpu.append(time.thread_time() - c)
    sweep = [tuple(int(v) for v in item.split(":")) for item in args.sweep.split(",") if item]
    kinds = [k for k in args.kind.split(",") if k]
    lib = tmp / "library"
    reuse = bool(args.reuse and args.dir and (lib / "vectors.index").is_file())
    # the collection's fingerprint: a library reused with other real vectors (another photo list in the
    # embeddings cache) would be measured against the wrong ground truth
    stamp, mark = lib / "dataset.sha1", hashlib.sha1(np.ascontiguousarray(x[:: max(1, n // 1000)])).hexdigest()
    if reuse and (not stamp.is_file() or stamp.read_text().strip() != mark):
        print(f"search_scale: the library in {tmp} was built from other vectors (or before fingerprints were kept); "
              "rebuild it without --reuse", file=sys.stderr)
        return 2
    results: dict[str, dict] = {}
    try:
        write_s = 0.0 if reuse else write_store(lib, x, kinds[0])
        stamp.write_text(mark + "\n")
        del x  # in SQLite now: the builds and the searches run without the bench's copy
        (tmp / "vectors.f32").unlink(missing_ok=True)
        for kind in kinds:  # each kind's index built over the same records, searched with the same queries
            built = reuse and (lib / "vectors.index").is_file() and \
                (kind == "auto" or VectorIndex.read_header(lib / "vectors.index").get("kind") == kind)
            build_s = 0.0 if built else build_index(lib, kind)
            ctx = mp.get_context("spawn")
            q: "mp.Queue[dict]" = ctx.Queue()
            child = ctx.Process(target=search_child, args=(str(lib), queries, args.nprobe, sweep, q))
            child.start()
            res = q.get()
            child.join()
            results[kind] = report(res, truth, n, dim, len(queries), brute, brute_cpu, la_brute, gen_s, write_s,
                                   build_s)
    finally:
        if not args.dir:
            shutil.rmtree(tmp, ignore_errors=True)
    out = results[kinds[0]] if len(kinds) == 1 else {"n": n, "dim": dim, "queries": len(queries), "kinds": results}
    if args.json:
        print(json.dumps(out), flush=True)
    table = sys.stderr if args.json else sys.stdout  # the table: on stdout, or on stderr beside --json
    for kind, r in results.items():
        print_table(kind, r, table)
    if len(kinds) > 1:
        first = results[kinds[0]]
        print(f"\nstore.knn side by side (one run, same records and queries), relative to {kinds[0]}:", file=table)
        for kind, r in results.items():
            print(f"  {kind:14} recall@10 {r['recall_at_10']}  CPU p50 {r['cpu_p50_ms'] / first['cpu_p50_ms']:.2f}x  "
                  f"CPU p99 {r['cpu_p99_ms'] / first['cpu_p99_ms']:.2f}x  {r['bytes_per_image']} B/image", file=table)
    return 0


def report(res: dict, truth: np.ndarray, n: int, dim: int, n_queries: int, brute: list, brute_cpu: list,
           la_brute: float, gen_s: float, write_s: float, build_s: float) -> dict:
    """One kind's figures: its store.knn run's summary at the top, every path's in ``runs``."""
    runs = {name: summary(r, truth) for name, r in res["runs"].items()}
    main_run = runs["store.knn"]
    brute_p50 = float(np.median(brute) * 1000)
    return {
        "n": n, "dim": dim, "index": res["index"], "queries": n_queries,
        **{k: main_run[k] for k in ("recall_at_10", "p50_ms", "p99_ms", "cpu_p50_ms", "cpu_p99_ms", "qps",
                                    "score_err_mean", "score_err_max", "load_avg")},
        "bytes_per_image": round(res["index_bytes"] / n, 1),
        "rss_bytes_per_image": round(res["rss_delta_mb"] * 2**20 / n, 1),
        "brute_force_p50_ms": round(brute_p50, 3), "brute_force_cpu_p50_ms": round(float(np.median(brute_cpu) * 1000), 3),
        "brute_force_load_avg": round(la_brute, 1), "speedup": round(brute_p50 / main_run["p50_ms"], 1),
        "generate_s": round(gen_s, 1), "write_s": round(write_s, 1), "build_s": round(build_s, 1),
        "load_s": round(res["load_s"], 2), "cores": len(os.sched_getaffinity(0)), "runs": runs,
    }


def print_table(kind: str, out: dict, table) -> None:  # type: ignore[no-untyped-def]
    rows = [
        ("vectors", f"{out['n']:,} x {out['dim']}"), (f"index ({kind})", json.dumps(out["index"])),
        ("build (optimize: train + add + save)", f"{out['build_s']} s"), ("write to SQLite", f"{out['write_s']} s"),
        ("load saved index (fresh process)", f"{out['load_s']} s"),
        ("RAM per image: index / process RSS", f"{out['bytes_per_image']} B / {out['rss_bytes_per_image']} B"),
        ("numpy brute force p50: wall / thread CPU", f"{out['brute_force_p50_ms']} ms / "
                                                     f"{out['brute_force_cpu_p50_ms']} ms (load {out['brute_force_load_avg']})"),
        ("speed-up vs brute force (wall p50)", f"{out['speedup']}x"),
    ]
    width = max(len(r[0]) for r in rows)
    print(file=table)
    for name, value in rows:
        print(f"{name:<{width}}  {value}", file=table)
    print(f"\nsingle queries, one thread, {out['queries']} queries; scores' error vs the exact cosine of each result", file=table)
    print(f"{'path':34} {'recall@10':>9} {'p50 ms':>7} {'p99 ms':>7} {'CPU p50':>7} {'CPU p99':>7} "
          f"{'err mean':>8} {'err max':>8} {'load':>5}", file=table)
    for name, r in out["runs"].items():
        print(f"{name:34} {r['recall_at_10']:>9} {r['p50_ms']:>7} {r['p99_ms']:>7} {r['cpu_p50_ms']:>7} "
              f"{r['cpu_p99_ms']:>7} {r['score_err_mean']:>8} {r['score_err_max']:>8} {r['load_avg']:>5}", file=table)


if __name__ == "__main__":
    raise SystemExit(main())
