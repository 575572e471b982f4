#!/usr/bin/env python
"""Batched queries (``knn_many``: what the dupes candidate stage asks, 1,024 images at a time) through each
vector index kind, side by side in one run: throughput in wall time and per CPU-second of the process (all
threads), and recall@10 of the batch against exact.

Data: ``bench/search_scale.py``'s real-structured vectors; the queries are stored vectors themselves (as in
the dupes stage: every image asks for its neighbours), ``--queries`` of them. faiss alone (``VectorIndex``),
no store; default threads.

    python bench/batch_search.py --n 100000                 # a table
    python bench/batch_search.py --n 100000 --json          # {"n", "rows": [{"kind", "images_per_s", ...}]}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import search_scale  # noqa: E402

K = 11  # the dupes stage asks for 10 neighbours + the image itself


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=8192)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--kinds", default="ivf-sq8-fast,ivf-pca-sq8")
    ap.add_argument("--samples-only", action="store_true", help="as in bench/search_scale.py")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import faiss
    from platformdirs import user_cache_dir

    from lookalike.stores.vectors import VectorIndex

    cache = Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))
    x, _ = search_scale.dataset(args.n, 2, cache, args.samples_only)
    n, dim = x.shape
    pick = np.random.default_rng(0).choice(n, min(n, args.queries), replace=False)
    qs = np.ascontiguousarray(x[pick])
    _, truth = faiss.knn(qs, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    rows = []
    for kind in [k for k in args.kinds.split(",") if k]:
        t = time.perf_counter()
        idx = VectorIndex.build(dim, [(np.arange(i, min(n, i + 100_000)), x[i:i + 100_000]) for i in range(0, n, 100_000)],
                                kind=kind, n=n)
        build_s = time.perf_counter() - t
        idx.search_many(qs[: args.batch], K)  # warm up
        la = os.getloadavg()[0]
        found = []
        t, c = time.perf_counter(), time.process_time()
        for lo in range(0, len(qs), args.batch):
            found.append(idx.search_many(qs[lo:lo + args.batch], K)[0])
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        got = np.concatenate(found)
        rec = float(np.mean([len(set(g.tolist()) & set(tr.tolist())) / K for g, tr in zip(got, truth)]))
        rows.append({"kind": kind, "images_per_s": round(len(qs) / wall), "images_per_cpu_s": round(len(qs) / cpu),
                     "recall_at_11": round(rec, 4), "build_s": round(build_s, 1), "load_before": round(la, 1),
                     "load_after": round(os.getloadavg()[0], 1)})
        del idx
    out = {"n": n, "dim": dim, "queries": len(qs), "batch": args.batch, "cores": len(os.sched_getaffinity(0)),
           "rows": rows}
    if args.json:
        print(json.dumps(out))
    table = sys.stderr if args.json else sys.stdout
    print(f"{n:,} x {dim}, {len(qs)} stored vectors as queries, {args.batch} a batch, k={K}; one run", file=table)
    print(f"{'kind':14} {'images/s':>9} {'per CPU-s':>9} {'recall@11':>9} {'build s':>8}  load", file=table)
    for r in rows:
        print(f"{r['kind']:14} {r['images_per_s']:>9} {r['images_per_cpu_s']:>9} {r['recall_at_11']:>9} "
              f"{r['build_s']:>8}  {r['load_before']}-{r['load_after']}", file=table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
