#!/usr/bin/env python
"""The vector-index choices for tail latency at scale, side by side on the same vectors and queries (faiss
alone, one search thread, no store): what each costs per image, what recall@10 and latency it gives, and how
far the scores it returns are from the exact cosines.

Data: ``bench/search_scale.py``'s (real EfficientNet-Lite0 embeddings topped up with perturbations of them;
held-out real edits and fresh perturbations as queries). One k-means coarse quantizer (nlist = the store's
default) is trained once and shared by every IVF variant, so they differ only in their codes and in how the
query finds its clusters (``flat``: every centroid scored; ``hnsw``: an HNSW graph over the same centroids):

  exact                     faiss flat inner product over the float32 vectors (the ratio's denominator)
  ivf-sq8 q npN             IVF, 8-bit residual codes, scores from the codes alone (no re-rank)
  ivf-sq8 q npN + exact 30  the same, its best 30 re-scored with float32 vectors held in RAM: the upper
                            bound of the store's SQLite re-rank (which also pays the page reads)
  ivf-pqfs q npN + sq8 xF   IVF with 4-bit fast-scan PQ codes (dim/10 sub-quantizers: 64 B at 1280-d) for
                            candidates, the best F x 10 re-scored with 8-bit codes of the full vectors held in
                            RAM (faiss IndexRefine): the ``ivf-pqfs-sq8`` kind of stores/vectors.py

Score error: |returned score - exact cosine of the returned image| over every returned result (mean, p99,
max), so "accurate enough" is a measured figure, not a guess.

    python bench/ann_choices.py --n 200000
    nice -n 10 python bench/ann_choices.py --n 1000000 --json
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


def load() -> float:
    return round(os.getloadavg()[0], 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--queries", type=int, default=400)
    ap.add_argument("--exact-queries", type=int, default=20, help="queries timed for the exact scan")
    ap.add_argument("--samples-only", action="store_true", help="as in bench/search_scale.py")
    ap.add_argument("--build-threads", type=int, default=0, help="threads for training and adding (0 = all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import faiss
    from platformdirs import user_cache_dir

    from lookalike.stores.vectors import default_nlist, pqfs_m

    cache = Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))
    t0 = time.perf_counter()
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
    hq = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    hq.hnsw.efConstruction = 80
    hq.add(centroids)
    log = sys.stderr

    def ivf(codec: str):  # type: ignore[no-untyped-def]
        """IVF over the shared centroids; lists assigned exactly (flat quantizer)."""
        t = time.perf_counter()
        idx = faiss.index_factory(d, f"IVF{nlist},{codec}", faiss.METRIC_INNER_PRODUCT)
        ivfp = faiss.extract_index_ivf(idx)
        ivfp.quantizer.add(centroids)
        ivfp.quantizer.is_trained = True
        ivfp.quantizer_trains_alone = 0
        idx.train(sample)
        for i in range(0, n, 100_000):
            idx.add(x[i:i + 100_000])
            print(f"\r  {codec}: added {min(n, i + 100_000)}/{n}", end="", file=log, flush=True)
        print(f" in {time.perf_counter() - t:.0f} s (load {load()})", file=log)
        ivfp.own_fields = False  # its quantizer is swapped below: never freed by the index (a bench, one process)
        quantizers[id(idx)] = (ivfp, ivfp.quantizer)
        return idx

    rows: list[dict[str, object]] = []
    quantizers: dict[int, tuple] = {}  # id(index) -> (its IVF part, its flat quantizer)

    def params_for(index, nprobe: int, quantizer: str):  # type: ignore[no-untyped-def]
        """Search parameters; swaps the index's quantizer for the HNSW one over the same centroids."""
        ivfp, flat_q = quantizers[id(index)]
        if quantizer == "hnsw":
            ivfp.quantizer = hq
            qp = faiss.SearchParametersHNSW(efSearch=max(64, 2 * nprobe))
            p = faiss.SearchParametersIVF(nprobe=nprobe, quantizer_params=qp)
            p._keep = qp  # type: ignore[attr-defined]
            return p
        ivfp.quantizer = flat_q
        return faiss.SearchParametersIVF(nprobe=nprobe)

    def measure(name: str, fn, nbytes: int, queries: np.ndarray = q) -> None:  # type: ignore[no-untyped-def]
        faiss.omp_set_num_threads(1)
        la = load()
        for qq in queries[:5]:
            fn(qq[None])
        lat, cpu, found, err = [], [], [], []
        for qq in queries:
            c, t = time.thread_time(), time.perf_counter()
            ids, scores = fn(qq[None])
            lat.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)
            ok = ids >= 0
            found.append(ids[ok])
            err.append(np.abs(scores[ok] - x[ids[ok]] @ qq))
        faiss.omp_set_num_threads(build_threads)
        ms, cpu_ms = np.array(lat) * 1000, np.array(cpu) * 1000
        e = np.concatenate(err)
        rec = float(np.mean([len(set(f.tolist()) & set(t.tolist())) / K for f, t in zip(found, truth)]))
        rows.append({"choice": name, "recall_at_10": round(rec, 4), "p50_ms": round(float(np.median(ms)), 3),
                     "p99_ms": round(float(np.percentile(ms, 99)), 3), "max_ms": round(float(ms.max()), 3),
                     "cpu_p50_ms": round(float(np.median(cpu_ms)), 3),
                     "cpu_p99_ms": round(float(np.percentile(cpu_ms, 99)), 3),
                     "bytes_per_image": round(nbytes / n, 1), "score_err_mean": float(f"{e.mean():.2g}"),
                     "score_err_p99": float(f"{np.percentile(e, 99):.2g}"), "score_err_max": float(f"{e.max():.2g}"),
                     "queries": len(queries), "load_before": la, "load_after": load()})
        r = rows[-1]
        print(f"{name:36} {r['recall_at_10']:>7} {r['p50_ms']:>7} {r['p99_ms']:>7} {r['cpu_p50_ms']:>7} "
              f"{r['cpu_p99_ms']:>7} {r['bytes_per_image']:>8} "
              f"{r['score_err_mean']:>8} {r['score_err_max']:>8}  {la}-{r['load_after']}", file=table, flush=True)

    def exact(ids: np.ndarray, qq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.sort(ids[ids >= 0])
        s = x[ids] @ qq[0]
        top = np.argsort(-s)[:K]
        return ids[top], s[top]

    table = sys.stderr if args.json else sys.stdout  # the table: on stdout, or on stderr beside --json
    print(f"{n:,} x {d} vectors, nlist {nlist}, {len(q)} queries, search on 1 thread; load average (1 min) "
          f"before-after each row; all rows side by side in this run", file=table)
    print(f"{'':36} {'':>7} {'wall':>15} {'thread CPU':>15}", file=table)
    print(f"{'choice':36} {'recall':>7} {'p50 ms':>7} {'p99 ms':>7} {'p50 ms':>7} {'p99 ms':>7} {'B/image':>8} "
          f"{'err mean':>8} {'err max':>8}  load", file=table)

    def run(index, p, k=K):  # type: ignore[no-untyped-def]
        def fn(qq):  # type: ignore[no-untyped-def]
            s, i = index.search(qq, k, params=p)
            return i[0], s[0]
        return fn

    def brute(qq):  # type: ignore[no-untyped-def]
        s, i = faiss.knn(qq, x, K, metric=faiss.METRIC_INNER_PRODUCT)  # what IndexFlatIP runs, without a copy
        return i[0], s[0]

    measure("exact (faiss flat, float32)", brute, 4 * d * n, q[: args.exact_queries])

    sq = ivf("SQ8")
    sq_bytes = faiss.serialize_index(sq).nbytes
    for quantizer in ("flat", "hnsw"):
        for nprobe in ((16, 32, 64, 128) if quantizer == "flat" else (32, 64)):
            measure(f"ivf-sq8 {quantizer} np{nprobe}", run(sq, params_for(sq, nprobe, quantizer)), sq_bytes)
    p32 = params_for(sq, 32, "flat")
    measure("ivf-sq8 flat np32 + exact 30 (RAM)",
            lambda qq: exact(sq.search(qq, 30, params=p32)[1][0], qq), sq_bytes)
    params_for(sq, 32, "flat")
    del sq
    refine = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    refine.train(sample)
    for i in range(0, n, 100_000):
        refine.add(x[i:i + 100_000])
    base = ivf(f"PQ{pqfs_m(d)}x4fs")
    both = faiss.serialize_index(base).nbytes + faiss.serialize_index(refine).nbytes
    ref = faiss.IndexRefine(base, refine)
    for quantizer in ("flat", "hnsw"):
        for nprobe, kfs in ((32, (20, 50)), (64, (20, 50, 100)), (128, (20, 50, 100))):
            for kf in kfs:
                bp = params_for(base, nprobe, quantizer)
                prm = faiss.IndexRefineSearchParameters(k_factor=kf, base_index_params=bp)
                prm._keep = bp  # type: ignore[attr-defined]
                measure(f"ivf-pqfs {quantizer} np{nprobe} + sq8 x{kf}", run(ref, prm), both)
    params_for(base, 32, "flat")
    total_s = time.perf_counter() - t0
    if args.json:
        print(json.dumps({"n": n, "dim": d, "nlist": nlist, "queries": len(q), "total_s": round(total_s),
                          "cores": len(os.sched_getaffinity(0)), "rows": rows}))
    print(f"({total_s:.0f} s in all; exact row: {args.exact_queries} queries)", file=table)


if __name__ == "__main__":
    main()
