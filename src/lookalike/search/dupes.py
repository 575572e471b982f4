"""Duplicates: exact copies (same bytes) and near duplicates (edited copies: crops, rotations, mirrors,
watermarks, recompression, resizing, colour changes), grouped, the best copy first.

One API over several methods, each with its own similarity and calibrated default threshold:

- ``verified`` (the default, what won in ``bench/quality.py``): embedding neighbours as candidates (the
  store's approximate index, a batch of images at a time), and images that share a perceptual hash; then
  geometric verification of the uncertain ones (``search/verify.py``; search/dupe_verify.py keeps each
  verdict in the library, so a later run verifies only pairs it has not seen, and an interrupted one keeps
  what it verified); similarity = calibrated copy score.
- ``embedding``: cosine of the deep embeddings alone.
- ``phash``: perceptual hash, similarity = 1 - Hamming distance / 64.

Nothing here changes files; :func:`act_on` deletes or moves the extra copies only when asked to.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from lookalike.config import DUPES_METHODS, Settings
from lookalike.errors import LookalikeError
from lookalike.notebook import NotebookView, dupes_sections
from lookalike.progress import progress_bar
from lookalike.search import verify
from lookalike.search.dupe_verify import content_key, known_verdicts, pair_version, refuted_by_features, verify_pairs
from lookalike.stores.base import Filters, ImageInfo, IndexStore, PairStore, SearchStore, batched

METHODS = DUPES_METHODS
PHASH_AT = 0.86  # phash similarity above which bench/quality.py saw no non-copy (Hamming <= 8 of 64)
DEFAULT_THRESHOLD = {"verified": 0.5, "embedding": verify.COSINE_AT, "phash": PHASH_AT}
CANDIDATE_COSINE = 0.5  # verified: pairs below this cosine are not looked at
# verified: an uncertain pair is verified only when it is among the VERIFY_TOP nearest candidates of one of its
# two images (copies of one photo still join through their nearest). bench/dupes_scale.py, chosen among 1, 2, 3,
# 5, 10 on its real set (sample photos + 148 edits, tuxpaint stamps, mvtb-data, Fashion-MNIST): 2 verifies 775
# of 2,716 uncertain pairs at the same recall of the edits (0.993; 1: 0.953); synthetic 100k vectors: 1.9
# instead of 8.9 pairs per image, planted recall 0.961 instead of 0.971.
VERIFY_TOP = 2
PHASH_ALL_PAIRS_MAX = 20_000  # phash: compare all pairs up to this many images, else embedding neighbours
PHASH_SAME_MAX = 8  # verified: images sharing a perceptual hash are candidates too, in buckets up to this size


class DupesStore(SearchStore, IndexStore, PairStore, Protocol):
    """The roles dupes uses: searches, the file states that list every indexed image, the kept verdicts."""


@dataclass
class DupeItem:
    id: int
    path: str
    width: int
    height: int
    size: int
    score: float  # similarity to the group's best copy (1.0 for the best copy and its exact copies)
    best: bool = False
    exact: bool = False  # same bytes as the best copy


@dataclass
class DupeGroup:
    kind: str  # "exact" (all the same bytes) or "near"
    items: list[DupeItem]


@dataclass
class DupesReport(NotebookView):  # renders inline in Jupyter (lookalike/notebook.py)
    method: str
    threshold: float
    images: int
    groups: list[DupeGroup] = field(default_factory=list)
    pairs_checked: int = 0  # candidate pairs scored
    uncertain: int = 0  # verified: candidate pairs whose cosine alone does not decide, to verify (or known)
    gated: int = 0  # undecided by the cosine, not verified: among neither image's VERIFY_TOP nearest (not copies)
    phash_pairs: int = 0  # candidate pairs of images with the same perceptual hash that the embedding did not give
    screened: int = 0  # uncertain pairs settled as not copies by index-time copy features (no file read)
    refuted: int = 0  # pairs the cosine alone called copies that the copy features refuted (not copies)
    aligned: int = 0  # pairs passing the screen, settled by its transform on 320-px pixels (kept or decoded; no SIFT)
    verified: int = 0  # uncertain pairs verified in this run (SIFT local features)
    reused: int = 0  # uncertain pairs whose verdict an earlier run kept in the library (not verified again)
    described: int = 0  # images whose local features were computed for the verified pairs (each once, ideally)
    decoded: int = 0  # images decoded at 320 px for the aligned pairs (features that keep no gray)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # files that could not be re-read
    elapsed_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage: reading, candidates, verifying

    def _title(self) -> str:
        return f"{len(self.groups)} groups of duplicates among {self.images} images ({self.method})"

    def _sections(self):  # type: ignore[no-untyped-def]
        return dupes_sections(self)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        d["elapsed_s"] = round(self.elapsed_s, 3)
        d["timings"] = {k: round(v, 3) for k, v in self.timings.items()}
        for g in d["groups"]:
            for it in g["items"]:
                it["score"] = round(float(it["score"]), 4)
        return d


def quality_key(info: ImageInfo) -> tuple[int, bool, float, int, int, str]:
    """Best copy first: most pixels; then one that still has its camera's EXIF; then the oldest file (edits,
    recompressed and watermarked copies come later); then the largest (least compressed); then the shortest
    path."""
    return (-(info.width * info.height), not info.camera, round(info.mtime, 3), -info.size, len(info.path),
            info.path)


def find_duplicates(store: DupesStore, settings: Settings, *, method: str = "verified", threshold: float | None = None,
                    filters: Filters | None = None, neighbours: int = 10, progress: bool = False,
                    on_progress: Callable[[str, int, int], None] | None = None) -> DupesReport:
    """``on_progress(stage, done, total)`` is called as the work goes (stages "neighbours", "verifying"); an
    exception it raises stops the search (how a REST job is cancelled)."""
    if method not in METHODS:
        raise LookalikeError(f"unknown duplicates method {method!r}; choose one of {', '.join(METHODS)}")
    thr = DEFAULT_THRESHOLD[method] if threshold is None else float(threshold)
    if not 0.0 <= thr <= 1.0:
        raise LookalikeError("the threshold must be between 0 and 1")
    t0 = time.perf_counter()
    infos = read_images(store, filters)
    report = DupesReport(method, thr, len(infos))
    report.timings["reading"] = time.perf_counter() - t0
    by_sha: dict[str, list[ImageInfo]] = {}
    for info in infos.values():
        by_sha.setdefault(info.sha or f"id:{info.id}", []).append(info)
    # one representative per content: the best of its exact copies
    reps = {min(group, key=quality_key).id: group for group in by_sha.values()}
    pairs: dict[tuple[int, int], float] = {}
    if len(reps) > 1:
        if method == "phash":
            pairs = _phash_pairs(store, [infos[i] for i in reps], thr, neighbours, filters)
        else:
            pairs = _embedding_pairs(store, list(reps), thr, neighbours, filters, method, settings, infos, report,
                                     progress, on_progress or _quiet)
    report.groups = _groups(reps, infos, pairs)
    report.elapsed_s = time.perf_counter() - t0
    return report


def read_images(store: DupesStore, filters: Filters | None = None) -> dict[int, ImageInfo]:
    """Every indexed image (that passes ``filters``) by id."""
    ids = sorted(st.id for st in store.file_states().values())
    out: dict[int, ImageInfo] = {}
    for chunk in batched(ids, 2000):
        for info in store.get(chunk):
            if filters is None or not filters.active() or filters.matches(info):
                out[info.id] = info
    return out


def candidate_pairs(store: DupesStore, ids: Sequence[int], *, neighbours: int = 10, floor: float = CANDIDATE_COSINE,
                    filters: Filters | None = None, progress: bool = False,
                    on_progress: Callable[[str, int, int], None] | None = None) -> dict[tuple[int, int], float]:
    """Candidate pairs (a < b) -> cosine: each image's ``neighbours`` nearest among ``ids`` with a cosine of at
    least ``floor``, from the store's approximate index, asked a batch of images at a time (``knn_many``)."""
    keep = set(ids)
    on_progress = on_progress or _quiet
    cosines: dict[tuple[int, int], float] = {}
    looked = 0
    bar = progress_bar(len(keep), progress, "neighbours")
    try:
        for chunk, emb in _vectors_of(store, keep):
            on_progress("neighbours", looked, len(keep))
            for a, hits in zip(chunk, store.knn_many(emb, neighbours + 1, filters)):
                for h in hits:
                    if h.id != a and h.id in keep and h.score >= floor:
                        key = (a, h.id) if a < h.id else (h.id, a)
                        if h.score > cosines.get(key, -1.0):
                            cosines[key] = h.score
            looked += len(chunk)
            bar.update(len(chunk))
        on_progress("neighbours", looked, len(keep))
    finally:
        bar.close()
    return cosines


