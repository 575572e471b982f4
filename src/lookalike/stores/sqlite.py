"""The embedded store: SQLite (WAL) as the source of truth + a faiss index kept in step through a change log.

Layout of a library folder: ``lookalike.db`` (+ WAL files). Every write is one transaction, so a run killed at
any moment (kill -9) leaves the previous consistent state; the faiss index is derived data, rebuilt or
caught up from ``vector_log`` whenever it lags behind the database.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.stores.base import (
    FTS_STOPWORDS,
    FaceRecord,
    FileState,
    Filters,
    Hit,
    ImageInfo,
    ImageRecord,
    Move,
    batched,
    decode_vector,
    encode_vector,
    folder_of,
)
from lookalike.stores.vectors import KINDS, VectorIndex, auto_kind

DB_NAME = "lookalike.db"
INDEX_NAME = "vectors.index"  # the saved faiss index (derived data; rebuilt when missing or stale)
RERANK = 3  # compressed indexes: candidates per wanted result, re-scored with the exact vectors
SAVE_EVERY = 1000  # optimize() rewrites the saved index after this many changes (or 1% of it), not fewer

# Schema migrations, applied in order; PRAGMA user_version records how many ran.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE images (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL UNIQUE,
        folder TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime REAL NOT NULL,
        sha TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        taken_at TEXT,
        camera TEXT,
        phash TEXT,
        indexed_at REAL NOT NULL
    );
    CREATE INDEX images_sha ON images(sha);
    CREATE INDEX images_folder ON images(folder);
    CREATE TABLE vectors (
        image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
        embedding BLOB NOT NULL,
        class_scores BLOB
    );
    CREATE TABLE tags (
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        class INTEGER NOT NULL,
        score REAL NOT NULL,
        PRIMARY KEY (image_id, class)
    ) WITHOUT ROWID;
    CREATE INDEX tags_class ON tags(class, score);
    CREATE TABLE texts (
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (image_id, kind)
    ) WITHOUT ROWID;
    CREATE VIRTUAL TABLE texts_fts USING fts5(body, image_id UNINDEXED, kind UNINDEXED, tokenize='porter unicode61');
    CREATE TABLE vector_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, image_id INTEGER NOT NULL, op TEXT NOT NULL);
    """,
    # 2: faces (index --faces) and a record of which optional analyses ran on each image
    """
    CREATE TABLE faces (
        id INTEGER PRIMARY KEY,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
        embedding BLOB NOT NULL
    );
    CREATE INDEX faces_image ON faces(image_id);
    CREATE TABLE extras (
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        PRIMARY KEY (image_id, kind)
    ) WITHOUT ROWID;
    """,
]


