"""What the two SQL stores share: filters, word queries, statement splitting and the reads whose SQL differs
only in spelling, behind a small ``Dialect``.

A store that mixes in ``SQLReads`` gives it two things: ``dialect`` (placeholders, table prefix, how a list of
ids is bound, how a stored vector comes back) and ``_run(fn, primary=, snapshot=)``, which calls ``fn`` with
a ``query(sql, args) -> rows`` function on one connection (``primary``: reads that feed writes;
``snapshot``: the statements see one consistent state). Everything else here is plain SQL in ``?`` style
with ``{t}`` before table names, turned into the dialect's own by ``Dialect.sql``; ``{in}`` stands for "a
column among these values" (SQLite: chunks of 500 ``IN (?, ...)``; PostgreSQL: one ``= ANY(%s)``) and
``{under}`` for "the path is at or below one of these folders" (a range on the path, one statement a root).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from lookalike.stores.base import (
    FTS_STOPWORDS,
    FaceRecord,
    FileState,
    Filters,
    ImageInfo,
    batched,
    decode_vector,
)

T = TypeVar("T")
Query = Callable[[str, Sequence[object]], list[tuple]]
IMAGE_COLUMNS = "id, path, folder, size, mtime, sha, width, height, taken_at, camera, phash, dev, ino"
_WORD = re.compile(r"\w+", re.UNICODE)


class Dialect:
    """How one database spells what the shared SQL needs (SQLite's spelling here; PostgreSQL's below)."""

    param = "?"
    true = "1"
    prefix = ""  # before every table name
    least = "MIN"  # the smaller of two values

    def sql(self, text: str) -> str:
        """Shared SQL (``?`` placeholders, ``{t}`` before table names) in this dialect."""
        return text.replace("{t}", self.prefix).replace("?", self.param)

    def taken(self, p: str) -> str:
        """The date an image was taken as ISO text (file mtime, UTC, when there is no EXIF date). The mtime is
        floored to the second first, as PostgreSQL's to_char and Python's datetime do: SQLite's strftime rounds
        to the millisecond, so an mtime of ...25.9996 was :26 here and :25 there (a photo a day early or late
        in a date filter at midnight, two stores browsing in different orders). SQLite has no floor() without
        its optional math functions: CAST truncates toward zero, the comparison steps negative ones down.
        SQLite's browse index (migration 10) is this expression word for word."""
        second = f"(CAST({p}mtime AS INTEGER) - ({p}mtime < CAST({p}mtime AS INTEGER)))"
        return f"COALESCE({p}taken_at, strftime('%Y-%m-%dT%H:%M:%S', {second}, 'unixepoch'))"

    def contains(self, column: str, text: str) -> tuple[str, object]:
        """Case-insensitive substring test of ``column`` and its argument (instr, not LIKE: a ``%`` or ``_`` in
        the text is itself, as in PostgreSQL's strpos and Filters.matches)."""
        return f"instr(LOWER(COALESCE({column}, '')), ?) > 0", text.lower()

    def in_list(self, column: str, values: Sequence[object]) -> Iterator[tuple[str, list[object]]]:
        """``column`` among ``values``: (condition, arguments) per statement to run (SQLite: chunks of 500)."""
        for chunk in batched(list(values), 500):
            yield f"{column} IN ({','.join('?' * len(chunk))})", list(chunk)

    def vector(self, value: Any) -> np.ndarray:
        """A stored embedding as float32 (SQLite: little-endian float32 bytes)."""
        return decode_vector(value)  # type: ignore[return-value]

    def matrix(self, values: Sequence[Any]) -> np.ndarray:
        return np.frombuffer(b"".join(values), dtype="<f4").reshape(len(values), -1).astype(np.float32)

    def match_query(self, text: str) -> str:
        """A user's words as a full-text query (SQLite FTS5: OR of quoted terms; no syntax injection)."""
        return " OR ".join(f'"{w}"' for w in query_words(text))