def _embedding_pairs(store: DupesStore, ids: list[int], thr: float, neighbours: int, filters: Filters | None,
                     method: str, settings: Settings, infos: dict[int, ImageInfo], report: DupesReport,
                     progress: bool, on_progress: Callable[[str, int, int], None]) -> dict[tuple[int, int], float]:
    """Candidate pairs from each image's nearest neighbours; scored by cosine or by verified copy score. Pairs
    verified by an earlier run (the same two contents, model and calibration) are not verified again."""
    t = time.perf_counter()
    floor = CANDIDATE_COSINE if method == "verified" else thr
    cosines = candidate_pairs(store, ids, neighbours=neighbours, floor=floor, filters=filters, progress=progress,
                              on_progress=on_progress)
    if method == "embedding":
        report.timings["candidates"] = time.perf_counter() - t
        report.pairs_checked = len(cosines)
        return {k: c for k, c in cosines.items() if c > thr}
    near = nearest_rank(cosines)
    # pairs that share a perceptual hash, which the embedding did not give: appended with rank 0, so the gate
    # (meant for the embedding's crowded neighbourhoods) lets them through to verification
    hashed = pair_cosines(store, [k for k in same_phash_pairs([infos[i] for i in ids]) if k not in cosines])
    report.phash_pairs = len(hashed)
    cosines.update(hashed)
    near = np.concatenate([near, np.zeros(len(hashed), near.dtype)])
    report.timings["candidates"] = time.perf_counter() - t
    report.pairs_checked = len(cosines)
    out: dict[tuple[int, int], float] = {}
    uncertain = []
    for (key, c), r in zip(cosines.items(), near):
        s = verify.cosine_score(c)
        if s > thr:
            out[key] = s
        elif r < VERIFY_TOP:
            uncertain.append((key, c))
        else:
            report.gated += 1
    t = time.perf_counter()
    for key in refuted_by_features(store, list(out)):  # copy features overrule the cosine (dupe_verify.py)
        out[key] = min(out[key], verify.SURE_BELOW)  # scored as a screened-out pair: settled, not a copy
        report.refuted += 1
        if out[key] <= thr:
            del out[key]
    report.timings["refuting"] = time.perf_counter() - t
    report.uncertain = len(uncertain)
    if not uncertain:
        return out
    t = time.perf_counter()
    version = pair_version(store)
    known = known_verdicts(store, version)
    todo = []
    for (a, b), c in uncertain:
        ck = content_key(infos[a], infos[b])
        if ck is not None and ck in known:
            report.reused += 1
            if known[ck] > thr:
                out[(a, b)] = known[ck]
        else:
            todo.append(((a, b), c))
    if todo:
        scores = verify_pairs(store, settings, todo, infos, report, progress=progress, on_progress=on_progress,
                              version=version)
        out.update({k: s for k, s in scores.items() if s > thr})
    report.timings["verifying"] = time.perf_counter() - t
    return out


