"""Duplicates at scale: the candidate stage of `lookalike dupes` at N vectors, the verification on real photos,
and the projected time for a million photos with 1% duplicates.

1. Candidates (synthetic, N vectors): bench/search_scale.py's real-structured 1280-d vectors (its
   ``dataset``: real EfficientNet-Lite0 embeddings topped up with perturbations of them), plus 1% planted
   near-duplicates: a vector turned by a *real* edit (its cosine with the original and its direction, from
   the 16 edits of lookalike's evaluation suite on the packages' photos, search_scale's cached embeddings). Written to a real SQLiteStore by search_scale's ``write_store`` and ``build_index``
   (``optimize``: the IVF-SQ8 index), then, in a fresh process, the product's own stages: ``read_images`` and
   ``candidate_pairs`` (``store.knn_many`` a batch of images at a time, 10 neighbours, cosine >= 0.5).
   Reported: images/s and candidate pairs/s, peak RSS of that process, recall of the planted pairs, and how
   many candidate pairs the cosine alone cannot decide (those are verified). Beside it, on a sample of the
   planted pairs, what exact search (faiss flat) finds with the same 10 neighbours: the index's loss is the
   gap, the vectors' density (how many others are nearer than an original) is what both miss.
2. Verification (real photos; bench/dupes_real.py): the packages' sample photos, half of them edited 4 ways each (seeded draw
   from the 16 edits), the other half and tuxpaint's photographic stamps (Debian tuxpaint-stamps-default,
   when installed) as distractors, and held out from the verifier's calibration, lookalike's report set
   (evaluation/sets.py: mvtb-data photos, Fashion-MNIST garments; its interiors are sample photos, left
   out), indexed into a real library and run through ``Library.dupes``: seconds per verified pair, images
   described (SIFT once each), recall of the planted copies (each grouped with its original), false pairs
   (images of different photos in one group), the verified pairs split into copies' and non-copies' (the
   rate of pairs between two distractors is what a library without copies would verify); then a second run
   (unchanged library: nothing verified again).
3. Projection for 1M photos with 1% duplicates: reading + candidates at 1M (measured when --n is 1M, else
   scaled linearly from N) + the uncertain pairs (the rate measured in 1, per image; and at the real
   distractors' rate of 2 plus the planted copies' own uncertain pairs) x the seconds per verified pair
   (measured in 2).

    python bench/dupes_scale.py --n 100000          # a table (a few minutes)
    python bench/dupes_scale.py --n 1000000 --json  # one JSON object: {"candidates": {...}, "verification": {...},
                                                    #  "projection_1m": {...}, "load_average": [...]}
    python bench/dupes_scale.py --n 100000 --copy-features  # also the verification with index --copy-features
    python bench/dupes_scale.py --candidates-from 1m.json --verification-from real.json  # the table of both
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from dupes_real import neighbour_cosines, verification_stage  # noqa: E402
from search_scale import build_index, dataset, real_embeddings, write_store  # noqa: E402


DUP_FRACTION = 0.01
NEIGHBOURS = 10
TARGET_S = 3600.0
IMAGEDEDUP = {"images": 10_800, "seconds": 392, "recall": 0.38}  # its CNN method, its own benchmark


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))


# -- 1. the candidate stage -------------------------------------------------------------------------------------
def real_edits(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(cosines, unit directions) of real edits: for every sample photo and each of the 16 edits, the cosine
    of the edited photo's embedding with its original's, and the direction it moved in (the edit's embedding
    minus its component along the original). search_scale.real_embeddings keeps per photo the original, 8
    crops and every second edit (17 rows); the other 8 edits are its held-out queries."""
    base, held = real_embeddings(cache, samples_only=True)
    n = len(base) // 17
    assert len(base) == 17 * n and len(held) == 8 * n, "search_scale's layout changed"
    orig = base[0::17]
    edits = np.concatenate([np.stack([base[17 * p + 9: 17 * p + 17] for p in range(n)]),
                            held.reshape(n, 8, -1)], axis=1)  # (n, 16, dim)
    cos = np.einsum("pd,ped->pe", orig, edits)
    perp = edits - cos[..., None] * orig[:, None]
    perp /= np.maximum(np.linalg.norm(perp, axis=-1, keepdims=True), 1e-9)
    return cos.reshape(-1).astype(np.float32), perp.reshape(-1, base.shape[1]).astype(np.float32)


