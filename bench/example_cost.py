"""What an image query costs: plain cosine against the default (centring + DBA + alpha-QE), per query, at
several collection sizes, on the embedded store and on PostgreSQL, side by side in one run.

    python bench/example_cost.py                               # 10k and 100k, both stores: a table
    python bench/example_cost.py --sizes 1000000 --stores sqlite --json
    python bench/example_cost.py --db postgresql://...         # an existing server (its lookalike schema is REPLACED)

Vectors are real-structured (bench/search_scale.py's: EfficientNet-Lite0 embeddings of the sample photos, their
edits and crops, topped up with perturbations of them; cached). Each store gets the same N records through
``write()``, is optimised as ``lookalike index`` leaves it (embedded: the saved faiss index, IVF-SQ8 from 25k;
PostgreSQL: HNSW built once after COPY), and its search transform is fitted (``refresh_transform``). Then the
same held-out queries, one at a time, limit 10:

- ``cosine``: ``store.knn(q, 10)`` (what ``--by cosine`` runs);
- ``default``: ``example_hits`` (what an image query runs), with the time spent in store calls (index search
  and vector reads) apart from the rest (numpy re-scoring);
- ``reference``: the pool-based algorithm as it was before this benchmark (one knn of depth 300, every pool
  vector read back, neighbours found in the pool), kept here to compare cost and results: ``agree@10`` is
  the share of the default's top 10 that the reference also returns.

Ratios are per query, medians (p50) and p99 over the queries, measured in the same run.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lookalike.models.base import l2_normalize  # noqa: E402
from lookalike.stores.base import Hit  # noqa: E402

K = 10
MODEL = ("efficientnet-lite0", "bench")


class Timed:
    """The store, with the seconds spent in its calls added up (``spent``)."""

    def __init__(self, store) -> None:  # type: ignore[no-untyped-def]
        self._store = store
        self.spent = 0.0

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def call(*a, **kw):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return attr(*a, **kw)
            finally:
                self.spent += time.perf_counter() - t

        return call


def reference_hits(store, query: np.ndarray, limit: int, transform, shortlist: int = 100, pool: int = 3,  # type: ignore[no-untyped-def]
                   k: int = 3, alpha: float = 3.0) -> list[Hit]:
    """search/example.py's example_hits as it was before (commit 28d6402), for cost and agreement."""
    depth = max(shortlist, 2 * limit)
    pool_hits = store.knn(query, pool * depth)
    if not pool_hits:
        return []
    emb, _ = store.vectors([h.id for h in pool_hits])
    ids = [h.id for h in pool_hits]
    cosine = {h.id: h.score for h in pool_hits}
    p = transform.apply(emb)
    cand = p[:depth]
    sims = cand @ p.T
    sims[np.arange(len(cand)), np.arange(len(cand))] = -np.inf
    nearest = np.argsort(-sims, axis=1, kind="stable")[:, :k]

    def augment(v: np.ndarray, nbs: list[np.ndarray]) -> np.ndarray:
        out = np.array(v, np.float32, copy=True)
        for i, nb in enumerate(nbs):
            w = np.clip(nb @ v[i], 0.0, None) ** alpha
            out[i] += w @ nb
        return l2_normalize(out)

    augmented = augment(cand, [p[row] for row in nearest])
    q = transform.apply(query[None, :])[0]
    first = np.argsort(-(augmented @ q), kind="stable")[:k]
    q = augment(q[None, :], [augmented[first]])[0]
    scores = augmented @ q
    order = np.argsort(-scores, kind="stable")[:limit]
    return [Hit(ids[i], float(scores[i]), cosine[ids[i]]) for i in order]


def pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs) * 1000, q)), 2)


def measure(store, queries: np.ndarray, warm: int = 5) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from lookalike.search.example import example_hits, load_transform

    transform = load_transform(store, MODEL[1])
    assert transform is not None, "no search transform fitted"
    timed = Timed(store)
    for q in queries[:warm]:  # page cache, index load, first connections
        store.knn(q, K)
        example_hits(store, q, K, None, transform)
        reference_hits(store, q, K, transform)
    lat: dict[str, list[float]] = {"cosine": [], "default": [], "default_store": [], "reference": []}
    agree = []
    for q in queries:
        t = time.perf_counter()
        store.knn(q, K)
        lat["cosine"].append(time.perf_counter() - t)
        timed.spent = 0.0
        t = time.perf_counter()
        got = example_hits(timed, q, K, None, load_transform(timed, MODEL[1]))
        lat["default"].append(time.perf_counter() - t)
        lat["default_store"].append(timed.spent)
        t = time.perf_counter()
        ref = reference_hits(store, q, K, transform)
        lat["reference"].append(time.perf_counter() - t)
        agree.append(len({h.id for h in got} & {h.id for h in ref}) / max(1, len(ref)))
    out: dict[str, object] = {}
    for name, xs in lat.items():
        out[f"{name}_p50_ms"], out[f"{name}_p99_ms"] = pct(xs, 50), pct(xs, 99)
    out["default_vs_cosine"] = round(out["default_p50_ms"] / out["cosine_p50_ms"], 1)  # type: ignore[operator]
    out["reference_vs_cosine"] = round(out["reference_p50_ms"] / out["cosine_p50_ms"], 1)  # type: ignore[operator]
    out["agree_at_10"] = round(float(np.mean(agree)), 4)
    return out


