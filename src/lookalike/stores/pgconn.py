"""psycopg plumbing for the PostgreSQL store: pgvector values over the wire (binary), a small connection pool
per server (a server that fails is skipped for ``DOWN_FOR_S``; an idle connection is pinged after
``PING_AFTER_S`` before use), and explicit transactions on autocommit connections."""

from __future__ import annotations

import re
import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError, RuntimeFailure, mask_secrets

try:
    import psycopg
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format, TransactionStatus
except ImportError:  # pragma: no cover - the extra is not installed
    psycopg = None  # type: ignore[assignment]

SCHEMA = "lookalike"  # every table of the store lives in this schema
DOWN_FOR_S = 30.0  # a replica that failed is skipped this long
PING_AFTER_S = 30.0  # a pooled connection idle longer than this is checked before use


# -- vectors over the wire ----------------------------------------------------------------------------------
class Vec:
    """A numpy vector sent as a pgvector ``vector`` (binary: int16 dim, int16 0, big-endian float32s)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array


def vector_adapters(conn: "psycopg.Connection[Any]", oid: int) -> None:
    class VecDumper(Dumper):
        format = Format.BINARY

        def dump(self, obj: Vec) -> bytes:
            a = np.asarray(obj.array, dtype=">f4").ravel()
            return struct.pack(">HH", a.size, 0) + a.tobytes()

    class VecLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> np.ndarray:
            data = bytes(data)
            dim = struct.unpack_from(">H", data)[0]
            return np.frombuffer(data, dtype=">f4", count=dim, offset=4).astype(np.float32)

    class VecTextLoader(Loader):
        format = Format.TEXT

        def load(self, data: Any) -> np.ndarray:
            return np.array(bytes(data).decode()[1:-1].split(","), dtype=np.float32)

    VecDumper.oid = oid
    conn.adapters.register_dumper(Vec, VecDumper)
    conn.adapters.register_loader(oid, VecLoader)
    conn.adapters.register_loader(oid, VecTextLoader)


# -- connections --------------------------------------------------------------------------------------------
def mask_url(url: str) -> str:
    """The URL as given with its password (``user:PASSWORD@``, ``password=``) replaced by ***, for messages and
    stats; nothing else is rewritten (``postgresql:///db?host=/tmp`` stays as it is)."""
    return mask_secrets(url)


# libpq's words for a URL it cannot use at all (as opposed to a server it cannot reach)
_MALFORMED = re.compile(r'invalid (integer value|port number|URI|connection option|sslmode|value for parameter)|'
                        r'missing "\]"|matching "\]"|unexpected spaces', re.IGNORECASE)


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


class Pool:
    """A few connections to one server, handed to one thread at a time (autocommit; explicit BEGIN)."""

    def __init__(self, url: str, size: int = 16, *, on_connect: Callable[["psycopg.Connection[Any]"], None] | None = None) -> None:
        self.url = url
        self.masked = mask_url(url)
        self.size = size
        self.on_connect = on_connect
        self.idle: list[tuple[psycopg.Connection[Any], float]] = []  # (connection, when last used)
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(size)
        self.down_until = 0.0
        self.vector_oid: int | None = None

    def connect(self) -> "psycopg.Connection[Any]":
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name="lookalike")
        except psycopg.Error as err:
            why = mask_secrets(one_line(err), self.url)
            if _MALFORMED.search(why):  # libpq refused the URL itself (a port that is not a number, ...): usage
                raise LookalikeError(f"bad PostgreSQL URL {self.masked}: {why}") from None
            self.down_until = time.monotonic() + DOWN_FOR_S
            raise Unreachable(f"cannot connect to PostgreSQL at {self.masked}: {why}") from None
        except Exception as err:  # noqa: BLE001 - a malformed URL raises ProgrammingError/ValueError
            raise LookalikeError(f"bad PostgreSQL URL {self.masked}: {mask_secrets(one_line(err), self.url)}") from None
        if self.on_connect:
            self.on_connect(conn)
        self.register_vector(conn)
        return conn

    def register_vector(self, conn: "psycopg.Connection[Any]") -> None:
        if self.vector_oid is None:
            row = conn.execute("SELECT oid FROM pg_type WHERE typname = 'vector'").fetchone()
            if row is None:
                return
            self.vector_oid = int(row[0])
        vector_adapters(conn, self.vector_oid)

    @contextmanager
    def connection(self) -> Iterator["psycopg.Connection[Any]"]:
        if not self.slots.acquire(timeout=120):
            raise LookalikeError(f"all {self.size} connections to {self.masked} stayed busy for 2 minutes")
        conn = None
        try:
            with self.lock:
                conn, since = self.idle.pop() if self.idle else (None, 0.0)
            if conn is not None and time.monotonic() - since > PING_AFTER_S and not _alive(conn):
                conn.close()  # the server restarted or dropped it while it sat idle
            if conn is None or conn.closed:
                conn = self.connect()
            yield conn
        except psycopg.OperationalError as err:
            if str(getattr(err, "sqlstate", "") or "").startswith("40") and conn is not None and not conn.closed:
                # a deadlock or serialisation failure, the connection intact: PostgresStore._retrying runs the
                # transaction again (reported as "lost the connection", it never was, and two indexers died)
                raise Contention(f"PostgreSQL rolled the transaction back for a concurrent one: {one_line(err)}") from None
            if conn is not None and conn.closed:
                self.down_until = time.monotonic() + DOWN_FOR_S
            raise Unreachable(f"lost the connection to PostgreSQL at {self.masked}: "
                              f"{mask_secrets(one_line(err), self.url)}") from None
        finally:
            if conn is not None:
                if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
                    with self.lock:
                        self.idle.append((conn, time.monotonic()))
                else:
                    conn.close()
            self.slots.release()

    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    def close(self) -> None:
        with self.lock:
            for conn, _ in self.idle:
                conn.close()
            self.idle.clear()


def _alive(conn: "psycopg.Connection[Any]") -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


class Unreachable(RuntimeFailure):
    """A server could not be reached (or the connection broke): another may serve the read. A runtime
    failure (exit 1, HTTP 503), not a usage error."""


class Contention(RuntimeFailure):
    """PostgreSQL rolled a transaction back for a concurrent one (deadlock, serialisation failure): worth
    running again (``PostgresStore._retrying`` does); elsewhere a one-line error (exit 1, HTTP 503)."""


@contextmanager
def transaction(conn: "psycopg.Connection[Any]", *, read_only: bool = False) -> Iterator["psycopg.Connection[Any]"]:
    """BEGIN ... COMMIT on an autocommit connection; ROLLBACK on any exception. Reads see one snapshot."""
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if read_only else "BEGIN")
    try:
        yield conn
    except BaseException:
        if not conn.closed and conn.info.transaction_status != TransactionStatus.UNKNOWN:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:  # a Ctrl+C mid-command leaves it busy: dropped, and the first error stands
                conn.close()
        raise
    conn.execute("COMMIT")
