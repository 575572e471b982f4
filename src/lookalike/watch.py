"""``lookalike watch PATH...`` (and ``serve --watch``): keep the index up to date as files change.

Algorithm: watchdog's inotify observer reports file events under each watched folder; the handler only notes
which paths changed (image files created, written, closed, touched, moved or deleted; folders created, moved
or deleted), so no event is ever lost while an index run is busy. A batch is indexed when the folders have
been quiet for ``debounce`` seconds, or ``max_wait`` seconds after its first change (a long copy still shows
up as it goes). A batch is one ordinary incremental :meth:`Library.index` run over the changed paths (a move
is seen as its source gone and its target new with the same content hash: the path is updated, nothing is
re-embedded); past ``MAX_PATHS`` changed paths the watched folders are indexed whole instead.

A path whose name is not UTF-8 is reported once (the outermost such folder for all inside it) and skipped, as
the crawl does. A changed path that no longer exists is indexed through the nearest folder above it that does
(that run drops what is gone, or sees the source of a move vanish as its target appears). Every ``poll``
seconds the watched folders themselves are checked: one that disappeared keeps its images in the index (it may
be an unplugged drive, as for ``lookalike index``; said once, as a warning) and is watched again, and indexed
whole, when it comes back (a new inode).

Defaults: 2 s of quiet ends a burst (a camera import writes files back to back, well under a second apart);
30 s bounds the wait during a long import. Both from ``Settings.watch_debounce_s/watch_max_wait_s``
(``LOOKALIKE_WATCH_DEBOUNCE``; the tests use the floor, 1 s: watchdog reports a move's source only 0.5 s
later when the target was not seen, e.g. a file moved into a folder made a moment before).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from lookalike.display import quote_path
from lookalike.errors import LookalikeError
from lookalike.indexer import IndexSummary
from lookalike.io.crawl import UTF8_REASON, is_hidden, is_image_name, utf8_name

log = logging.getLogger("lookalike.watch")
MAX_PATHS = 2000  # changed paths above which a batch re-indexes the watched folders whole (a stat walk)
MIN_DEBOUNCE_S = 1.0  # watchdog holds an unpaired IN_MOVED_FROM 0.5 s before reporting it: wait well past that
POLL_S = 0.5  # how often the watched folders themselves are checked (removed, re-created)

OnBatch = Callable[[IndexSummary, int], None]  # (summary of the run, number of changed paths)


class Watcher:
    def __init__(self, library, roots: Sequence[str | os.PathLike[str]], *,  # type: ignore[no-untyped-def]
                 debounce: float | None = None, max_wait: float | None = None, on_batch: OnBatch | None = None,
                 catch_up: bool = True) -> None:
        self.library = library
        self.roots = [os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(r)))) for r in roots]
        if not self.roots:
            raise LookalikeError("give at least one folder to watch")
        bad = next((r for r in self.roots if not utf8_name(r)), None)
        if bad is not None:  # nothing under it could be stored
            raise LookalikeError(f"cannot watch {quote_path(bad)}: the folder name is not valid UTF-8 (rename it "
                                 "to watch it)")
        s = library.settings
        self.debounce = max(MIN_DEBOUNCE_S, s.watch_debounce_s if debounce is None else debounce)
        self.max_wait = s.watch_max_wait_s if max_wait is None else max_wait
        self.on_batch = on_batch
        self.catch_up = catch_up
        self.batches = 0
        self._ignore = os.path.normpath(os.path.abspath(os.fspath(s.library))) if not s.db else None
        self._pending: set[str] = set()
        self._bad_names: set[str] = set()  # names not UTF-8 already reported (each once)
        self._first = self._last = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watches: dict[str, tuple[object, tuple[int, int]]] = {}  # root -> (watch, (dev, inode))
        self._thread: threading.Thread | None = None
        self._observer = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> "Watcher":
        """Run in a background thread (serve --watch, tests)."""
        self._thread = threading.Thread(target=self.run, name="lookalike-watch", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the loop to end after the batch in hand (safe from a signal handler)."""
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """Watch until :meth:`stop` (or Ctrl-C); index each batch of changes."""
        from watchdog.observers import Observer

        self._observer = observer = Observer()
        observer.start()
        try:
            self._check_roots(initial=True)
            if self.catch_up:  # what changed while nothing was watching
                self._index([r for r in self.roots if os.path.exists(r)] or self.roots, 0)
            while not self._stop.is_set():
                self._check_roots()
                batch = self._take_batch()
                if batch is not None:
                    self._index(*batch)
                self._stop.wait(min(POLL_S, max(self.debounce / 3, 0.05)))
        finally:
            observer.stop()
            observer.join(5)

    # -- events ------------------------------------------------------------------------------------------------
    def note(self, path: str, is_dir: bool, kind: str) -> None:
        """One file-system event (called from watchdog's thread)."""
        path = os.path.normpath(os.fsdecode(path))
        if self._ignore and (path == self._ignore or path.startswith(self._ignore + os.sep)):
            return  # the library's own database and thumbnails
        name = os.path.basename(path)
        if is_hidden(name):
            return
        if is_dir:
            if kind == "modified":  # a folder's listing changed: its files have their own events
                return
        elif not is_image_name(name) and not (kind in ("deleted", "moved") and not os.path.splitext(name)[1]):
            return  # not an image (an extension-less deleted path may have been a folder)
        if not utf8_name(path):  # as the crawl does: such a name cannot be stored; it was never indexed either
            if kind not in ("deleted", "moved"):
                self._report_name(path, is_dir)
            return
        self._add(path)

    def _report_name(self, path: str, is_dir: bool) -> None:
        """Say once that a name is not UTF-8: the outermost such folder for everything inside it."""
        while not utf8_name(os.path.dirname(path)):
            path, is_dir = os.path.dirname(path), True
        if path not in self._bad_names:
            self._bad_names.add(path)
            log.warning("watch: %s: %s", quote_path(path),
                        UTF8_REASON.replace("file name", "folder name") if is_dir else UTF8_REASON)

    def _take_batch(self) -> tuple[list[str], int] | None:
        with self._lock:
            if not self._pending:
                return None
            now = time.monotonic()
            if now - self._last < self.debounce and now - self._first < self.max_wait:
                return None
            paths, self._pending = self._pending, set()
        n = len(paths)
        if n > MAX_PATHS:
            targets = [r for r in self.roots if os.path.isdir(r)]
        else:
            targets = _outermost({t for t in map(self._target, paths) if t is not None})
        return (targets, n) if targets else None

    def _target(self, path: str) -> str | None:
        """What to index for a changed path: itself while it exists, else the nearest folder above it that does
        (indexing that folder drops what is gone: a deleted file, a folder moved away). None when its watched
        folder is gone too: a vanished root may be an unplugged drive, whose images are kept until it is back."""
        root = next((r for r in self.roots if path == r or path.startswith(r.rstrip(os.sep) + os.sep)), None)
        while root is not None and not os.path.exists(path):
            if path == root:
                return None
            path = os.path.dirname(path)
        return path

    def _index(self, paths: list[str], changes: int) -> None:
        try:
            summary = self.library.index(paths)
        except LookalikeError as err:
            log.error("watch: could not index %d changed paths: %s", changes, err)
            return
        except Exception as err:  # noqa: BLE001 - one bad batch never stops the watcher
            log.exception("watch: unexpected error while indexing: %s", err)
            return
        if summary.interrupted:  # Ctrl-C inside the run: the indexer kept what it committed; stop here
            raise KeyboardInterrupt
        self.batches += 1
        log.info("watch: %d changed paths: %s", changes, summary.line())
        if self.on_batch is not None:
            self.on_batch(summary, changes)

    # -- the watched folders themselves ----------------------------------------------------------------------
    def _check_roots(self, initial: bool = False) -> None:
        for root in self.roots:
            try:
                st = os.stat(root)
                ident: tuple[int, int] | None = (st.st_dev, st.st_ino)
            except OSError:
                ident = None
            current = self._watches.get(root)
            if current is not None and current[1] == ident:
                continue
            if current is not None:  # removed, or removed and re-created: the old watch is dead
                self._unschedule(current[0])
                del self._watches[root]
                if ident:
                    log.info("watch: %s was re-created", root)
                else:  # said: its photos stay in the index (an unplugged drive) until it is back
                    log.warning("watch: %s disappeared; its photos stay in the index, and it is watched for when "
                                "it is back", root)
            if ident is not None:
                self._schedule(root, ident)
                if current is not None or not initial:
                    self._add(root)
            elif initial:
                log.warning("watch: %s does not exist (yet); it is watched for when it appears", root)

    def _add(self, path: str) -> None:
        with self._lock:
            now = time.monotonic()
            if not self._pending:
                self._first = now
            self._last = now
            self._pending.add(path)

    def _schedule(self, root: str, ident: tuple[int, int]) -> None:
        handler = _Handler(self)
        try:
            watch = self._observer.schedule(handler, root, recursive=True)  # type: ignore[union-attr]
        except OSError as err:
            raise LookalikeError(f"cannot watch {root}: {err.strerror or err} (too many folders? raise "
                                 "fs.inotify.max_user_watches)") from None
        self._watches[root] = (watch, ident)

    def _unschedule(self, watch: object) -> None:
        try:
            self._observer.unschedule(watch)  # type: ignore[union-attr]
        except (KeyError, OSError):  # already gone with its folder
            pass


def _outermost(paths: set[str]) -> list[str]:
    """The paths without those that lie under another one of them (a new folder covers its files)."""
    out = []
    for p in sorted(paths):
        parent, up = p, os.path.dirname(p)
        while up != parent and up not in paths:
            parent, up = up, os.path.dirname(up)
        if up == parent:  # reached the top without meeting another changed path
            out.append(p)
    return out


class _Handler:
    """watchdog's handler protocol: dispatch(event)."""

    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def dispatch(self, event) -> None:  # type: ignore[no-untyped-def]
        kind = event.event_type
        if kind in ("opened", "closed_no_write"):
            return
        self.watcher.note(event.src_path, event.is_directory, kind)
        if kind == "moved" and event.dest_path:
            self.watcher.note(event.dest_path, event.is_directory, "created")
