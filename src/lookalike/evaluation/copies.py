"""Copy detection and image-query quality, kept apart from search: measured on real photos, per method.

Edited copies (``evaluation/edits.py``) of every original are the queries; the collection holds the
originals and any distractors. Per method and edit:

- ``recall_at_1``: the original ranks first (ties count against it);
- ``map``: mean average precision (one relevant image per query: the mean of 1 / rank of the original);
- ``tpr_at_zero_fp``: with ONE threshold for all queries, set just above the best-scoring non-copy of any
  query (so no non-copy is flagged), the share of queries whose original scores above it. This is the hard
  part: deciding whether something is a copy, not just ranking.

Methods: ``embedding`` (cosine of the deep embeddings), ``tags`` (cosine of the ImageNet class-score
vectors, the visual-words method), ``phash`` (1 - Hamming/64 of perceptual hashes), and ``verified``
(embedding candidates + geometric verification, ``search/verify.py``: what ``lookalike dupes`` uses).
Each method's calibrated default threshold is also applied as shipped: ``tpr_at_default`` and
``false_positives_at_default`` (queries whose best non-copy scores above it) show whether the calibration
holds on this set.

:func:`evaluate_labelled` measures image queries on a labelled set (folder = class): precision@10 and mAP, per
method, and ``example``: what ``lookalike search IMAGE`` does (search/example.py, the library's centring +
database-side augmentation; fitted on the set's own vectors without labels).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageStat

from lookalike.errors import LookalikeError
from lookalike.evaluation.edits import EDITS, HARD, apply
from lookalike.evaluation.keywords import average_precision, labelled_folders, precision_at
from lookalike.progress import progress_bar
from lookalike.search import verify
from lookalike.search.dupes import DEFAULT_THRESHOLD as DUPES_DEFAULTS
from lookalike.search.dupes import CANDIDATE_COSINE, hamming

METHODS = ("embedding", "tags", "phash", "verified")
WORK_SIDE = 2048  # originals are edited at most this size (long side): a shared copy is rarely larger
CANDIDATES = 5  # verified: this many embedding neighbours of each query are verified
BLANK_STD = 2.0  # an edited query whose grey levels vary less than this has no content left: dropped


def image_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The image files below ``folder``, walked as indexing walks (io/crawl.py)."""
    from lookalike.io.crawl import crawl

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise LookalikeError(f"{root} is a file, not a folder of photos" if root.exists() else f"folder not found: {root}")
    return sorted(Path(e.path) for e in crawl([root]))


@dataclass
class _Query:
    original: int  # index into the collection
    edit: str
    pixels: np.ndarray | None = None  # model input
    phash: int = 0
    features: verify.LocalFeatures | None = None
    mirrored: verify.LocalFeatures | None = None


