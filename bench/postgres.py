"""PostgreSQL + pgvector against the embedded store, side by side in one run, through the Store protocol.

    python bench/postgres.py                 # 100k vectors, dim 1280, local server started in a temp folder
    python bench/postgres.py --n 20000 --json
    python bench/postgres.py --db postgresql://user:pw@host/db   # an existing server (its lookalike schema is REPLACED)

Vectors are real-structured: EfficientNet-Lite0 embeddings of the sample photos and random crops/flips of them
(``--real`` images), then N mixtures of two of those plus noise, renormalised (so neighbourhoods look like a photo
collection's, not uniform noise). Queries are held-out mixtures. Each store loads the same N records through
``write()`` (batches of ``--batch``), then answers the same queries one at a time through ``knn()``.

Reported per store: load rate (records/s; for PostgreSQL, COPY with the HNSW index built once afterwards, and
the rate of appending with the index in place), index build time, first-query time, single-client QPS, p50/p99
latency, recall@10 against exact search (numpy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.stores.base import ImageRecord  # noqa: E402


def real_embeddings(count: int, seed: int = 0) -> np.ndarray:
    """Embeddings of the sample photos and random crops/flips of them (count in all)."""
    from PIL import Image, ImageOps

    from lookalike.io.read import to_rgb
    from lookalike.models.registry import load_model
    from lookalike.samples import sample_photos

    model = load_model("efficientnet-lite0")
    rng = np.random.default_rng(seed)
    photos = []
    for path in sample_photos().values():
        with Image.open(path) as im:
            im = to_rgb(im)
            im.thumbnail((640, 640))
            photos.append(im.copy())
    out: list[np.ndarray] = []
    batch: list[Image.Image] = []
    for i in range(count):
        im = photos[i % len(photos)]
        if i >= len(photos):  # a random crop (40-100% of each side), sometimes mirrored
            w, h = im.size
            cw, ch = int(w * rng.uniform(0.4, 1)), int(h * rng.uniform(0.4, 1))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im = im.crop((x, y, x + cw, y + ch))
            if rng.random() < 0.5:
                im = ImageOps.mirror(im)
        batch.append(im)
        if len(batch) == 32 or i == count - 1:
            out.append(model.encode(batch).embeddings)
            batch = []
    return np.concatenate(out).astype(np.float32)


def mixtures(base: np.ndarray, n: int, rng: np.random.Generator, noise: float = 0.35) -> np.ndarray:
    i, j = rng.integers(0, len(base), n), rng.integers(0, len(base), n)
    a = rng.uniform(0.55, 1.0, (n, 1)).astype(np.float32)
    x = a * base[i] + (1 - a) * base[j]
    x += (noise / np.sqrt(base.shape[1])) * rng.standard_normal(x.shape, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def records(vecs: np.ndarray, start: int = 0) -> list[ImageRecord]:
    return [ImageRecord(path=f"/bench/{(start + i) // 1000:04d}/{start + i:07d}.jpg", size=100_000 + i,
                        mtime=1.6e9 + i, sha=f"{start + i:064x}", width=1024, height=768, embedding=v,
                        tags=[((start + i) % 1000, 0.5)]) for i, v in enumerate(vecs)]


def exact_top(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = []
    for chunk in np.array_split(queries, max(1, len(queries) // 64)):
        s = chunk @ data.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        order = np.take_along_axis(s, top, 1).argsort(axis=1)[:, ::-1]
        out.append(np.take_along_axis(top, order, 1))
    return np.concatenate(out)


def load(store, data: np.ndarray, batch: int) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    for s in range(0, len(data), batch):
        store.write(upserts=records(data[s:s + batch], s))
    return time.perf_counter() - t


def query_all(store, data_ids: dict[int, int], queries: np.ndarray, truth: np.ndarray, k: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    store.knn(queries[0], k)
    first = time.perf_counter() - t0
    lat, rec = [], []
    t_all = time.perf_counter()
    for q, want in zip(queries, truth):
        t = time.perf_counter()
        hits = store.knn(q, k)
        lat.append(time.perf_counter() - t)
        got = {data_ids[h.id] for h in hits if h.id in data_ids}
        rec.append(len(got & set(want.tolist())) / k)
    total = time.perf_counter() - t_all
    ms = np.array(lat) * 1000
    return {"first_query_s": round(first, 3), "qps": round(len(queries) / total, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            f"recall@{k}": round(float(np.mean(rec)), 4)}


def id_map(store) -> dict[int, int]:  # type: ignore[no-untyped-def]
    """store id -> row number in the data array (from the path)."""
    return {st.id: int(Path(p).stem) for p, st in store.file_states().items()}


def bench_sqlite(data, queries, truth, args) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from lookalike.stores.sqlite import SQLiteStore

    folder = Path(tempfile.mkdtemp(prefix="lookalike-bench-sqlite-"))
    try:
        store = SQLiteStore(folder)
        store.set_model_info("bench", "1", data.shape[1])
        secs = load(store, data, args.batch)
        out: dict[str, object] = {"store": "sqlite", "n": len(data), "dim": data.shape[1],
                                  "load_rate": round(len(data) / secs, 1), "load_s": round(secs, 2)}
        t = time.perf_counter()
        out["index"] = store.optimize()  # what `lookalike index` does after writing: build + save the index
        out["index_build_s"] = round(time.perf_counter() - t, 2)
        ids = id_map(store)
        out.update(query_all(store, ids, queries, truth, args.k))
        out["bytes"] = store.stats()["bytes"] + sum(p.stat().st_size for p in folder.glob("vectors.index"))
        store.close()
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_postgres(data, queries, truth, args, url: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    import psycopg

    from lookalike.stores.postgres import PostgresStore

    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP SCHEMA IF EXISTS lookalike CASCADE")
    store = PostgresStore(url, ef_search=args.ef)
    store.set_model_info("bench", "1", data.shape[1])
    split = int(len(data) * 0.9)
    t = time.perf_counter()
    with store.deferred_index(args.build_mem):  # COPY without the index, then one HNSW build
        t_copy = load(store, data[:split], args.batch)
        t_build0 = time.perf_counter()
    build = time.perf_counter() - t_build0
    t_bulk = time.perf_counter() - t
    t_app = time.perf_counter()  # the last 10% appended with the index in place (incremental indexing)
    for s in range(split, len(data), args.batch):
        store.write(upserts=records(data[s:min(s + args.batch, len(data))], s))
    t_app = time.perf_counter() - t_app
    with store.primary.connection() as c:
        c.execute("VACUUM ANALYZE lookalike.vectors")
        c.execute("VACUUM ANALYZE lookalike.images")
    out: dict[str, object] = {"store": "postgresql", "n": len(data), "dim": data.shape[1],
                              "load_rate": round(split / t_copy, 1), "load_s": round(t_bulk + t_app, 2),
                              "index_build_s": round(build, 2),
                              "append_rate_indexed": round((len(data) - split) / t_app, 1) if t_app else None,
                              "ef_search": args.ef}
    ids = id_map(store)
    out.update(query_all(store, ids, queries, truth, args.k))
    sweep = []
    for ef in args.sweep:  # the recall/speed trade-off on the same index
        store.ef_search = ef
        r = query_all(store, ids, queries, truth, args.k)
        sweep.append({"ef_search": ef, **{key: r[key] for key in ("qps", "p50_ms", "p99_ms", f"recall@{args.k}")}})
    if sweep:
        out["sweep"] = sweep
    st = store.stats()
    out["bytes"] = st["bytes"]
    out["index"] = st["vector_index"]
    store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=100_000, help="vectors to index (default 100000)")
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--real", type=int, default=600, help="real photo embeddings the vectors are made from")
    p.add_argument("--batch", type=int, default=1000, help="records per write() call")
    p.add_argument("--ef", type=int, default=200, help="hnsw.ef_search (the store default)")
    p.add_argument("--sweep", type=lambda v: [int(x) for x in v.split(",") if x], default=[],
                   help="also query PostgreSQL at these hnsw.ef_search values, e.g. 40,200,400")
    p.add_argument("--build-mem", default="2GB", help="maintenance_work_mem for the HNSW build")
    p.add_argument("--db", help="an existing PostgreSQL (default: start a local one in a temp folder)")
    p.add_argument("--only", choices=["sqlite", "postgres"], help="run one store only")
    p.add_argument("--json", action="store_true", help="one JSON object per store")
    args = p.parse_args(argv)

    t = time.perf_counter()
    base = real_embeddings(args.real)
    rng = np.random.default_rng(1)
    data = mixtures(base, args.n, rng)
    queries = mixtures(base, args.queries, rng)
    truth = exact_top(data, queries, args.k)
    if not args.json:
        print(f"data: {args.n} x {data.shape[1]} from {len(base)} real embeddings, {args.queries} queries "
              f"({time.perf_counter() - t:.0f} s to prepare)", file=sys.stderr)

    results = []
    if args.only in (None, "sqlite"):
        results.append(bench_sqlite(data, queries, truth, args))
    if args.only in (None, "postgres"):
        server = None
        url = args.db
        if not url:
            from lookalike.stores.pgserver import LocalServer, scratch_dir

            server = LocalServer(scratch_dir("lookalike-bench-pg-") / "db")
            url = server.start()
        try:
            results.append(bench_postgres(data, queries, truth, args, url))
        finally:
            if server is not None:
                server.stop()
                shutil.rmtree(server.folder.parent, ignore_errors=True)
    cpu = os.cpu_count()
    for r in results:
        r["cpus"] = cpu
    if args.json:
        for r in results:
            print(json.dumps(r))
        return 0
    cols = ["store", "n", "load_rate", "index_build_s", "append_rate_indexed", "qps", "p50_ms", "p99_ms",
            f"recall@{args.k}", "bytes"]
    print(" | ".join(f"{c:>19}" for c in cols))
    for r in results:
        print(" | ".join(f"{'' if r.get(c) is None else r.get(c)!s:>19}" for c in cols))
        for sw in r.get("sweep", []):  # type: ignore[attr-defined]
            print(f"  ef_search {sw['ef_search']:>4}: {sw['qps']} QPS, p50 {sw['p50_ms']} ms, p99 {sw['p99_ms']} ms, "
                  f"recall@{args.k} {sw[f'recall@{args.k}']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