def nearest_rank(cosines: dict[tuple[int, int], float]) -> np.ndarray:
    """For each pair (in the dict's order): its rank among the candidate pairs of the image that ranks it
    nearer (0: one of the two images has the other as its nearest candidate)."""
    m = len(cosines)
    ab = np.fromiter((x for k in cosines for x in k), np.int64, 2 * m).reshape(m, 2)
    return pair_rank(ab[:, 0], ab[:, 1], np.fromiter(cosines.values(), np.float64, m))


def pair_rank(a: np.ndarray, b: np.ndarray, cos: np.ndarray) -> np.ndarray:
    """``nearest_rank`` of pairs given as arrays (image a, image b, cosine)."""
    m = len(cos)
    ends = np.concatenate([a, b])
    order = np.lexsort((-np.concatenate([cos, cos]), ends))
    first = np.searchsorted(ends[order], ends[order], side="left")
    rank = np.empty(2 * m, np.int64)
    rank[order] = np.arange(2 * m) - first
    return np.minimum(rank[:m], rank[m:])


def same_phash_pairs(infos: Sequence[ImageInfo]) -> list[tuple[int, int]]:
    """Pairs (a < b) of images with the same perceptual hash, from buckets of at most PHASH_SAME_MAX images
    (a hash that many images share, blank or flat frames, says little): candidates the embedding can miss,
    an image shrunk to a few dozen pixels keeping its hash while its embedding drifts (bench/dupes_scale.py's
    real set: a 75 x 26 px copy at cosine < 0.5 from its original, the same hash). On that set every pair
    with the same hash (85) and every one within 2 bits (118) is a copy (2 non-copies at 4 bits)."""
    buckets: dict[str, list[int]] = {}
    for info in infos:
        if info.phash:
            buckets.setdefault(info.phash, []).append(info.id)
    out = []
    for ids in buckets.values():
        if 1 < len(ids) <= PHASH_SAME_MAX:
            ids = sorted(ids)
            out += [(a, b) for n, a in enumerate(ids) for b in ids[n + 1:]]
    return out


