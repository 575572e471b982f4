"""The embedded store's faiss index, kept in step with the database through its change log.

SQLite is the source of truth; the faiss index (stores/vectors.py) is derived data. Every write appends
``(image_id, 'add' | 'del')`` rows to ``vector_log`` in the same transaction (``'reset'`` when every vector
was dropped for another model). ``LoggedIndex.current()`` returns an index caught up with the log: the one in
memory, else the saved ``vectors.index`` when it matches the database (same dimension and model, its seq
within the log that is left), else one built from the vectors; then it replays the log past the index's seq
(last op per image wins; adds read the vectors that are still there). ``optimize()`` rebuilds when the
collection outgrew the index, saves it atomically and prunes the log the saved copy covers.

``SAVE_EVERY`` trades a full rewrite of the saved index against replaying more of the log on each load; it
is a chosen round number, not a measured optimum.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from lookalike.stores.base import batched
from lookalike.stores.vectors import VectorIndex, auto_kind

if TYPE_CHECKING:
    from lookalike.stores.sqlite import SQLiteStore

log = logging.getLogger("lookalike")
INDEX_NAME = "vectors.index"  # the saved faiss index (derived data; rebuilt when missing or stale)
SAVE_EVERY = 1000  # optimize() rewrites the saved index after this many changes (or 1% of it), not fewer


class LoggedIndex:
    """Owns the faiss index of one SQLite library: build, load, catch-up, prune, optimize."""

    def __init__(self, store: "SQLiteStore", kind: str = "auto", nprobe: int = 0) -> None:
        self.store = store
        self.kind_asked = kind  # "auto": the kind recorded for this library, else chosen by size
        self.nprobe = nprobe  # 0: the index's own default
        self.path = store.dir / INDEX_NAME
        self.index: VectorIndex | None = None
        self.saved_seq = -1
        self._seen: tuple[int, int] | None = None  # the database's change token when self.index was caught up

    def kind(self) -> str:
        """The vector index kind asked for (constructor, else the one recorded for this library), else auto."""
        if self.kind_asked != "auto":
            return self.kind_asked
        row = self.store._all("SELECT value FROM meta WHERE key = 'vector_index'")
        return row[0][0] if row else "auto"

    def reset(self) -> None:
        """Every vector was dropped (another model): forget the index in memory and the saved one."""
        self.index = None
        self._seen = None
        self.path.unlink(missing_ok=True)

    def describe(self) -> dict[str, object]:
        """The vector index in memory, else the saved one (its header only), else what would be built."""
        if self.index is not None:
            return self.index.describe()
        if self.path.is_file():
            try:
                header = VectorIndex.read_header(self.path)
                return {"kind": header["kind"], "vectors": header["slots"], "saved": True,
                        "bytes": self.path.stat().st_size}
            except (OSError, ValueError, KeyError):
                pass
        kind = self.kind()
        return {"kind": auto_kind(self.store.count()) if kind == "auto" else kind}

    def current(self) -> VectorIndex:
        """The faiss index, caught up with every write (also writes by other processes). Unless the database
        changed since the last call (its change token: ``PRAGMA data_version`` for other connections' commits,
        ``total_changes`` for this one's), the index in memory is returned without reading the log: one
        pragma per query instead of four queries."""
        with self.store.lock:
            token = self._token()
            if self.index is not None and token == self._seen:
                if self.nprobe:
                    self.index.nprobe = self.index.ef_search = self.nprobe
                return self.index
            info = self.store.model_info()
            dim = int(info["dim"]) if info and info.get("dim") else 0
            head, pruned = self._log_bounds()
            idx = self.index
            if idx is None or idx.dim != (dim or idx.dim) or head < idx.seq or idx.seq < pruned:
                idx = self._load_saved(dim, head, pruned) or self._build(dim or 1, head)
            if head > idx.seq:
                idx = self._catch_up(idx, dim, head)
            if self.nprobe:
                idx.nprobe = idx.ef_search = self.nprobe
            self.index = idx
            self._seen = token
            return idx

    def _token(self) -> tuple[int, int]:
        """Changes to the database: other connections' commits bump ``data_version``, this connection's
        writes ``total_changes``. Taken before reading the log, so a commit racing the catch-up is caught
        at the next call."""
        conn = self.store.conn
        return int(conn.execute("PRAGMA data_version").fetchone()[0]), conn.total_changes

    def _catch_up(self, idx: VectorIndex, dim: int, head: int) -> VectorIndex:
        ops = self.store._all("SELECT image_id, op FROM vector_log WHERE seq > ? AND seq <= ? ORDER BY seq",
                              (idx.seq, head))
        if any(op == "reset" for _, op in ops):  # every vector was dropped (another model)
            idx = self._build(dim or 1, head)
            ops = []
        final: dict[int, str] = {}
        for image_id, op in ops:
            final[image_id] = op
        idx.remove(list(final))
        for chunk in batched([i for i, op in final.items() if op == "add"], 4096):
            got = self.embeddings(chunk)  # those still present (a later delete may have won)
            if got:
                idx.add(np.fromiter(got, np.int64, len(got)), np.stack(list(got.values())))
        idx.seq = head
        return idx

    def _log_bounds(self) -> tuple[int, int]:
        """(newest change-log seq, seq through which the log was pruned)."""
        run = self.store._all
        head = int(run("SELECT COALESCE(MAX(seq), 0) FROM vector_log")[0][0])
        row = run("SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'")
        head = max(head, int(row[0][0]) if row else 0)
        pruned = run("SELECT value FROM meta WHERE key = 'vector_log_pruned'")
        return head, int(pruned[0][0]) if pruned else 0

    def _build(self, dim: int, head: int) -> VectorIndex:
        run = self.store._all
        n = int(run("SELECT COUNT(*) FROM vectors")[0][0])
        kind = self.kind()
        sample = None
        probe = VectorIndex.create(kind, dim, n)
        if probe.needs_training:
            if n < max(1, probe.nlist):
                kind = "flat"  # too few vectors to train on: exact until the next rebuild
            else:
                ids = [r[0] for r in run("SELECT image_id FROM vectors")]
                chosen = np.random.default_rng(0).choice(len(ids), size=probe.train_size(n), replace=False)
                sample, _ = self.store.vectors(sorted(ids[i] for i in chosen))
        idx = VectorIndex.build(dim, self.store.iter_vectors(), kind=kind, n=n, sample=sample)
        idx.seq = head
        return idx

    def _load_saved(self, dim: int, head: int, pruned: int) -> VectorIndex | None:
        if not self.path.is_file():
            return None
        try:
            idx, header = VectorIndex.load(self.path)
        except (OSError, ValueError, RuntimeError, KeyError):
            return None  # damaged or foreign: rebuilt from the database
        info = self.store.model_info() or {}
        if idx.dim != dim or header.get("model") != info.get("name") or idx.seq > head or idx.seq < pruned:
            return None
        self.saved_seq = idx.seq
        return idx

    def _prune_log(self, seq: int) -> None:
        with self.store._tx() as c:
            c.execute("DELETE FROM vector_log WHERE seq <= ?", (seq,))
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_log_pruned', ?)", (str(seq),))

    def optimize(self, progress: bool = False) -> dict[str, object]:
        """After a run of writes: bring the vector index up to date, rebuild it when the collection outgrew
        it (another kind, doubled since training, many removals), save it atomically beside the database and
        prune the change log it no longer needs. Returns the index's description."""
        with self.store.lock:
            if self.kind_asked != "auto":
                with self.store._tx() as c:
                    c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_index', ?)",
                              (self.kind_asked,))
            quick = self._flat_without_index()
            if quick is not None:
                return quick
            idx = self.current()
            n = len(idx)
            rebuilt = idx.needs_rebuild(n, self.kind())
            if rebuilt:
                # shown beside the progress bars; otherwise with -v
                log.log(logging.WARNING if progress else logging.INFO,
                        "building the vector index (%s) over %d vectors", self.kind(), n)
                idx = self._build(idx.dim, idx.seq)
                self.index = idx
            unsaved = int(self.store._all("SELECT COUNT(*) FROM vector_log WHERE seq > ?",
                                          (max(self.saved_seq, 0),))[0][0])
            if idx.kind == "flat":  # exact and cheap to rebuild from the database: nothing to save
                self.path.unlink(missing_ok=True)
                if unsaved >= SAVE_EVERY:
                    self._prune_log(idx.seq)  # other processes' flat indexes rebuild (cheap below FLAT_MAX)
                    self.saved_seq = idx.seq
            elif (rebuilt or not self.path.exists() or self.saved_seq < 0
                  or unsaved >= max(SAVE_EVERY, len(idx) // 100)):
                info = self.store.model_info() or {}
                idx.save(self.path, {"model": info.get("name")})
                self.saved_seq = idx.seq
                self._prune_log(idx.seq)  # the saved index covers the log up to idx.seq
            # else: a few changes only; they stay in the log, and whoever loads the saved index catches up
            return idx.describe()

    def _flat_without_index(self) -> dict[str, object] | None:
        """optimize() where the library's index is exact and this process holds none (an indexing run):
        nothing to build or save (a flat index is rebuilt from the database by whoever searches), only the
        change log to prune as the flat branch below does, so faiss is not even imported (faiss_lazy.py).
        None when it does not apply (an index in memory, a saved one on disk, or a kind other than flat)."""
        kind = self.kind()
        if self.index is not None or self.path.exists() or kind not in ("flat", "auto"):
            return None
        n = int(self.store._all("SELECT COUNT(*) FROM vectors")[0][0])
        if kind == "auto" and auto_kind(n) != "flat":
            return None
        head, _ = self._log_bounds()
        unsaved = int(self.store._all("SELECT COUNT(*) FROM vector_log WHERE seq > ?",
                                      (max(self.saved_seq, 0),))[0][0])
        if unsaved >= SAVE_EVERY:
            self._prune_log(head)
            self.saved_seq = head
        return {"kind": "flat", "vectors": n, "tombstones": 0, "trained_on": 0}

    def embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """Exact stored embeddings by id (those that exist)."""
        out: dict[int, np.ndarray] = {}
        for chunk in batched(list(ids), 500):
            q = ",".join("?" * len(chunk))
            for i, e in self.store._all(f"SELECT image_id, embedding FROM vectors WHERE image_id IN ({q})", chunk):
                out[i] = np.frombuffer(e, dtype="<f4")
        return out
