"""The embedded store: SQLite (WAL) as the source of truth + a faiss index kept in step through a change log.

Layout of a library folder: ``lookalike.db`` (+ WAL files). Every write is one transaction, so a run killed at
any moment (kill -9) leaves the previous consistent state; the faiss index is derived data, rebuilt or
caught up from ``vector_log`` whenever it lags behind the database (``LoggedIndex``, stores/vector_sync.py).
The reads that PostgreSQL answers with the same statements come from ``SQLReads`` (stores/sql.py).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from lookalike.errors import LookalikeError, RuntimeFailure
from lookalike.stores.claims import SQLITE_MIGRATION as CLAIMS_MIGRATION
from lookalike.stores.claims import SQLiteClaims
from lookalike.stores.base import FaceRecord, Filters, Hit, ImageRecord, Move, batched, encode_vector, folder_of
from lookalike.stores.people import PeopleSQL
from lookalike.stores.concept_sql import ConceptSQL
from lookalike.stores.copy_features import PUT as PUT_COPY_FEATURES
from lookalike.stores.copy_features import SQLITE_MIGRATION as COPY_FEATURES_MIGRATION
from lookalike.stores.copy_features import CopyFeatureSQL
from lookalike.stores.dupe_pairs import SQLITE_MIGRATION as PAIRS_MIGRATION
from lookalike.stores.dupe_pairs import DupePairSQL
from lookalike.stores.sql import SQLITE, Query, SQLReads, filter_sql, split_sql
from lookalike.stores.vector_sync import LoggedIndex
from lookalike.stores.vectors import KINDS, VectorIndex

DB_NAME = "lookalike.db"
RERANK = 3  # compressed indexes: candidates per wanted result, re-scored with the exact vectors
T = TypeVar("T")

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
    # 3: the device and inode of each indexed file: the server serves only the very file that was indexed
    """
    ALTER TABLE images ADD COLUMN dev INTEGER;
    ALTER TABLE images ADD COLUMN ino INTEGER;
    """,
    # 4: work claims of concurrent indexers (stores/claims.py)
    CLAIMS_MIGRATION,
    # 5: browsing newest first (SQLReads.browse) reads this index instead of sorting the library: the expression
    # is Dialect.taken("") word for word (bench/browse.py --n 200000: 0.4-0.7 s a page without, 0.02-0.05 s with)
    """
    CREATE INDEX images_taken ON images(COALESCE(taken_at, strftime('%Y-%m-%dT%H:%M:%S', mtime, 'unixepoch')) DESC,
                                        id DESC);
    """,
    # 6: people (face clusters and their names; stores/people.py); face ids never reused from now on (a face
    # id read before a concurrent re-index must not name another face)
    """
    CREATE TABLE faces_v6 (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        x INTEGER NOT NULL, y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL,
        embedding BLOB NOT NULL
    );
    INSERT INTO faces_v6 (id, image_id, x, y, w, h, embedding) SELECT id, image_id, x, y, w, h, embedding FROM faces;
    DROP TABLE faces;
    ALTER TABLE faces_v6 RENAME TO faces;
    CREATE INDEX faces_image ON faces(image_id);
    CREATE TABLE people (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT,
        created_at REAL NOT NULL
    );
    CREATE UNIQUE INDEX people_name ON people(name COLLATE NOCASE);
    CREATE TABLE face_people (
        face_id INTEGER PRIMARY KEY REFERENCES faces(id) ON DELETE CASCADE,
        person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
        pinned INTEGER NOT NULL DEFAULT 0,
        score REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX face_people_person ON face_people(person_id);
    """,
    # 7: taught words (lookalike teach; stores/concept_sql.py)
    """
    CREATE TABLE concepts (
        word TEXT PRIMARY KEY,
        model TEXT NOT NULL,
        model_version TEXT NOT NULL,
        dim INTEGER NOT NULL,
        weights BLOB NOT NULL,
        bias REAL NOT NULL,
        validation TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE TABLE concept_examples (
        word TEXT NOT NULL REFERENCES concepts(word) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        path TEXT NOT NULL,
        positive INTEGER NOT NULL,
        embedding BLOB NOT NULL,
        PRIMARY KEY (word, path)
    );
    """,
    # 8: the library's search transform (search/example.py: centring fitted on its own vectors)
    """
    CREATE TABLE search_transform (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        model_version TEXT NOT NULL,
        fitted_on INTEGER NOT NULL,
        data BLOB NOT NULL,
        fitted_at REAL NOT NULL
    );
    """,
    # 9: verified duplicate pairs (lookalike dupes, incremental; stores/dupe_pairs.py)
    PAIRS_MIGRATION,
    # 10: the browse index of 5 on the date as Dialect.taken now makes it (the mtime floored to the second, as
    # PostgreSQL and Python do, where strftime rounded it to the millisecond first)
    f"""
    DROP INDEX IF EXISTS images_taken;
    CREATE INDEX images_taken ON images({SQLITE.taken("")} DESC, id DESC);
    """,
    # 11: copy-screening features (index --copy-features; stores/copy_features.py)
    COPY_FEATURES_MIGRATION,
]


def _open_read_only(path: Path) -> sqlite3.Connection:
    """``path`` opened for reading only. A WAL database whose ``-shm`` cannot be created here opens only as
    immutable, which is right when nothing writes it meanwhile (a read-only share) and when its ``-wal`` holds
    nothing (else the pages in it would be missed: then the read-only open's own error stands)."""
    from urllib.parse import quote

    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=60)
    try:
        conn.execute("PRAGMA user_version").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
    return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False, timeout=60)


def _use_wal(conn: sqlite3.Connection, wait_s: float = 60.0) -> None:
    """Switch the database to WAL mode (persistent: a no-op once any process has done it).

    Two processes opening a new library at once both hold a shared lock while asking for the exclusive one the
    switch needs; SQLite then answers one of them "database is locked" at once instead of calling the busy
    handler (it would deadlock), so the switch is retried here until ``wait_s`` has passed."""
    deadline = time.monotonic() + wait_s
    delay = 0.005
    while True:
        try:
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err).lower() or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