def evaluate_copies(library, originals: Sequence[str | os.PathLike[str]],  # type: ignore[no-untyped-def]
                    distractors: Sequence[str | os.PathLike[str]] = (), *, edits: Sequence[str] | None = None,
                    candidates: int = CANDIDATES, workers: int = 0, progress: bool = False) -> dict:
    """Index ``originals`` + ``distractors`` into ``library``, query with every edit of every original, and
    report each method's figures (see the module text)."""
    t0 = time.perf_counter()
    edits = list(edits or EDITS)
    unknown = [e for e in edits if e not in EDITS]
    if unknown:
        raise LookalikeError(f"unknown edit(s) {', '.join(unknown)}; known: {', '.join(EDITS)}")
    originals = [str(Path(p).resolve()) for p in originals]
    distractors = [str(Path(p).resolve()) for p in distractors if str(Path(p).resolve()) not in set(originals)]
    if not originals:
        raise LookalikeError("no original photos to edit")
    library.index([*originals, *distractors])
    coll = _Collection(library, originals + distractors)
    orig_idx = [coll.index_of[p] for p in originals if p in coll.index_of]
    if not orig_idx:
        raise LookalikeError("none of the originals could be indexed")
    workers = workers or max(1, library.settings.decode_workers())
    model = library.model
    queries: list[_Query] = []
    blank: list[str] = []  # edits that left nothing to recognise (a white wall brightened to pure white)

    def prepare(i: int) -> list[_Query]:
        from lookalike.io.read import load

        d = load(coll.paths[i], min_side=None)
        img = d.image
        if max(img.size) > WORK_SIDE:
            img = img.copy()
            img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
        out = []
        for e in edits:
            edited = apply(e, img, seed=os.path.basename(coll.paths[i]))
            if ImageStat.Stat(edited.convert("L")).stddev[0] < BLANK_STD:
                blank.append(f"{os.path.basename(coll.paths[i])} ({e})")
                continue
            q = _Query(i, e, model.preprocess(edited), _phash(edited))
            q.features = verify.local_features(edited)
            q.mirrored = verify.mirrored(q.features)  # derived, as dupes and the search's copy check do
            out.append(q)
        return out

    bar = progress_bar(len(orig_idx), progress, "editing", unit="photo")
    with ThreadPoolExecutor(workers) as pool:
        for qs in pool.map(prepare, orig_idx):
            queries += qs
            bar.update(1)
    bar.close()
    emb, cls = _encode(model, queries)
    scores = {
        "embedding": emb @ coll.emb.T,
        "phash": 1.0 - hamming(np.array([q.phash for q in queries], np.uint64), coll.phash) / 64.0,
    }
    if cls is not None and coll.cls is not None:
        scores["tags"] = _unit(cls) @ _unit(coll.cls).T
    scores["verified"] = _verified(scores["embedding"], queries, coll, candidates, workers, progress)
    report = {name: _metrics(s, queries, edits, DUPES_DEFAULTS.get(name), coll.paths) for name, s in scores.items()}
    return {"originals": len(orig_idx), "distractors": len(coll.paths) - len(orig_idx), "queries": len(queries),
            "blank_queries_dropped": blank,
            "edits": edits, "hard": [e for e in HARD if e in edits], "candidates": candidates,
            "methods": report, "seconds": round(time.perf_counter() - t0, 1)}


class _Collection:
    """The indexed collection's vectors, hashes and (lazily) local features, in one order."""

    def __init__(self, library, paths: Sequence[str]) -> None:  # type: ignore[no-untyped-def]
        store = library.store
        self.settings = library.settings
        infos = [store.get_by_path(p) for p in paths]
        self.paths = [p for p, i in zip(paths, infos) if i is not None]
        self.ids = [i.id for i in infos if i is not None]
        self.index_of = {p: n for n, p in enumerate(self.paths)}
        emb, cls = store.vectors(self.ids)
        if len(emb) != len(self.ids):
            raise LookalikeError("some indexed images have no vectors: re-index before evaluating")
        self.emb = emb.astype(np.float32)
        self.cls = None if cls is None else cls.astype(np.float32)
        self.phash = np.array([int(i.phash or "0", 16) for i in infos if i is not None], np.uint64)
        self._features: dict[int, verify.LocalFeatures] = {}

    def features(self, n: int) -> verify.LocalFeatures:
        if n not in self._features:
            from lookalike.io.read import load

            d = load(self.paths[n], min_side=verify.FEATURE_SIDE, max_pixels=self.settings.max_pixels)
            self._features[n] = verify.local_features(d.image)
        return self._features[n]


def _verified(cos: np.ndarray, queries: list[_Query], coll: _Collection, candidates: int, workers: int,
              progress: bool) -> np.ndarray:
    """Copy scores: the calibrated cosine everywhere, and for each query's top ``candidates`` by cosine the
    verified score, for those at or above dupes' candidate floor (as ``lookalike dupes`` looks at pairs)."""
    out = np.vectorize(verify.cosine_score, otypes=[np.float32])(cos)
    top = np.argsort(-cos, axis=1)[:, :candidates]
    for n in {int(j) for j in top.ravel()}:  # collection features first (not thread-safe to fill lazily)
        coll.features(n)

    def run(qi: int) -> list[tuple[int, int, float]]:
        q = queries[qi]
        res = []
        for j in top[qi]:
            if cos[qi, j] < CANDIDATE_COSINE:
                continue
            m = verify.match(q.features, coll.features(int(j)), q.mirrored)  # type: ignore[arg-type]
            res.append((qi, int(j), verify.copy_score(float(cos[qi, j]), m)))
        return res

    bar = progress_bar(len(queries), progress, "verifying", unit="query")
    with ThreadPoolExecutor(workers) as pool:
        for res in pool.map(run, range(len(queries))):
            for qi, j, s in res:
                out[qi, j] = s
            bar.update(1)
    bar.close()
    return out


