"""Indexing pipeline: crawl -> change detection -> read + decode + preprocess (threads, ahead of the model)
-> batched inference -> store writes (one transaction per batch).

Incremental: unchanged files (same size and mtime) are not read; a changed file whose content is already
known is not re-embedded (``decide``: touched in place, only size/mtime are updated; moved or renamed, the
row follows it; copied, its vectors are reused); removed files are dropped. Messages go to the "lookalike"
logger.
A run killed at any point resumes: every committed batch stays, the rest is redone.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Container, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Literal, Protocol

import numpy as np
from PIL import Image

from lookalike.config import Settings
from lookalike.errors import ImageError
from lookalike.extras import EXTRAS_MIN_SIDE, ExtraResult, Extras
from lookalike.io.crawl import Crawl, FileEntry, utf8_name
from lookalike.io.read import content_hash, decode, read_file
from lookalike.models.base import Model, ModelIdentity
from lookalike.progress import progress_bar
from lookalike.stores import claims
from lookalike.stores.base import ExtrasStore, FileState, ImageInfo, ImageRecord, IndexStore, Move, file_id

log = logging.getLogger("lookalike")


@dataclass
class IndexSummary:
    found: int = 0
    indexed: int = 0  # embedded by the model
    unchanged: int = 0
    moved: int = 0  # renamed/moved files recognised by content
    reused: int = 0  # copies of known content: vectors reused
    touched: int = 0  # mtime changed, content did not
    removed: int = 0
    elsewhere: int = 0  # files another indexer running at the same time took (stores/claims.py)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0
    model_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the whole process (all threads) during the run
    interrupted: bool = False
    extras: int = 0  # already indexed images given OCR/faces/copy features in this run
    vector_index: dict[str, object] = field(default_factory=dict)  # the store's vector index after the run
    people: dict[str, object] = field(default_factory=dict)  # face clustering after the run (search/people.py)
    search_transform: dict[str, object] = field(default_factory=dict)  # search/example.py: fitted or kept

    @property
    def images_per_s(self) -> float:
        return self.indexed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        parts = [f"indexed {self.indexed}", f"unchanged {self.unchanged}"]
        if self.moved:
            parts.append(f"moved {self.moved}")
        if self.reused:
            parts.append(f"copies {self.reused}")
        if self.extras:
            parts.append(f"ocr/faces/copy features added to {self.extras}")
        if self.elsewhere:
            parts.append(f"by other indexers {self.elsewhere}")
        if self.people:
            parts.append(f"people {self.people.get('people', 0)}")
        parts += [f"skipped {len(self.skipped)}", f"removed {self.removed}",
                  f"in {self.elapsed_s:.1f} s ({self.images_per_s:.1f} images/s)"]
        return ("interrupted: " if self.interrupted else "") + ", ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {
            "found": self.found, "indexed": self.indexed, "unchanged": self.unchanged, "moved": self.moved,
            "copies": self.reused, "touched": self.touched, "removed": self.removed, "by_others": self.elsewhere,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "elapsed_s": round(self.elapsed_s, 3), "images_per_s": round(self.images_per_s, 2),
            "cpu_s": round(self.cpu_s, 3),
            "interrupted": self.interrupted, "extras": self.extras, "vector_index": self.vector_index,
            "people": self.people,
            "search_transform": self.search_transform,
        }


@dataclass
class _Work:
    """What a decoding thread hands back for one file."""

    entry: FileEntry
    sha: str = ""
    pixels: np.ndarray | None = None  # preprocessed model input
    width: int = 0
    height: int = 0
    taken_at: str | None = None
    camera: str | None = None
    phash: str | None = None
    error: str | None = None
    extra: "ExtraResult | None" = None  # OCR text, faces (index --ocr/--faces)


Progress = Callable[[int, int], None]  # (done, total)


class IndexerStore(IndexStore, ExtrasStore, Protocol):
    """The roles the indexer uses: writing the index, optional analyses, and reading a record to copy it."""

    def get(self, ids: Sequence[int]) -> list[ImageInfo]: ...


class Indexer:
    def __init__(self, store: IndexerStore, model: Model, settings: Settings, *, progress: bool = False,
                 on_progress: Progress | None = None) -> None:
        self.store = store
        self.model = model
        self.settings = settings
        self.progress = progress
        self.on_progress = on_progress
        self.extras = Extras(settings)
        # this run's name in the store's work claims: unique across processes and machines
        self.owner = claims.new_owner()
        self.batch_size = settings.index_batch(str(getattr(model, "device", "cpu")))

    # ---------------------------------------------------------------------------------------------------
    def run(self, roots: Sequence[str | os.PathLike[str]], *, rehash: bool = False) -> IndexSummary:
        """Index ``roots`` incrementally: a file whose size, mtime and inode are as recorded is not read again,
        unless ``rehash``: then every file is read and hashed, and one whose bytes changed in place (its size
        and mtime put back) is embedded again; the others are only read (not decoded)."""
        t0, c0 = time.perf_counter(), time.process_time()
        s = IndexSummary()
        roots = [os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(r)))) for r in roots]
        self._check_model()
        walk = Crawl(roots, lambda p, r: s.skipped.append((p, r)), self.settings.follow_symlinks)
        entries = list(walk)
        s.found = len(entries)
        # the crawl yields real paths; one whose name is not UTF-8 holds nothing stored (the crawl reported it)
        real_roots = [p for p in map(os.path.realpath, roots) if utf8_name(p)]
        under = real_roots + [p for p in walk.outside if utf8_name(p)]
        known = self.store.file_states(under=under)
        seen = {e.path for e in entries}
        todo: list[FileEntry] = []
        recheck: list[FileEntry] = []  # rehash: unchanged by their stat, read again
        backfill: list[Move] = []  # unchanged files indexed before device/inode were recorded
        for e in entries:
            st = known.get(e.path)
            fid = _fid(e)
            if st and _same_stat(st, e) and st.ino in (None, fid[1]):
                if rehash:
                    recheck.append(e)
                    continue
                s.unchanged += 1
                if (st.dev, st.ino) != fid:  # recorded now (indexed before v3, or a device renumbered)
                    backfill.append(Move(st.id, e.path, e.size, e.mtime, *fid))
            else:  # new, changed, or another file (other inode) with the same size and mtime
                todo.append(e)
        missing = {p: st for p, st in known.items() if p not in seen}
        missing_by_sha: dict[str, list[FileState]] = {}
        for st in missing.values():
            missing_by_sha.setdefault(st.sha, []).append(st)
        try:
            if backfill:
                self.store.write(touches=backfill)
            self._process(todo, known, missing_by_sha, s, recheck)
        except KeyboardInterrupt:
            s.interrupted = True
        if self.extras and not s.interrupted:
            try:
                s.extras = self._backfill_extras(real_roots)
            except KeyboardInterrupt:
                s.interrupted = True
        if not s.interrupted:
            if missing and hasattr(self.store, "claim"):  # others may have moved some meanwhile: ask again
                now = self.store.file_states(under=under)
                missing = {p: st for p, st in missing.items() if p in now and now[p].id == st.id}
            gone = [st.id for st in missing.values() if st.id not in self._moved]
            if gone:
                self.store.write(deletes=gone)
                s.removed = len(gone)
        s.elapsed_s = time.perf_counter() - t0
        s.cpu_s = time.process_time() - c0
        return s

    def _check_model(self) -> None:
        """Another model's vectors cannot be mixed with this one's: forget them all (every file re-embeds)."""
        stored = ModelIdentity.stored(self.store.model_info())
        m = self.model
        if stored and not stored.matches(m):
            log.warning("index was built with %s (%s); re-embedding every image with %s (%s)",
                        stored.name, stored.version, m.name, m.version)
            self.store.clear_vectors()
            stored = None
        if stored is None:
            self.store.set_model_info(m.name, m.version, m.dim)

    # ---------------------------------------------------------------------------------------------------
    def _process(self, todo: list[FileEntry], known: dict[str, FileState],
                 missing_by_sha: dict[str, list[FileState]], s: IndexSummary, recheck: list[FileEntry]) -> None:
        """Embed ``todo`` in batches. With a store that takes claims (stores/claims.py) the files come in
        rounds: first those this process could claim, then, after its own batches are all written (so two
        indexers never wait on each other), the ones others held, until none is left. ``recheck`` (``rehash``:
        files whose stat is as recorded) is read first, unclaimed: another indexer leaves such files alone, and
        one whose bytes did not change is only hashed, not decoded."""
        self._moved: set[int] = set()
        if not todo and not recheck:
            return
        claim = getattr(self.store, "claim", None)  # every store has it; a test double may not
        total = len(todo) + len(recheck)
        bar = progress_bar(total, self.progress, "indexing")
        self._done = 0
        self._since: float | None = None  # the store's clock at this run's first claim
        try:
            with ThreadPoolExecutor(decode_workers(self.settings, self.model), thread_name_prefix="decode") as pool:
                if recheck:
                    self._round(pool, recheck, total, known, missing_by_sha, s, bar)
                if claim is None:
                    self._round(pool, todo, total, known, missing_by_sha, s, bar)
                else:
                    waiting: list[FileEntry] = list(todo)
                    first = True
                    while waiting:
                        if not first:
                            time.sleep(claims.WAIT_S)
                        busy: list[FileEntry] = []
                        mine = self._claim(waiting, s, busy, bar)
                        self._round(pool, mine, total, known, missing_by_sha, s, bar)
                        waiting, first = busy, False
        except BaseException:
            if claim is not None:
                self.store.release_claims(self.owner)
            raise
        bar.close()

    def _claim(self, entries: list[FileEntry], s: IndexSummary, busy: list[FileEntry], bar) -> Iterable[FileEntry]:  # type: ignore[no-untyped-def]
        """The entries this process claims, a batch at a time as the decoding threads need them."""
        for i in range(0, len(entries), self.batch_size):
            got = self.store.claim(entries[i:i + self.batch_size], self.owner, self.settings.claim_lease_s,
                                   since=self._since)
            self._since = got.now if self._since is None else self._since
            s.elsewhere += got.elsewhere
            bar.update(got.elsewhere)
            busy += got.busy
            yield from got.mine

    def _round(self, pool: ThreadPoolExecutor, entries: Iterable[FileEntry], total: int, known: dict[str, FileState],
               missing_by_sha: dict[str, list[FileState]], s: IndexSummary, bar) -> None:  # type: ignore[no-untyped-def]
        batch: list[_Work] = []
        pending_moves: list[Move] = []
        pending_touches: list[Move] = []
        pending_copies: list[ImageRecord] = []
        finished: list[str] = []  # paths settled in this batch (their claims are marked done)
        def known_content(e: FileEntry, sha: str) -> bool:  # then it is not decoded (decoding threads)
            old = known.get(e.path)
            return bool((old is not None and old.sha == sha) or missing_by_sha.get(sha) or self.store.by_sha([sha]).get(sha))

        read = partial(prepare, model=self.model, settings=self.settings, extras=self.extras, known=known_content)
        for work in _prefetch(pool, entries, read, ahead=self.batch_size * 3):
            self._done += 1
            bar.update(1)
            if self.on_progress:
                self.on_progress(self._done, total)
            e = work.entry
            finished.append(e.path)
            if work.error:
                s.skipped.append((e.path, work.error))
                continue
            d = decide(e.path, work.sha, known.get(e.path), missing_by_sha.get(work.sha, ()), self._moved,
                       lambda: self.store.by_sha([work.sha]).get(work.sha, []))
            if d.action == "touch":
                old = known.get(e.path)
                if old is not None and _same_stat(old, e) and (old.dev, old.ino) == _fid(e):
                    s.unchanged += 1  # read again for --rehash: the very bytes indexed
                    continue
                pending_touches.append(Move(d.sources[0].id, e.path, e.size, e.mtime, *_fid(e)))
                s.touched += 1
                continue
            if d.action == "move":
                self._moved.add(d.sources[0].id)
                pending_moves.append(Move(d.sources[0].id, e.path, e.size, e.mtime, *_fid(e)))
                s.moved += 1
                continue
            copy = self._copy_of(work, e, d.sources) if d.action == "copy" else None
            if copy is not None:
                pending_copies.append(copy)
                s.reused += 1
                continue
            if work.pixels is None:  # known content whose sources all vanished meanwhile: decode it after all
                work = prepare(e, self.model, self.settings, self.extras)
                if work.error:
                    s.skipped.append((e.path, work.error))
                    continue
            batch.append(work)  # new content (or every copy's source vanished meanwhile): embed
            if len(batch) >= self.batch_size:
                self._flush(batch, s, pending_moves, pending_touches, pending_copies, finished)
                batch, pending_moves, pending_touches, pending_copies, finished = [], [], [], [], []
        self._flush(batch, s, pending_moves, pending_touches, pending_copies, finished)

    def _copy_of(self, work: _Work, e: FileEntry, sources: Sequence[FileState]) -> ImageRecord | None:
        """A new path whose content is already indexed under another path: reuse its vectors (from the first
        source still there)."""
        for st in sources:
            info = self.store.get([st.id])
            if not info:
                continue
            try:
                emb, cls = self.store.copy_vectors(st.id)
            except KeyError:
                continue
            i = info[0]
            # the same pixels: their copy features hold too (when missing, the back-fill computes them)
            features = self.store.copy_features([st.id]).get(st.id) if "copies" in self.extras.kinds else None
            return ImageRecord(path=e.path, size=e.size, mtime=e.mtime, sha=work.sha, width=i.width, height=i.height,
                               embedding=emb, class_scores=cls, tags=list(i.tags),
                               texts={k: v for k, v in i.texts.items() if k != "description"},
                               taken_at=i.taken_at, camera=i.camera, phash=i.phash, dev=_fid(e)[0], ino=_fid(e)[1],
                               copy_features=features, extras=("copies",) if features is not None else ())
        return None

    def _flush(self, batch: list[_Work], s: IndexSummary, moves: list[Move], touches: list[Move],
               copies: list[ImageRecord], finished: Sequence[str] = ()) -> None:
        records = list(copies)
        if batch:
            t = time.perf_counter()
            enc = self.model.forward(np.stack([w.pixels for w in batch]))  # type: ignore[misc]
            s.model_s += time.perf_counter() - t
            for j, w in enumerate(batch):
                scores = None if enc.class_scores is None else enc.class_scores[j]
                tags = top_tags(scores, self.settings.tags_per_image) if scores is not None else []
                extra = w.extra or ExtraResult()
                texts = dict(extra.texts)
                if self.settings.captions and tags:
                    texts["caption"] = self.extras.caption(tags)
                records.append(ImageRecord(
                    path=w.entry.path, size=w.entry.size, mtime=w.entry.mtime, sha=w.sha, width=w.width,
                    height=w.height, embedding=enc.embeddings[j], class_scores=scores, tags=tags, texts=texts,
                    taken_at=w.taken_at, camera=w.camera, phash=w.phash, faces=extra.faces, extras=extra.kinds,
                    copy_features=extra.copy_features, dev=_fid(w.entry)[0], ino=_fid(w.entry)[1]))
            s.indexed += len(batch)
        if records or moves or touches:
            self.store.write(upserts=records, moves=moves, touches=touches)
        if finished and hasattr(self.store, "finish_claims"):
            self.store.finish_claims(finished, self.owner, self.settings.claim_lease_s)

    # -- optional analyses on images indexed before --ocr/--faces was asked for --------------------------------
    def _backfill_extras(self, roots: Sequence[str]) -> int:
        """Run the asked-for analyses on indexed images below ``roots`` that lack them (in threads)."""
        from lookalike.extras import warn

        todo: dict[int, str] = {}
        for kind in self.extras.kinds:
            todo.update(self.store.missing_extras(kind, roots))
        if not todo:
            return 0
        max_bytes = self.settings.max_file_mb * 1_000_000

        def analyse(item: tuple[int, str]) -> tuple[int, str, ExtraResult]:
            image_id, path = item
            try:
                data = read_file(path, max_bytes)
                large = "ocr" in self.extras.kinds or "faces" in self.extras.kinds  # copy features need 256 px
                d = decode(data, min_side=EXTRAS_MIN_SIDE if large else 256, max_pixels=self.settings.max_pixels)
            except ImageError as err:
                return image_id, path, ExtraResult(error=str(err))
            return image_id, path, self.extras.analyse(d, data)

        done = 0
        with ThreadPoolExecutor(decode_workers(self.settings, self.model), thread_name_prefix="extras") as pool:
            for image_id, path, res in pool.map(analyse, sorted(todo.items())):
                if res.error:
                    warn(path, res.error)
                    continue
                self.store.write_extras(image_id, res.kinds, res.texts, res.faces, res.copy_features)
                done += 1
        return done


def _fid(e: FileEntry) -> tuple[int, int]:
    return file_id(e.dev, e.ino)


def _same_stat(st: FileState, e: FileEntry) -> bool:
    """The file has the size and mtime recorded when it was indexed (what an incremental run goes by)."""
    return st.size == e.size and abs(st.mtime - e.mtime) < 1e-6


def decode_workers(settings: Settings, model: Model) -> int:
    """Decoding threads beside ``model`` (the one policy: ``Settings.decode_workers`` on the model's device)."""
    return settings.decode_workers(str(getattr(model, "device", "cpu")))


@dataclass(frozen=True)
class Decision:
    """What a run does with one changed file once its content hash is known."""

    action: Literal["touch", "move", "copy", "embed"]
    sources: tuple[FileState, ...] = ()  # touch: the file's own row; move: the vanished row; copy: candidates


def decide(path: str, sha: str, old: FileState | None, vanished: Sequence[FileState], claimed: Container[int],
           same_content: Callable[[], Sequence[FileState]]) -> Decision:
    """Touch (same content at the same path: only size/mtime change), move (a path new to the index whose
    content vanished from another path this run, not yet claimed by another move: the row moves, nothing is
    embedded), copy (the content is indexed under another path: its vectors are reused) or embed. Pure but for
    ``same_content``, the lookup of indexed rows with this content, called only when neither touch nor move."""
    if old is not None and old.sha == sha:
        return Decision("touch", (old,))
    if old is None:
        source = next((st for st in vanished if st.id not in claimed), None)
        if source is not None:
            return Decision("move", (source,))
    copies = tuple(st for st in same_content() if st.path != path)
    return Decision("copy", copies) if copies else Decision("embed")


def prepare(e: FileEntry, model: Model, settings: Settings, extras: Extras | None = None,
            known: Callable[[FileEntry, str], bool] | None = None) -> _Work:
    """Read, hash, decode (JPEG draft: DCT-scaled to just above the model's input), preprocess and
    perceptual-hash one file (and run the asked-for ``extras``: OCR, faces). Thread-safe and GIL-light
    (Pillow, hashlib and numpy release the GIL), so it runs in the decoding threads ahead of the model.
    ``known(entry, sha)``: whether the library holds this content already (a touch, move or copy); such a
    file is hashed but not decoded (``pixels`` stays None). Never raises: a bad file comes back with ``error``."""
    w = _Work(e)
    try:
        data = read_file(e.path, settings.max_file_mb * 1_000_000, nofollow=True)
        w.sha = content_hash(data)  # the one content hash
        if known is not None and known(e, w.sha):
            return w
        d = decode(data, min_side=round(model.input_size / 0.875), max_pixels=settings.max_pixels, sha=w.sha)
        w.pixels = model.preprocess(d.image)
        w.width, w.height, w.taken_at, w.camera = d.width, d.height, d.taken_at, d.camera
        w.phash = perceptual_hash(d.image)
        if extras:
            w.extra = extras.analyse(d, data)
    except ImageError as err:
        w.error = str(err)
    except Exception as err:  # noqa: BLE001 - one bad file never stops a run
        w.error = f"unexpected error while decoding: {type(err).__name__}: {err}"
    return w


def top_tags(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    idx = np.argsort(-scores)[:k]
    return [(int(i), float(scores[i])) for i in idx if scores[i] > 0]


_PHASH_SIDE, _PHASH_BITS = 32, 8
# rows 0..7 of the unnormalised DCT-II on 32 points (scipy.fftpack.dct's scaling: 2 sum x_n cos(pi k (2n+1) / 2N))
_PHASH_DCT = 2 * np.cos(np.pi * np.arange(_PHASH_BITS)[:, None] * (2 * np.arange(_PHASH_SIDE)[None, :] + 1)
                        / (2 * _PHASH_SIDE))


def perceptual_hash(image) -> str:  # type: ignore[no-untyped-def]
    """The perceptual hash of ``imagehash.phash`` (grey, 32 x 32 Lanczos, the 8 x 8 lowest frequencies of the
    2-D DCT against their median; the same 16 hex digits, tests/test_indexer.py checks), with the DCT's 8
    needed rows as one matrix product instead of two full scipy DCTs: no scipy import in an indexing process
    (~0.2 s of start-up) and 0.1 ms less per image. Computed from the decoded (DCT-scaled) image."""
    small = image.convert("L").resize((_PHASH_SIDE, _PHASH_SIDE), Image.Resampling.LANCZOS)
    low = (_PHASH_DCT @ np.asarray(small, dtype=np.float64) @ _PHASH_DCT.T).ravel()
    # np.median's value (the mean of the middle two of the 64), without its NaN check, which imports numpy.ma
    # on first use (~0.01 s of an indexing process's start-up)
    middle = np.partition(low, (low.size // 2 - 1, low.size // 2))
    return np.packbits(low > (middle[low.size // 2 - 1] + middle[low.size // 2]) / 2).tobytes().hex()


def _prefetch(pool: ThreadPoolExecutor, items: Iterable[FileEntry], fn: Callable[[FileEntry], _Work],
              ahead: int) -> Iterable[_Work]:
    """Results of ``fn`` over ``items`` in order, keeping up to ``ahead`` tasks running in the pool."""
    queue: deque[Future[_Work]] = deque()
    it = iter(items)
    for item in it:
        queue.append(pool.submit(fn, item))
        if len(queue) >= ahead:
            break
    while queue:
        result = queue.popleft().result()
        nxt = next(it, None)
        if nxt is not None:
            queue.append(pool.submit(fn, nxt))
        yield result
