"""Search by example, every variant side by side: pooling, whitening, query/database expansion.

See ``lookalike/evaluation/retrieval.py`` for the variants. Sets (each reported apart):

- ``tuxpaint``: the project's labelled set (bench/quality.py, bench/keyword_quality.py): Debian
  tuxpaint-stamps-default photo cut-outs in 15 classes + the sample photos as distractors;
- ``photos``: mvtb-data's scene groups (chessboards, campus, aerial, flowers, street frames, ...) + the 39
  tiktok interiors as one class, the other sample photos as distractors;
- ``fashion``: 300 Fashion-MNIST product photos (Debian dataset-fashion-mnist), 30 per class;
- ``copies``: the edit suite of ``lookalike eval`` (the sample photos x 16 edits, among mvtb-data's photos).

    python bench/retrieval.py              # a table
    python bench/retrieval.py --json       # one JSON object
    python bench/retrieval.py --cache DIR  # where pooled features are cached (default /tmp/retrieval)
    python bench/retrieval.py --only "mean,gem"   # only the variants whose names start so
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation import features as F  # noqa: E402
from lookalike.evaluation import retrieval as R  # noqa: E402
from lookalike.evaluation.keywords import build_labelled_set, default_set_dir  # noqa: E402


def load_sets(cache: Path, progress: bool = True, only: tuple[str, ...] = ()) -> dict:
    """Every set whose photos are installed (a missing one is skipped with a one-line reason); ``only``: just
    these labelled sets (no copy suite)."""
    from lookalike.errors import LookalikeError
    from lookalike.evaluation.copies import image_files
    from lookalike.samples import package_dir, sample_photos

    fm = F.FeatureMaps()
    builders = {"tuxpaint": lambda: build_labelled_set(default_set_dir()),
                "photos": lambda: R.build_photo_set(cache / "photo-set"),
                "fashion": lambda: R.build_fashion_set(cache / "fashion-set")}
    sets = {}
    for name, build in builders.items():
        if only and name not in only:
            continue
        try:
            root = build()
        except LookalikeError as err:
            print(f"retrieval: set {name} skipped: {err}", file=sys.stderr)
            continue
        paths, labels = R.labelled_paths(root)
        pooled = F.extract([F.file_loader(p) for p in paths], paths, fm, cache, name, progress=progress)
        sets[name] = {"paths": paths, "labels": labels, "pooled": pooled}
    if only:
        return sets
    originals = [str(p.resolve()) for p in sorted(sample_photos().values())]
    mvtb = package_dir("mvtbdata")
    distractors = [str(p.resolve()) for p in image_files(mvtb)] if mvtb else []
    db = originals + [p for p in distractors if p not in set(originals)]
    sets["copies"] = {
        "paths": db, "originals": len(originals),
        "pooled": F.extract([F.file_loader(p) for p in db], db, fm, cache, "copies-db", progress=progress),
        "queries": F.extract(F.copy_queries(originals), ["edit:" + p for p in originals], fm, cache,
                             "copies-queries", progress=progress)}
    return sets


def _vec(pooled: "F.Pooled", pooling: str, scales: tuple[int, ...] = (224,)) -> np.ndarray:
    """L2-normalised descriptors: one pooling, the L2-normalised scales summed."""
    return R.l2n(sum(R.l2n(pooled.vectors[(s, pooling)]) for s in scales))


LABELLED = ("tuxpaint", "photos", "fashion")


def labelled(sets: dict) -> list[str]:
    return [n for n in LABELLED if n in sets]


# name -> (pooling, scales); whitening/expansion are applied on top (see VARIANTS)
DESCRIPTORS = {
    "mean": ("mean", (224,)), "gem": ("gem", (224,)), "gem p=2": ("gem2", (224,)), "gem p=4": ("gem4", (224,)),
    "max": ("max", (224,)), "rmac": ("rmac", (224,)), "regional gem": ("rgem", (224,)),
    "mean 224+288": ("mean", (224, 288)), "mean 3 scales": ("mean", (160, 224, 288)),
    "gem 224+288": ("gem", (224, 288)), "gem 3 scales": ("gem", (160, 224, 288)),
}
# (descriptor, whitening {fit: self|other, dims, shrink, power, beta} or None, expansion or None)
CENTRE = {"fit": "self", "dims": 0, "shrink": 0.0, "power": 1.0, "beta": 0.0}
PCAW = {"fit": "self", "dims": 0, "shrink": 0.1, "power": 0.5, "beta": 1.0}
VARIANTS: list[tuple[str, dict | None, str | None]] = [(d, None, None) for d in DESCRIPTORS]
VARIANTS += [
    ("mean", CENTRE, None), ("mean", {**CENTRE, "fit": "other"}, None), ("mean", {**CENTRE, "power": 0.5}, None),
    ("mean", {**PCAW, "power": 1.0}, None), ("mean", PCAW, None), ("mean", {**PCAW, "fit": "other"}, None),
    ("mean", {**PCAW, "shrink": 2.0}, None), ("mean", {**PCAW, "beta": 0.5}, None),
    ("mean", {**PCAW, "dims": 512}, None), ("mean", {**PCAW, "dims": 128}, None), ("gem", PCAW, None),
    ("mean", None, "aqe"), ("mean", None, "dba"), ("mean", None, "k-reciprocal"),
    ("mean", CENTRE, "aqe"), ("mean", CENTRE, "dba"), ("mean", CENTRE, "dba+aqe"), ("mean", CENTRE, "k-reciprocal"),
    ("gem", CENTRE, "dba"), ("regional gem", CENTRE, "dba"), ("mean 3 scales", CENTRE, "dba"),
    ("mean", CENTRE, "default"),  # what the library does: search/example.py on a store of these vectors
    ("mean", CENTRE, "default-small"),  # the same with a shortlist of 20 (pool 60, a fifth of a set): as at scale
    ("mean", CENTRE, "diffuse"), ("mean", CENTRE, "default+diffuse"), ("mean", CENTRE, "default+diffuse-small"),
]
# graph diffusion on the shortlist (search/example.py ``diffuse``): "diffuse" on the centred candidates alone,
# "default+diffuse" on the DBA-augmented ones after QE; parameters chosen on tuxpaint only (bench/diffusion_tune.py)
DIFFUSION = {"k": 10, "alpha": 0.5, "gamma": 3.0, "mutual": True}
SEARCH = {"default": {}, "default-small": {"shortlist": 20, "limit": 10},
          "diffuse": {"diffusion": {**DIFFUSION, "on": "centred"}},
          "default+diffuse": {"diffusion": DIFFUSION},
          "default+diffuse-small": {"shortlist": 20, "limit": 10, "diffusion": DIFFUSION}}


def variant_name(d: str, w: dict | None, x: str | None) -> str:
    name = d
    if w:
        if w["beta"] == 0 and not w["dims"]:
            name += " +centre" + (" sqrt" if w["power"] != 1 else "") + f"({w['fit']})"
        else:
            opts = [w["fit"]] + ([f"{w['dims']}d"] if w["dims"] else []) + \
                ([f"s={w['shrink']}"] if w["shrink"] != 0.1 else []) + ([f"beta={w['beta']}"] if w["beta"] != 1 else [])
            name += f" +pcaw{' sqrt' if w['power'] != 1 else ''}({','.join(opts)})"
    if x == "default":
        return name + " +dba shortlist = DEFAULT"
    if x == "default-small":
        return name + " +dba shortlist 20 (pool < set)"
    if x == "diffuse":
        return name + " +diffusion on shortlist"
    if x == "default+diffuse":
        return name + " +dba shortlist +diffusion"
    if x == "default+diffuse-small":
        return name + " +dba shortlist 20 +diffusion"
    return name + (f" +{x}" if x else "")


def _fit(w: dict, own: np.ndarray, other: dict | None, d: str):
    return R.fit_whitening(own if w["fit"] == "self" else other[d], dims=w["dims"], shrink=w["shrink"],  # type: ignore[index]
                           power=w["power"], beta=w["beta"])


def run_labelled(data: dict, other: dict | None, d: str, w: dict | None, x: str | None) -> dict:
    raw = _vec(data["pooled"], *DESCRIPTORS[d])
    wh = _fit(w, raw, other, d) if w else None
    if x in SEARCH:
        s = R.example_scores(raw, raw, wh["w"] if wh else None, self_query=True, **SEARCH[x])
    else:
        v = R.apply_whitening(wh, raw) if wh else raw
        s = _expand_scores(v, v, x, self_query=True)
    return R.labelled_metrics(s, data["labels"])


def run_copies(data: dict, other: dict | None, d: str, w: dict | None, x: str | None) -> dict:
    db = _vec(data["pooled"], *DESCRIPTORS[d])
    q = _vec(data["queries"], *DESCRIPTORS[d])
    wh = _fit(w, db, other, d) if w else None
    if x in SEARCH:
        s = R.example_scores(q, db, wh["w"] if wh else None, self_query=False, **SEARCH[x])
    else:
        if wh:
            db, q = R.apply_whitening(wh, db), R.apply_whitening(wh, q)
        s = _expand_scores(q, db, x, self_query=False)
    return R.copy_metrics(s, data["queries"].item, data["queries"].tag)


def _expand_scores(q: np.ndarray, db: np.ndarray, x: str | None, self_query: bool) -> np.ndarray:
    """Query x database scores after the expansion ``x``; with ``self_query`` the queries are the database's
    own rows (leave-one-out: a query never expands with itself)."""
    excl = np.arange(len(q)) if self_query else None
    if x in ("dba", "dba+aqe"):
        db = R.dba(db)
        if self_query:
            q = db
    if x in ("aqe", "dba+aqe"):
        q = R.alpha_qe(q, db, exclude=excl)
    s = q @ db.T
    if x == "k-reciprocal":
        s = R.k_reciprocal(s, db @ db.T, self_index=excl)
    return s


def model_costs(fm: "F.FeatureMaps", reps: int = 3, batch: int = 16) -> dict:
    """Per image: ms of the forward pass at each scale, and of each pooling on the 224 px feature map,
    measured side by side in this run (best of ``reps``; a shared machine: compare ratios)."""
    import time

    from lookalike.samples import sample_photos
    from lookalike.io.read import load
    from lookalike.models.base import resize_center_crop

    imgs = [load(p).image for p in list(sample_photos().values())[:batch]]
    out: dict[str, float] = {}
    fmap224 = None
    for s in F.SCALES:
        x = np.stack([resize_center_crop(im, s) for im in imgs])
        fm(x)  # warm-up
        best = min(_timed(lambda: fm(x)) for _ in range(reps))
        out[f"forward {s}"] = 1000 * best / len(x)
        if s == 224:
            fmap224 = fm(x)
    for name, fn in F.POOLINGS.items():
        out[f"pool {name}"] = 1000 * min(_timed(lambda: fn(fmap224)) for _ in range(reps)) / batch
    return {k: round(v, 3) for k, v in out.items()}


def store_costs(vectors: np.ndarray, n: int = 20_000, queries: int = 30, limit: int = 20) -> dict:
    """ms per query of plain cosine (store.knn) and of the library's by-example search (search/example.py)
    on a real embedded store (SQLite + faiss, exact below 25,000) of ``n`` vectors: the real photos' vectors,
    repeated with small noise to reach ``n`` (a shared machine: compare the two, measured side by side)."""
    import tempfile

    from lookalike.search.example import example_hits, refresh_transform
    from lookalike.stores.base import ImageRecord
    from lookalike.stores.sqlite import SQLiteStore

    rng = np.random.default_rng(0)
    base = R.l2n(vectors)
    reps = base[rng.integers(0, len(base), n)] + rng.normal(0, 0.02, (n, base.shape[1])).astype(np.float32)
    data = R.l2n(reps)
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(tmp)
        store.set_model_info("bench", "bench/1", data.shape[1])
        for i in range(0, n, 2000):
            store.write(upserts=[ImageRecord(path=f"/b/{j}.jpg", size=1, mtime=1.0, sha=f"{j:064x}", width=1, height=1,
                                             embedding=data[j]) for j in range(i, min(n, i + 2000))])
        store.optimize()
        refresh_transform(store, "bench/1")
        from lookalike.search.example import load_transform

        transform = load_transform(store, "bench/1")
        qs = data[rng.integers(0, n, queries)]
        store.knn(qs[0], limit)
        example_hits(store, qs[0], limit, None, transform)  # warm-up
        plain = min(_timed(lambda: [store.knn(q, limit) for q in qs]) for _ in range(2)) / queries
        example = min(_timed(lambda: [example_hits(store, q, limit, None, transform) for q in qs]) for _ in range(2)) / queries
        store.close()
    return {"images": n, "plain_ms": round(1000 * plain, 2), "example_ms": round(1000 * example, 2),
            "ratio": round(example / plain, 1)}


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    import time

    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def variant_cost(costs: dict, d: str, w: dict | None, x: str | None) -> dict:
    """Indexing ms per image (forward at each scale + pooling), relative to today's (mean at 224); query-side
    extra work; bytes per image of the stored vector."""
    pooling, scales = DESCRIPTORS[d]
    ms = sum(costs[f"forward {s}"] + costs[f"pool {pooling}"] for s in scales)
    base = costs["forward 224"] + costs["pool mean"]
    dims = (w or {}).get("dims") or 1280
    query = {None: "1 search", "aqe": "2 searches", "dba": "1 search (+ k-NN per indexed image)",
             "dba+aqe": "2 searches (+ k-NN per indexed image)", "k-reciprocal": "1 search + k-NN graph of the top list",
             "default": "1 search of depth 300 + 300 vectors read", "default-small": "1 search of depth 60",
             "diffuse": "1 search of depth 300 + a 100 x 100 solve",
             "default+diffuse": "the default + a 100 x 100 solve", "default+diffuse-small": "1 search of depth 60 + a 20 x 20 solve"}[x]
    return {"index_ms_per_image": round(ms, 2), "index_cost_ratio": round(ms / base, 3), "query": query,
            "bytes_per_image": dims * 4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/retrieval", help="pooled features are cached here")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", help="comma-separated variant-name prefixes")
    ap.add_argument("--store-n", type=int, default=20_000, help="images in the store the query cost is timed on")
    args = ap.parse_args()
    import time

    sets = load_sets(Path(args.cache), progress=not args.json)
    others = _others(sets)
    costs = model_costs(F.FeatureMaps())
    rows = []
    if not args.json:
        print(_header(sets))
    for d, w, x in VARIANTS:
        name = variant_name(d, w, x)
        if args.only and not any(name.startswith(o) for o in args.only.split(",")):
            continue
        row: dict[str, object] = {"variant": name}
        for sname in labelled(sets):
            row[sname] = run_labelled(sets[sname], others[sname], d, w, x)
        t = time.perf_counter()
        row["copies"] = run_copies(sets["copies"], others["copies"], d, w, x)
        cost = variant_cost(costs, d, w, x)
        cost["search_ms_per_query"] = round(1000 * (time.perf_counter() - t) / len(sets["copies"]["queries"].item), 3)
        row["cost"] = cost
        rows.append(row)
        if not args.json:
            print(_line(row), flush=True)
    allv = np.concatenate([_vec(v["pooled"], "mean") for v in sets.values()])
    search = store_costs(allv, n=args.store_n)
    out = {"sets": {k: _describe(v) for k, v in sets.items()}, "model_ms_per_image": costs, "variants": rows,
           "query_cost": search,
           "fitted": "nothing is fitted on labels; '(self)' fits on the reported collection's own vectors, "
                     "'(other)' on the other sets' images not in it; hyperparameters were chosen on tuxpaint and "
                     "photos (fashion was only ever evaluated)"}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"(index x: indexing cost vs today's, forward + pooling; ms/q: scoring one query on these small sets; "
              f"B/img: stored float32 vector)\nper query on a {search['images']:,}-image embedded store: plain cosine "
              f"{search['plain_ms']} ms, by-example default {search['example_ms']} ms ({search['ratio']}x)\n{out['fitted']}")
    return 0


def _describe(s: dict) -> dict:
    if "labels" in s:
        labels = [lab for lab in s["labels"] if lab]
        return {"images": len(s["paths"]), "labelled": len(labels), "classes": len(set(labels))}
    return {"collection": len(s["paths"]), "originals": s["originals"], "queries": int(len(s["queries"].item))}


def _header(sets: dict) -> str:
    d = {k: _describe(v) for k, v in sets.items()}
    lines = [f"{k}: {v}" for k, v in d.items()]
    lines.append(f"{'variant':46s} " + " ".join(f"{n + ' P@10/mAP':>18s}" for n in labelled(sets))
                 + f" {'copy R@1':>8s} {'TPR@0FP':>8s} {'index x':>7s} {'B/img':>6s} {'ms/q':>6s}")
    return "\n".join(lines)


def _line(row: dict) -> str:
    cells = " ".join(f"{row[n]['precision_at_10']:>9.3f} / {row[n]['map']:.3f}" for n in LABELLED if n in row)
    c, k = row["copies"], row["cost"]
    return (f"{row['variant']:46s} {cells} {c['recall_at_1']:8.4f} {c['tpr_at_zero_fp']:8.3f} "
            f"{k['index_cost_ratio']:7.2f} {k['bytes_per_image']:6d} {k['search_ms_per_query']:6.2f}")


def _others(sets: dict) -> dict:
    """For each reported set, the vectors whitening 'other' is fitted on: the other sets' images that are not
    in it (per descriptor)."""
    out = {}
    for name in (*labelled(sets), "copies"):
        mine = set(sets[name]["paths"])
        fit: dict[str, np.ndarray] = {}
        for d in DESCRIPTORS:
            parts = []
            for oname, o in sets.items():
                if oname == name:
                    continue
                keep = [i for i, p in enumerate(o["paths"]) if p not in mine]
                parts.append(_vec(o["pooled"], *DESCRIPTORS[d])[keep])
            allv = np.concatenate(parts)
            fit[d] = np.unique(allv, axis=0)  # an image in two other sets counts once
        out[name] = fit
    return out


if __name__ == "__main__":
    raise SystemExit(main())
