"""Indexing pipeline: crawl -> change detection -> read + decode + preprocess (threads, ahead of the model)
-> batched inference -> store writes (one transaction per batch).

Incremental: unchanged files (same size and mtime) are not read; a file whose content hash is already known
is not re-embedded (a move or rename updates the path; a copy reuses the vectors); removed files are dropped.
A run killed at any point resumes: every committed batch stays, the rest is redone.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from lookalike.config import Settings
from lookalike.errors import ImageError
from lookalike.extras import EXTRAS_MIN_SIDE, ExtraResult, Extras
from lookalike.io.crawl import FileEntry, crawl
from lookalike.io.read import decode, read_file
from lookalike.models.base import Model, ModelIdentity
from lookalike.progress import progress_bar
from lookalike.stores.base import ExtrasStore, FileState, ImageInfo, ImageRecord, IndexStore, Move

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
    skipped: list[tuple[str, str]] = field(default_factory=list)
    elapsed_s: float = 0.0
    model_s: float = 0.0
    cpu_s: float = 0.0  # CPU time of the whole process (all threads) during the run
    interrupted: bool = False
    extras: int = 0  # already indexed images given OCR/faces in this run
    vector_index: dict[str, object] = field(default_factory=dict)  # the store's vector index after the run

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
            parts.append(f"ocr/faces added to {self.extras}")
        parts += [f"skipped {len(self.skipped)}", f"removed {self.removed}",
                  f"in {self.elapsed_s:.1f} s ({self.images_per_s:.1f} images/s)"]
        return ("interrupted: " if self.interrupted else "") + ", ".join(parts)

    def as_dict(self) -> dict[str, object]:
        return {
            "found": self.found, "indexed": self.indexed, "unchanged": self.unchanged, "moved": self.moved,
            "copies": self.reused, "touched": self.touched, "removed": self.removed,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "elapsed_s": round(self.elapsed_s, 3), "images_per_s": round(self.images_per_s, 2),
            "cpu_s": round(self.cpu_s, 3),
            "interrupted": self.interrupted, "extras": self.extras, "vector_index": self.vector_index,
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

    # ---------------------------------------------------------------------------------------------------
    def run(self, roots: Sequence[str | os.PathLike[str]]) -> IndexSummary:
        t0, c0 = time.perf_counter(), time.process_time()
        s = IndexSummary()
        self._check_model()
        roots = [os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(r)))) for r in roots]
        entries = list(crawl(roots, on_problem=lambda p, r: s.skipped.append((p, r))))
        s.found = len(entries)
        known = self.store.file_states(under=roots)
        seen = {e.path for e in entries}
        todo: list[FileEntry] = []
        for e in entries:
            st = known.get(e.path)
            if st and st.size == e.size and abs(st.mtime - e.mtime) < 1e-6:
                s.unchanged += 1
            else:
                todo.append(e)
        missing = {p: st for p, st in known.items() if p not in seen}
        missing_by_sha: dict[str, list[FileState]] = {}
        for st in missing.values():
            missing_by_sha.setdefault(st.sha, []).append(st)
        try:
            self._process(todo, known, missing_by_sha, s)
        except KeyboardInterrupt:
            s.interrupted = True
        if self.extras and not s.interrupted:
            try:
                s.extras = self._backfill_extras(roots)
            except KeyboardInterrupt:
                s.interrupted = True
        if not s.interrupted:
            moved_ids = {st.id for sts in missing_by_sha.values() for st in sts if getattr(st, "_moved", False)}
            gone = [st.id for st in missing.values() if st.id not in moved_ids and st.id not in self._moved]
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
                 missing_by_sha: dict[str, list[FileState]], s: IndexSummary) -> None:
        self._moved: set[int] = set()
        if not todo:
            return
        bar = progress_bar(len(todo), self.progress, "indexing")
        batch: list[_Work] = []
        pending_moves: list[Move] = []
        pending_touches: list[Move] = []
        pending_copies: list[ImageRecord] = []
        done = 0
        max_bytes = self.settings.max_file_mb * 1_000_000
        with ThreadPoolExecutor(decode_workers(self.settings, self.model), thread_name_prefix="decode") as pool:
            for work in _prefetch(pool, todo, lambda e: self._read(e, max_bytes), ahead=self.settings.batch_size * 3):
                done += 1
                bar.update(1)
                if self.on_progress:
                    self.on_progress(done, len(todo))
                e = work.entry
                if work.error:
                    s.skipped.append((e.path, work.error))
                    continue
                old = known.get(e.path)
                if old and old.sha == work.sha:  # touched: same content
                    pending_touches.append(Move(old.id, e.path, e.size, e.mtime))
                    s.touched += 1
                    continue
                move_from = next((st for st in missing_by_sha.get(work.sha, []) if st.id not in self._moved), None)
                if move_from is not None and not old:
                    self._moved.add(move_from.id)
                    pending_moves.append(Move(move_from.id, e.path, e.size, e.mtime))
                    s.moved += 1
                    continue
                copy = self._copy_of(work, e)
                if copy is not None:
                    pending_copies.append(copy)
                    s.reused += 1
                    continue
                if work.pixels is None:  # content known only after reading: decode now
                    work = self._decode(work, max_bytes)
                    if work.error:
                        s.skipped.append((e.path, work.error))
                        continue
                batch.append(work)
                if len(batch) >= self.settings.batch_size:
                    self._flush(batch, s, pending_moves, pending_touches, pending_copies)
                    batch, pending_moves, pending_touches, pending_copies = [], [], [], []
            self._flush(batch, s, pending_moves, pending_touches, pending_copies)
        bar.close()

    def _copy_of(self, work: _Work, e: FileEntry) -> ImageRecord | None:
        """A new path whose content is already indexed under another path: reuse its vectors."""
        for st in self.store.by_sha([work.sha]).get(work.sha, []):
            if st.path == e.path:
                continue
            info = self.store.get([st.id])
            if not info:
                continue
            try:
                emb, cls = self.store.copy_vectors(st.id)
            except KeyError:
                continue
            i = info[0]
            return ImageRecord(path=e.path, size=e.size, mtime=e.mtime, sha=work.sha, width=i.width, height=i.height,
                               embedding=emb, class_scores=cls, tags=list(i.tags),
                               texts={k: v for k, v in i.texts.items() if k != "description"},
                               taken_at=i.taken_at, camera=i.camera, phash=i.phash)
        return None

    def _flush(self, batch: list[_Work], s: IndexSummary, moves: list[Move], touches: list[Move],
               copies: list[ImageRecord]) -> None:
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
                    taken_at=w.taken_at, camera=w.camera, phash=w.phash, faces=extra.faces, extras=extra.kinds))
            s.indexed += len(batch)
        if records or moves or touches:
            self.store.write(upserts=records, moves=moves, touches=touches)

    # -- decoding threads --------------------------------------------------------------------------------
    def _read(self, e: FileEntry, max_bytes: int) -> _Work:
        return prepare(e, self.model, self.settings, extras=self.extras)

    def _decode(self, w: _Work, max_bytes: int, data: bytes | None = None) -> _Work:
        return prepare(w.entry, self.model, self.settings, data, self.extras)

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
                d = decode(data, min_side=EXTRAS_MIN_SIDE, max_pixels=self.settings.max_pixels)
            except ImageError as err:
                return image_id, path, ExtraResult(error=str(err))
            return image_id, path, self.extras.analyse(d, data)

        done = 0
        with ThreadPoolExecutor(self.settings.decode_workers(), thread_name_prefix="extras") as pool:
            for image_id, path, res in pool.map(analyse, sorted(todo.items())):
                if res.error:
                    warn(path, res.error)
                    continue
                self.store.write_extras(image_id, res.kinds, res.texts, res.faces)
                done += 1
        return done


def decode_workers(settings: Settings, model: Model) -> int:
    """Decoding threads: the setting, else one per core beside a CPU model (whose engine sleeps instead of
    spinning when idle, so the cores stay busy with whichever is runnable), else every core beside a GPU
    model (there the CPU does nothing but decode)."""
    if settings.workers:
        return settings.workers
    if str(getattr(model, "device", "cpu")).startswith("cuda"):
        return max(2, os.cpu_count() or 2)
    return settings.decode_workers()


def prepare(e: FileEntry, model: Model, settings: Settings, data: bytes | None = None,
            extras: Extras | None = None) -> _Work:
    """Read, hash, decode (JPEG draft: DCT-scaled to just above the model's input), preprocess and
    perceptual-hash one file (and run the asked-for ``extras``: OCR, faces). Thread-safe and GIL-light (Pillow, hashlib and numpy release the GIL), so it
    runs in the decoding threads ahead of the model. Never raises: a bad file comes back with ``error``."""
    w = _Work(e)
    try:
        if data is None:
            data = read_file(e.path, settings.max_file_mb * 1_000_000)
        d = decode(data, min_side=round(model.input_size / 0.875), max_pixels=settings.max_pixels)
        w.sha = d.sha  # the one content hash, computed while decoding
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


def perceptual_hash(image) -> str:  # type: ignore[no-untyped-def]
    import imagehash

    return str(imagehash.phash(image))


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
