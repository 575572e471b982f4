"""Is this result an edited copy of the query image? The top results of an image query, checked by the same
verification as ``lookalike dupes`` (search/verify.py).

For an example-image query a result's embedding cosine (``Hit.cosine`` when the search re-ranked by another
score, search/example.py; else ``Hit.score``) says similar, not necessarily the same photo. The first
``COPY_CHECK_TOP`` results whose cosine reaches dupes' candidate floor (``dupes.CANDIDATE_COSINE``) and whose
cosine alone does not already make them a copy are verified against the query, as ``dupes`` verifies only
its uncertain pairs: SIFT + RANSAC and the aligned overlap compared,
then :func:`verify.copy_score` in [0, 1], where 0.5 is the calibrated point at which the duplicate benchmark
(bench/quality.py) flagged no non-copy. So ``copy`` is ``copy_score > 0.5``, the same yes/no as ``dupes``
gives for the pair. Results below the floor or past the top are not verified: their ``copy_score`` is that of
the cosine alone. A URL query is not fetched a second time: its results get the cosine's score only. For
an ``id:N`` query in a library indexed with copy features, a result the cosine alone calls a copy is
screened by both images' features, as ``dupes`` does (``dupe_verify.refuted_by_features``).
Cost: one decode + SIFT per verified result (~50-150 ms each on 2 cores), and the query's own. The local
features of the last :data:`CACHE_IMAGES` images seen (results and queries, by content hash) are kept in the
process, so a server answering queries around the same photos, or an ``id:N`` query of a recent result,
decodes and describes each image once; the query's mirror image's features are derived from its own
(``verify.mirrored``: no second SIFT) only when a result needs them (a result whose plain match is already
sure never does). ``bench/copy_check_cost.py`` measures it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.search import verify
from lookalike.search.dupe_verify import refuted_by_features
from lookalike.search.plan import Query
from lookalike.stores.base import Hit

COPY_CHECK_TOP = 10
CACHE_IMAGES = 128  # local features kept per process (~0.2-0.4 MB each: the 512 px grayscale + uint8 descriptors)


@dataclass(frozen=True)
class CopyCheck:
    copy: bool
    score: float
    verified: bool

    def as_dict(self) -> dict[str, object]:
        return {"copy": self.copy, "copy_score": round(self.score, 4), "verified": self.verified}


class FeatureCache:
    """The local features of recently verified images, by (content hash, mirrored); thread-safe, LRU. SIFT
    descriptors are whole numbers in [0, 255] and are kept as uint8 (4x smaller, exactly the same)."""

    def __init__(self, size: int = CACHE_IMAGES) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, bool], verify.LocalFeatures] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[str, bool], compute: Callable[[], verify.LocalFeatures | None]) -> verify.LocalFeatures | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if found is not None:
            return _unpack(found)
        feats = compute()
        if feats is None or not key[0] or self.size <= 0:
            return feats
        with self._lock:
            self.misses += 1
            self._items[key] = _pack(feats)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return feats

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


CACHE = FeatureCache()


def clear_cache() -> None:
    CACHE.clear()


def _pack(f: verify.LocalFeatures) -> verify.LocalFeatures:
    d = f.descriptors
    if d is not None and d.dtype != np.uint8 and d.size and d.min() >= 0 and d.max() <= 255 and np.all(d == np.round(d)):
        d = d.astype(np.uint8)
    return replace(f, descriptors=d)


def _unpack(f: verify.LocalFeatures) -> verify.LocalFeatures:
    d = f.descriptors
    return replace(f, descriptors=d.astype(np.float32)) if d is not None and d.dtype == np.uint8 else f


def check_copies(ctx, q: Query, hits: Sequence[Hit], top: int = COPY_CHECK_TOP) -> dict[int, CopyCheck]:  # type: ignore[no-untyped-def]
    """Image id -> CopyCheck for every hit (``Hit.score`` = cosine); the first ``top`` above the floor verified."""
    from lookalike.search.dupes import CANDIDATE_COSINE

    out: dict[int, CopyCheck] = {}
    cos = {h.id: h.score if h.cosine is None else h.cosine for h in hits}  # dupes' scale, whatever ranked them
    # as in dupes: a pair whose cosine alone already says "copy" is not verified (a match can only raise
    # the score), nor one below the candidate floor
    todo = [h for h in hits[:top] if cos[h.id] >= CANDIDATE_COSINE and verify.cosine_score(cos[h.id]) <= 0.5]
    max_pixels = ctx.settings.max_pixels
    infos = {i.id: i for i in ctx.store.get([h.id for h in todo])} if todo else {}
    query = None
    if todo and q.kind != "image_url":
        try:
            if q.kind == "image_id":
                info = infos.get(int(q.value)) or next(iter(ctx.store.get([int(q.value)])), None)  # type: ignore[call-overload]
                decoded = None
                key = info.sha if info else ""
                path = info.path if info else None
            else:
                decoded = ctx.load_query(q, min_side=verify.FEATURE_SIDE)
                key, path = decoded.sha, None
        except (LookalikeError, OSError):
            key, path, decoded = "", None, None
        if key or decoded is not None:
            query = _QueryFeatures(key, decoded, path, max_pixels)
    for h in hits:
        score, checked = verify.cosine_score(cos[h.id]), False
        info = infos.get(h.id)
        if query is not None and h in todo and info is not None:
            cand = CACHE.get((info.sha, False), lambda: _features(info.path, max_pixels))
            plain = query.plain()
            if cand is not None and plain is not None:
                m = verify.match(plain, cand, query.mirrored)
                score, checked = verify.copy_score(cos[h.id], m), True
        out[h.id] = CopyCheck(score > 0.5, score, checked)
    if q.kind == "image_id":  # both images indexed: their copy features may refute the cosine, as in dupes
        qid = int(q.value)  # type: ignore[call-overload]
        sure = [(qid, h.id) for h in hits[:top] if h.id != qid and out[h.id].copy and not out[h.id].verified]
        for _, hid in refuted_by_features(ctx.store, sure):
            out[hid] = CopyCheck(False, min(out[hid].score, verify.SURE_BELOW), True)
    return out


class _QueryFeatures:
    """The query's features and its mirror image's, each computed (or taken from the cache) when first needed."""

    def __init__(self, key: str, decoded, path: str | None, max_pixels: int) -> None:  # type: ignore[no-untyped-def]
        self.key, self._decoded, self._path, self._max_pixels = key, decoded, path, max_pixels

    def _image(self):  # type: ignore[no-untyped-def]
        if self._decoded is None and self._path is not None:
            from lookalike.io.read import load

            try:
                self._decoded = load(self._path, min_side=verify.FEATURE_SIDE, max_pixels=self._max_pixels)
            except (LookalikeError, OSError):
                self._path = None
        return None if self._decoded is None else self._decoded.image

    def plain(self) -> verify.LocalFeatures | None:
        def compute() -> verify.LocalFeatures | None:
            img = self._image()
            return None if img is None else verify.local_features(img)

        return CACHE.get((self.key, False), compute)

    def mirrored(self) -> verify.LocalFeatures | None:
        """The mirror image's features, derived from the plain ones (``verify.mirrored``, as ``dupes`` does)."""
        def compute() -> verify.LocalFeatures | None:
            plain = self.plain()
            return None if plain is None else verify.mirrored(plain)

        return CACHE.get((self.key, True), compute)


def _features(path: str, max_pixels: int) -> verify.LocalFeatures | None:
    from lookalike.io.read import load

    try:
        return verify.local_features(load(path, min_side=verify.FEATURE_SIDE, max_pixels=max_pixels).image)
    except (LookalikeError, OSError):
        return None