class SQLiteStore:
    def __init__(self, library: str | os.PathLike[str], *, vector_index: str = "auto", nprobe: int = 0) -> None:
        if vector_index not in KINDS:
            raise LookalikeError(f"unknown vector index {vector_index!r}; choose one of {', '.join(KINDS)}")
        self.vector_index_kind = vector_index
        self.nprobe = nprobe  # 0: the index's own default
        self.dir = Path(library)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LookalikeError(f"cannot create library folder {self.dir}: {err.strerror or err}") from None
        self.path = self.dir / DB_NAME
        try:
            self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
        except sqlite3.Error as err:
            raise LookalikeError(f"cannot open library {self.path}: {err}") from None
        self.lock = threading.RLock()
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=60000")
        self._migrate()
        self._index: VectorIndex | None = None
        self._saved_seq = -1

    # -- schema -------------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.lock:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise LookalikeError(
                    f"library {self.path} has schema version {version}, newer than this lookalike "
                    f"({len(MIGRATIONS)}): upgrade lookalike"
                )
            for i in range(version, len(MIGRATIONS)):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in _split_sql(MIGRATIONS[i]):
                        self.conn.execute(stmt)
                    self.conn.execute(f"PRAGMA user_version={i + 1}")
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _tx(self) -> "_Tx":
        return _Tx(self)

    # -- model identity ----------------------------------------------------------------------------------
    def model_info(self) -> dict[str, str] | None:
        rows = dict(self._all("SELECT key, value FROM meta WHERE key IN ('model','model_version','dim')"))
        return {"name": rows["model"], "version": rows.get("model_version", ""), "dim": rows.get("dim", "")} if "model" in rows else None

    def set_model_info(self, name: str, version: str, dim: int) -> None:
        with self._tx() as c:
            c.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                          [("model", name), ("model_version", version), ("dim", str(dim))])

    def clear_vectors(self) -> None:
        """Forget every image's vectors and tags (a different model will re-embed all of them)."""
        with self._tx() as c:
            c.execute("DELETE FROM vectors")
            c.execute("DELETE FROM tags")
            c.execute("DELETE FROM texts WHERE kind = 'caption'")
            c.execute("DELETE FROM texts_fts WHERE kind = 'caption'")
            c.execute("UPDATE images SET mtime = -1, sha = ''")  # every file counts as changed
            c.execute("DELETE FROM vector_log")
            c.execute("INSERT INTO vector_log(image_id, op) VALUES (0, 'reset')")  # other processes rebuild
            c.execute("DELETE FROM meta WHERE key IN ('model','model_version','dim')")
        self._index = None
        (self.dir / INDEX_NAME).unlink(missing_ok=True)

    # -- change detection --------------------------------------------------------------------------------
    def file_states(self, under: Sequence[str] | None = None) -> dict[str, FileState]:
        if under is None:
            rows = self._all("SELECT id, path, size, mtime, sha FROM images")
        else:
            rows = []
            for root in under:
                root = os.path.normpath(root)
                rows += self._all(
                    "SELECT id, path, size, mtime, sha FROM images WHERE path = ? OR (path >= ? AND path < ?)",
                    (root, root.rstrip(os.sep) + os.sep, root.rstrip(os.sep) + chr(ord(os.sep) + 1)),
                )
        return {r[1]: FileState(*r) for r in rows}

    def by_sha(self, shas: Sequence[str]) -> dict[str, list[FileState]]:
        out: dict[str, list[FileState]] = {}
        for chunk in batched(list(shas), 500):
            q = ",".join("?" * len(chunk))
            for r in self._all(f"SELECT id, path, size, mtime, sha FROM images WHERE sha IN ({q})", chunk):
                out.setdefault(r[4], []).append(FileState(*r))
        return out

    # -- writes ------------------------------------------------------------------------------------------
    def write(self, upserts: Sequence[ImageRecord] = (), moves: Sequence[Move] = (),
              deletes: Sequence[int] = (), touches: Sequence[Move] = ()) -> None:
        now = time.time()
        with self._tx() as c:
            for m in moves:
                c.execute("DELETE FROM images WHERE path = ? AND id != ?", (m.path, m.id))
                c.execute("UPDATE images SET path = ?, folder = ?, size = ?, mtime = ? WHERE id = ?",
                          (m.path, folder_of(m.path), m.size, m.mtime, m.id))
            for t in touches:
                c.execute("UPDATE images SET size = ?, mtime = ? WHERE id = ?", (t.size, t.mtime, t.id))
            if deletes:
                for chunk in batched(list(deletes), 500):
                    q = ",".join("?" * len(chunk))
                    c.execute(f"DELETE FROM texts_fts WHERE image_id IN ({q})", chunk)
                    c.execute(f"DELETE FROM images WHERE id IN ({q})", chunk)
                    c.executemany("INSERT INTO vector_log(image_id, op) VALUES (?, 'del')", [(i,) for i in chunk])
            for r in upserts:
                row = c.execute("SELECT id FROM images WHERE path = ?", (r.path,)).fetchone()
                values = (r.folder, r.size, r.mtime, r.sha, r.width, r.height, r.taken_at, r.camera, r.phash, now)
                if row:
                    image_id = row[0]
                    c.execute("UPDATE images SET folder=?, size=?, mtime=?, sha=?, width=?, height=?, taken_at=?, "
                              "camera=?, phash=?, indexed_at=? WHERE id=?", (*values, image_id))
                    c.execute("DELETE FROM tags WHERE image_id = ?", (image_id,))
                    # a user's description survives a re-index of the file; derived texts are redone
                    c.execute("DELETE FROM texts WHERE image_id = ? AND kind != 'description'", (image_id,))
                    c.execute("DELETE FROM texts_fts WHERE image_id = ? AND kind != 'description'", (image_id,))
                    c.execute("DELETE FROM faces WHERE image_id = ?", (image_id,))
                    c.execute("DELETE FROM extras WHERE image_id = ?", (image_id,))
                    c.execute("INSERT INTO vector_log(image_id, op) VALUES (?, 'del')", (image_id,))
                else:
                    image_id = c.execute(
                        "INSERT INTO images(path, folder, size, mtime, sha, width, height, taken_at, camera, phash, "
                        "indexed_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", (r.path, *values)).lastrowid
                c.execute("INSERT OR REPLACE INTO vectors(image_id, embedding, class_scores) VALUES (?,?,?)",
                          (image_id, encode_vector(r.embedding),
                           None if r.class_scores is None else encode_vector(r.class_scores, "<f2")))
                c.executemany("INSERT INTO tags(image_id, class, score) VALUES (?,?,?)",
                              [(image_id, int(k), float(s)) for k, s in r.tags])
                self._write_texts(c, image_id, r.texts)
                self._write_faces(c, image_id, r.faces, r.extras)
                c.execute("INSERT INTO vector_log(image_id, op) VALUES (?, 'add')", (image_id,))

    def set_texts(self, image_id: int, texts: dict[str, str]) -> None:
        with self._tx() as c:
            self._write_texts(c, image_id, texts)

    @staticmethod
    def _write_texts(c: sqlite3.Connection, image_id: int, texts: dict[str, str]) -> None:
        for kind, body in texts.items():
            c.execute("DELETE FROM texts_fts WHERE image_id = ? AND kind = ?", (image_id, kind))
            if body:
                c.execute("INSERT OR REPLACE INTO texts(image_id, kind, body) VALUES (?,?,?)", (image_id, kind, body))
                c.execute("INSERT INTO texts_fts(body, image_id, kind) VALUES (?,?,?)", (body, image_id, kind))
            else:
                c.execute("DELETE FROM texts WHERE image_id = ? AND kind = ?", (image_id, kind))

    @staticmethod
    def _write_faces(c: sqlite3.Connection, image_id: int, faces: Sequence[FaceRecord], kinds: Sequence[str]) -> None:
        if "faces" in kinds:
            c.execute("DELETE FROM faces WHERE image_id = ?", (image_id,))
        c.executemany("INSERT INTO faces(image_id, x, y, w, h, embedding) VALUES (?,?,?,?,?,?)",
                      [(image_id, *map(int, f.box), encode_vector(f.embedding)) for f in faces])
        c.executemany("INSERT OR IGNORE INTO extras(image_id, kind) VALUES (?, ?)", [(image_id, k) for k in kinds])

    def write_extras(self, image_id: int, kinds: Sequence[str], texts: dict[str, str] | None = None,
                     faces: Sequence[FaceRecord] | None = None) -> None:
        """Results of optional analyses for an indexed image (one transaction); ``kinds`` are marked done."""
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone():
                return  # removed meanwhile
            self._write_texts(c, image_id, texts or {})
            self._write_faces(c, image_id, faces or [], kinds)

    def missing_extras(self, kind: str, under: Sequence[str] | None = None) -> list[tuple[int, str]]:
        """(id, path) of indexed images (below ``under``) on which the analysis ``kind`` has not run."""
        sql = "SELECT id, path FROM images WHERE NOT EXISTS (SELECT 1 FROM extras e WHERE e.image_id = images.id AND e.kind = ?)"
        if under is None:
            return [(r[0], r[1]) for r in self._all(sql + " ORDER BY id", (kind,))]
        out: list[tuple[int, str]] = []
        for root in under:
            root = os.path.normpath(root)
            out += [(r[0], r[1]) for r in self._all(
                sql + " AND (path = ? OR (path >= ? AND path < ?)) ORDER BY id",
                (kind, root, root.rstrip(os.sep) + os.sep, root.rstrip(os.sep) + chr(ord(os.sep) + 1)))]
        return out

    def faces(self, ids: Sequence[int]) -> dict[int, list[FaceRecord]]:
        out: dict[int, list[FaceRecord]] = {}
        for chunk in batched([int(i) for i in ids], 500):
            q = ",".join("?" * len(chunk))
            for image_id, x, y, w, h, e in self._all(
                    f"SELECT image_id, x, y, w, h, embedding FROM faces WHERE image_id IN ({q}) ORDER BY id", chunk):
                out.setdefault(image_id, []).append(FaceRecord((x, y, w, h), decode_vector(e)))  # type: ignore[arg-type]
        return out

    def face_search(self, embedding: np.ndarray, k: int, filters: Filters | None = None,
                    max_distance: float = 0.6) -> list[Hit]:
        """Images with a face within ``max_distance`` (L2) of ``embedding``, closest first; the score is
        ``1 - distance`` of the image's closest face. Exact search over every stored face."""
        where, args = filter_sql(filters, "i") if filters and filters.active() else ("1", [])
        q = np.asarray(embedding, dtype=np.float32).reshape(-1)
        best: dict[int, float] = {}
        last = -1
        while True:
            rows = self._all("SELECT f.id, f.image_id, f.embedding FROM faces f JOIN images i ON i.id = f.image_id "
                             f"WHERE f.id > ? AND {where} ORDER BY f.id LIMIT 8192", [last, *args])
            if not rows:
                break
            last = rows[-1][0]
            mat = np.frombuffer(b"".join(r[2] for r in rows), dtype="<f4").reshape(len(rows), -1)
            if mat.shape[1] != q.shape[0]:
                raise LookalikeError(f"face embedding size {q.shape[0]} does not match the stored {mat.shape[1]}")
            dist = np.linalg.norm(mat - q[None, :], axis=1)
            for (_, image_id, _), d in zip(rows, dist):
                if d <= max_distance and d < best.get(image_id, np.inf):
                    best[image_id] = float(d)
        ranked = sorted(best.items(), key=lambda kv: (kv[1], kv[0]))[:k]
        return [Hit(i, 1.0 - d) for i, d in ranked]

    def copy_vectors(self, src_id: int) -> tuple[np.ndarray, np.ndarray | None]:
        emb, cls = self.vectors([src_id])
        if not len(emb):
            raise KeyError(src_id)
        return emb[0], None if cls is None else cls[0]

    # -- reads -------------------------------------------------------------------------------------------
    def get(self, ids: Sequence[int]) -> list[ImageInfo]:
        ids = [int(i) for i in ids]
        found: dict[int, ImageInfo] = {}
        for chunk in batched(ids, 500):
            q = ",".join("?" * len(chunk))
            for r in self._all("SELECT id, path, folder, size, mtime, sha, width, height, taken_at, camera, phash "
                               f"FROM images WHERE id IN ({q})", chunk):
                found[r[0]] = ImageInfo(*r)
            for image_id, cls, score in self._all(
                    f"SELECT image_id, class, score FROM tags WHERE image_id IN ({q}) ORDER BY score DESC", chunk):
                found[image_id].tags.append((cls, score))
            for image_id, kind, body in self._all(f"SELECT image_id, kind, body FROM texts WHERE image_id IN ({q})", chunk):
                found[image_id].texts[kind] = body
        return [found[i] for i in ids if i in found]

    def get_by_path(self, path: str) -> ImageInfo | None:
        row = self._all("SELECT id FROM images WHERE path = ?", (os.path.normpath(path),))
        return self.get([row[0][0]])[0] if row else None

    def vectors(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]:
        ids = [int(i) for i in ids]
        rows: dict[int, tuple[bytes, bytes | None]] = {}
        for chunk in batched(ids, 500):
            q = ",".join("?" * len(chunk))
            for i, e, c in self._all(f"SELECT image_id, embedding, class_scores FROM vectors WHERE image_id IN ({q})", chunk):
                rows[i] = (e, c)
        present = [i for i in ids if i in rows]
        if not present:
            return np.zeros((0, 0), np.float32), None
        emb = np.stack([decode_vector(rows[i][0]) for i in present])
        cls = None
        if all(rows[i][1] is not None for i in present):
            cls = np.stack([decode_vector(rows[i][1], "<f2") for i in present])
        return emb, cls

    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = -1
        while True:
            rows = self._all("SELECT image_id, embedding FROM vectors WHERE image_id > ? ORDER BY image_id LIMIT ?",
                             (last, batch))
            if not rows:
                return
            last = rows[-1][0]
            yield (np.array([r[0] for r in rows], dtype=np.int64),
                   np.frombuffer(b"".join(r[1] for r in rows), dtype="<f4").reshape(len(rows), -1).astype(np.float32))

    def count(self) -> int:
        return int(self._all("SELECT COUNT(*) FROM images")[0][0])

    def stats(self) -> dict[str, object]:
        n_vec = int(self._all("SELECT COUNT(*) FROM vectors")[0][0])
        size = sum(p.stat().st_size for p in self.dir.glob(DB_NAME + "*") if p.is_file())
        return {
            "store": "sqlite",
            "location": str(self.path),
            "images": self.count(),
            "vectors": n_vec,
            "folders": int(self._all("SELECT COUNT(DISTINCT folder) FROM images")[0][0]),
            "bytes": size,
            "schema_version": self.schema_version,
            "model": self.model_info(),
            "vector_index": self._index_description(),
        }

    def _index_description(self) -> dict[str, object]:
        """The vector index in memory, else the saved one (its header only), else what would be built."""
        if self._index is not None:
            return self._index.describe()
        path = self.dir / INDEX_NAME
        if path.is_file():
            try:
                header = VectorIndex.read_header(path)
                return {"kind": header["kind"], "vectors": header["slots"], "saved": True,
                        "bytes": path.stat().st_size}
            except (OSError, ValueError, KeyError):
                pass
        kind = self.index_kind()
        return {"kind": auto_kind(self.count()) if kind == "auto" else kind}

    # -- searches ----------------------------------------------------------------------------------------
    def vector_index(self) -> VectorIndex:
        """The faiss index, caught up with every write (also writes by other processes): the one in memory,
        else the saved copy (``vectors.index``) when it matches the database, else built from the vectors."""
        with self.lock:
            info = self.model_info()
            dim = int(info["dim"]) if info and info.get("dim") else 0
            head, pruned = self._log_bounds()
            idx = self._index
            if idx is None or idx.dim != (dim or idx.dim) or head < idx.seq or idx.seq < pruned:
                idx = self._load_saved(dim, head, pruned) or self._build_index(dim or 1, head)
            if head > idx.seq:
                ops = self._all("SELECT image_id, op FROM vector_log WHERE seq > ? AND seq <= ? ORDER BY seq",
                                (idx.seq, head))
                if any(op == "reset" for _, op in ops):  # every vector was dropped (another model)
                    idx = self._build_index(dim or 1, head)
                    ops = []
                final: dict[int, str] = {}
                for image_id, op in ops:
                    final[image_id] = op
                idx.remove(list(final))
                for chunk in batched([i for i, op in final.items() if op == "add"], 4096):
                    got = self._embeddings(chunk)  # those still present (a later delete may have won)
                    if got:
                        idx.add(np.fromiter(got, np.int64, len(got)), np.stack(list(got.values())))
                idx.seq = head
            if self.nprobe:
                idx.nprobe = idx.ef_search = self.nprobe
            self._index = idx
            return idx

    def _log_bounds(self) -> tuple[int, int]:
        """(newest change-log seq, seq through which the log was pruned)."""
        head = int(self._all("SELECT COALESCE(MAX(seq), 0) FROM vector_log")[0][0])
        row = self._all("SELECT seq FROM sqlite_sequence WHERE name = 'vector_log'")
        head = max(head, int(row[0][0]) if row else 0)
        pruned = self._all("SELECT value FROM meta WHERE key = 'vector_log_pruned'")
        return head, int(pruned[0][0]) if pruned else 0

    def _build_index(self, dim: int, head: int, kind: str | None = None) -> VectorIndex:
        n = int(self._all("SELECT COUNT(*) FROM vectors")[0][0])
        kind = kind or self.index_kind()
        sample = None
        probe = VectorIndex.create(kind, dim, n)
        if probe.needs_training:
            if n < max(1, probe.nlist):
                kind = "flat"  # too few vectors to train on: exact until the next rebuild
            else:
                ids = [r[0] for r in self._all("SELECT image_id FROM vectors")]
                chosen = np.random.default_rng(0).choice(len(ids), size=probe.train_size(n), replace=False)
                sample, _ = self.vectors(sorted(ids[i] for i in chosen))
        idx = VectorIndex.build(dim, self.iter_vectors(), kind=kind, n=n, sample=sample)
        idx.seq = head
        return idx

    def _load_saved(self, dim: int, head: int, pruned: int) -> VectorIndex | None:
        path = self.dir / INDEX_NAME
        if not path.is_file():
            return None
        try:
            idx, header = VectorIndex.load(path)
        except (OSError, ValueError, RuntimeError, KeyError):
            return None  # damaged or foreign: rebuilt from the database
        info = self.model_info() or {}
        if idx.dim != dim or header.get("model") != info.get("name") or idx.seq > head or idx.seq < pruned:
            return None
        self._saved_seq = idx.seq
        return idx

    def _prune_log(self, seq: int) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM vector_log WHERE seq <= ?", (seq,))
            c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_log_pruned', ?)", (str(seq),))

    def index_kind(self) -> str:
        """The vector index kind asked for (constructor, else the one recorded for this library), else auto."""
        if self.vector_index_kind != "auto":
            return self.vector_index_kind
        row = self._all("SELECT value FROM meta WHERE key = 'vector_index'")
        return row[0][0] if row else "auto"

    def optimize(self, progress: bool = False) -> dict[str, object]:
        """After a run of writes: bring the vector index up to date, rebuild it when the collection outgrew
        it (another kind, doubled since training, many removals), save it atomically beside the database and
        prune the change log it no longer needs. Returns the index's description."""
        with self.lock:
            if self.vector_index_kind != "auto":
                with self._tx() as c:
                    c.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_index', ?)",
                              (self.vector_index_kind,))
            idx = self.vector_index()
            n = len(idx)
            rebuilt = idx.needs_rebuild(n, self.index_kind())
            if rebuilt:
                if progress:
                    print(f"lookalike: building the vector index ({self.index_kind()}) over {n} vectors",
                          file=sys.stderr)
                idx = self._build_index(idx.dim, idx.seq)
                self._index = idx
            path = self.dir / INDEX_NAME
            unsaved = int(self._all("SELECT COUNT(*) FROM vector_log WHERE seq > ?", (max(self._saved_seq, 0),))[0][0])
            if idx.kind == "flat":  # exact and cheap to rebuild from the database: nothing to save
                path.unlink(missing_ok=True)
                if unsaved >= SAVE_EVERY:
                    self._prune_log(idx.seq)  # other processes' flat indexes rebuild (cheap below FLAT_MAX)
                    self._saved_seq = idx.seq
            elif rebuilt or not path.exists() or self._saved_seq < 0 or unsaved >= max(SAVE_EVERY, len(idx) // 100):
                info = self.model_info() or {}
                idx.save(path, {"model": info.get("name")})
                self._saved_seq = idx.seq
                self._prune_log(idx.seq)  # the saved index covers the log up to idx.seq
            # else: a few changes only; they stay in the log, and whoever loads the saved index catches up
            return idx.describe()

    def _embeddings(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        out: dict[int, np.ndarray] = {}
        for chunk in batched(list(ids), 500):
            q = ",".join("?" * len(chunk))
            for i, e in self._all(f"SELECT image_id, embedding FROM vectors WHERE image_id IN ({q})", chunk):
                out[i] = np.frombuffer(e, dtype="<f4")
        return out

    def filter_ids(self, filters: Filters | None) -> list[int] | None:
        if filters is None or not filters.active():
            return None
        where, args = filter_sql(filters)
        return [r[0] for r in self._all(f"SELECT id FROM images WHERE {where}", args)]

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        return self.knn_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, filters)[0]

    def knn_many(self, vectors: np.ndarray, k: int, filters: Filters | None = None) -> list[list[Hit]]:
        """Nearest neighbours of each vector. From a compressed index (SQ8/PQ codes) the best ``RERANK x k``
        candidates are re-scored with their exact vectors from the database: exact scores, higher recall."""
        allowed = self.filter_ids(filters)
        q = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        with self.lock:  # another thread's catch-up may add/remove ids in the faiss index meanwhile
            idx = self.vector_index()
            depth = max(RERANK * k, k + 16) if idx.compressed else k
            ids, scores = idx.search_many(q, depth, allowed)
        if not idx.compressed:
            return [[Hit(int(i), float(s)) for i, s in zip(row_i, row_s) if i >= 0] for row_i, row_s in zip(ids, scores)]
        exact = self._embeddings(sorted({int(i) for i in ids.ravel() if i >= 0}))
        out = []
        for qv, row in zip(q, ids):
            cand = [int(i) for i in row if i >= 0 and int(i) in exact]
            if not cand:
                out.append([])
                continue
            s = np.stack([exact[i] for i in cand]) @ qv
            order = np.argsort(-s, kind="stable")[:k]
            out.append([Hit(cand[j], float(s[j])) for j in order])
        return out

    def tag_search(self, weights: dict[int, float], k: int, filters: Filters | None = None) -> list[Hit]:
        if not weights:
            return []
        where, args = filter_sql(filters) if filters and filters.active() else ("1", [])
        values = ",".join("(?,?)" for _ in weights)
        wargs: list[object] = []
        for cls, w in weights.items():
            wargs += [int(cls), float(w)]
        sql = (f"WITH q(class, w) AS (VALUES {values}) "
               "SELECT t.image_id, SUM(t.score * q.w) AS s FROM tags t JOIN q ON q.class = t.class "
               f"JOIN images i ON i.id = t.image_id WHERE {where} GROUP BY t.image_id ORDER BY s DESC, t.image_id LIMIT ?")
        return [Hit(r[0], float(r[1])) for r in self._all(sql, [*wargs, *args, k])]

    def text_search(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        match = fts_query(query)
        if not match:
            return []
        where, args = filter_sql(filters) if filters and filters.active() else ("1", [])
        sql = ("WITH m AS MATERIALIZED (SELECT image_id, bm25(texts_fts) AS s FROM texts_fts WHERE texts_fts MATCH ?) "
               "SELECT m.image_id, MIN(m.s) AS best FROM m JOIN images i ON i.id = m.image_id "
               f"WHERE {where} GROUP BY m.image_id ORDER BY best, m.image_id LIMIT ?")
        try:
            rows = self._all(sql, [match, *args, k])
        except sqlite3.OperationalError:
            return []
        return [Hit(r[0], -float(r[1])) for r in rows]  # bm25() is lower-is-better

    # -- plumbing ----------------------------------------------------------------------------------------
    def _all(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        with self.lock:
            return self.conn.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self.lock:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass


class _Tx:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception (including KeyboardInterrupt)."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __enter__(self) -> sqlite3.Connection:
        self.store.lock.acquire()
        self.store.conn.execute("BEGIN IMMEDIATE")
        return self.store.conn

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        try:
            self.store.conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.store.lock.release()


def filter_sql(filters: Filters | None, alias: str = "") -> tuple[str, list[object]]:
    """SQL condition over the images table (columns optionally prefixed by ``alias.``) and its arguments."""
    if filters is None:
        return "1", []
    p = f"{alias}." if alias else ""
    where: list[str] = []
    args: list[object] = []
    if filters.folder:
        folder = os.path.normpath(os.path.abspath(os.path.expanduser(filters.folder)))
        where.append(f"({p}folder = ? OR ({p}folder >= ? AND {p}folder < ?))")
        args += [folder, folder.rstrip(os.sep) + os.sep, folder.rstrip(os.sep) + chr(ord(os.sep) + 1)]
    taken = f"COALESCE({p}taken_at, strftime('%Y-%m-%dT%H:%M:%S', {p}mtime, 'unixepoch'))"
    if filters.after:
        where.append(f"{taken} >= ?")
        args.append(filters.after)
    if filters.before:
        where.append(f"{taken} < ?")
        args.append(filters.before)
    if filters.camera:
        where.append(f"LOWER(COALESCE({p}camera, '')) LIKE ?")
        args.append(f"%{filters.camera.lower()}%")
    if filters.min_size:
        where.append(f"MIN({p}width, {p}height) >= ?")
        args.append(int(filters.min_size))
    return (" AND ".join(where) or "1"), args


_WORD = re.compile(r"\w+", re.UNICODE)


def fts_query(text: str) -> str:
    """A user's words as an FTS5 OR-query of quoted terms (no syntax injection); stopwords dropped."""
    words = [w for w in _WORD.findall(text.lower()) if w not in FTS_STOPWORDS]
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
