"""Duplicates: exact copies (same bytes) and near duplicates (edited copies: crops, rotations, mirrors,
watermarks, recompression, resizing, colour changes), grouped, the best copy first.

One API over several methods, each with its own similarity and calibrated default threshold:

- ``verified`` (the default, what won in ``bench/quality.py``): embedding neighbours as candidates, then
  geometric verification of the uncertain ones (``search/verify.py``); similarity = calibrated copy score.
- ``embedding``: cosine of the deep embeddings alone.
- ``phash``: perceptual hash, similarity = 1 - Hamming distance / 64.

Nothing here changes files; :func:`act_on` deletes or moves the extra copies only when asked to.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from lookalike.config import DUPES_METHODS, Settings
from lookalike.errors import ImageError, LookalikeError
from lookalike.notebook import NotebookView, dupes_sections
from lookalike.progress import progress_bar
from lookalike.search import verify
from lookalike.stores.base import Filters, ImageInfo, IndexStore, SearchStore, batched

METHODS = DUPES_METHODS
PHASH_AT = 0.86  # phash similarity above which bench/quality.py saw no non-copy (Hamming <= 8 of 64)
DEFAULT_THRESHOLD = {"verified": 0.5, "embedding": verify.COSINE_AT, "phash": PHASH_AT}
CANDIDATE_COSINE = 0.5  # verified: pairs below this cosine are not looked at
PHASH_ALL_PAIRS_MAX = 20_000  # phash: compare all pairs up to this many images, else embedding neighbours


class DupesStore(SearchStore, IndexStore, Protocol):
    """The roles dupes uses: searches, and the file states that list every indexed image."""


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
    verified: int = 0  # pairs that went through local-feature verification
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # files that could not be re-read
    elapsed_s: float = 0.0

    def _title(self) -> str:
        return f"{len(self.groups)} groups of duplicates among {self.images} images ({self.method})"

    def _sections(self):  # type: ignore[no-untyped-def]
        return dupes_sections(self)

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["unreadable"] = [{"path": p, "reason": r} for p, r in self.unreadable]
        d["elapsed_s"] = round(self.elapsed_s, 3)
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
    infos = _infos(store, filters)
    report = DupesReport(method, thr, len(infos))
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


def _infos(store: DupesStore, filters: Filters | None) -> dict[int, ImageInfo]:
    ids = sorted(st.id for st in store.file_states().values())
    out: dict[int, ImageInfo] = {}
    for chunk in batched(ids, 2000):
        for info in store.get(chunk):
            if filters is None or not filters.active() or filters.matches(info):
                out[info.id] = info
    return out


def _embedding_pairs(store: DupesStore, ids: list[int], thr: float, neighbours: int, filters: Filters | None,
                     method: str, settings: Settings, infos: dict[int, ImageInfo], report: DupesReport,
                     progress: bool, on_progress: Callable[[str, int, int], None]) -> dict[tuple[int, int], float]:
    """Candidate pairs from each image's nearest neighbours; scored by cosine or by verified copy score."""
    keep = set(ids)
    floor = CANDIDATE_COSINE if method == "verified" else thr
    cosines: dict[tuple[int, int], float] = {}
    looked = 0
    for chunk, emb in _vectors_of(store, keep):
        on_progress("neighbours", looked, len(keep))
        looked += len(chunk)
        for a, hits in zip(chunk, store.knn_many(emb, neighbours + 1, filters)):
            for h in hits:
                if h.id != a and h.id in keep and h.score >= floor:
                    key = (min(a, h.id), max(a, h.id))
                    cosines[key] = max(cosines.get(key, -1.0), h.score)
    report.pairs_checked = len(cosines)
    if method == "embedding":
        return {k: c for k, c in cosines.items() if c > thr}
    out: dict[tuple[int, int], float] = {}
    todo = []
    for key, c in cosines.items():
        s = verify.cosine_score(c)
        if s > thr:
            out[key] = s
        else:
            todo.append((key, c))
    if todo:
        report.verified = len(todo)
        features = _FeatureCache(infos, settings, report)
        done = 0
        bar = progress_bar(len(todo), progress, "verifying", unit="pair")

        def check(item: tuple[tuple[int, int], float]) -> tuple[tuple[int, int], float]:
            (a, b), c = item
            # the image with fewer pixels is the query: usually the edited copy
            q, x = (a, b) if infos[a].width * infos[a].height <= infos[b].width * infos[b].height else (b, a)
            fq, fx = features.get(q), features.get(x)
            if fq is None or fx is None:
                return (a, b), verify.cosine_score(c)
            m = verify.match(fq, fx, features.get(q, mirror=True))
            return (a, b), verify.copy_score(c, m)

        with ThreadPoolExecutor(max(1, settings.decode_workers())) as pool:
            for key, s in pool.map(check, sorted(todo)):
                done += 1
                bar.update(1)
                on_progress("verifying", done, len(todo))
                if s > thr:
                    out[key] = s
        bar.close()
    return out


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


_MISSING = object()


class _FeatureCache:
    """Local features of indexed images, read back from their files on demand, shared by the worker threads
    (each image is decoded once while it is in the cache)."""

    def __init__(self, infos: dict[int, ImageInfo], settings: Settings, report: DupesReport, size: int = 256) -> None:
        self.infos = infos
        self.settings = settings
        self.report = report
        self.size = size
        self.lock = threading.Lock()
        self.cache: OrderedDict[tuple[int, bool], object] = OrderedDict()

    def get(self, image_id: int, mirror: bool = False) -> verify.LocalFeatures | None:
        key = (image_id, mirror)
        while True:
            with self.lock:
                value = self.cache.get(key, _MISSING)
                if value is _MISSING:
                    slot = threading.Event()
                    self.cache[key] = slot  # other threads wait for this one instead of decoding again
                    break
                self.cache.move_to_end(key)
            if not isinstance(value, threading.Event):
                return value  # type: ignore[return-value]
            value.wait()
        try:
            feats = self._compute(image_id, mirror)
        except BaseException:
            with self.lock:
                self.cache.pop(key, None)
            slot.set()
            raise
        with self.lock:
            self.cache[key] = feats
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        slot.set()
        return feats

    def _compute(self, image_id: int, mirror: bool) -> verify.LocalFeatures | None:
        from lookalike.io.read import load

        info = self.infos[image_id]
        try:
            decoded = load(info.path, min_side=verify.FEATURE_SIDE, max_pixels=self.settings.max_pixels,
                           max_bytes=self.settings.max_file_mb * 1_000_000)
        except ImageError as err:
            with self.lock:
                self.report.unreadable.append((info.path, str(err)))
            return None
        return verify.local_features(decoded.image, mirror=mirror)


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
