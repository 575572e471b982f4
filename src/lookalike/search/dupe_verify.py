"""The verification stage of ``lookalike dupes`` (search/dupes.py): the candidate pairs whose embedding cosine
is uncertain go through geometric verification (search/verify.py), each verdict kept in the library
(the ``PairStore`` role, stores/dupe_pairs.py) so that a later run verifies only pairs it has not seen.

- A verdict is looked up by the pair's *content* (the two content hashes), so it survives moves, renames,
  copies and a change of which exact copy represents its content; it is dropped with either image and not
  read once either image's content changed; ``pair_version`` names the model and the calibration.
- Verdicts are written as they come (a transaction every ``FLUSH_PAIRS`` pairs or ``FLUSH_S`` seconds), and
  the ones still pending are written when the run stops for any reason (Ctrl-C, a cancelled REST job, an
  error): an interrupted run keeps what it verified and a rerun goes on from there.
- Work is handed to the threads a few pairs at a time (never the whole list), so that an interruption stops
  within a pair or two per thread instead of finishing every queued pair first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from lookalike.config import Settings
from lookalike.errors import ImageError
from lookalike.progress import progress_bar
from lookalike.search import verify
from lookalike.stores.base import ImageInfo, PairVerdict

FLUSH_PAIRS = 64
FLUSH_S = 2.0
Pair = tuple[int, int]


def pair_version(store: Any) -> str:
    """What a stored verdict depends on: the embedding model (cosines) and the verification's calibration."""
    info = store.model_info() or {}
    return f"{info.get('name', '?')}/{info.get('version', '?')}|{verify.VERSION}"


def content_key(a: ImageInfo, b: ImageInfo) -> tuple[str, str] | None:
    """The pair's content, order-free; None when either image has no content hash (nothing kept then)."""
    if not a.sha or not b.sha:
        return None
    return (a.sha, b.sha) if a.sha <= b.sha else (b.sha, a.sha)


def known_verdicts(store: Any, version: str) -> dict[tuple[str, str], float]:
    """Stored copy scores by content pair (after dropping stale ones); empty for a store without the role."""
    if not hasattr(store, "dupe_pairs"):
        return {}
    store.prune_dupe_pairs(version)
    return {(min(p.sha_a, p.sha_b), max(p.sha_a, p.sha_b)): p.score for p in store.dupe_pairs(version)}


def verify_pairs(store: Any, settings: Settings, todo: list[tuple[Pair, float]], infos: dict[int, ImageInfo],
                 report: Any, *, progress: bool, on_progress: Callable[[str, int, int], None],
                 version: str) -> dict[Pair, float]:
    """Verify ``todo`` ((a, b), cosine) pairs: their copy scores, each verdict kept in ``store`` as it comes; ``report.verified`` counts the pairs verified, ``report.unreadable`` the files that
    could not be read again (their pairs get the cosine's score and are not kept)."""
    features = FeatureCache(infos, settings, report)
    keep = hasattr(store, "put_dupe_pairs")
    pending: list[PairVerdict] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        if pending and keep:
            store.put_dupe_pairs(version, list(pending))
        pending.clear()
        last_flush = time.monotonic()

    def check(item: tuple[Pair, float]) -> tuple[Pair, float, float, bool]:
        (a, b), c = item
        # the image with fewer pixels is the query: usually the edited copy
        q, x = (a, b) if infos[a].width * infos[a].height <= infos[b].width * infos[b].height else (b, a)
        fq, fx = features.get(q), features.get(x)
        if fq is None or fx is None:
            return (a, b), c, verify.cosine_score(c), False
        m = verify.match(fq, fx, lambda: verify.mirrored(fq))  # the mirror only when the plain match is unsure
        return (a, b), c, verify.copy_score(c, m), True

    bar = progress_bar(len(todo), progress, "verifying", unit="pair")
    workers = max(1, settings.decode_workers())
    pool = ThreadPoolExecutor(workers)
    running: set[Future] = set()
    items = iter(sorted(todo))
    out: dict[Pair, float] = {}
    done = 0
    try:
        on_progress("verifying", 0, len(todo))
        while True:
            while len(running) < 2 * workers:
                item = next(items, None)
                if item is None:
                    break
                running.add(pool.submit(check, item))
            if not running:
                break
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                (a, b), c, score, ok = fut.result()
                done += 1
                report.verified += 1
                if ok:
                    pending.append(PairVerdict(a, b, infos[a].sha, infos[b].sha, c, score))
                bar.update(1)
                out[(a, b)] = score
            if len(pending) >= FLUSH_PAIRS or time.monotonic() - last_flush > FLUSH_S:
                flush()
            on_progress("verifying", done, len(todo))  # may raise: a cancelled job stops here
    finally:
        for fut in running:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)  # at most the pairs already in a thread finish
        for fut in running:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                (a, b), c, score, ok = fut.result()
                report.verified += 1
                if ok:
                    pending.append(PairVerdict(a, b, infos[a].sha, infos[b].sha, c, score))
        flush()
        bar.close()
        report.described += features.computed
    return out


_MISSING = object()


class FeatureCache:
    """Local features of indexed images, read back from their files on demand, shared by the worker threads:
    each image is decoded and described once while it is in the cache (its mirror image's features are
    derived from them, ``verify.mirrored``); ``computed`` counts the images described."""

    def __init__(self, infos: dict[int, ImageInfo], settings: Settings, report: Any, size: int = 512) -> None:
        self.infos = infos
        self.settings = settings
        self.report = report
        self.size = size
        self.computed = 0
        self.lock = threading.Lock()
        self.cache: OrderedDict[int, object] = OrderedDict()

    def get(self, image_id: int) -> verify.LocalFeatures | None:
        while True:
            with self.lock:
                value = self.cache.get(image_id, _MISSING)
                if value is _MISSING:
                    slot = threading.Event()
                    self.cache[image_id] = slot  # other threads wait for this one instead of decoding again
                    break
                self.cache.move_to_end(image_id)
            if not isinstance(value, threading.Event):
                return value  # type: ignore[return-value]
            value.wait()
        try:
            feats = self._compute(image_id)
        except BaseException:
            with self.lock:
                self.cache.pop(image_id, None)
            slot.set()
            raise
        with self.lock:
            self.computed += 1
            self.cache[image_id] = feats
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        slot.set()
        return feats

    def _compute(self, image_id: int) -> verify.LocalFeatures | None:
        from lookalike.io.read import load

        info = self.infos[image_id]
        try:
            decoded = load(info.path, min_side=verify.FEATURE_SIDE, max_pixels=self.settings.max_pixels,
                           max_bytes=self.settings.max_file_mb * 1_000_000)
        except ImageError as err:
            with self.lock:
                self.report.unreadable.append((info.path, str(err)))
            return None
        return verify.local_features(decoded.image)
