#!/usr/bin/env python
"""The vector-index choices for tail latency at scale, side by side on the same vectors and queries (faiss
alone, one search thread, no store): what each costs per image and what recall@10 and latency it gives.

Data: ``bench/search_scale.py``'s (real EfficientNet-Lite0 embeddings topped up with perturbations of them;
held-out real edits and fresh perturbations as queries). One k-means coarse quantizer (nlist = the store's
default) is trained once and shared by every IVF variant, so they differ only in their codes:

  ivf-sq8 npN          the store's auto kind: IVF, 8-bit residual codes, scores from the codes alone
  ivf-sq8 + exact 30   the same, its best 30 re-scored with float32 vectors held in RAM: the upper bound of
                       what the store's SQLite re-rank gives (that one also pays the page reads)
  ivf-pq128fs + sq8 xF IVF with 4-bit fast-scan PQ codes (64 B) for candidates, the best F x 10 re-scored
                       with 8-bit codes of the full vectors held in RAM (faiss IndexRefine)

    python bench/ann_choices.py --n 200000 --samples-only
    python bench/ann_choices.py --n 1000000 --json
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

K = 10


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--samples-only", action="store_true", help="as in bench/search_scale.py")
    ap.add_argument("--build-threads", type=int, default=0, help="threads for training and adding (0 = all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import faiss
    from platformdirs import user_cache_dir

    from lookalike.stores.vectors import default_nlist

    cache = Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))
    x, q = search_scale.dataset(args.n, args.queries, cache, args.samples_only)
    _, truth = faiss.knn(q, x, K, metric=faiss.METRIC_INNER_PRODUCT)
    n, d = x.shape
    nlist = default_nlist(n)
    build_threads = args.build_threads or len(os.sched_getaffinity(0))
    faiss.omp_set_num_threads(build_threads)
    rng = np.random.default_rng(0)
    sample = np.ascontiguousarray(x[np.sort(rng.choice(n, min(n, 40 * nlist), replace=False))])
    quant = faiss.IndexFlatIP(d)
    km = faiss.Clustering(d, nlist)
    km.niter = 10
    km.train(sample, quant)
    centroids = quant.reconstruct_n(0, nlist)

    def ivf(codec: str):  # type: ignore[no-untyped-def]
        idx = faiss.index_factory(d, f"IVF{nlist},{codec}", faiss.METRIC_INNER_PRODUCT)
        ivfp = faiss.extract_index_ivf(idx)
        ivfp.quantizer.add(centroids)
        ivfp.quantizer.is_trained = True
        ivfp.quantizer_trains_alone = 0
        idx.train(sample)
        for i in range(0, n, 100_000):
            idx.add(x[i:i + 100_000])
        return idx

    rows: list[dict[str, object]] = []

    def measure(name: str, fn, nbytes: int) -> None:  # type: ignore[no-untyped-def]
        faiss.omp_set_num_threads(1)
        for qq in q[:5]:
            fn(qq[None])
        lat, found = [], []
        for qq in q:
            t = time.perf_counter()
            found.append(fn(qq[None]))
            lat.append(time.perf_counter() - t)
        faiss.omp_set_num_threads(build_threads)
        ms = np.array(lat) * 1000
        rec = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))
        rows.append({"choice": name, "recall_at_10": round(rec, 4), "p50_ms": round(float(np.median(ms)), 3),
                     "p99_ms": round(float(np.percentile(ms, 99)), 3), "bytes_per_image": round(nbytes / n, 1)})
        if not args.json:
            r = rows[-1]
            print(f"{name:34} {r['recall_at_10']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['bytes_per_image']:>9}", flush=True)

    def exact(ids: np.ndarray, qq: np.ndarray) -> np.ndarray:
        ids = np.sort(ids[ids >= 0])
        return ids[np.argsort(-(x[ids] @ qq[0]))[:K]]

    if not args.json:
        print(f"{n:,} x {d} vectors, nlist {nlist}, {len(q)} queries, search on 1 thread, load average "
              f"{os.getloadavg()[0]:.1f} (all rows side by side in this run)")
        print(f"{'choice':34} {'recall':>8} {'p50 ms':>8} {'p99 ms':>8} {'B/image':>9}")
    sq = ivf("SQ8")
    sq_bytes = faiss.serialize_index(sq).nbytes
    for nprobe in (8, 16, 32):
        p = faiss.SearchParametersIVF(nprobe=nprobe)
        measure(f"ivf-sq8 np{nprobe}", lambda qq, p=p: sq.search(qq, K, params=p)[1][0], sq_bytes)
    p16 = faiss.SearchParametersIVF(nprobe=16)
    measure("ivf-sq8 np16 + exact 30 (RAM)", lambda qq: exact(sq.search(qq, 30, params=p16)[1][0], qq), sq_bytes)
    del sq
    refine = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    refine.train(sample)
    for i in range(0, n, 100_000):
        refine.add(x[i:i + 100_000])
    base = ivf("PQ128x4fs")
    both = faiss.serialize_index(base).nbytes + faiss.serialize_index(refine).nbytes
    ref = faiss.IndexRefine(base, refine)
    for nprobe in (16, 32):
        for kf in (50, 100):
            prm = faiss.IndexRefineSearchParameters(k_factor=kf, base_index_params=faiss.SearchParametersIVF(nprobe=nprobe))
            measure(f"ivf-pq128fs np{nprobe} + sq8 x{kf}", lambda qq, prm=prm: ref.search(qq, K, params=prm)[1][0], both)
    if args.json:
        print(json.dumps({"n": n, "dim": d, "nlist": nlist, "load_avg_1min": round(os.getloadavg()[0], 1), "rows": rows}))


if __name__ == "__main__":
    main()