def _metrics(scores: np.ndarray, queries: list[_Query], edits: list[str], default: float | None,
             paths: Sequence[str]) -> dict:
    n = len(queries)
    orig = np.array([q.original for q in queries])
    pos = scores[np.arange(n), orig]
    masked = scores.copy()
    masked[np.arange(n), orig] = -np.inf
    neg = masked.max(axis=1)
    rank = 1 + (masked >= pos[:, None]).sum(axis=1)  # ties count against the original
    threshold = float(neg.max())
    by_edit = {}
    for e in edits:
        sel = np.array([q.edit == e for q in queries])
        if not sel.any():
            continue
        by_edit[e] = {"recall_at_1": _r(np.mean(rank[sel] == 1)), "map": _r(np.mean(1.0 / rank[sel])),
                      "tpr_at_zero_fp": _r(np.mean(pos[sel] > threshold))}
    out = {"recall_at_1": _r(np.mean(rank == 1)), "map": _r(np.mean(1.0 / rank)),
           "tpr_at_zero_fp": _r(np.mean(pos > threshold)), "threshold_zero_fp": _r(threshold),
           "hard_tpr_at_zero_fp": _r(min((by_edit[e]["tpr_at_zero_fp"] for e in HARD if e in by_edit), default=np.nan)),
           "edits": by_edit}
    worst = np.argsort(-neg, kind="stable")[:5]  # the non-copies that set the zero-FP threshold
    out["hardest_non_copies"] = [
        {"query": f"{os.path.basename(paths[queries[i].original])} ({queries[i].edit})",
         "non_copy": os.path.basename(paths[int(np.argmax(masked[i]))]), "score": _r(neg[i])} for i in worst]
    if default is not None:
        out.update(default_threshold=_r(default), tpr_at_default=_r(np.mean(pos > default)),
                   false_positives_at_default=int((neg > default).sum()))
    return out


def evaluate_labelled(library, root: str | os.PathLike[str], k: int = 10) -> dict:  # type: ignore[no-untyped-def]
    """Image queries on a labelled set (folder = class): every image queries the rest; its folder-mates are
    the relevant results. Precision@k and mAP per method (embedding, tags, phash, example), means over classes."""
    folders = labelled_folders(root)
    library.index([root])
    label_of = {p: c for c, ps in folders.items() for p in ps}
    paths = [p for ps in folders.values() for p in ps]
    coll = _Collection(library, paths)
    labels = np.array([label_of[p] for p in coll.paths])
    sims = {"embedding": coll.emb @ coll.emb.T,
            "phash": 1.0 - hamming(coll.phash, coll.phash) / 64.0}
    if coll.cls is not None:
        u = _unit(coll.cls)
        sims["tags"] = u @ u.T
    from lookalike.evaluation.retrieval import example_scores
    from lookalike.search.example import load_transform

    transform = load_transform(library.store, library.model.version)  # fitted by index() above, no labels
    if transform is not None:
        sims["example"] = example_scores(coll.emb, coll.emb, transform, self_query=True)
    out: dict[str, object] = {"root": str(Path(root).resolve()), "images": len(coll.paths), "classes": len(folders),
                              "k": k, "methods": {}}
    for name, s in sims.items():
        np.fill_diagonal(s, -np.inf)
        per_class: dict[str, list[tuple[float, float]]] = {}
        for i in range(len(coll.paths)):
            relevant = {str(j) for j in np.flatnonzero(labels == labels[i]) if j != i}
            if not relevant:
                continue
            order = [str(j) for j in np.argsort(-s[i], kind="stable") if j != i]
            per_class.setdefault(labels[i], []).append((precision_at(order, relevant, k), average_precision(order, relevant)))
        classes = {c: {"precision": _r(np.mean([v[0] for v in vs])), "ap": _r(np.mean([v[1] for v in vs]))}
                   for c, vs in per_class.items()}
        out["methods"][name] = {  # type: ignore[index]
            "precision_at_k": _r(np.mean([c["precision"] for c in classes.values()])),
            "map": _r(np.mean([c["ap"] for c in classes.values()])), "classes": classes}
    return out