def planted_dataset(n: int, cache: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vectors, planted pairs as row indices (original, copy)): n vectors of which 1% are planted copies.
    A planted copy of x has exactly the cosine with x of a real edit drawn at random (so the planted pairs
    are as hard as the edit suite's: crops at 40% fall to ~0.6), moved in that edit's own direction (made
    orthogonal to x)."""
    x, _ = dataset(n, 0, cache, samples_only=True)  # the last 1% of rows are replaced by the copies, in place
    cos, dirs = real_edits(cache)
    pairs, pick = planted_rows(n, cache, len(cos))
    src = pairs[:, 0]
    u = dirs[pick] - np.einsum("ij,ij->i", dirs[pick], x[src])[:, None] * x[src]
    u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-9)
    c = np.clip(cos[pick], -1, 1)[:, None]
    x[pairs[:, 1]] = c * x[src] + np.sqrt(1 - c * c) * u
    return x, pairs


def planted_rows(n: int, cache: Path, n_edits: int) -> tuple[np.ndarray, np.ndarray]:
    """The planted pairs (original row, copy row) of an n-vector set and the real edit each copies: drawn
    from a fixed seed, so they can be known again without the vectors."""
    n_copies = int(round(n * DUP_FRACTION))
    rng = np.random.default_rng(5)
    start = len(real_embeddings(cache, samples_only=True)[0])  # plant on synthetic rows, not the real blocks
    src = rng.choice(np.arange(start, n - n_copies), n_copies, replace=False)
    pick = rng.integers(0, n_edits, n_copies)
    return np.stack([src, np.arange(n - n_copies, n)], axis=1), pick


GATES = [(0.5, 10), (0.5, 2), (0.5, 1), (0.6, 10), (0.6, 1), (0.7, 10), (0.7, 1)]


def gate_table(a: np.ndarray, b: np.ndarray, cos: np.ndarray, planted: np.ndarray, n: int) -> list[dict]:
    """What verifying fewer pairs would cost in recall: for a cosine floor and a rank limit (the pair is among
    the ``top`` nearest candidates of one of its images), the uncertain pairs per image left to verify and
    the share of planted pairs still reachable (sure by cosine, or uncertain and verified). (0.5, 2) is what
    ``dupes`` does (VERIFY_TOP)."""
    from lookalike.search.dupes import pair_rank
    from lookalike.search.verify import COSINE_AT

    nearest = pair_rank(a, b, cos)  # 0: one of the two has the other as its nearest candidate
    key = a * (n + 1) + b
    lo, hi = planted.min(1), planted.max(1)
    is_planted = np.isin(key, lo * (n + 1) + hi)
    sure = cos > COSINE_AT
    rows = []
    for floor, top in GATES:
        check = ~sure & (cos >= floor) & (nearest < top)
        rows.append({"floor": floor, "top": top, "uncertain_per_image": round(float(check.sum()) / n, 3),
                     "planted_recall": round(float((is_planted & (sure | check)).sum()) / len(planted), 4)})
    return rows


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it does not carry the parent's over fork + exec)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def candidate_child(lib: str, out_path: str, q: "mp.Queue[dict]") -> None:
    """In a fresh process: open the library and run the product's reading and candidate stages."""
    from lookalike.search.dupes import CANDIDATE_COSINE, candidate_pairs, read_images
    from lookalike.stores.sqlite import SQLiteStore

    t = time.perf_counter()
    store = SQLiteStore(lib)
    store.vector_index()  # load the saved index (not part of the stage)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    infos = read_images(store)
    read_s = time.perf_counter() - t
    t = time.perf_counter()
    pairs = candidate_pairs(store, list(infos), neighbours=NEIGHBOURS, floor=CANDIDATE_COSINE, progress=True)
    cand_s = time.perf_counter() - t
    row = {i: int(info.path.rsplit("/", 1)[1].split(".")[0]) for i, info in infos.items()}  # id -> matrix row
    arr = np.array([(row[a], row[b], c) for (a, b), c in pairs.items()], dtype=np.float64).reshape(-1, 3)
    np.save(out_path, arr)
    q.put({"load_s": load_s, "read_s": read_s, "candidates_s": cand_s, "images": len(infos),
           "peak_rss_mb": peak_rss_mb(),
           "index": store.index.describe()})
    store.close()


def candidate_stage(n: int, workdir: Path, cache: Path, reuse: bool = False, exact_sample: int = 0) -> dict:
    from lookalike.search import verify
    from lookalike.stores.sqlite import SQLiteStore

    t = time.perf_counter()
    if reuse:  # the library an earlier run with this --n and --dir wrote (e.g. one killed before the end)
        gen_s = write_s = 0.0
        planted, _ = planted_rows(n, cache, len(real_edits(cache)[0]))
        store = SQLiteStore(workdir / "library")
        assert store.count() == n, f"{workdir / 'library'} holds {store.count()} images, not {n}"
        t = time.perf_counter()
        store.optimize(progress=True)  # build (or load) the index, as build_index does
        build_s = time.perf_counter() - t
        emb = {i: e for i, e in store.index.embeddings([int(r) + 1 for r in planted.ravel()]).items()}
        planted_cos = np.array([float(emb[a + 1] @ emb[b + 1]) for a, b in planted.tolist()])  # id = row + 1
        store.close()
    else:
        x, planted = planted_dataset(n, cache)
        gen_s = time.perf_counter() - t
        planted_cos = np.einsum("ij,ij->i", x[planted[:, 0]], x[planted[:, 1]])
        write_s = write_store(workdir / "library", x, "auto")
        del x  # before the index build: the vectors are in the library now
        build_s = build_index(workdir / "library", "auto")
    ctx = mp.get_context("spawn")
    q: "mp.Queue[dict]" = ctx.Queue()
    out_path = str(workdir / "pairs.npy")
    child = ctx.Process(target=candidate_child, args=(str(workdir / "library"), out_path, q))
    child.start()
    res = q.get()
    child.join()
    arr = np.load(out_path)
    a, b, cos = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]
    key = a * (n + 1) + b
    planted_key = planted.min(1) * (n + 1) + planted.max(1)
    hit = np.isin(planted_key, key)
    sure = cos > verify.COSINE_AT  # cosine_score > 0.5
    is_planted = np.isin(key, planted_key)
    bound = exact_bound(n, cache, planted, set(key.tolist()), exact_sample) if exact_sample else None
    return {
        "n": n, "planted_pairs": len(planted), "neighbours": NEIGHBOURS, "index": res["index"],
        "exact_bound": bound,
        "generate_s": round(gen_s, 1), "write_s": round(write_s, 1), "build_s": round(build_s, 1),
        "load_s": round(res["load_s"], 2), "read_s": round(res["read_s"], 1),
        "candidates_s": round(res["candidates_s"], 1),
        "images_per_s": round(n / res["candidates_s"], 1),
        "candidate_pairs": len(cos), "candidate_pairs_per_s": round(len(cos) / res["candidates_s"], 1),
        "peak_rss_mb": round(res["peak_rss_mb"], 1),
        "planted_recall": round(float(hit.mean()), 4),
        "planted_cosine_p1_p50": [round(float(v), 3) for v in np.percentile(planted_cos, [1, 50])],
        "sure_pairs": int(sure.sum()), "sure_not_planted": int((sure & ~is_planted).sum()),
        "uncertain_pairs": int((~sure).sum()), "uncertain_planted": int((~sure & is_planted).sum()),
        "uncertain_per_image": round(float((~sure).sum()) / n, 3),
        "gates": gate_table(a, b, cos, planted, n),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


DEEPER = (10, 20, 50, 100)  # neighbours a candidate search would need: exact recall at each


def exact_bound(n: int, cache: Path, planted: np.ndarray, found: set[int], sample: int) -> dict:
    """What exact search would have found, side by side with the index on the same planted pairs: for a
    seeded sample of them, both images' exact NEIGHBOURS nearest (faiss flat over the same n vectors,
    generated again: the seed makes them the same), a pair found when either is among the other's
    (cosine >= the candidate floor, as ``candidate_pairs``), and at the verification gate (VERIFY_TOP);
    with the exact recall had the search asked for more neighbours (DEEPER), and how crowded the
    neighbourhoods are (cosine of each original's 2nd and 10th nearest): recall lost
    to the index is the gap between the two rows, recall lost to the density of the vectors is what exact
    search misses too."""
    import faiss

    from lookalike.search.dupes import CANDIDATE_COSINE, VERIFY_TOP

    x, _ = planted_dataset(n, cache)
    pick = np.random.default_rng(0).choice(len(planted), min(sample, len(planted)), replace=False)
    pairs = planted[pick]
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    t = time.perf_counter()
    deep = max(DEEPER) + 1
    cos, nb = index.search(x[np.concatenate([pairs[:, 0], pairs[:, 1]])], deep)
    exact_s = time.perf_counter() - t
    m = len(pairs)

    def rank(row: int, me: int, other: int) -> int:  # the other image's place among row's neighbours
        keep = (nb[row] != me) & (cos[row] >= CANDIDATE_COSINE)
        where = np.flatnonzero(nb[row][keep] == other)
        return int(where[0]) if len(where) else deep

    best = np.array([min(rank(i, a, b), rank(m + i, b, a)) for i, (a, b) in enumerate(pairs.tolist())])
    by_index = np.array([min(a, b) * (n + 1) + max(a, b) in found for a, b in pairs.tolist()])
    return {"sample": m, "exact_s": round(exact_s, 1),
            "index_recall": round(float(by_index.mean()), 4),
            "exact_recall": round(float((best < NEIGHBOURS).mean()), 4),
            "exact_recall_at_gate": round(float((best < VERIFY_TOP).mean()), 4),
            "found_by_index_not_exact": int((by_index & (best >= NEIGHBOURS)).sum()),
            "found_by_exact_not_index": int((~by_index & (best < NEIGHBOURS)).sum()),
            "exact_recall_by_neighbours": {k: round(float((best < k).mean()), 4) for k in DEEPER},
            **neighbour_cosines(cos[:m, 1:])}


# -- 3. the projection --------------------------------------------------------------------------------------------
def scan_per_query(n: int) -> float:
    """Vectors an IVF query scans at n (auto: nprobe of nlist clusters), relative to the whole collection."""
    from lookalike.stores.vectors import FLAT_MAX, default_nlist, default_nprobe

    if n < FLAT_MAX:
        return float(n)
    nlist = default_nlist(n)
    return default_nprobe(nlist) / nlist * n


def projection(cand: dict, ver: dict) -> dict:
    """At 1M: reading scales with n; the candidate stage between linear (its per-query cost as at n: the
    re-rank, the Python side) and linear x the growth of an IVF query's scan (nprobe/nlist x n), taken as
    the projection when 1M was not measured."""
    scale = 1_000_000 / cand["n"]
    read_s = cand["read_s"] * scale
    cand_linear = cand["candidates_s"] * scale
    cand_s = cand_linear * scan_per_query(1_000_000) / scan_per_query(cand["n"])
    from lookalike.search.dupes import CANDIDATE_COSINE, VERIFY_TOP

    gate = next((g for g in cand.get("gates", []) if g["floor"] == CANDIDATE_COSINE and g["top"] == VERIFY_TOP),
                None)  # what dupes verifies: uncertain pairs among one image's VERIFY_TOP nearest
    uncertain = (gate["uncertain_per_image"] if gate else cand["uncertain_per_image"]) * 1_000_000
    per_pair = ver["s_per_verified_pair"] or 0.0
    verify_s = uncertain * per_pair
    planted_only = cand["uncertain_planted"] * scale * per_pair  # if only the real copies were uncertain
    total = read_s + cand_s + verify_s
    real_rate_s = ver.get("verified_per_image", ver["uncertain_per_image"]) * 1_000_000 * per_pair
    kinds = ver.get("pairs") or {}
    if kinds:  # real non-copy photos' rate (pairs between two distractors per distractor) + the copies' own
        real_pairs = kinds["distractor_pairs_per_distractor"] * 1_000_000 + cand["uncertain_planted"] * scale
        real_distractor = {"uncertain_pairs_at_real_distractor_rate": round(real_pairs),
                           "total_s_at_real_distractor_rate": round(read_s + cand_s + real_pairs * per_pair)}
    else:
        real_distractor = {}
    return {"measured_at_n": cand["n"], "read_s": round(read_s), "candidates_s": round(cand_s),
            "candidates_s_linear": round(cand_linear),
            "uncertain_pairs": round(uncertain), "s_per_pair": per_pair, "verify_s": round(verify_s),
            "total_s": round(total), "target_s": TARGET_S, "meets_target": total < TARGET_S,
            "verify_top": VERIFY_TOP, "planted_recall_after_gate": gate["planted_recall"] if gate else None,
            "verify_s_if_only_copies_were_uncertain": round(planted_only),
            "total_s_if_only_copies_were_uncertain": round(read_s + cand_s + planted_only),
            "total_s_at_the_real_sets_rate": round(read_s + cand_s + real_rate_s), **real_distractor}


def projection_screened(cand: dict, ver: dict) -> dict:
    """At 1M with ``index --copy-features`` (``ver`` measured so): every uncertain pair is screened (its
    seconds per pair measured), and the pairs the screen lets through are checked (on their pixels with the
    screen's transform, SIFT where that is unsure: the seconds per pair of that mix measured in the same run):
    between distractors at the share of the real set's distractor pairs that pass, the planted copies' own
    pairs all."""
    base = projection(cand, ver)
    kinds = ver["pairs"]
    scale = 1_000_000 / cand["n"]
    passing = kinds.get("distractor_pairs_passing_screen", 0) / max(kinds["distractor_pairs"], 1)
    per_screen, per_sift = ver["s_per_screened_pair"] or 0.0, ver["s_per_checked_pair"] or 0.0
    copies = cand["uncertain_planted"] * scale
    out = {"distractor_pairs_passing_screen": round(passing, 4), "s_per_screened_pair": per_screen,
           "s_per_checked_pair": per_sift}
    for name, pairs in (("synthetic_rate", base["uncertain_pairs"]),
                        ("real_distractor_rate", kinds["distractor_pairs_per_distractor"] * 1_000_000 + copies)):
        sift = (pairs - copies) * passing + copies
        verify_s = pairs * per_screen + sift * per_sift
        out[name] = {"uncertain_pairs": round(pairs), "checked_pairs": round(sift), "verify_s": round(verify_s),
                     "total_s": round(base["read_s"] + base["candidates_s"] + verify_s)}
    out["meets_target"] = out["real_distractor_rate"]["total_s"] < TARGET_S
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="vectors in the candidate stage (default 100000)")
    ap.add_argument("--skip-real", action="store_true", help="only the candidate stage")
    ap.add_argument("--verification-from", metavar="JSON",
                    help="take the verification stage from an earlier run's --json output instead of measuring it")
    ap.add_argument("--candidates-from", metavar="JSON",
                    help="take the candidate stage from an earlier run's --json output (e.g. the 1M run)")
    ap.add_argument("--dir", help="work folder (default: a temporary one; needs ~5.5 KB per vector)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --dir: use the library an earlier run with this --n wrote there (no generating, "
                         "no writing)")
    ap.add_argument("--gates-from", metavar="DIR",
                    help="only the gate table (and --exact-sample's bound), from the candidate pairs an earlier "
                         "--dir run with this --n saved")
    ap.add_argument("--copy-features", action="store_true",
                    help="also the verification with index --copy-features (screening before SIFT), side by side "
                         "on the same photos, and its projection")
    ap.add_argument("--exact-sample", type=int, default=1500, metavar="K",
                    help="planted pairs whose exact neighbours are searched beside the index's (default 1500; 0: "
                         "none; at 1M ~1 min and the vectors generated again, ~5 GB)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cache = cache_dir()
    if args.gates_from:
        arr = np.load(Path(args.gates_from) / "pairs.npy")
        planted, _ = planted_rows(args.n, cache, 16 * (len(real_embeddings(cache, samples_only=True)[0]) // 17))
        a, b = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
        rows = gate_table(a, b, arr[:, 2], planted, args.n)
        bound = exact_bound(args.n, cache, planted, set((a * (args.n + 1) + b).tolist()),
                            args.exact_sample) if args.exact_sample else None
        print(json.dumps({"gates": rows, "exact_bound": bound}) if args.json else "\n".join(
            [f"floor {r['floor']}  top {r['top']:>2}  uncertain/image {r['uncertain_per_image']:>6}  "
             f"planted recall {r['planted_recall']}" for r in rows] + ([json.dumps(bound)] if bound else [])))
        return 0
    work = Path(args.dir or tempfile.mkdtemp(prefix="lookalike-dupes-"))
    try:
        files = {k: json.loads(Path(v).read_text()) for k, v in
                 (("verification", args.verification_from), ("candidates", args.candidates_from)) if v}
        earlier = {k: d[k] for k, d in files.items()}
        for k, d in files.items():  # the load when that stage was measured, not now
            earlier[k].setdefault("load_average", d.get("load_average"))
        ver = earlier.get("verification") or (None if args.skip_real else verification_stage(work))
        ver_cf = files.get("verification", {}).get("verification_copy_features") if args.verification_from else (
            verification_stage(work, copy_features=True) if args.copy_features and not args.skip_real else None)
        cand = earlier.get("candidates") or candidate_stage(args.n, work, cache, reuse=args.reuse,
                                                          exact_sample=args.exact_sample)
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    out = {"candidates": cand, "verification": ver, "projection_1m": projection(cand, ver) if ver else None,
           "verification_copy_features": ver_cf,
           "projection_1m_copy_features": projection_screened(cand, ver_cf) if ver_cf else None,
           "imagededup_cnn_anchor": IMAGEDEDUP, "cores": os.cpu_count(),
           "load_average": [round(v, 2) for v in os.getloadavg()]}
    if args.json:
        print(json.dumps(out))
        return 0
    c = cand
    rows = [
        ("candidate stage: vectors (1% planted copies)", f"{c['n']:,} x 1280, {c['planted_pairs']:,} planted pairs"),
        ("  index", json.dumps(c["index"])),
        ("  read images / candidates", f"{c['read_s']} s / {c['candidates_s']} s"),
        ("  images/s, candidate pairs/s", f"{c['images_per_s']:,} / {c['candidate_pairs_per_s']:,}"),
        ("  peak RSS of the stage's process", f"{c['peak_rss_mb']:,} MB"),
        ("  recall of planted pairs (cosine >= 0.5)", c["planted_recall"]),
        ("  planted pairs' cosine p1 / p50", " / ".join(map(str, c["planted_cosine_p1_p50"]))),
        ("  candidate pairs: sure / uncertain", f"{c['sure_pairs']:,} / {c['uncertain_pairs']:,} "
                                                f"({c['uncertain_per_image']} per image)"),
    ]
    if c.get("exact_bound"):
        e = c["exact_bound"]
        rows += [
            (f"  {e['sample']:,} planted pairs: recall by the index / exact search",
             f"{e['index_recall']} / {e['exact_recall']} (at the gate, exact: {e['exact_recall_at_gate']}; "
             f"found by one only: index {e['found_by_index_not_exact']}, exact {e['found_by_exact_not_index']})"),
            ("  exact recall with more neighbours", ", ".join(f"{k}: {v}" for k, v in
                                                            e.get("exact_recall_by_neighbours", {}).items())),
            ("  their originals' 2nd / 10th neighbour cosine (p10 p50 p90)",
             f"{e.get('cos_2nd_p10_p50_p90')} / {e.get('cos_10th_p10_p50_p90')}"),
        ]
    for g in c.get("gates", []):
        rows.append((f"  gate: cosine >= {g['floor']}, top {g['top']}",
                     f"{g['uncertain_per_image']} uncertain per image, planted recall {g['planted_recall']}"))
    if ver:
        rows += [
            ("verification: real photos", f"{ver['images']} images, {ver['planted_copies']} planted copies, "
                                          f"{ver['distractors']} distractors"),
            ("  uncertain pairs: verified / gated (neither image's nearest 2)",
             f"{ver['verified']} / {ver.get('gated', 0)}"),
            ("  seconds per verified pair", ver["s_per_verified_pair"]),
            ("  recall of planted copies", ver["recall"]),
            ("  false pairs", ver["false_pairs"]),
            ("  2nd / 10th neighbour cosine, real photos (p10 p50 p90)",
             f"{ver.get('density', {}).get('cos_2nd_p10_p50_p90')} / {ver.get('density', {}).get('cos_10th_p10_p50_p90')}"),
            ("  second run: verified / known / s", f"{ver['second_run']['verified']} / {ver['second_run']['reused']} "
                                                   f"/ {ver['second_run']['s']}"),
        ]
        p = out["projection_1m"]
        rows += [
            ("projection, 1M photos, 1% duplicates", f"{p['total_s']:,} s (target {TARGET_S:.0f} s: "
                                                     f"{'met' if p['meets_target'] else 'MISSED'})"),
            ("  read + candidates + verification", f"{p['read_s']:,} + {p['candidates_s']:,} + {p['verify_s']:,} s "
                                                   f"({p['uncertain_pairs']:,} uncertain pairs)"),
            ("  at the real set's verified pairs per image", f"{p['total_s_at_the_real_sets_rate']:,} s "
                                                             f"({ver.get('verified_per_image')} per image)"),
            ("  if only the copies were uncertain", f"{p['total_s_if_only_copies_were_uncertain']:,} s"),
        ]
        if ver.get("pairs"):
            k = ver["pairs"]
            rows[-4:-4] = [
                ("  verified pairs: copies / other (of which distractor-distractor)",
                 f"{k['copy_pairs']} / {k['other_pairs']} ({k['distractor_pairs']}: "
                 f"{k['distractor_pairs_per_distractor']} per distractor; held-out report set "
                 f"{k['distractor_pairs_per_report_image']} per image)"),
                ("  images described (SIFT once each)", ver.get("images_described")),
                ("  non-copy pairs flagged", json.dumps(k["flagged_other_pairs"]))]
            rows.insert(-1, ("  at real distractors' rate + the copies' pairs",
                             f"{p['total_s_at_real_distractor_rate']:,} s "
                             f"({p['uncertain_pairs_at_real_distractor_rate']:,} pairs)"))
    v, q = ver_cf, out["projection_1m_copy_features"]
    if v and ver:
        rows += [
            ("with index --copy-features (same photos)", f"index {v['index_s']} s / {v['index_cpu_s']} s CPU "
                                                         f"(without: {ver['index_s']} s / {ver['index_cpu_s']} s CPU)"),
            ("  dupes wall / CPU", f"{v['dupes_s']} s / {v['dupes_cpu_s']} s (without: {ver['dupes_s']} s / "
                                   f"{ver['dupes_cpu_s']} s)"),
            ("  uncertain pairs: screened out / settled on 320-px pixels / SIFT",
             f"{v['screened']} / {v['aligned']} / {v['verified']} (of {v['uncertain']})"),
            ("  seconds per screened pair / per checked pair", f"{v['s_per_screened_pair']} / {v['s_per_checked_pair']}"),
            ("  recall of planted copies / false pairs", f"{v['recall']} / {v['false_pairs']} (without: "
                                                         f"{ver['recall']} / {ver['false_pairs']})"),
            ("  distractor pairs passing the screen", q["distractor_pairs_passing_screen"]),
            ("  projection, 1M, real distractors' rate", f"{q['real_distractor_rate']['total_s']:,} s "
                                                         f"({q['real_distractor_rate']['checked_pairs']:,} checked pairs; "
                                                         f"{'met' if q['meets_target'] else 'MISSED'})"),
            ("  projection, 1M, synthetic vectors' rate", f"{q['synthetic_rate']['total_s']:,} s "
                                                          f"({q['synthetic_rate']['checked_pairs']:,} checked pairs)"),
        ]
    rows += [("imagededup CNN (its benchmark)", "392 s for 10,800 images, recall 0.38")]
    for name, part in (("candidates", cand), ("verification", ver)):
        if part and part.get("load_average"):
            rows.append((f"load average after {name} (1, 5, 15 min)", " ".join(map(str, part["load_average"]))))
    rows.append(("load average now", " ".join(map(str, out["load_average"]))))
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