def pair_cosines(store: DupesStore, pairs: Sequence[tuple[int, int]]) -> dict[tuple[int, int], float]:
    """The embedding cosine of each pair whose two images have vectors."""
    vec: dict[int, np.ndarray] = {}
    for chunk in batched(sorted({i for p in pairs for i in p}), 1000):
        vec.update(store.vector_map(chunk))
    return {(a, b): float(vec[a] @ vec[b]) for a, b in pairs if a in vec and b in vec}


def _quiet(stage: str, done: int, total: int) -> None:
    pass


def _phash_pairs(store: DupesStore, reps: list[ImageInfo], thr: float, neighbours: int,
                 filters: Filters | None) -> dict[tuple[int, int], float]:
    have = [i for i in reps if i.phash]
    if len(have) < 2:
        return {}
    bits = np.array([int(i.phash, 16) for i in have], dtype=np.uint64)  # type: ignore[arg-type]
    ids = np.array([i.id for i in have])
    out: dict[tuple[int, int], float] = {}
    if len(have) <= PHASH_ALL_PAIRS_MAX:
        for start in range(0, len(have), 512):
            sim = 1.0 - hamming(bits[start:start + 512], bits) / 64.0
            rows, cols = np.nonzero(sim > thr)
            for r, c in zip(rows, cols):
                a, b = int(ids[start + r]), int(ids[c])
                if a < b:
                    out[(a, b)] = float(sim[r, c])
        return out
    by_id = dict(zip(ids.tolist(), bits.tolist()))
    for chunk, emb in _vectors_of(store, set(by_id)):  # large libraries: embedding neighbours as candidates
        for a, hits in zip(chunk, store.knn_many(emb, neighbours + 1, filters)):
            for h in hits:
                if h.id != a and h.id in by_id:
                    sim = 1.0 - bin(by_id[a] ^ by_id[h.id]).count("1") / 64.0
                    if sim > thr:
                        out[(min(a, h.id), max(a, h.id))] = sim
    return out