class SQLiteStore(PeopleSQL, SQLiteClaims, ConceptSQL, DupePairSQL, CopyFeatureSQL, SQLReads):
    dialect = SQLITE

    def __init__(self, library: str | os.PathLike[str], *, vector_index: str = "auto", nprobe: int = 0) -> None:
        if vector_index not in KINDS:
            raise LookalikeError(f"unknown vector index {vector_index!r}; choose one of {', '.join(KINDS)}")
        self.dir = Path(library)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LookalikeError(f"cannot create library folder {self.dir}: {err.strerror or err}") from None
        self.path = self.dir / DB_NAME
        # a library this process cannot write (a read-only share, another user's files) is opened read-only:
        # searches work, anything that writes fails with the read-only error (errors.explain_failure)
        self.read_only = self.path.is_file() and not (os.access(self.dir, os.W_OK) and os.access(self.path, os.W_OK))
        try:
            self.conn = _open_read_only(self.path) if self.read_only else sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=60)
        except sqlite3.Error as err:
            raise LookalikeError(f"cannot open library {self.path}: {err}") from None
        self.lock = threading.RLock()
        if not self.read_only:
            _use_wal(self.conn)
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=60000")
        self._migrate()
        self.index = LoggedIndex(self, vector_index, nprobe)

    # -- schema -------------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self.lock:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise LookalikeError(
                    f"library {self.path} has schema version {version}, newer than this lookalike "
                    f"({len(MIGRATIONS)}): upgrade lookalike"
                )
            if self.read_only and version < len(MIGRATIONS):
                raise RuntimeFailure(f"the library {self.dir} is read-only and has schema version {version}; this "
                                     f"lookalike reads version {len(MIGRATIONS)}: open it once where it can be "
                                     "written (lookalike info upgrades it), or copy it somewhere writable")
            for i in range(version, len(MIGRATIONS)):
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    if self.conn.execute("PRAGMA user_version").fetchone()[0] > i:  # another process ran it
                        self.conn.execute("COMMIT")
                        continue
                    for stmt in split_sql(MIGRATIONS[i]):
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
    def set_search_transform(self, model_version: str, fitted_on: int, data: bytes | None) -> None:
        """Store (or with ``data`` None, drop) the library's search transform, replacing the previous one."""
        with self._tx() as c:
            c.execute("DELETE FROM search_transform")
            if data is not None:
                c.execute("INSERT INTO search_transform(id, model_version, fitted_on, data, fitted_at) VALUES (1, ?, ?, ?, ?)",
                          (model_version, int(fitted_on), bytes(data), time.time()))

    def set_model_info(self, name: str, version: str, dim: int) -> None:
        with self._tx() as c:
            c.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                          [("model", name), ("model_version", version), ("dim", str(dim))])

    def clear_vectors(self) -> None:
        """Forget every image's vectors and tags (a different model will re-embed all of them)."""
        with self._tx() as c:
            c.execute("DELETE FROM vectors")
            c.execute("DELETE FROM search_transform")
            c.execute("DELETE FROM tags")
            c.execute("DELETE FROM texts WHERE kind = 'caption'")
            c.execute("DELETE FROM texts_fts WHERE kind = 'caption'")
            c.execute("UPDATE images SET mtime = -1, sha = ''")  # every file counts as changed
            c.execute("DELETE FROM vector_log")
            c.execute("INSERT INTO vector_log(image_id, op) VALUES (0, 'reset')")  # other processes rebuild
            c.execute("DELETE FROM meta WHERE key IN ('model','model_version','dim')")
        self.index.reset()

    # -- writes ------------------------------------------------------------------------------------------
    def write(self, upserts: Sequence[ImageRecord] = (), moves: Sequence[Move] = (),
              deletes: Sequence[int] = (), touches: Sequence[Move] = ()) -> None:
        now = time.time()
        with self._tx() as c:
            for m in moves:
                c.execute("DELETE FROM images WHERE path = ? AND id != ?", (m.path, m.id))
                c.execute("UPDATE images SET path = ?, folder = ?, size = ?, mtime = ?, dev = ?, ino = ? WHERE id = ?",
                          (m.path, folder_of(m.path), m.size, m.mtime, m.dev, m.ino, m.id))
            for t in touches:
                c.execute("UPDATE images SET size = ?, mtime = ?, dev = ?, ino = ? WHERE id = ?",
                          (t.size, t.mtime, t.dev, t.ino, t.id))
            if deletes:
                for chunk in batched(list(deletes), 500):
                    q = ",".join("?" * len(chunk))
                    c.execute(f"DELETE FROM texts_fts WHERE image_id IN ({q})", chunk)
                    c.execute(f"DELETE FROM images WHERE id IN ({q})", chunk)
                    c.executemany("INSERT INTO vector_log(image_id, op) VALUES (?, 'del')", [(i,) for i in chunk])
            for r in upserts:
                row = c.execute("SELECT id FROM images WHERE path = ?", (r.path,)).fetchone()
                values = (r.folder, r.size, r.mtime, r.sha, r.width, r.height, r.taken_at, r.camera, r.phash, now,
                          r.dev, r.ino)
                if row:
                    image_id = row[0]
                    c.execute("UPDATE images SET folder=?, size=?, mtime=?, sha=?, width=?, height=?, taken_at=?, "
                              "camera=?, phash=?, indexed_at=?, dev=?, ino=? WHERE id=?", (*values, image_id))
                    c.execute("DELETE FROM tags WHERE image_id = ?", (image_id,))
                    # a user's description survives a re-index of the file; derived texts are redone
                    c.execute("DELETE FROM texts WHERE image_id = ? AND kind != 'description'", (image_id,))
                    c.execute("DELETE FROM texts_fts WHERE image_id = ? AND kind != 'description'", (image_id,))
                    c.execute("DELETE FROM faces WHERE image_id = ?", (image_id,))
                    c.execute("DELETE FROM extras WHERE image_id = ?", (image_id,))
                    c.execute("DELETE FROM copy_features WHERE image_id = ?", (image_id,))
                    c.execute("INSERT INTO vector_log(image_id, op) VALUES (?, 'del')", (image_id,))
                else:
                    image_id = c.execute(
                        "INSERT INTO images(path, folder, size, mtime, sha, width, height, taken_at, camera, phash, "
                        "indexed_at, dev, ino) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", (r.path, *values)).lastrowid
                c.execute("INSERT OR REPLACE INTO vectors(image_id, embedding, class_scores) VALUES (?,?,?)",
                          (image_id, encode_vector(r.embedding),
                           None if r.class_scores is None else encode_vector(r.class_scores, "<f2")))
                c.executemany("INSERT INTO tags(image_id, class, score) VALUES (?,?,?)",
                              [(image_id, int(k), float(s)) for k, s in r.tags])
                self._write_texts(c, image_id, r.texts)
                self._write_faces(c, image_id, r.faces, r.extras)
                if r.copy_features is not None:
                    c.execute(SQLITE.sql(PUT_COPY_FEATURES), (image_id, r.copy_features))
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
                     faces: Sequence[FaceRecord] | None = None, copy_features: bytes | None = None) -> None:
        """Results of optional analyses for an indexed image (one transaction); ``kinds`` are marked done."""
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone():
                return  # removed meanwhile
            self._write_texts(c, image_id, texts or {})
            if copy_features is not None:
                c.execute(SQLITE.sql(PUT_COPY_FEATURES), (image_id, copy_features))
            self._write_faces(c, image_id, faces or [], kinds)

    def face_search(self, embedding: np.ndarray, k: int, filters: Filters | None = None,
                    max_distance: float = 0.6) -> list[Hit]:
        """Images with a face within ``max_distance`` (L2) of ``embedding``, closest first; the score is
        ``1 - distance`` of the image's closest face. Exact search over every stored face."""
        where, args = filter_sql(filters, SQLITE, "i")
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
            "vector_index": self.index.describe(),
        }

    def vector_index(self) -> VectorIndex:
        """The faiss index, caught up with every write (stores/vector_sync.py)."""
        return self.index.current()

    def index_kind(self) -> str:
        return self.index.kind()

    def optimize(self, progress: bool = False) -> dict[str, object]:
        """After a run of writes: bring the vector index up to date, rebuild, save and prune as needed."""
        return self.index.optimize(progress)

    def filter_ids(self, filters: Filters | None) -> list[int] | None:
        if filters is None or not filters.active():
            return None
        where, args = filter_sql(filters)
        return [r[0] for r in self._all(f"SELECT id FROM images WHERE {where}", args)]

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        return self.knn_many(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, filters)[0]

    def knn_many(self, vectors: np.ndarray, k: int, filters: Filters | None = None) -> list[list[Hit]]:
        """Nearest neighbours of each vector. From ivf-sq8, ivf-pq and hnsw-sq8 the best ``RERANK x k``
        candidates are re-scored with their exact vectors from the database (exact scores); ivf-pca-sq8,
        ivf-sq8-fast and ivf-pqfs-sq8 are scored from their 8-bit codes in memory (within 0.003 / 0.0021 / 0.009
        of the cosine at 1M, bench/search_scale.py)."""
        return self._knn(vectors, k, filters, False)[0]

    def knn_vectors(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[list[Hit], np.ndarray]:
        """The ``k`` nearest as the index ranks them and the vectors it holds for them, without a database
        read: an uncompressed index's float32 copies (exactly the stored vectors; hits as ``knn``'s), or a
        compressed index's decoded codes with their scores (no exact re-rank; for ivf-sq8, cosine to the
        stored vectors >= 0.999, scores within ~0.006 on real embeddings: bench/example_cost.py)."""
        hits, vecs = self._knn(np.asarray(vector, dtype=np.float32).reshape(1, -1), k, filters, True)
        return hits[0], vecs[0]  # type: ignore[index]

    def _knn(self, vectors: np.ndarray, k: int, filters: Filters | None, with_vectors: bool
             ) -> tuple[list[list[Hit]], list[np.ndarray] | None]:
        allowed = self.filter_ids(filters)
        q = np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
        with self.lock:  # another thread's catch-up may add/remove ids in the faiss index meanwhile
            idx = self.vector_index()
            rerank = idx.rerank_from_store and not with_vectors
            depth = max(RERANK * k, k + 16) if rerank else k
            ids, scores = idx.search_many(q, depth, allowed)
            if not rerank:
                rows = [[Hit(i, s) for i, s in zip(row_i, row_s) if i >= 0]
                        for row_i, row_s in zip(ids.tolist(), scores.tolist())]
                vecs = [idx.reconstruct([h.id for h in row]).reshape(len(row), q.shape[1]) for row in rows] \
                    if with_vectors else None
                return rows, vecs
        exact = self.index.embeddings(sorted({int(i) for i in ids.ravel() if i >= 0}))
        out = []
        for qv, row in zip(q, ids):
            cand = [int(i) for i in row if i >= 0 and int(i) in exact]
            if not cand:
                out.append([])
                continue
            s = np.stack([exact[i] for i in cand]) @ qv
            order = np.argsort(-s, kind="stable")[:k]
            out.append([Hit(cand[j], float(s[j])) for j in order])
        return out, None

    def tag_search(self, weights: dict[int, float], k: int, filters: Filters | None = None) -> list[Hit]:
        if not weights:
            return []
        where, args = filter_sql(filters)
        values = ",".join("(?,?)" for _ in weights)
        wargs: list[object] = []
        for cls, w in weights.items():
            wargs += [int(cls), float(w)]
        sql = (f"WITH q(class, w) AS (VALUES {values}) "
               "SELECT t.image_id, SUM(t.score * q.w) AS s FROM tags t JOIN q ON q.class = t.class "
               f"JOIN images i ON i.id = t.image_id WHERE {where} GROUP BY t.image_id ORDER BY s DESC, t.image_id LIMIT ?")
        return [Hit(r[0], float(r[1])) for r in self._all(sql, [*wargs, *args, k])]

    def text_search(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        match = SQLITE.match_query(query)
        if not match:
            return []
        where, args = filter_sql(filters)
        sql = ("WITH m AS MATERIALIZED (SELECT image_id, bm25(texts_fts) AS s FROM texts_fts WHERE texts_fts MATCH ?) "
               "SELECT m.image_id, MIN(m.s) AS best FROM m JOIN images i ON i.id = m.image_id "
               f"WHERE {where} GROUP BY m.image_id ORDER BY best, m.image_id LIMIT ?")
        try:
            rows = self._all(sql, [match, *args, k])
        except sqlite3.OperationalError:
            return []
        return [Hit(r[0], -float(r[1])) for r in rows]  # bm25() is lower-is-better

    # -- plumbing ----------------------------------------------------------------------------------------
    def _execute(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        """Statements in one write transaction (stores/concept_sql.py)."""
        with self._tx() as c:
            for sql, args in statements:
                c.execute(sql, tuple(args))

    def _people_tx(self, fn):  # type: ignore[no-untyped-def]
        """``fn(execute, many)`` in one transaction (the people role, stores/people.py)."""
        d = self.dialect
        with self._tx() as c:
            try:
                return fn(lambda sql, args: c.execute(d.sql(sql), tuple(args)).fetchall(),
                          lambda sql, rows: c.executemany(d.sql(sql), rows) and None)
            except sqlite3.IntegrityError as err:
                raise LookalikeError(f"people not saved: {err} (another person has that name?)") from None

    def _run(self, fn: Callable[[Query], T], *, primary: bool = False, snapshot: bool = False) -> T:
        with self.lock:  # one connection: every read sees the last committed state
            return fn(self._all)

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
