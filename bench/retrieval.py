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
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation import retrieval as R  # noqa: E402
from lookalike.evaluation.keywords import build_labelled_set, default_set_dir  # noqa: E402


def load_sets(cache: Path, progress: bool = True) -> dict:
    from lookalike.evaluation.copies import image_files
    from lookalike.samples import package_dir, sample_photos

    fm = R.FeatureMaps()
    sets = {}
    for name, root in (("tuxpaint", build_labelled_set(default_set_dir())),
                       ("photos", R.build_photo_set(cache / "photo-set")),
                       ("fashion", R.build_fashion_set(cache / "fashion-set"))):
        paths, labels = R.labelled_paths(root)
        pooled = R.extract([R.file_loader(p) for p in paths], paths, fm, cache, name, progress=progress)
        sets[name] = {"paths": paths, "labels": labels, "pooled": pooled}
    originals = [str(p.resolve()) for p in sorted(sample_photos().values())]
    distractors = [str(p.resolve()) for p in image_files(package_dir("mvtbdata"))]
    db = originals + [p for p in distractors if p not in set(originals)]
    sets["copies"] = {
        "paths": db, "originals": len(originals),
        "pooled": R.extract([R.file_loader(p) for p in db], db, fm, cache, "copies-db", progress=progress),
        "queries": R.extract(R.copy_queries(originals), ["edit:" + p for p in originals], fm, cache,
                             "copies-queries", progress=progress)}
    return sets


def _vec(pooled: "R.Pooled", pooling: str, scales: tuple[int, ...] = (224,)) -> np.ndarray:
    """L2-normalised descriptors: one pooling, the L2-normalised scales summed."""
    return R.l2n(sum(R.l2n(pooled.vectors[(s, pooling)]) for s in scales))


LABELLED = ("tuxpaint", "photos", "fashion")
# name -> (pooling, scales); whitening/expansion are applied on top (see VARIANTS)
DESCRIPTORS = {
    "mean": ("mean", (224,)), "gem": ("gem", (224,)), "gem p=2": ("gem2", (224,)), "gem p=4": ("gem4", (224,)),
    "max": ("max", (224,)), "rmac": ("rmac", (224,)), "regional gem": ("rgem", (224,)),
    "mean 224+288": ("mean", (224, 288)), "mean 3 scales": ("mean", (160, 224, 288)),
    "gem 224+288": ("gem", (224, 288)), "gem 3 scales": ("gem", (160, 224, 288)),
}
# (descriptor, whitening {fit: self|other, dims, shrink, power} or None, expansion or None)
VARIANTS: list[tuple[str, dict | None, str | None]] = [(d, None, None) for d in DESCRIPTORS]
for d in ("mean", "gem", "gem 224+288"):
    for power in (1.0, 0.5):
        VARIANTS.append((d, {"fit": "self", "dims": 0, "shrink": 0.1, "power": power}, None))
for d in ("mean", "gem"):
    VARIANTS.append((d, {"fit": "other", "dims": 0, "shrink": 0.1, "power": 0.5}, None))
    for shrink in (0.02, 0.5, 2.0):
        VARIANTS.append((d, {"fit": "self", "dims": 0, "shrink": shrink, "power": 0.5}, None))
    for dims in (512, 256, 128):
        VARIANTS.append((d, {"fit": "self", "dims": dims, "shrink": 0.1, "power": 0.5}, None))
for d in ("mean", "gem"):
    for w in (None, {"fit": "self", "dims": 0, "shrink": 0.1, "power": 0.5}):
        for x in ("aqe", "dba", "dba+aqe", "k-reciprocal"):
            VARIANTS.append((d, w, x))


def variant_name(d: str, w: dict | None, x: str | None) -> str:
    name = d
    if w:
        name += f" +pw{'' if w['power'] == 1 else ' sqrt'}({w['fit']}" + (f",{w['dims']}d" if w["dims"] else "") + \
            (f",s={w['shrink']}" if w["shrink"] != 0.1 else "") + ")"
    return name + (f" +{x}" if x else "")


def _fit(w: dict, own: np.ndarray, other: dict | None, d: str):
    return R.fit_whitening(own if w["fit"] == "self" else other[d], dims=w["dims"], shrink=w["shrink"],  # type: ignore[index]
                           power=w["power"])


def run_labelled(data: dict, other: np.ndarray | None, d: str, w: dict | None, x: str | None) -> dict:
    v = _vec(data["pooled"], *DESCRIPTORS[d])
    if w:
        v = R.apply_whitening(_fit(w, v, other, d), v)
    s = _expand_scores(v, v, x, self_query=True)
    return R.labelled_metrics(s, data["labels"])


def run_copies(data: dict, other: np.ndarray | None, d: str, w: dict | None, x: str | None) -> dict:
    db = _vec(data["pooled"], *DESCRIPTORS[d])
    q = _vec(data["queries"], *DESCRIPTORS[d])
    if w:
        wh = _fit(w, db, other, d)
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


def model_costs(fm: "R.FeatureMaps", reps: int = 3, batch: int = 16) -> dict:
    """Per image: ms of the forward pass at each scale, and of each pooling on the 224 px feature map,
    measured side by side in this run (best of ``reps``; a shared machine: compare ratios)."""
    import time

    from lookalike.samples import sample_photos
    from lookalike.io.read import load
    from lookalike.models.base import resize_center_crop

    imgs = [load(p).image for p in list(sample_photos().values())[:batch]]
    out: dict[str, float] = {}
    fmap224 = None
    for s in R.SCALES:
        x = np.stack([resize_center_crop(im, s) for im in imgs])
        fm(x)  # warm-up
        best = min(_timed(lambda: fm(x)) for _ in range(reps))
        out[f"forward {s}"] = 1000 * best / len(x)
        if s == 224:
            fmap224 = fm(x)
    for name, fn in R.POOLINGS.items():
        out[f"pool {name}"] = 1000 * min(_timed(lambda: fn(fmap224)) for _ in range(reps)) / batch
    return {k: round(v, 3) for k, v in out.items()}


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
             "dba+aqe": "2 searches (+ k-NN per indexed image)", "k-reciprocal": "1 search + k-NN graph of the top list"}[x]
    return {"index_ms_per_image": round(ms, 2), "index_cost_ratio": round(ms / base, 3), "query": query,
            "bytes_per_image": dims * 4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default="/tmp/retrieval", help="pooled features are cached here")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--only", help="comma-separated variant-name prefixes")
    args = ap.parse_args()
    sets = load_sets(Path(args.cache), progress=not args.json)
    others = _others(sets)
    rows = []
    for d, w, x in VARIANTS:
        name = variant_name(d, w, x)
        if args.only and not any(name.startswith(o) for o in args.only.split(",")):
            continue
        row = {"variant": name}
        for sname in LABELLED:
            row[sname] = run_labelled(sets[sname], others[sname], d, w, x)
        row["copies"] = run_copies(sets["copies"], others["copies"], d, w, x)
        rows.append(row)
        if not args.json:
            print(f"{name:40s} tux P@10 {row['tuxpaint']['precision_at_10']:.3f} mAP {row['tuxpaint']['map']:.3f} | "
                  f"photos P@10 {row['photos']['precision_at_10']:.3f} mAP {row['photos']['map']:.3f} | "
                  f"copy R@1 {row['copies']['recall_at_1']:.3f} TPR0 {row['copies']['tpr_at_zero_fp']:.3f} "
                  f"hardR@1 {row['copies'].get('hard_recall_at_1', 0):.3f}", flush=True)
    if args.json:
        print(json.dumps({"variants": rows}))
    return 0


def _others(sets: dict) -> dict:
    """For each reported set, the vectors whitening 'other' is fitted on: the other sets' images that are not
    in it (per descriptor)."""
    out = {}
    for name in (*LABELLED, "copies"):
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
