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
- Screening first: when both images of a pair have index-time copy features (``index --copy-features``),
  the pair is matched by them (``verify.screen_match``, no file read, ~0.4 ms) and settled as "not a copy"
  below ``verify.SCREEN_INLIERS``. A pair that passes is checked on its pixels with that transform
  (``verify.aligned_match``: no SIFT) on the 320-px grays kept with the features (format 2; no file read),
  or, for features without them, on both images decoded again at 320 px; only a score it leaves unsure
  (``verify.settled``) and pairs without features go on to SIFT. The features are read ``SCREEN_CHUNK`` pairs
  at a time; these verdicts are kept like any other.
- The features also get a say over the pairs the cosine alone calls copies (``refuted_by_features``): the
  screen finding too few inliers overrules it. Cheap (a few pairs per thousand images), so not kept.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

from lookalike.config import Settings
from lookalike.errors import ImageError
from lookalike.progress import progress_bar
from lookalike.search import verify
from lookalike.stores.base import ImageInfo, PairVerdict

FLUSH_PAIRS = 64
FLUSH_S = 2.0
SCREEN_CHUNK = 2048
Pair = tuple[int, int]
T = TypeVar("T")


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
    """Verify ``todo`` ((a, b), cosine) pairs: their copy scores, each verdict kept in ``store`` as it comes;
    ``report.screened`` counts the pairs settled by their copy features, ``report.aligned`` those settled by
    the screen's transform on their pixels, ``report.verified`` the pairs verified with SIFT,
    ``report.unreadable`` the files that could not be read again (their pairs get the cosine's score and are
    not kept)."""
    features = FeatureCache(infos, settings, report)
    grays = FeatureCache(infos, settings, report, min_side=256, describe=verify.compact_gray)
    keep = hasattr(store, "put_dupe_pairs")
    pending: list[PairVerdict] = []
    last_flush = time.monotonic()
    out: dict[Pair, float] = {}

    def flush() -> None:
        nonlocal last_flush
        if pending and keep:
            store.put_dupe_pairs(version, list(pending))
        pending.clear()
        last_flush = time.monotonic()

    rest: list[tuple[Pair, float, verify.Match | None]] = [(p, c, None) for p, c in todo]
    if hasattr(store, "copy_features"):
        try:
            rest = _screen(store, settings, todo, infos, report, out, pending, flush, progress, on_progress)
        finally:
            flush()
        if not rest:
            return out

    def check(item: tuple[Pair, float, verify.Match | None]) -> tuple[Pair, float, float, bool, bool]:
        (a, b), c, screen = item
        if screen is not None:  # the screen's transform, checked on the pixels (a 320-px decode, no SIFT)
            ga, gb = grays.get(a), grays.get(b)
            if ga is not None and gb is not None:
                score = verify.copy_score(c, verify.aligned_match(screen, ga, gb))
                if verify.settled(score):
                    return (a, b), c, score, True, True
        # the image with fewer pixels is the query: usually the edited copy
        q, x = (a, b) if infos[a].width * infos[a].height <= infos[b].width * infos[b].height else (b, a)
        fq, fx = features.get(q), features.get(x)
        if fq is None or fx is None:
            return (a, b), c, verify.cosine_score(c), False, False
        m = verify.match(fq, fx, lambda: verify.mirrored(fq))  # the mirror only when the plain match is unsure
        return (a, b), c, verify.copy_score(c, m), True, False

    def count(aligned: bool) -> None:
        if aligned:
            report.aligned += 1
        else:
            report.verified += 1

    bar = progress_bar(len(rest), progress, "verifying", unit="pair")
    workers = max(1, settings.decode_workers())
    pool = ThreadPoolExecutor(workers)
    running: set[Future] = set()
    items = iter(sorted(rest, key=lambda item: item[0]))
    done = 0
    try:
        on_progress("verifying", 0, len(rest))
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
                (a, b), c, score, ok, aligned = fut.result()
                done += 1
                count(aligned)
                if ok:
                    pending.append(PairVerdict(a, b, infos[a].sha, infos[b].sha, c, score))
                bar.update(1)
                out[(a, b)] = score
            if len(pending) >= FLUSH_PAIRS or time.monotonic() - last_flush > FLUSH_S:
                flush()
            on_progress("verifying", done, len(rest))  # may raise: a cancelled job stops here
    finally:
        for fut in running:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)  # at most the pairs already in a thread finish
        for fut in running:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                (a, b), c, score, ok, aligned = fut.result()
                count(aligned)
                if ok:
                    pending.append(PairVerdict(a, b, infos[a].sha, infos[b].sha, c, score))
        flush()
        bar.close()
        report.described += features.computed
        report.decoded += grays.computed
    return out