class PostgresDialect(Dialect):
    param = "%s"
    true = "TRUE"
    prefix = "lookalike."
    least = "LEAST"

    def taken(self, p: str) -> str:
        return (f"COALESCE({p}taken_at, to_char(to_timestamp({p}mtime) AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS')) COLLATE \"C\"")

    def contains(self, column: str, text: str) -> tuple[str, object]:
        return f"strpos(lower(COALESCE({column}, '')), %s) > 0", text.lower()

    def in_list(self, column: str, values: Sequence[object]) -> Iterator[tuple[str, list[object]]]:
        if values:
            yield f"{column} = ANY(%s)", [list(values)]

    def vector(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=np.float32)  # pgvector's binary loader (stores/pgconn.py)

    def matrix(self, values: Sequence[Any]) -> np.ndarray:
        return np.stack(values).astype(np.float32)

    def match_query(self, text: str) -> str:
        """websearch_to_tsquery input: the words joined by ``or`` (the word "or" itself is dropped)."""
        return " or ".join(w for w in query_words(text) if w != "or")


SQLITE, POSTGRES = Dialect(), PostgresDialect()


def query_words(text: str) -> list[str]:
    """A user's words for a full-text query, lower-cased, without stopwords or repeats."""
    return list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w not in FTS_STOPWORDS))


def split_sql(script: str) -> list[str]:
    """A migration script as its statements (no statement of ours contains a semicolon inside)."""
    return [s.strip() for s in script.split(";") if s.strip()]


def prefix_range(root: str) -> tuple[str, str]:
    """[lo, hi) such that every path strictly under ``root`` falls in it (byte order, COLLATE "C")."""
    base = root.rstrip(os.sep)
    return base + os.sep, base + chr(ord(os.sep) + 1)


def under_sql(d: Dialect, column: str, root: str) -> tuple[str, list[object]]:
    """``column`` is ``root`` or a path below it (an index range scan, not LIKE)."""
    root = os.path.normpath(root)
    lo, hi = prefix_range(root)
    p = d.param
    return f"({column} = {p} OR ({column} >= {p} AND {column} < {p}))", [root, lo, hi]


def filter_sql(filters: Filters | None, d: Dialect = SQLITE, alias: str = "") -> tuple[str, list[object]]:
    """SQL condition over the images table (columns prefixed by ``alias.``) and its arguments; the dialect's
    ``true`` when nothing is restricted. Same meaning as ``Filters.matches``."""
    if filters is None:
        return d.true, []
    p = f"{alias}." if alias else ""
    where: list[str] = []
    args: list[object] = []
    if filters.folder:
        cond, folder_args = under_sql(d, f"{p}folder", os.path.abspath(os.path.expanduser(filters.folder)))
        where.append(cond)
        args += folder_args
    if filters.after:
        where.append(f"{d.taken(p)} >= {d.param}")
        args.append(filters.after)
    if filters.before:
        where.append(f"{d.taken(p)} < {d.param}")
        args.append(filters.before)
    if filters.camera:
        cond, arg = d.contains(f"{p}camera", filters.camera)
        where.append(cond)
        args.append(arg)
    if filters.min_size:
        where.append(f"{d.least}({p}width, {p}height) >= {d.param}")
        args.append(int(filters.min_size))
    return (" AND ".join(where) or d.true), args