def fill(store, data: np.ndarray, batch: int = 2000) -> float:  # type: ignore[no-untyped-def]
    from postgres import records

    t = time.perf_counter()
    for s in range(0, len(data), batch):
        store.write(upserts=records(data[s:s + batch], s))
        print(f"\r  writing {min(len(data), s + batch)}/{len(data)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return time.perf_counter() - t


def prepare(store, data: np.ndarray, *, deferred: bool = False) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Write, optimise and fit as ``lookalike index`` does; the seconds of each step."""
    from lookalike.search.example import refresh_transform

    store.set_model_info(MODEL[0], MODEL[1], data.shape[1])
    if deferred:
        with store.deferred_index("2GB"):
            write_s = fill(store, data)
    else:
        write_s = fill(store, data)
    t = time.perf_counter()
    store.optimize()
    opt_s = time.perf_counter() - t
    t = time.perf_counter()
    refresh_transform(store, MODEL[1])
    return {"write_s": round(write_s, 1), "optimize_s": round(opt_s, 1),
            "fit_s": round(time.perf_counter() - t, 1)}


def run_sqlite(data: np.ndarray, queries: np.ndarray) -> dict[str, object]:
    from lookalike.stores.sqlite import SQLiteStore

    folder = Path(tempfile.mkdtemp(prefix="lookalike-example-cost-"))
    try:
        store = SQLiteStore(folder)
        steps = prepare(store, data)
        store.close()
        store = SQLiteStore(folder)  # a fresh open, as a new process finds the library
        out = {"store": "sqlite", "n": len(data), "index": store.vector_index().describe()["kind"], **steps,
               **measure(store, queries)}
        store.close()
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_postgres(data: np.ndarray, queries: np.ndarray, url: str) -> dict[str, object]:
    import psycopg

    from lookalike.stores.postgres import PostgresStore

    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP SCHEMA IF EXISTS lookalike CASCADE")
    store = PostgresStore(url)
    try:
        steps = prepare(store, data, deferred=True)
        with store.primary.connection() as c:
            c.execute("VACUUM ANALYZE lookalike.vectors")
        kind = "exact scan" if len(data) < store.exact_below else "hnsw"  # small collections are not searched by HNSW
        return {"store": "postgresql", "n": len(data), "index": kind, **steps, **measure(store, queries)}
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="collection sizes, comma-separated (default 10000,100000)")
    p.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres or both (default both)")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--db", help="an existing PostgreSQL (default: a local one in a temporary folder)")
    p.add_argument("--samples-only", action="store_true", help="real vectors from the sample photos only (faster)")
    p.add_argument("--threads", type=int, default=1, help="threads for faiss and numpy (default 1: one query, one core)")
    p.add_argument("--json", action="store_true", help="one JSON object per (store, size)")
    args = p.parse_args(argv)
    import faiss
    from threadpoolctl import threadpool_limits

    faiss.omp_set_num_threads(args.threads)
    threadpool_limits(args.threads)
    from platformdirs import user_cache_dir
    from search_scale import dataset

    cache = Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))
    sizes = [int(s) for s in args.sizes.split(",") if s]
    stores = [s for s in args.stores.split(",") if s]
    results = []
    server = None
    url = args.db
    try:
        for n in sizes:
            data, queries = dataset(n, args.queries, cache, args.samples_only)
            if "sqlite" in stores:
                results.append(run_sqlite(data, queries))
                if not args.json:
                    print(json.dumps(results[-1]), file=sys.stderr)
            if "postgres" in stores:
                if url is None:
                    from lookalike.stores.pgserver import LocalServer, scratch_dir

                    server = LocalServer(scratch_dir("lookalike-bench-pg-") / "db")
                    url = server.start()
                results.append(run_postgres(data, queries, url))
                if not args.json:
                    print(json.dumps(results[-1]), file=sys.stderr)
            del data
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.folder.parent, ignore_errors=True)
    for r in results:
        r["cpus"], r["threads"] = os.cpu_count(), args.threads
        r["load_avg"] = round(os.getloadavg()[0], 1)
    if args.json:
        for r in results:
            print(json.dumps(r))
        return 0
    cols = ["store", "n", "index", "cosine_p50_ms", "default_p50_ms", "default_store_p50_ms", "default_p99_ms",
            "default_vs_cosine", "reference_p50_ms", "reference_vs_cosine", "agree_at_10"]
    print(" | ".join(cols))
    for r in results:
        print(" | ".join(str(r.get(c, "")) for c in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
