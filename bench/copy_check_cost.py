"""What the copy check of an image query costs (search/copies.py), and whether its flags stay right.

    python bench/copy_check_cost.py                 # a table
    python bench/copy_check_cost.py --photos 24 --json

The library: every sample photo of the installed packages (the originals) and, when installed, mvtb-data's
121 photos (distractors), indexed as ``lookalike index`` does. The queries: ``--photos`` originals (spread
over the sample set) x every edit of ``lookalike eval`` (evaluation/edits.py: crops, rotations, mirror,
watermarks, JPEG, downscales, colour edits), saved as JPEG files. For each query the image query's own top
10 (the default ranking) get their copy flags three ways, side by side in one run:

- ``reference``: the check as it was before this benchmark (commit 28d6402): the query's features and its
  mirror's computed up front, every result in the band verified from a fresh decode;
- ``fresh``: ``check_copies`` with its feature cache emptied before every query (each query a new process:
  the CLI);
- ``server``: ``check_copies`` with the cache kept from query to query, starting empty (a server; here the
  16 edits of one photo come one after another, so their results repeat: the best case for the cache).

Reported: CPU seconds per query in the check (process time, the search itself not included), verified
results per query, copy recall (the query's original among the results and flagged ``copy``), false flags
(a result that is not the query's original flagged ``copy``; some sample photos are themselves related, see
``hardest``), and how many flags differ from the reference.
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

from lookalike.evaluation.copies import image_files  # noqa: E402
from lookalike.evaluation.edits import EDITS, apply  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.samples import copy_samples, package_dir  # noqa: E402
from lookalike.search import verify  # noqa: E402
from lookalike.search.plan import Query  # noqa: E402
from lookalike.search.signals import image_signal  # noqa: E402


def reference_check(ctx, q: Query, hits, top: int = 10) -> dict[int, tuple[bool, bool]]:  # type: ignore[no-untyped-def]
    """search/copies.py's check_copies as it was before (commit 28d6402): id -> (copy, verified)."""
    from lookalike.io.read import load
    from lookalike.search.dupes import CANDIDATE_COSINE

    cos = {h.id: h.score if h.cosine is None else h.cosine for h in hits}
    todo = [h for h in hits[:top] if cos[h.id] >= CANDIDATE_COSINE and verify.cosine_score(cos[h.id]) <= 0.5]
    query = None
    if todo:
        decoded = ctx.load_query(q, min_side=verify.FEATURE_SIDE)
        query = (verify.local_features(decoded.image), verify.local_features(decoded.image, mirror=True))
    paths = {i.id: i.path for i in ctx.store.get([h.id for h in todo])} if query else {}
    out = {}
    for h in hits:
        score, checked = verify.cosine_score(cos[h.id]), False
        if query is not None and h in todo and h.id in paths:
            cand = load(paths[h.id], min_side=verify.FEATURE_SIDE, max_pixels=ctx.settings.max_pixels)
            m = verify.match(query[0], verify.local_features(cand.image), query[1])
            score, checked = verify.copy_score(cos[h.id], m), True
        out[h.id] = (score > 0.5, checked)
    return out


def run(lib: Library, queries: list[tuple[Path, str, str]], how: str) -> dict[str, object]:
    from lookalike.search import copies

    cpu, verified, found, flagged, false_flags = [], [], 0, 0, []
    flags: dict[tuple[int, int], bool] = {}
    for path, original, edit in queries:
        q = Query("image_path", str(path))
        hits = image_signal(lib, q, "embedding", 10, None).hits
        t = time.process_time()
        if how == "reference":
            checks = reference_check(lib, q, hits)
        else:
            if how == "fresh":
                copies.clear_cache()
            checks = {i: (c.copy, c.verified) for i, c in copies.check_copies(lib, q, hits).items()}
        cpu.append(time.process_time() - t)
        paths = {i.id: i.path for i in lib.store.get([h.id for h in hits])}
        verified.append(sum(v for _, v in checks.values()))
        for h in hits:
            flags[(len(cpu), h.id)] = checks[h.id][0]
            if paths[h.id] == original:
                found += 1
                flagged += checks[h.id][0]
            elif checks[h.id][0]:
                false_flags.append(f"{Path(original).name} ({edit}) -> {Path(paths[h.id]).name}")
    ms = np.array(cpu) * 1000
    return {"cpu_ms_mean": round(float(ms.mean()), 1), "cpu_ms_p50": round(float(np.median(ms)), 1),
            "cpu_ms_p90": round(float(np.percentile(ms, 90)), 1),
            "verified_per_query": round(float(np.mean(verified)), 2),
            "copy_recall": round(flagged / len(queries), 4), "original_in_top10": round(found / len(queries), 4),
            "false_flags": len(false_flags), "false_flag_examples": false_flags[:5], "_flags": flags}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--photos", type=int, default=16, help="originals to edit (x 16 edits each; default 16)")
    p.add_argument("--library", help="reuse (or build) the library in this folder")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="lookalike-copycheck-"))
    try:
        root = Path(args.library) if args.library else tmp
        originals_dir = root / "originals"
        if not originals_dir.is_dir():
            copy_samples(originals_dir, as_jpeg=False)
        lib = Library(root / "library")
        mv = package_dir("mvtbdata")
        lib.index([str(originals_dir), *([str(mv)] if mv else [])])
        originals = sorted(image_files(originals_dir))
        pick = [originals[int(i)] for i in np.linspace(0, len(originals) - 1, min(args.photos, len(originals)))]
        queries = []
        from PIL import Image

        for o in pick:
            with Image.open(o) as im:
                img = im.convert("RGB")
            img.thumbnail((2048, 2048))
            for e in EDITS:
                f = tmp / f"q-{o.stem}-{e}.jpg"
                apply(e, img, seed=o.name).save(f, quality=90)
                queries.append((f, str(o.resolve()), e))
        out: dict[str, object] = {"queries": len(queries), "collection": lib.store.count(), "cpus": os.cpu_count()}
        from lookalike.search import copies

        for how in ("reference", "fresh", "server"):
            copies.clear_cache()
            out[how] = run(lib, queries, how)
        ref = out["reference"]["_flags"]  # type: ignore[index]
        for how in ("reference", "fresh", "server"):
            flags = out[how].pop("_flags")  # type: ignore[union-attr]
            out[how]["flags_differing_from_reference"] = sum(flags[k] != ref[k] for k in ref)  # type: ignore[index]
        out["load_avg"] = round(os.getloadavg()[0], 1)
        lib.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(out))
        return 0
    cols = ["cpu_ms_mean", "cpu_ms_p50", "cpu_ms_p90", "verified_per_query", "copy_recall", "original_in_top10",
            "false_flags", "flags_differing_from_reference"]
    print(f"{out['queries']} queries among {out['collection']} photos; load average {out['load_avg']}")
    print(" | ".join(["check", *cols]))
    for how in ("reference", "fresh", "server"):
        print(" | ".join([how, *(str(out[how][c]) for c in cols)]))  # type: ignore[index]
    for how in ("reference", "fresh"):
        for ex in out[how]["false_flag_examples"]:  # type: ignore[index]
            print(f"  {how} false flag: {ex}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