class SQLReads:
    """The reads both SQL stores answer with the same statements (see the module docstring)."""

    dialect: Dialect

    def _run(self, fn: Callable[[Query], T], *, primary: bool = False, snapshot: bool = False) -> T:
        raise NotImplementedError

    def model_info(self) -> dict[str, str] | None:
        rows = dict(self._run(lambda q: q(self.dialect.sql(
            "SELECT key, value FROM {t}meta WHERE key IN ('model', 'model_version', 'dim')"), ()), primary=True))
        if "model" not in rows:
            return None
        return {"name": rows["model"], "version": rows.get("model_version", ""), "dim": rows.get("dim", "")}

    def search_transform(self) -> tuple[str, int, bytes] | None:
        """(model version, images it was fitted on, data) of the library's search transform, or None."""
        rows = self._run(lambda q: q(self.dialect.sql(
            "SELECT model_version, fitted_on, data FROM {t}search_transform WHERE id = 1"), ()))
        return (str(rows[0][0]), int(rows[0][1]), bytes(rows[0][2])) if rows else None

    def count(self) -> int:
        return int(self._run(lambda q: q(self.dialect.sql("SELECT COUNT(*) FROM {t}images"), ()), primary=True)[0][0])

    def file_states(self, under: Sequence[str] | None = None) -> dict[str, FileState]:
        sql = self.dialect.sql("SELECT id, path, size, mtime, sha, dev, ino FROM {t}images WHERE {under}")
        return {r[1]: FileState(*r) for r in self._run(lambda q: self._under(q, sql, (), under), primary=True)}

    def _under(self, q: Query, sql: str, args: Sequence[object], under: Sequence[str] | None) -> list[tuple]:
        """``sql`` with ``{under}`` as "path at or below one of ``under``" (each root its own statement)."""
        if under is None:
            return q(sql.replace("{under}", self.dialect.true), args)
        rows: list[tuple] = []
        for root in under:
            cond, root_args = under_sql(self.dialect, "path", root)
            rows += q(sql.replace("{under}", cond), [*args, *root_args])
        return rows

    def _in(self, q: Query, sql: str, column: str, values: Sequence[object]) -> list[tuple]:
        """Shared ``sql`` with ``{in}`` as "``column`` among ``values``" (as many statements as the dialect needs)."""
        rows: list[tuple] = []
        for cond, args in self.dialect.in_list(column, values):
            rows += q(self.dialect.sql(sql.replace("{in}", cond)), args)
        return rows

    def by_sha(self, shas: Sequence[str]) -> dict[str, list[FileState]]:
        sql = "SELECT id, path, size, mtime, sha FROM {t}images WHERE {in} ORDER BY id"
        out: dict[str, list[FileState]] = {}
        for r in self._run(lambda q: self._in(q, sql, "sha", shas), primary=True):
            out.setdefault(r[4], []).append(FileState(*r))
        return out

    def missing_extras(self, kind: str, under: Sequence[str] | None = None) -> list[tuple[int, str]]:
        """(id, path) of indexed images (below ``under``) on which the analysis ``kind`` has not run."""
        sql = self.dialect.sql("SELECT id, path FROM {t}images i WHERE NOT EXISTS "
                               "(SELECT 1 FROM {t}extras e WHERE e.image_id = i.id AND e.kind = ?) AND {under} ORDER BY id")
        return [(int(r[0]), r[1]) for r in self._run(lambda q: self._under(q, sql, (kind,), under), primary=True)]

    def get(self, ids: Sequence[int]) -> list[ImageInfo]:
        """Images with their tags (best first) and texts, in the order asked; unknown ids skipped."""
        ids = [int(i) for i in ids]

        def run(q: Query) -> dict[int, ImageInfo]:
            found = {r[0]: ImageInfo(*r) for r in self._in(q, f"SELECT {IMAGE_COLUMNS} FROM {{t}}images WHERE {{in}}",
                                                           "id", ids)}
            for image_id, cls, score in self._in(q, "SELECT image_id, class, score FROM {t}tags WHERE {in} "
                                                 "ORDER BY image_id, score DESC, class", "image_id", ids):
                if image_id in found:
                    found[image_id].tags.append((cls, float(score)))
            for image_id, kind, body in self._in(q, "SELECT image_id, kind, body FROM {t}texts WHERE {in} "
                                                 "ORDER BY image_id, kind", "image_id", ids):
                if image_id in found:
                    found[image_id].texts[kind] = body
            return found

        found = self._run(run, snapshot=True) if ids else {}
        return [found[i] for i in ids if i in found]

    def get_by_path(self, path: str) -> ImageInfo | None:
        rows = self._run(lambda q: q(self.dialect.sql("SELECT id FROM {t}images WHERE path = ?"),
                                     (os.path.normpath(path),)))
        found = self.get([rows[0][0]]) if rows else []
        return found[0] if found else None

    def _vector_rows(self, ids: Sequence[int], columns: str, primary: bool = False) -> dict[int, tuple]:
        sql = f"SELECT image_id, {columns} FROM {{t}}vectors WHERE {{in}}"
        rows = self._run(lambda q: self._in(q, sql, "image_id", ids), primary=primary) if ids else []
        return {int(r[0]): r[1:] for r in rows}

    def vector_map(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """id -> embedding, for the ids that have vectors (an id without them, e.g. one deleted since a search
        answered, is simply absent: nothing can land on the wrong id)."""
        rows = self._vector_rows([int(i) for i in ids], "embedding")
        return {i: self.dialect.vector(r[0]).astype(np.float32, copy=False) for i, r in rows.items()}

    def vectors(self, ids: Sequence[int], *, primary: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings, class scores or None when any is missing) of the ids that have vectors, in order."""
        ids = [int(i) for i in ids]
        d = self.dialect
        by_id = self._vector_rows(ids, "embedding, class_scores", primary)
        present = [i for i in ids if i in by_id]
        if not present:
            return np.zeros((0, 0), np.float32), None
        emb = np.stack([d.vector(by_id[i][0]) for i in present]).astype(np.float32)
        cls = None
        if all(by_id[i][1] is not None for i in present):
            cls = np.stack([decode_vector(bytes(by_id[i][1]), "<f2") for i in present])  # type: ignore[misc]
        return emb, cls

    def copy_vectors(self, src_id: int) -> tuple[np.ndarray, np.ndarray | None]:
        """One image's vectors, read from the primary (they are about to be written for a copy of it)."""
        emb, cls = self.vectors([src_id], primary=True)
        if not len(emb):
            raise KeyError(src_id)
        return emb[0], None if cls is None else cls[0]

    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(ids, embeddings) in id order, ``batch`` at a time (keyset paging: no OFFSET)."""
        d = self.dialect
        sql = d.sql("SELECT image_id, embedding FROM {t}vectors WHERE image_id > ? ORDER BY image_id LIMIT ?")
        last = -1
        while True:
            rows = self._run(lambda q: q(sql, (last, batch)))
            if not rows:
                return
            last = int(rows[-1][0])
            yield np.array([r[0] for r in rows], dtype=np.int64), d.matrix([r[1] for r in rows])

    def browse(self, filters: Filters | None = None, offset: int = 0, limit: int = 50) -> tuple[list[int], int]:
        """Ids of the images that pass ``filters``, newest first by date taken (file time without EXIF), then
        newest id; one page of them, and how many pass in all (the web page's library view). SQLite reads its
        expression index (migration 5); PostgreSQL sorts (its to_char is not immutable, so not indexable)."""
        d = self.dialect
        where, args = filter_sql(filters, d)
        page = d.sql(f"SELECT id FROM {{t}}images WHERE {where} ORDER BY {d.taken('')} DESC, id DESC LIMIT ? OFFSET ?")
        total = d.sql(f"SELECT COUNT(*) FROM {{t}}images WHERE {where}")

        def run(q: Query) -> tuple[list[int], int]:
            return [int(r[0]) for r in q(page, [*args, int(limit), int(offset)])], int(q(total, args)[0][0])

        return self._run(run, snapshot=True)

    def faces(self, ids: Sequence[int]) -> dict[int, list[FaceRecord]]:
        sql = "SELECT image_id, x, y, w, h, embedding FROM {t}faces WHERE {in} ORDER BY id"
        ids = [int(i) for i in ids]
        out: dict[int, list[FaceRecord]] = {}
        for image_id, x, y, w, h, e in (self._run(lambda q: self._in(q, sql, "image_id", ids)) if ids else []):
            out.setdefault(int(image_id), []).append(
                FaceRecord((int(x), int(y), int(w), int(h)), self.dialect.vector(e)))
        return out
