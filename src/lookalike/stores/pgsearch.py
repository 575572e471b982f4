"""The PostgreSQL store's searches, computed in the database: nearest neighbours (HNSW with iterative scans,
exact below ``EXACT_BELOW`` matching images), tag sums, full-text ranks and face distances.

Mixed into ``PostgresStore`` (stores/postgres.py), whose ``_read`` routes each search to a replica or the
primary. ``EF_SEARCH`` was measured with bench/postgres.py (recall@10 0.94 at 100k x 1280).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from lookalike.errors import LookalikeError, ModelMismatch
from lookalike.stores.base import Filters, Hit
from lookalike.stores.pgconn import SCHEMA, Vec, one_line
from lookalike.stores.sql import POSTGRES, filter_sql

try:
    import psycopg
    from psycopg.pq import TransactionStatus
except ImportError:  # pragma: no cover - the extra is not installed
    psycopg = None  # type: ignore[assignment]

EXACT_BELOW = 20_000  # a filter matching fewer images than this is searched exactly
EF_SEARCH = 200  # hnsw.ef_search for k <= 100 (bench/postgres.py: recall@10 0.94 at 100k x 1280)
T = TypeVar("T")


class PostgresSearch:
    """Searches over ``lookalike.*``; needs ``_read``, ``exact_below``, ``ef_search`` and ``_estimate``."""

    exact_below: int
    ef_search: int
    _estimate: tuple[float, float]

    def _read(self, fn: Callable[["psycopg.Connection[Any]"], T], *, prefer_replica: bool = True) -> T:
        raise NotImplementedError

    # -- searches ----------------------------------------------------------------------------------------
    def knn_many(self, vectors: np.ndarray, k: int, filters: Filters | None = None) -> list[list[Hit]]:
        """One HNSW search per vector (each in its own short read transaction)."""
        return [self.knn(v, k, filters) for v in np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1)]

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]:
        return self._knn(vector, k, filters, False)[0]

    def knn_vectors(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[list[Hit], np.ndarray]:
        """``knn`` and the hits' stored embeddings, from the same rows of the same statement."""
        return self._knn(vector, k, filters, True)  # type: ignore[return-value]

    def _knn(self, vector: np.ndarray, k: int, filters: Filters | None, with_vectors: bool
             ) -> tuple[list[Hit], np.ndarray | None]:
        dim = int(np.asarray(vector).size)
        if k <= 0:
            return [], np.zeros((0, dim), np.float32) if with_vectors else None
        q = Vec(np.asarray(vector, dtype=np.float32).ravel())
        active = filters is not None and filters.active()
        where, args = _where(filters)
        ef = min(1000, max(self.ef_search, 2 * k))

        def run(c: "psycopg.Connection[Any]") -> list[tuple]:
            # one round trip to begin and set the HNSW knobs; they last until COMMIT
            # (a larger hnsw.ef_search set on the database or role, e.g. ALTER DATABASE ... SET, is kept)
            c.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT set_config('hnsw.ef_search', "
                      f"GREATEST(COALESCE(NULLIF(current_setting('hnsw.ef_search', true), ''), '0')::int, {int(ef)})::text, true); "
                      "SET LOCAL hnsw.iterative_scan = relaxed_order")
            try:
                rows = self._knn_in(c, q, k, where, args, active, with_vectors)
            except psycopg.DataError as err:
                c.execute("ROLLBACK")
                raise ModelMismatch(f"the query vector has {q.array.size} dimensions and the index does not "
                                    f"({one_line(err)}): search with the model that built the index") from None
            except BaseException:
                if not c.closed and c.info.transaction_status != TransactionStatus.UNKNOWN:
                    c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return rows

        rows = self._read(run)
        hits = [Hit(int(r[0]), float(r[1])) for r in rows]
        if not with_vectors:
            return hits, None
        vecs = np.stack([np.asarray(r[2], np.float32) for r in rows]) if rows else np.zeros((0, dim), np.float32)
        return hits, vecs

    def _knn_in(self, c: "psycopg.Connection[Any]", q: Vec, k: int, where: str, args: list[object],
                active: bool, with_vectors: bool) -> list[tuple]:
        exact = self._estimated_vectors(c) < self.exact_below  # a small collection: exact is cheap
        if active and not exact:
            n = c.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {SCHEMA}.images i WHERE {where} "
                          f"LIMIT {self.exact_below}) s", args).fetchone()[0]  # type: ignore[index]
            exact = n < self.exact_below
        if not exact:
            rows = self._knn_rows(c, q, k, where, args, with_vectors=with_vectors)
            if len(rows) >= k or not active:
                return rows
        return self._knn_rows(c, q, k, where, args, exact=True, with_vectors=with_vectors)  # small or selective

    @staticmethod
    def _knn_rows(c: "psycopg.Connection[Any]", q: Vec, k: int, where: str, args: list[object], *,
                  exact: bool = False, with_vectors: bool = False) -> list[tuple]:
        """(image id, inner product[, embedding]) rows, best first; with the embeddings in binary (pgvector's
        text form costs more to parse than the search)."""
        emb = ", v.embedding" if with_vectors else ""
        out = ", embedding" if with_vectors else ""
        if exact:  # every matching image's distance, computed in the database; no index involved
            sql = (f"WITH d AS MATERIALIZED (SELECT v.image_id, v.embedding <#> %b AS d FROM {SCHEMA}.vectors v "
                   f"JOIN {SCHEMA}.images i ON i.id = v.image_id WHERE {where}), "
                   "top AS (SELECT image_id, d FROM d ORDER BY d, image_id LIMIT %s) "
                   f"SELECT top.image_id, -top.d{emb} FROM top JOIN {SCHEMA}.vectors v ON v.image_id = top.image_id "
                   "ORDER BY top.d, top.image_id" if with_vectors else
                   f"WITH d AS MATERIALIZED (SELECT v.image_id, v.embedding <#> %b AS d FROM {SCHEMA}.vectors v "
                   f"JOIN {SCHEMA}.images i ON i.id = v.image_id WHERE {where}) "
                   "SELECT image_id, -d FROM d ORDER BY d, image_id LIMIT %s")
            rows = c.execute(sql, [q, *args, k], binary=with_vectors).fetchall()
        else:  # HNSW (iterative scans keep going when a filter drops candidates); re-sorted exactly after
            join = "" if where == "TRUE" else f"JOIN {SCHEMA}.images i ON i.id = v.image_id WHERE {where}"
            sql = (f"WITH d AS MATERIALIZED (SELECT v.image_id, v.embedding <#> %b AS d{emb} FROM {SCHEMA}.vectors v "
                   f"{join} ORDER BY v.embedding <#> %b LIMIT %s) "
                   f"SELECT image_id, -d{out} FROM d ORDER BY d, image_id")
            rows = c.execute(sql, [q, *args, q, k], binary=with_vectors).fetchall()
        return rows

    def _estimated_vectors(self, c: "psycopg.Connection[Any]") -> float:
        """Rows in the vectors table as the planner estimates them (statistics scaled to the current size);
        remembered for a few seconds, as it only chooses between exact and HNSW search."""
        now = time.monotonic()
        if now - self._estimate[1] > 5.0:
            self._estimate = (self._estimate_now(c), now)
        return self._estimate[0]

    @staticmethod
    def _estimate_now(c: "psycopg.Connection[Any]") -> float:
        row = c.execute("SELECT reltuples, relpages, pg_relation_size(oid) / current_setting('block_size')::int "
                        "FROM pg_class WHERE oid = %s::regclass", (f"{SCHEMA}.vectors",)).fetchone()
        tuples, pages, now_pages = row  # type: ignore[misc]
        if tuples >= 0 and pages > 0:
            return float(tuples) / pages * now_pages
        n = c.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM {SCHEMA}.vectors LIMIT {EXACT_BELOW + 1}) s").fetchone()[0]  # type: ignore[index]
        return float(n)

    def tag_search(self, weights: dict[int, float], k: int, filters: Filters | None = None) -> list[Hit]:
        if not weights or k <= 0:
            return []
        where, args = _where(filters)
        sql = (f"WITH q(class, w) AS (SELECT * FROM unnest(%s::int[], %s::float8[])) "
               f"SELECT t.image_id, SUM(t.score::float8 * q.w) AS s FROM {SCHEMA}.tags t JOIN q ON q.class = t.class "
               f"JOIN {SCHEMA}.images i ON i.id = t.image_id WHERE {where} "
               "GROUP BY t.image_id ORDER BY s DESC, t.image_id LIMIT %s")
        params = [[int(c) for c in weights], [float(w) for w in weights.values()], *args, int(k)]
        return [Hit(int(r[0]), float(r[1])) for r in self._read(lambda c: c.execute(sql, params).fetchall())]

    def text_search(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]:
        match = POSTGRES.match_query(query)
        if not match or k <= 0:
            return []
        where, args = _where(filters)
        sql = (f"SELECT x.image_id, MAX(ts_rank(x.tsv, q))::float8 AS s FROM {SCHEMA}.texts x "
               f"JOIN {SCHEMA}.images i ON i.id = x.image_id, websearch_to_tsquery('english', %s) q "
               f"WHERE x.tsv @@ q AND {where} GROUP BY x.image_id ORDER BY s DESC, x.image_id LIMIT %s")
        rows = self._read(lambda c: c.execute(sql, [match, *args, int(k)]).fetchall())
        return [Hit(int(r[0]), float(r[1])) for r in rows]

    def face_search(self, embedding: np.ndarray, k: int, filters: Filters | None = None,
                    max_distance: float = 0.6) -> list[Hit]:
        """Images with a face within ``max_distance`` (L2) of ``embedding``, closest first; the score is
        ``1 - distance`` of the image's closest face. Exact, in the database."""
        if k <= 0:
            return []
        q = Vec(np.asarray(embedding, dtype=np.float32).reshape(-1))
        where, args = _where(filters)
        sql = (f"SELECT f.image_id, MIN(f.embedding <-> %b) AS d FROM {SCHEMA}.faces f "
               f"JOIN {SCHEMA}.images i ON i.id = f.image_id WHERE {where} GROUP BY f.image_id "
               "HAVING MIN(f.embedding <-> %b) <= %s ORDER BY d, f.image_id LIMIT %s")

        def run(c: "psycopg.Connection[Any]") -> list[tuple]:
            try:
                return c.execute(sql, [q, *args, q, float(max_distance), int(k)]).fetchall()
            except psycopg.DataError as err:
                raise LookalikeError(f"face embedding size {q.array.size} does not match the stored faces: "
                                     f"{one_line(err)}") from None

        return [Hit(int(i), 1.0 - float(d)) for i, d in self._read(run)]


def _where(filters: Filters | None) -> tuple[str, list[object]]:
    """The filters as a condition on ``lookalike.images i``."""
    return filter_sql(filters, POSTGRES, "i")