def _screen(store: Any, settings: Settings, todo: list[tuple[Pair, float]], infos: dict[int, ImageInfo],
            report: Any, out: dict[Pair, float], pending: list[PairVerdict], flush: Callable[[], None],
            progress: bool, on_progress: Callable[[str, int, int], None]) -> list[tuple[Pair, float, verify.Match | None]]:
    """Settle the pairs whose copy features say "not a copy", and the passing pairs that the grays kept with
    the features settle (``report.aligned``), into ``out`` and ``pending``, flushed by chunk; return the pairs
    still to verify, with the screen's match where their pixels are still to be checked on a fresh decode
    (features without a gray), else None (SIFT decides)."""
    rest: list[tuple[Pair, float, verify.Match | None]] = []
    t0 = time.perf_counter()
    aligning = 0.0
    todo = sorted(todo)  # neighbouring ids together: a chunk reads fewer images' features
    bar = progress_bar(len(todo), progress, "screening", unit="pair")
    done = 0
    with ThreadPoolExecutor(max(1, settings.decode_workers())) as pool:
        try:
            on_progress("screening", 0, len(todo))
            for chunk, feats in _with_features(store, todo, lambda item: item[0]):
                both = [item for item in chunk if item[0][0] in feats and item[0][1] in feats]
                rest += [(p, c, None) for p, c in chunk if p[0] not in feats or p[1] not in feats]
                matches = pool.map(lambda item: _screen_match(feats[item[0][0]], feats[item[0][1]]), both)
                passed: list[tuple[Pair, float, verify.Match]] = []
                for ((a, b), c), m in zip(both, matches):
                    if m is None:
                        rest.append(((a, b), c, None))
                    elif m.inliers >= verify.SCREEN_INLIERS:
                        passed.append(((a, b), c, m))
                    else:
                        report.screened += 1
                        out[(a, b)] = score = verify.cosine_score(c)
                        pending.append(PairVerdict(a, b, infos[a].sha, infos[b].sha, c, score))
                # the pairs that passed, checked at once on the grays kept with the features (no file read)
                t1 = time.perf_counter()
                scores = pool.map(lambda item: _stored_gray_score(feats[item[0][0]], feats[item[0][1]], item), passed)
                for ((a, b), c, m), score in zip(passed, scores):
                    if score is None:  # no gray kept (features of format 1): checked on a fresh decode
                        rest.append(((a, b), c, m))
                    elif verify.settled(score):
                        report.aligned += 1
                        out[(a, b)] = score
                        pending.append(PairVerdict(a, b, infos[a].sha, infos[b].sha, c, score))
                    else:
                        rest.append(((a, b), c, None))  # unsure on the pixels: SIFT decides
                aligning += time.perf_counter() - t1
                flush()
                done += len(chunk)
                bar.update(len(chunk))
                on_progress("screening", done, len(todo))  # may raise: a cancelled job stops here
        finally:
            bar.close()
            # screening alone, and the checks on kept grays apart (bench/dupes_scale.py counts them as checked pairs)
            report.timings["screening"] = time.perf_counter() - t0 - aligning
            report.timings["aligning"] = aligning
    return rest


def refuted_by_features(store: Any, pairs: Sequence[Pair]) -> set[Pair]:
    """Of ``pairs``, which the embedding cosine alone calls copies, those the index-time copy features refute:
    both images have them, with enough keypoints to screen by (``verify.screenable``), and the screen finds
    fewer than ``verify.SCREEN_INLIERS`` inliers. Measured (2026-12-04) on the edit suite of ``lookalike
    eval`` (the sample photos x 16 edits, indexed with copy features): 547 edited copies above the cosine's
    threshold, all screenable, at least 17 inliers each; on bench/dupes_scale.py's real set 113 such copies,
    none refuted, and 1 of its 2 non-copies (two 28-px garments, 4 inliers). Empty for a store without copy
    features."""
    if not pairs or not hasattr(store, "copy_features"):
        return set()
    out: set[Pair] = set()
    for chunk, feats in _with_features(store, sorted(pairs), lambda pair: pair):
        for a, b in chunk:
            if a in feats and b in feats:
                m = _screen_match(feats[a], feats[b])
                if m is not None and m.inliers < verify.SCREEN_INLIERS:
                    out.add((a, b))
    return out


def _with_features(store: Any, items: Sequence[T],
                   pair_of: Callable[[T], Pair]) -> Iterator[tuple[Sequence[T], dict[int, bytes]]]:
    """``items`` SCREEN_CHUNK at a time, each chunk with the copy features of its pairs' images (one read)."""
    for at in range(0, len(items), SCREEN_CHUNK):
        chunk = items[at:at + SCREEN_CHUNK]
        yield chunk, store.copy_features(sorted({i for item in chunk for i in pair_of(item)}))


def _screen_match(a: bytes, b: bytes) -> verify.Match | None:
    """``verify.screen_match``; None for features it cannot read (another format) or too few keypoints to
    screen by (``verify.screenable``): the pair goes to SIFT."""
    try:
        return verify.screen_match(a, b) if verify.screenable(a, b) else None
    except ValueError:
        return None


def _stored_gray_score(a: bytes, b: bytes, item: tuple[Pair, float, verify.Match]) -> float | None:
    """The copy score of a pair that passed the screen, checked on the grays kept with its features
    (``verify.stored_gray``); None when either has none or it cannot be read (then a fresh decode checks it)."""
    try:
        ga, gb = verify.stored_gray(a), verify.stored_gray(b)
    except ValueError:
        return None
    if ga is None or gb is None:
        return None
    return verify.copy_score(item[1], verify.aligned_match(item[2], ga, gb))


_MISSING = object()


class FeatureCache:
    """Local features of indexed images, read back from their files on demand, shared by the worker threads:
    each image is decoded (``min_side``) and described (``describe``: SIFT by default, or the 320-px gray the
    screen's transform is checked on) once while it is in the cache (the SIFT of its mirror image is derived
    from its own, ``verify.mirrored``); ``computed`` counts the images described."""

    def __init__(self, infos: dict[int, ImageInfo], settings: Settings, report: Any, size: int = 512,
                 min_side: int = verify.FEATURE_SIDE, describe: Callable[[Any], Any] = verify.local_features) -> None:
        self.infos = infos
        self.min_side = min_side
        self.describe = describe
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
            decoded = load(info.path, min_side=self.min_side, max_pixels=self.settings.max_pixels,
                           max_bytes=self.settings.max_file_mb * 1_000_000)
        except ImageError as err:
            with self.lock:
                self.report.unreadable.append((info.path, str(err)))
            return None
        return self.describe(decoded.image)