# -- helpers --------------------------------------------------------------------------------------------------
def _encode(model, queries: list[_Query], batch: int = 32) -> tuple[np.ndarray, np.ndarray | None]:  # type: ignore[no-untyped-def]
    embs, clss = [], []
    for i in range(0, len(queries), batch):
        enc = model.forward(np.stack([q.pixels for q in queries[i:i + batch]]))
        embs.append(enc.embeddings)
        if enc.class_scores is not None:
            clss.append(enc.class_scores)
        for q in queries[i:i + batch]:
            q.pixels = None  # free as we go
    return np.concatenate(embs).astype(np.float32), (np.concatenate(clss).astype(np.float32) if clss else None)


def _phash(image: Image.Image) -> int:
    import imagehash

    return int(str(imagehash.phash(image)), 16)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _r(x: float) -> float:
    return round(float(x), 4)


def format_report(report: dict) -> str:  # type: ignore[type-arg]
    """The report as tables for people (the CLI and bench/quality.py print this)."""
    lines = []
    c = report.get("copies")
    if c:
        lines.append(f"edited copies: {c['originals']} originals x {len(c['edits'])} edits = {c['queries']} queries, "
                     f"{c['distractors']} distractors ({c['seconds']} s)")
        lines.append(f"{'method':10s} {'recall@1':>9s} {'mAP':>7s} {'TPR@0FP':>8s} {'hard':>6s} {'thr@0FP':>8s}"
                     f" {'default':>8s} {'TPR@def':>8s} {'FP@def':>7s}")
        for name, m in c["methods"].items():
            lines.append(f"{name:10s} {m['recall_at_1']:9.3f} {m['map']:7.3f} {m['tpr_at_zero_fp']:8.3f} "
                         f"{m['hard_tpr_at_zero_fp']:6.3f} {m['threshold_zero_fp']:8.3f} {m.get('default_threshold', float('nan')):8.3f}"
                         f" {m.get('tpr_at_default', float('nan')):8.3f} {m.get('false_positives_at_default', '-')!s:>7s}")
        names = list(c["methods"])
        lines.append("")
        lines.append("TPR at zero false positives (recall@1) per edit")
        lines.append(f"{'edit':11s} " + " ".join(f"{n:>15s}" for n in names))
        for e in c["edits"]:
            if e not in c["methods"][names[0]]["edits"]:
                continue
            cells = [f"{c['methods'][n]['edits'][e]['tpr_at_zero_fp']:.3f} ({c['methods'][n]['edits'][e]['recall_at_1']:.2f})"
                     for n in names]
            lines.append(f"{e + ('*' if e in c['hard'] else ''):11s} " + " ".join(f"{x:>15s}" for x in cells))
        lines.append("(* hard edits; one threshold per method over all queries)")
        if c.get("blank_queries_dropped"):
            lines.append(f"dropped {len(c['blank_queries_dropped'])} blank queries (no content left): "
                         + ", ".join(c["blank_queries_dropped"][:5]))
        lines.append("")
        lines.append("non-copies that set the zero-FP threshold (verified):")
        for h in c["methods"].get("verified", {}).get("hardest_non_copies", [])[:3]:
            lines.append(f"  {h['query']} vs {h['non_copy']}: {h['score']}")
    lab = report.get("labelled")
    if lab:
        lines.append("")
        lines.append(f"labelled set: {lab['images']} images in {lab['classes']} classes ({lab['root']})")
        lines.append(f"{'method':10s} {'P@' + str(lab['k']):>7s} {'mAP':>7s}")
        for name, m in lab["methods"].items():
            lines.append(f"{name:10s} {m['precision_at_k']:7.3f} {m['map']:7.3f}")
    return "\n".join(lines)
