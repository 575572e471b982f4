"""The real-photo half of bench/dupes_scale.py: the verification of ``lookalike dupes`` on real photos.

The packages' sample photos, half of them edited 4 ways each (seeded draw from the 16 edits), the other half
and tuxpaint's photographic stamps (Debian tuxpaint-stamps-default, when installed) as distractors, and held
out from the verifier's calibration, lookalike's report set (evaluation/sets.py: mvtb-data photos,
Fashion-MNIST garments; its interiors are sample photos, left out), indexed into a real library and run
through ``Library.dupes`` (``verification_stage``); with how crowded the real photos' neighbourhoods are
(``real_density``), beside the synthetic vectors' (``neighbour_cosines``).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lookalike.evaluation.edits import EDITS  # noqa: E402

EDITS_PER_PHOTO = 4
DENSITY_DEPTH = 10  # the neighbours looked at (the candidate stage's 10)


def neighbour_cosines(cos: np.ndarray) -> dict:
    """Median (p10, p90) cosine of each row's 2nd and 10th nearest other vector, from rows of descending
    neighbour cosines (the vector itself left out): how crowded a collection is near its images."""
    out = {}
    for k, name in ((2, "2nd"), (10, "10th")):
        if cos.shape[1] >= k:
            out[f"cos_{name}_p10_p50_p90"] = [round(float(v), 3) for v in np.percentile(cos[:, k - 1], [10, 50, 90])]
    return out


def real_density(store) -> dict:  # type: ignore[no-untyped-def]
    """neighbour_cosines of a real library's images, exactly (every image against all the others)."""
    ids = sorted(st.id for st in store.file_states().values())
    emb = store.index.embeddings(ids)
    x = np.stack([emb[i] for i in ids if i in emb]).astype(np.float32)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    return {"images": len(x), **neighbour_cosines(-np.sort(-sims, axis=1)[:, :DENSITY_DEPTH])}