def _vectors_of(store: DupesStore, keep: set[int], batch: int = 1024):  # type: ignore[no-untyped-def]
    """(ids, embeddings) in batches, for the images in ``keep`` that have vectors, ids and rows aligned."""
    for ids, vecs in store.iter_vectors(batch):
        sel = np.fromiter((int(i) in keep for i in ids), bool, len(ids))
        if sel.any():
            yield [int(i) for i in ids[sel]], vecs[sel]


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise Hamming distances (len(a), len(b)) between 64-bit hashes."""
    x = np.ascontiguousarray(a.astype(np.uint64)[:, None] ^ b.astype(np.uint64)[None, :])
    return np.unpackbits(x.view(np.uint8).reshape(*x.shape, 8), axis=-1).sum(-1).astype(np.float32)


def _groups(reps: dict[int, list[ImageInfo]], infos: dict[int, ImageInfo],
            pairs: dict[tuple[int, int], float]) -> list[DupeGroup]:
    parent = {i: i for i in reps}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for r in reps:
        members.setdefault(find(r), []).append(r)
    best_score: dict[int, float] = {}  # each content's best pair score, for items not paired with the best
    for (a, b), sc in pairs.items():
        best_score[a] = max(best_score.get(a, 0.0), sc)
        best_score[b] = max(best_score.get(b, 0.0), sc)
    groups = []
    for rs in members.values():
        everyone = [info for r in rs for info in reps[r]]
        if len(everyone) < 2:
            continue
        rep_of = {info.id: r for r in rs for info in reps[r]}
        everyone.sort(key=quality_key)
        best = everyone[0]
        best_rep = rep_of[best.id]
        items = []
        for info in everyone:
            rep = rep_of[info.id]
            exact = rep == best_rep
            score = 1.0 if exact else pairs.get((min(rep, best_rep), max(rep, best_rep)), best_score.get(rep, 0.0))
            items.append(DupeItem(info.id, info.path, info.width, info.height, info.size, score,
                                  best=info.id == best.id, exact=exact))
        kind = "exact" if all(i.exact for i in items) else "near"
        groups.append(DupeGroup(kind, items))
    groups.sort(key=lambda g: (g.kind != "exact", -len(g.items), g.items[0].path))
    return groups


def act_on(groups: Sequence[DupeGroup], *, delete: bool = False, move_to: str | None = None,
           on_file: Callable[[str, str], None] | None = None) -> list[tuple[str, str]]:
    """Delete, or move into ``move_to``, every copy but the best of each group. Returns (path, what was
    done) pairs; a file that cannot be touched is reported and left alone."""
    if delete == bool(move_to):
        raise LookalikeError("choose one of delete or move_to")
    done: list[tuple[str, str]] = []
    dest = os.path.abspath(os.path.expanduser(move_to)) if move_to else None
    if dest:
        os.makedirs(dest, exist_ok=True)
    for g in groups:
        for item in g.items:
            if item.best:
                continue
            try:
                if dest:
                    target = _free_name(dest, os.path.basename(item.path))
                    shutil.move(item.path, target)
                    what = f"moved to {target}"
                else:
                    os.remove(item.path)
                    what = "deleted"
            except OSError as err:
                what = f"left alone: {err.strerror or err}"
            done.append((item.path, what))
            if on_file:
                on_file(item.path, what)
    return done


def _free_name(folder: str, name: str) -> str:
    stem, ext = os.path.splitext(name)
    candidate, n = os.path.join(folder, name), 1
    while os.path.exists(candidate):
        candidate = os.path.join(folder, f"{stem}-{n}{ext}")
        n += 1
    return candidate
