"""The shared store: PostgreSQL + pgvector, for collections and teams beyond one machine.

Same protocol and semantics as the embedded store (stores/sqlite.py), with the work done in the database:

- tables live in the schema ``lookalike`` (migrations in stores/pgschema.py, applied under an advisory lock, so any
  number of processes may open the store at once);
- embeddings in a pgvector ``vector(dim)`` column with an HNSW index (``vector_ip_ops``: inner product on
  L2-normalised vectors = cosine); the column gets its dimension when the model is set;
- class scores as float16 bytes (as in SQLite); tags in a (class, score) b-tree; texts in a generated
  ``tsvector`` column with a GIN index;
- filters are SQL; keyword, tag and image rankings are computed in the database;
- ``write()`` is one transaction that upserts by path (``INSERT ... ON CONFLICT``) and bulk-loads vectors,
  tags and texts with binary COPY; deadlocks between concurrent writers are retried;
- the reads SQLite answers with the same statements come from ``SQLReads`` (stores/sql.py), the searches
  from ``PostgresSearch`` (stores/pgsearch.py), connections and transactions from stores/pgconn.py;
- with read replicas (``read_urls``), searches and record reads go to the replicas (round robin, a replica
  that fails is skipped for a while) and everything else to the primary; each side falls back to the other
  when it cannot be reached.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from lookalike.errors import LookalikeError, ModelMismatch, NotFound
from lookalike.stores.claims import PostgresClaims
from lookalike.stores.base import FaceRecord, ImageRecord, Move, encode_vector, folder_of
from lookalike.stores.pgconn import SCHEMA, Contention, Pool, Unreachable, Vec, mask_url, one_line, transaction
from lookalike.stores.pgschema import LOCK_KEY, MIGRATIONS, migrate
from lookalike.stores.pgsearch import EF_SEARCH, EXACT_BELOW, PostgresSearch
from lookalike.stores.people import PeopleSQL
from lookalike.stores.concept_sql import ConceptSQL
from lookalike.stores.copy_features import PUT as PUT_COPY_FEATURES
from lookalike.stores.copy_features import CopyFeatureSQL
from lookalike.stores.dupe_pairs import DupePairSQL
from lookalike.stores.sql import POSTGRES, Query, SQLReads

__all__ = ["EF_SEARCH", "EXACT_BELOW", "MIGRATIONS", "SCHEMA", "PostgresStore", "mask_url"]

try:
    import psycopg
    from psycopg import errors as pgerr
except ImportError:  # pragma: no cover - the extra is not installed
    psycopg = None  # type: ignore[assignment]

HNSW_MAX_DIM = 2000  # pgvector's limit for an HNSW index on `vector`
PLAIN_MAX_DIM = 1900  # vectors up to this size fit inside an 8 kB heap page
HNSW_M, HNSW_EF_CONSTRUCTION = 16, 64  # pgvector's defaults
T = TypeVar("T")

# -- the store ----------------------------------------------------------------------------------------------
class PostgresStore(PeopleSQL, PostgresClaims, PostgresSearch, ConceptSQL, DupePairSQL, CopyFeatureSQL, SQLReads):
    dialect = POSTGRES

    def __init__(self, url: str, read_urls: Sequence[str] = (), *, pool_size: int = 16,
                 exact_below: int = EXACT_BELOW, ef_search: int = EF_SEARCH) -> None:
        if psycopg is None:
            raise LookalikeError("PostgreSQL support is not installed: pip install 'lookalike[postgres]'")
        for given, name in ((url, "--db"), *((u, "--read-db") for u in read_urls if u)):
            if not re.match(r"^postgres(ql)?://", given):
                raise LookalikeError(f"{name} must be a postgresql:// URL, got {mask_url(given)!r}")
        self.url = url
        self.exact_below = exact_below  # collections or filters smaller than this are searched exactly
        self.ef_search = ef_search  # HNSW candidate list (at least 2k); more = better recall, slower
        self.hnsw_m, self.hnsw_ef_construction = HNSW_M, HNSW_EF_CONSTRUCTION  # used when the index is built
        self._estimate: tuple[float, float] = (0.0, -1e9)  # (vector rows, when estimated)
        self.primary = Pool(url, pool_size)
        self.replicas = [Pool(u, pool_size) for u in read_urls if u]
        self._rr = itertools.count()
        self._migrated = False
        self._migrate_lock = threading.Lock()
        try:
            self._ensure_schema()
        except Unreachable:
            if not self.replicas:
                raise  # nothing else could serve; with replicas, reads go on while the primary is down

    # -- schema -------------------------------------------------------------------------------------------
    def _ensure_schema(self) -> None:
        with self._migrate_lock:
            if self._migrated:
                return
            with self.primary.connection() as conn:
                migrate(conn)
                self.primary.register_vector(conn)
            self._migrated = True

    @property
    def schema_version(self) -> int:
        return int(self._read(lambda c: c.execute(f"SELECT MAX(version) FROM {SCHEMA}.migrations").fetchone()[0],  # type: ignore[index]
                              prefer_replica=False))

    # -- routing ------------------------------------------------------------------------------------------
    @contextmanager
    def _write_conn(self) -> Iterator["psycopg.Connection[Any]"]:
        self._ensure_schema()
        with self.primary.connection() as conn:
            yield conn

    def _read(self, fn: Callable[["psycopg.Connection[Any]"], T], *, prefer_replica: bool = True) -> T:
        """Run a read on a replica (round robin) or the primary, moving on to the next server when one
        cannot be reached. Searches prefer replicas; reads that feed writes prefer the primary."""
        replicas = [p for p in self.replicas if p.available()] or list(self.replicas)
        if replicas:
            start = next(self._rr) % len(replicas)
            replicas = replicas[start:] + replicas[:start]
        order = [*replicas, self.primary] if prefer_replica else [self.primary, *replicas]
        order.sort(key=lambda p: not p.available())  # servers that just failed go last (stable sort)
        last: Unreachable | None = None
        for pool in order:
            if pool is self.primary and not self._migrated:
                try:
                    self._ensure_schema()
                except Unreachable as err:
                    last = err
                    continue
            try:
                with pool.connection() as conn:
                    if pool.vector_oid is None:
                        pool.register_vector(conn)
                    return fn(conn)
            except Unreachable as err:
                last = err
        assert last is not None
        raise last

    def _run(self, fn: Callable[[Query], T], *, primary: bool = False, snapshot: bool = False) -> T:
        """The shared reads (stores/sql.py) on one connection; ``snapshot``: in one read-only transaction."""
        def run(c: "psycopg.Connection[Any]") -> T:
            def query(sql: str, args: Sequence[object]) -> list[tuple]:
                return c.execute(sql, args, binary=True).fetchall()  # type: ignore[arg-type]

            if not snapshot:
                return fn(query)
            with transaction(c, read_only=True):
                return fn(query)

        return self._read(run, prefer_replica=not primary)

    def _execute(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        """Statements in one write transaction (stores/concept_sql.py)."""
        def run(c: "psycopg.Connection[Any]") -> None:
            for sql, args in statements:
                c.execute(sql, list(args))

        self._retrying(run)

    def _retrying(self, fn: Callable[["psycopg.Connection[Any]"], T], attempts: int = 6) -> T:
        """A write transaction, retried when concurrent writers deadlock or a serialisation check fails."""
        for attempt in range(attempts):
            try:
                with self._write_conn() as conn:
                    with transaction(conn):
                        return fn(conn)
            except (Contention, pgerr.UniqueViolation) as err:
                # a deadlock or serialisation failure (the pool raises them as Contention), or a path taken by a
                # concurrent writer between our DELETE and UPDATE (moves), is worth a retry; other unique
                # violations are the caller's data
                racing = not isinstance(err, pgerr.UniqueViolation) or err.diag.constraint_name == "images_path_key"
                if not racing:
                    raise
                if attempt == attempts - 1:
                    raise Contention(f"PostgreSQL: a write kept colliding with concurrent writers ({attempts} "
                                     f"attempts): {one_line(err)}") from None
                time.sleep(0.05 * (2**attempt) * (1 + np.random.random()))
            except psycopg.DataError as err:
                raise LookalikeError(f"PostgreSQL refused the write: {one_line(err)}") from None
        raise AssertionError("unreachable")

    def _people_tx(self, fn):  # type: ignore[no-untyped-def]
        """``fn(execute, many)`` in one write transaction (the people role, stores/people.py)."""
        d = self.dialect

        def run(c: "psycopg.Connection[Any]"):  # type: ignore[no-untyped-def]
            def execute(sql: str, args: Sequence[object]) -> list[tuple]:
                cur = c.execute(d.sql(sql), list(args))
                return cur.fetchall() if cur.description else []

            def many(sql: str, rows: Sequence[Sequence[object]]) -> None:
                if rows:
                    c.cursor().executemany(d.sql(sql), [list(r) for r in rows])

            return fn(execute, many)

        try:
            return self._retrying(run)
        except pgerr.UniqueViolation as err:
            raise LookalikeError(f"people not saved: {one_line(err)} (another person has that name?)") from None

    # -- model identity ----------------------------------------------------------------------------------
    def set_search_transform(self, model_version: str, fitted_on: int, data: bytes | None) -> None:
        """Store (or with ``data`` None, drop) the library's search transform, replacing the previous one."""
        def run(c: "psycopg.Connection[Any]") -> None:
            if data is None:
                c.execute(f"DELETE FROM {SCHEMA}.search_transform")
                return
            # an upsert: two indexers fitting at once both found no row, and the second INSERT failed on the key
            # (tests/stores/test_postgres.py, two indexer processes: "duplicate key ... search_transform_pkey")
            c.execute(f"INSERT INTO {SCHEMA}.search_transform (id, model_version, fitted_on, data, fitted_at) "
                      "VALUES (1, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET model_version = EXCLUDED.model_version, "
                      "fitted_on = EXCLUDED.fitted_on, data = EXCLUDED.data, fitted_at = EXCLUDED.fitted_at",
                      (model_version, int(fitted_on), bytes(data), time.time()))

        self._retrying(run)

    def set_model_info(self, name: str, version: str, dim: int) -> None:
        def run(c: "psycopg.Connection[Any]") -> None:
            c.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            c.cursor().executemany(f"INSERT INTO {SCHEMA}.meta (key, value) VALUES (%s, %s) "
                          "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                          [("model", name), ("model_version", version), ("dim", str(dim))])
            self._ensure_vector_column(c, int(dim))

        self._retrying(run)

    def _ensure_vector_column(self, c: "psycopg.Connection[Any]", dim: int) -> None:
        current = c.execute("SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
                            (f"{SCHEMA}.vectors",)).fetchone()[0]  # type: ignore[index]
        if current != dim:
            if c.execute(f"SELECT 1 FROM {SCHEMA}.vectors LIMIT 1").fetchone():
                raise ModelMismatch(f"the database holds {current}-dimensional vectors; the model makes {dim}: "
                                    "re-index (the indexer clears the old vectors first)")
            c.execute(f"DROP INDEX IF EXISTS {SCHEMA}.vectors_hnsw")
            c.execute(f"ALTER TABLE {SCHEMA}.vectors ALTER COLUMN embedding TYPE vector({dim})")
            # kept in the row rather than TOASTed out of it: exact scans ran ~4x faster, HNSW builds ~1.7x
            storage = "PLAIN" if dim <= PLAIN_MAX_DIM else "EXTERNAL"
            c.execute(f"ALTER TABLE {SCHEMA}.vectors ALTER COLUMN embedding SET STORAGE {storage}")
        if dim <= HNSW_MAX_DIM:
            c.execute(f"CREATE INDEX IF NOT EXISTS vectors_hnsw ON {SCHEMA}.vectors USING hnsw (embedding vector_ip_ops) "
                      f"WITH (m = {int(self.hnsw_m)}, ef_construction = {int(self.hnsw_ef_construction)})")

    def clear_vectors(self) -> None:
        """Forget every image's vectors and tags (a different model will re-embed all of them)."""
        def run(c: "psycopg.Connection[Any]") -> None:
            c.execute(f"DELETE FROM {SCHEMA}.vectors")
            c.execute(f"DELETE FROM {SCHEMA}.search_transform")
            c.execute(f"DELETE FROM {SCHEMA}.tags")
            c.execute(f"DELETE FROM {SCHEMA}.texts WHERE kind = 'caption'")
            c.execute(f"UPDATE {SCHEMA}.images SET mtime = -1, sha = ''")  # every file counts as changed
            c.execute(f"DELETE FROM {SCHEMA}.meta WHERE key IN ('model', 'model_version', 'dim')")

        self._retrying(run)

    # -- writes ------------------------------------------------------------------------------------------
    def write(self, upserts: Sequence[ImageRecord] = (), moves: Sequence[Move] = (),
              deletes: Sequence[int] = (), touches: Sequence[Move] = ()) -> None:
        if not (upserts or moves or deletes or touches):
            return
        # last record per path wins; path order = lock order, so concurrent writers cannot deadlock on images
        records = sorted({r.path: r for r in upserts}.values(), key=lambda r: r.path)
        self._retrying(lambda c: self._write(c, records, moves, deletes, touches))

    def _write(self, c: "psycopg.Connection[Any]", records: list[ImageRecord], moves: Sequence[Move],
               deletes: Sequence[int], touches: Sequence[Move]) -> None:
        now = time.time()
        for m in moves:
            c.execute(f"DELETE FROM {SCHEMA}.images WHERE path = %s AND id <> %s", (m.path, m.id))
            c.execute(f"UPDATE {SCHEMA}.images SET path = %s, folder = %s, size = %s, mtime = %s, dev = %s, ino = %s "
                      "WHERE id = %s", (m.path, folder_of(m.path), m.size, m.mtime, m.dev, m.ino, m.id))
        if touches:
            c.cursor().executemany(f"UPDATE {SCHEMA}.images SET size = %s, mtime = %s, dev = %s, ino = %s WHERE id = %s",
                          [(t.size, t.mtime, t.dev, t.ino, t.id) for t in touches])
        if deletes:
            c.execute(f"DELETE FROM {SCHEMA}.images WHERE id = ANY(%s)", ([int(i) for i in deletes],))
        if not records:
            return
        cols = list(zip(*[(r.path, r.folder, int(r.size), float(r.mtime), r.sha, int(r.width), int(r.height),
                           r.taken_at, r.camera, r.phash, r.dev, r.ino) for r in records]))
        rows = c.execute(
            f"INSERT INTO {SCHEMA}.images (path, folder, size, mtime, sha, width, height, taken_at, camera, phash, "
            "dev, ino, indexed_at) SELECT u.*, %s FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::float8[], "
            "%s::text[], %s::int[], %s::int[], %s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[]) AS u "
            "ON CONFLICT (path) DO UPDATE SET folder = EXCLUDED.folder, size = EXCLUDED.size, mtime = EXCLUDED.mtime, "
            "sha = EXCLUDED.sha, width = EXCLUDED.width, height = EXCLUDED.height, taken_at = EXCLUDED.taken_at, "
            "camera = EXCLUDED.camera, phash = EXCLUDED.phash, dev = EXCLUDED.dev, ino = EXCLUDED.ino, "
            "indexed_at = EXCLUDED.indexed_at RETURNING id, path",
            (now, *[list(col) for col in cols])).fetchall()
        ids = {path: int(i) for i, path in rows}
        id_list = list(ids.values())
        for table in ("vectors", "tags", "faces", "extras", "copy_features"):
            c.execute(f"DELETE FROM {SCHEMA}.{table} WHERE image_id = ANY(%s)", (id_list,))
        # a user's description survives a re-index of the file (unless the record brings its own); derived
        # texts are redone
        described = [ids[r.path] for r in records if "description" in r.texts]
        c.execute(f"DELETE FROM {SCHEMA}.texts WHERE image_id = ANY(%s) AND (kind <> 'description' OR image_id = ANY(%s))",
                  (id_list, described))
        vector_oid = self.primary.vector_oid
        assert vector_oid is not None
        with c.cursor().copy(f"COPY {SCHEMA}.vectors (image_id, embedding, class_scores) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", vector_oid, "bytea"])
            for r in records:
                cls = None if r.class_scores is None else encode_vector(r.class_scores, "<f2")
                cp.write_row((ids[r.path], Vec(r.embedding), cls))
        tag_rows = [(ids[r.path], int(k), float(s)) for r in records for k, s in r.tags]
        if tag_rows:
            with c.cursor().copy(f"COPY {SCHEMA}.tags (image_id, class, score) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "int4", "float4"])
                for row in tag_rows:
                    cp.write_row(row)
        text_rows = [(ids[r.path], k, v) for r in records for k, v in r.texts.items() if v]
        if text_rows:
            with c.cursor().copy(f"COPY {SCHEMA}.texts (image_id, kind, body) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "text", "text"])
                for row in text_rows:
                    cp.write_row(row)
        self._copy_faces(c, [(ids[r.path], f) for r in records for f in r.faces])
        feature_rows = [(ids[r.path], r.copy_features) for r in records if r.copy_features is not None]
        if feature_rows:
            with c.cursor().copy(f"COPY {SCHEMA}.copy_features (image_id, data) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "bytea"])
                for row in feature_rows:
                    cp.write_row(row)
        extra_rows = sorted({(ids[r.path], k) for r in records for k in r.extras})
        if extra_rows:
            with c.cursor().copy(f"COPY {SCHEMA}.extras (image_id, kind) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int8", "text"])
                for row in extra_rows:
                    cp.write_row(row)

    def _copy_faces(self, c: "psycopg.Connection[Any]", faces: Sequence[tuple[int, FaceRecord]]) -> None:
        if not faces:
            return
        with c.cursor().copy(f"COPY {SCHEMA}.faces (image_id, x, y, w, h, embedding) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "int4", "int4", "int4", "int4", self.primary.vector_oid])
            for image_id, f in faces:
                cp.write_row((image_id, *map(int, f.box), Vec(f.embedding)))

    def set_texts(self, image_id: int, texts: dict[str, str]) -> None:
        def run(c: "psycopg.Connection[Any]") -> None:
            if not self._lock_image(c, image_id):
                raise NotFound(f"no indexed image with id {image_id}")
            self._write_texts(c, image_id, texts)

        self._retrying(run)

    @staticmethod
    def _lock_image(c: "psycopg.Connection[Any]", image_id: int) -> bool:
        """Whether the image exists; it cannot be deleted by another writer until this transaction ends."""
        return c.execute(f"SELECT 1 FROM {SCHEMA}.images WHERE id = %s FOR KEY SHARE", (int(image_id),)).fetchone() is not None

    @staticmethod
    def _write_texts(c: "psycopg.Connection[Any]", image_id: int, texts: dict[str, str]) -> None:
        for kind, body in texts.items():
            if body:
                c.execute(f"INSERT INTO {SCHEMA}.texts (image_id, kind, body) VALUES (%s, %s, %s) "
                          "ON CONFLICT (image_id, kind) DO UPDATE SET body = EXCLUDED.body", (int(image_id), kind, body))
            else:
                c.execute(f"DELETE FROM {SCHEMA}.texts WHERE image_id = %s AND kind = %s", (int(image_id), kind))

    def write_extras(self, image_id: int, kinds: Sequence[str], texts: dict[str, str] | None = None,
                     faces: Sequence[FaceRecord] | None = None, copy_features: bytes | None = None) -> None:
        """Results of optional analyses for an indexed image (one transaction); ``kinds`` are marked done."""
        def run(c: "psycopg.Connection[Any]") -> None:
            if not self._lock_image(c, image_id):
                return  # removed meanwhile
            self._write_texts(c, image_id, texts or {})
            if copy_features is not None:
                c.execute(self.dialect.sql(PUT_COPY_FEATURES), (int(image_id), copy_features))
            if "faces" in kinds:
                c.execute(f"DELETE FROM {SCHEMA}.faces WHERE image_id = %s", (int(image_id),))
            self._copy_faces(c, [(int(image_id), f) for f in faces or []])
            if kinds:
                c.execute(f"INSERT INTO {SCHEMA}.extras (image_id, kind) SELECT %s, unnest(%s::text[]) "
                          "ON CONFLICT DO NOTHING", (int(image_id), list(dict.fromkeys(kinds))))

        self._retrying(run)

    @contextmanager
    def deferred_index(self, maintenance_work_mem: str = "1GB") -> Iterator[None]:
        """Bulk loading: drop the HNSW index, load, then build it once (much faster than row by row; the
        graph is built in memory when it fits in ``maintenance_work_mem``)."""
        with self._write_conn() as c:
            c.execute(f"DROP INDEX IF EXISTS {SCHEMA}.vectors_hnsw")
        try:
            yield
        finally:
            info = self.model_info()
            if info and info.get("dim"):
                with self._write_conn() as c:
                    c.execute("SELECT set_config('maintenance_work_mem', %s, false)", (maintenance_work_mem,))
                    c.execute(f"SET max_parallel_maintenance_workers = {max(1, min(8, (os.cpu_count() or 2) - 1))}")
                    self._ensure_vector_column(c, int(info["dim"]))

    def stats(self) -> dict[str, object]:
        def run(c: "psycopg.Connection[Any]") -> dict[str, object]:
            with transaction(c, read_only=True):
                images, folders = c.execute(f"SELECT COUNT(*), COUNT(DISTINCT folder) FROM {SCHEMA}.images").fetchone()  # type: ignore[misc]
                vectors = c.execute(f"SELECT COUNT(*) FROM {SCHEMA}.vectors").fetchone()[0]  # type: ignore[index]
                size = c.execute("SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                                 "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                                 (SCHEMA,)).fetchone()[0]  # type: ignore[index]
                hnsw = c.execute("SELECT 1 FROM pg_indexes WHERE schemaname = %s AND indexname = 'vectors_hnsw'",
                                 (SCHEMA,)).fetchone() is not None
                server = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
                pgvector = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]  # type: ignore[index]
            return {"images": int(images), "vectors": int(vectors), "folders": int(folders), "bytes": int(size),
                    "vector_index": "hnsw" if hnsw else "exact", "server_version": server, "pgvector": pgvector}

        out: dict[str, object] = {"store": "postgresql", "location": mask_url(self.url)}
        out.update(self._read(run, prefer_replica=False))
        out["schema_version"] = self.schema_version
        out["model"] = self.model_info()
        out["replicas"] = [self._replica_state(p) for p in self.replicas]
        return out

    def _replica_state(self, pool: Pool) -> dict[str, object]:
        try:
            with pool.connection() as c:
                lag = c.execute("SELECT pg_is_in_recovery(), EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())").fetchone()
            return {"url": pool.masked, "ok": True, "in_recovery": bool(lag[0]),  # type: ignore[index]
                    "replay_age_s": None if lag[1] is None else round(float(lag[1]), 3)}  # type: ignore[index]
        except LookalikeError as err:
            return {"url": pool.masked, "ok": False, "error": str(err)}

    def optimize(self, progress: bool = False) -> dict[str, object]:
        """Refresh the planner's statistics after a run of writes (the HNSW index is kept by PostgreSQL)."""
        with self._write_conn() as c:
            c.execute(f"ANALYZE {SCHEMA}.images")
            c.execute(f"ANALYZE {SCHEMA}.vectors")
        return {"kind": "hnsw (pgvector)"}

    def close(self) -> None:
        for pool in (self.primary, *self.replicas):
            pool.close()