def real_set(root: Path) -> tuple[dict[str, str], list[str]]:
    """Photos in ``root``: path -> family (its original's name) for originals and their edits, and the
    distractor paths (each its own family, but for tuxpaint's mirrored stamps)."""
    from PIL import Image

    from lookalike.evaluation.edits import apply
    from lookalike.io.read import load
    from lookalike.samples import copy_samples, sample_photos

    names = sorted(sample_photos())
    rng = random.Random(3)
    originals = set(rng.sample(names, len(names) // 2))
    family: dict[str, str] = {}
    distractors: list[str] = []
    for p in copy_samples(root / "photos", names):
        name = p.stem
        family[str(p)] = name
        if name not in originals:
            distractors.append(str(p))
            continue
        img = load(str(p), min_side=None).image
        img.thumbnail((2048, 2048), Image.Resampling.LANCZOS)
        for e in rng.sample(sorted(EDITS), EDITS_PER_PHOTO):
            dest = root / "copies" / f"{name}-{e}.jpg"
            dest.parent.mkdir(parents=True, exist_ok=True)
            apply(e, img, seed=name).convert("RGB").save(dest, quality=90)
            family[str(dest)] = name
    try:
        from lookalike.evaluation.keywords import build_tuxpaint_set
        from lookalike.evaluation.copies import image_files

        for p in image_files(build_tuxpaint_set(root / "tuxpaint")):
            # tuxpaint ships mirror images of some stamps (``*_mirror``): a real copy, counted with its stamp
            family[str(p)] = f"tux:{p.parent.name}/{p.stem.removesuffix('_mirror')}"
            distractors.append(str(p))
    except Exception as err:  # noqa: BLE001 - the Debian package is optional
        print(f"tuxpaint stamps not used: {err}", file=sys.stderr)
    try:  # held-out distractors: lookalike's report set (mvtb-data photos, interiors, Fashion-MNIST garments)
        from lookalike.evaluation.copies import image_files
        from lookalike.evaluation.sets import build_report_set

        for p in image_files(build_report_set(root / "report")):
            if p.stem in names:  # its interiors are also sample photos: the same photos, not distractors
                p.unlink()
                continue
            family[str(p)] = f"report:{p.parent.name}/{p.stem}"
            distractors.append(str(p))
    except Exception as err:  # noqa: BLE001 - the packages are optional
        print(f"report set not used: {err}", file=sys.stderr)
    return family, distractors


RELIT_BLOCK = 32
RELIT_TEXTURED = 8.0  # a block's grey-level standard deviation from which its correlation counts
RELIT_MIN_TEXTURED = 0.25  # share of blocks textured in both images (flat frames prove nothing)
RELIT_MIN_BLOCKS = 48  # and at least this many (a thumbnail's few smooth blocks correlate whatever it shows)
RELIT_CORRELATION = 0.95  # median correlation of the textured blocks: ~0.99 one photo relit, ~0 two shots


def relit_families(family: dict[str, str], distractors: list[str]) -> dict[str, str]:
    """The labels, with distractors that are one photo in different light made one family: two images of
    the same size whose 32-px blocks (grey, at most 512 px wide) correlate pixel for pixel (the median over
    the blocks textured in both, at least a quarter of them and 48, >= RELIT_CORRELATION: each block of
    one an affine function of the other's). The packages ship such pairs as different files (mvtb-data's
    castle2.jpg is castle.jpg relit: 0.994; its shark silhouettes, 7% textured, two shots of one
    building, ~0.0, and the garments enlarged from 28 px, 16 blocks, are not); they are copies by any definition, so ``dupes`` grouping them is not a false
    pair. Independent of lookalike's own verification: the same pixels at the same size, nothing fitted."""
    from PIL import Image

    def blocks(path: str) -> np.ndarray:
        with Image.open(path) as im:
            g = im.convert("L")
            if g.width > 512:
                g = g.resize((512, round(g.height * 512 / g.width)), Image.Resampling.BOX)
        a, n = np.asarray(g, np.float64), RELIT_BLOCK
        h, w = (a.shape[0] // n) * n, (a.shape[1] // n) * n
        x = a[:h, :w].reshape(h // n, n, w // n, n).swapaxes(1, 2).reshape(-1, n * n)
        return x - x.mean(1, keepdims=True)

    def same_photo(a: np.ndarray, b: np.ndarray) -> bool:
        sa, sb = np.sqrt((a * a).mean(1)), np.sqrt((b * b).mean(1))
        textured = (sa > RELIT_TEXTURED) & (sb > RELIT_TEXTURED)
        if textured.mean() < RELIT_MIN_TEXTURED or textured.sum() < RELIT_MIN_BLOCKS:
            return False
        r = (a * b).mean(1)[textured] / (sa * sb)[textured]
        return float(np.median(r)) >= RELIT_CORRELATION

    by_size: dict[tuple[int, int], list[str]] = {}
    for p in distractors:
        with Image.open(p) as im:
            by_size.setdefault(im.size, []).append(p)
    out = dict(family)
    for paths in by_size.values():
        grid = {p: blocks(p) for p in paths} if len(paths) > 1 else {}
        for i, a in enumerate(paths):
            for b in paths[i + 1:]:
                if out[a] != out[b] and same_photo(grid[a], grid[b]):
                    print(f"one photo relit, one family: {Path(a).name} {Path(b).name}", file=sys.stderr)
                    merged = out[b]
                    out = {k: (out[a] if v == merged else v) for k, v in out.items()}
    return out


def pair_kinds(lib, family: dict[str, str], distractors: list[str]) -> dict:  # type: ignore[no-untyped-def]
    """The verified (uncertain) pairs kept in the library, split: within a copy family (an original and its
    edits) or between different photos, and of those, between two distractors (the rate a library of
    photos without copies would have), by source (``report:`` the held-out set, else the samples/tuxpaint)."""
    from lookalike.search import verify
    from lookalike.search.dupe_verify import pair_version

    store = lib.store
    paths = {i.id: i.path for i in store.get(sorted(st.id for st in store.file_states().values()))}
    kept = store.dupe_pairs(pair_version(store))
    fam = {p: family.get(p, p) for p in paths.values()}
    dis = set(distractors)
    out = {"copy_pairs": 0, "other_pairs": 0, "distractor_pairs": 0, "distractor_pairs_report": 0,
           "flagged_other_pairs": []}
    for v in kept:
        pa, pb = paths.get(v.a), paths.get(v.b)
        if pa is None or pb is None:
            continue
        if fam[pa] == fam[pb]:
            out["copy_pairs"] += 1
            continue
        out["other_pairs"] += 1
        if pa in dis and pb in dis:
            out["distractor_pairs"] += 1
            feats = store.copy_features([v.a, v.b])
            if len(feats) == 2:  # index --copy-features: would the screen send this pair on to SIFT?
                out.setdefault("distractor_pairs_passing_screen", 0)
                out["distractor_pairs_passing_screen"] += verify.screen_inliers(feats[v.a], feats[v.b]) >= verify.SCREEN_INLIERS
            out["distractor_pairs_report"] += fam[pa].startswith("report:") and fam[pb].startswith("report:")
        if v.score > 0.5:
            out["flagged_other_pairs"].append([Path(pa).name, Path(pb).name, round(v.cosine, 3), round(v.score, 3)])
    n_report = sum(1 for p in distractors if family[p].startswith("report:"))
    out["distractors_report"] = n_report
    out["distractor_pairs_per_distractor"] = round(out["distractor_pairs"] / max(len(dis), 1), 4)
    out["distractor_pairs_per_report_image"] = round(out["distractor_pairs_report"] / max(n_report, 1), 4)
    return out


def verification_stage(workdir: Path, copy_features: bool = False) -> dict:
    """``copy_features``: indexed with ``index --copy-features``, so that dupes screens pairs first."""
    from lookalike.library import Library

    if (workdir / "real").is_dir():  # the same photos for both variants
        family, distractors = json.loads((workdir / "real-set.json").read_text())
    else:
        family, distractors = real_set(workdir / "real")
        (workdir / "real-set.json").write_text(json.dumps([family, distractors]))
    family = relit_families(family, distractors)
    with Library(workdir / ("real-lib-cf" if copy_features else "real-lib"), copy_features=copy_features) as lib:
        t, cpu = time.perf_counter(), time.process_time()
        lib.index([workdir / "real"], progress=True)
        index_s, index_cpu = time.perf_counter() - t, time.process_time() - cpu
        cpu = time.process_time()
        first = lib.dupes(progress=True)
        dupes_cpu = time.process_time() - cpu
        second = lib.dupes()
        kinds = pair_kinds(lib, family, distractors)
        density = real_density(lib.store)
    fam = {p: family.get(p, p) for p in family}
    group_of = {}
    false_pairs = 0
    for n, g in enumerate(first.groups):
        fams = [fam.get(i.path, i.path) for i in g.items]
        for i in g.items:
            group_of[i.path] = n
        false_pairs += sum(1 for x in range(len(fams)) for y in range(x + 1, len(fams)) if fams[x] != fams[y])
    copies = [(p, f) for p, f in family.items() if Path(p).parent.name == "copies"]
    orig_path = {f: p for p, f in family.items() if Path(p).parent.name == "photos"}
    found = sum(1 for p, f in copies if p in group_of and group_of[p] == group_of.get(orig_path[f], -1))
    screen_s = first.timings.get("screening", 0.0)
    verify_s = first.timings.get("verifying", 0.0) - screen_s
    return {
        "copy_features": copy_features, "images": first.images, "planted_copies": len(copies),
        "distractors": len(distractors), "index_s": round(index_s, 1), "index_cpu_s": round(index_cpu, 1),
        "dupes_s": round(first.elapsed_s, 1), "dupes_cpu_s": round(dupes_cpu, 1), "timings": first.as_dict()["timings"],
        "candidate_pairs": first.pairs_checked, "uncertain": first.uncertain, "screened": first.screened,
        "s_per_screened_pair": round(screen_s / first.uncertain, 5) if first.screened else None,
        "aligned": first.aligned, "images_decoded_320": first.decoded,
        "s_per_checked_pair": round(verify_s / (first.aligned + first.verified), 4) if first.aligned + first.verified else None,
        "verified": first.verified, "phash_pairs": first.phash_pairs,
        "uncertain_per_image": round(first.uncertain / max(first.images, 1), 3), "gated": first.gated,
        "verified_per_image": round(first.verified / max(first.images, 1), 3),
        "s_per_verified_pair": round(verify_s / first.verified, 4) if first.verified else None,
        "images_described": first.described, "pairs": kinds, "density": density,
        "recall": round(found / len(copies), 4) if copies else None, "false_pairs": false_pairs,
        "groups": len(first.groups), "unreadable": len(first.unreadable),
        "second_run": {"verified": second.verified, "reused": second.reused, "s": round(second.elapsed_s, 2)},
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }
