"""Work claims: any number of ``lookalike index`` processes on the same folders share the work.

Each indexer crawls the folders itself and finds the files it would embed (``todo``). Before reading a batch
of them it *claims* them: a claim row (path, owner, expires, done) per file, taken in one transaction
(SQLite: under its write lock, ``BEGIN IMMEDIATE``; PostgreSQL: the rows it takes locked ``FOR UPDATE SKIP
LOCKED``, and only those, so concurrent claimers never wait for each other's claims). A file is left to others when

- it is in the library already with the size and mtime the crawl saw (another indexer wrote it since), or
- another owner holds an unexpired claim on it (busy: being read or embedded now), or
- another owner finished it (written, or found unreadable) since this run's first claim (``since``): a
  sequential rerun still retries an unreadable file, as it always has.

Claims are leases: every claim call and every finished batch renews the owner's open claims for LEASE_S;
a process that is killed stops renewing and its claims expire, after which whoever asks next takes them
over. An indexer that has gone through its list waits for the busy files it skipped (polling every
WAIT_S) until they are done or their lease has expired and it takes them, so every run ends with every file
done whatever happened to the others. A finished claim's ``expires`` holds the time it was finished; it is
pruned DONE_TTL_S later. Times are the store's clock (PostgreSQL: the server's, for indexers on many machines).

LEASE_S = 120 s covers the ~4 batches a process holds (3 prefetched + 1 in the model) at 1 image/s, far
below what the shared 2-core machine ever gave; a killed indexer's files are thus redone within 2 minutes.
Sooner on the same machine: an owner is ``host:pid:token`` (``new_owner``; the host is its name and PID
namespace), and a claim whose owner ran on this host under a pid that no longer exists (``owner_gone``: a ``kill -9``, an out-of-memory kill) is taken at
once, so rerunning ``lookalike index`` after a killed run does not wait out the lease. Owners on other hosts,
and a pid that exists (or that this process may not signal), keep the lease rule.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lookalike.stores.base import batched

if TYPE_CHECKING:
    from lookalike.io.crawl import FileEntry

LEASE_S = 120.0
DONE_TTL_S = 600.0
WAIT_S = 1.0

SQLITE_MIGRATION = """
CREATE TABLE claims (path TEXT PRIMARY KEY, owner TEXT NOT NULL, expires REAL NOT NULL,
                     done INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE INDEX claims_owner ON claims(owner, done);
"""
POSTGRES_MIGRATION = """
CREATE TABLE lookalike.claims (path text PRIMARY KEY, owner text NOT NULL, expires double precision NOT NULL,
                               done boolean NOT NULL DEFAULT FALSE);
CREATE INDEX claims_owner ON lookalike.claims (owner, done);
"""


@dataclass
class Claimed:
    mine: list["FileEntry"] = field(default_factory=list)  # claimed by this owner now
    busy: list["FileEntry"] = field(default_factory=list)  # held by another live owner: ask again later
    elsewhere: int = 0  # done by another indexer (written, or finished as unreadable)
    now: float = 0.0  # the store's clock at the claim: pass it back as ``since`` on later claims of the run


def this_host() -> str:
    """This machine as a claim owner names it: the host name and, on Linux, the PID namespace (containers
    that share a host name but not their process ids are different hosts here)."""
    try:
        return f"{socket.gethostname()}/{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return socket.gethostname()


def new_owner() -> str:
    """A run's name in the claims: ``host:pid:token``, unique across processes and machines."""
    return f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_gone(owner: str) -> bool:
    """True when ``owner`` (``host:pid:token``) ran on this host and its process no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if os.name != "posix":  # on Windows os.kill(pid, 0) would send CTRL_C_EVENT: keep the lease rule there
        return False
    if host != this_host() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):  # exists under another user, or cannot tell: keep the lease
        return False
    return False


def decide(entries: Sequence["FileEntry"], images: dict[str, tuple[int, float, int | None]],
           claims: dict[str, tuple[str, float, bool]], owner: str, now: float, since: float,
           locked: frozenset[str] | set[str] = frozenset()) -> Claimed:
    """Which of ``entries`` this owner may take. ``images``: path -> (size, mtime, inode or None) in the library
    (a file with the indexed size and mtime but another inode was swapped in: it is to do); ``claims``:
    path -> (owner, expires or finished at, done); ``locked``: paths whose claim row another transaction holds
    now; ``since``: when this run began claiming."""
    out = Claimed(now=now)
    gone: dict[str, bool] = {}  # owner -> its process is gone (asked once per owner)

    def is_gone(o: str) -> bool:
        if o not in gone:
            gone[o] = owner_gone(o)
        return gone[o]

    for e in entries:
        have = images.get(e.path)
        if have is not None and have[0] == e.size and abs(have[1] - e.mtime) < 1e-6 and have[2] in (None, e.ino):
            out.elsewhere += 1
        elif e.path in locked:
            out.busy.append(e)
        else:
            c = claims.get(e.path)
            if c is None or c[0] == owner:
                out.mine.append(e)
            elif c[2]:  # finished by another: during this run, or before it (then try again)
                if c[1] >= since:
                    out.elsewhere += 1
                else:
                    out.mine.append(e)
            elif c[1] > now and not is_gone(c[0]):
                out.busy.append(e)
            else:  # a lease that ran out, or an owner on this host that is gone: it was killed
                out.mine.append(e)
    return out


class SQLiteClaims:
    """Claims for SQLiteStore (needs ``_tx()``: BEGIN IMMEDIATE ... COMMIT under the store's lock)."""

    def claim(self, entries: Sequence["FileEntry"], owner: str, lease_s: float = LEASE_S,
              since: float | None = None) -> Claimed:
        now = time.time()
        images: dict[str, tuple[int, float, int | None]] = {}
        claims: dict[str, tuple[str, float, bool]] = {}
        with self._tx() as c:  # type: ignore[attr-defined]
            for chunk in batched([e.path for e in entries], 400):
                marks = ",".join("?" * len(chunk))
                for p, s, m, i in c.execute(f"SELECT path, size, mtime, ino FROM images WHERE path IN ({marks})", chunk):
                    images[p] = (s, m, i)
                for p, o, x, d in c.execute(f"SELECT path, owner, expires, done FROM claims WHERE path IN ({marks})",
                                            chunk):
                    claims[p] = (o, x, bool(d))
            got = decide(entries, images, claims, owner, now, now if since is None else since)
            c.executemany("INSERT OR REPLACE INTO claims(path, owner, expires, done) VALUES (?, ?, ?, 0)",
                          [(e.path, owner, now + lease_s) for e in got.mine])
            c.execute("UPDATE claims SET expires = ? WHERE owner = ? AND done = 0", (now + lease_s, owner))
            c.execute("DELETE FROM claims WHERE expires < ?", (now - DONE_TTL_S,))
        return got

    def finish_claims(self, paths: Sequence[str], owner: str, lease_s: float = LEASE_S) -> None:
        """``paths`` are done (written or unreadable); the owner's other claims are renewed."""
        now = time.time()
        with self._tx() as c:  # type: ignore[attr-defined]
            for chunk in batched(list(paths), 400):
                c.execute(f"UPDATE claims SET done = 1, expires = ? WHERE owner = ? AND path IN "
                          f"({','.join('?' * len(chunk))})", [now, owner, *chunk])
            c.execute("UPDATE claims SET expires = ? WHERE owner = ? AND done = 0", (now + lease_s, owner))

    def release_claims(self, owner: str) -> None:
        """Give back the owner's open claims (an interrupted run: others need not wait for the lease)."""
        with self._tx() as c:  # type: ignore[attr-defined]
            c.execute("DELETE FROM claims WHERE owner = ? AND done = 0", (owner,))


class PostgresClaims:
    """Claims for PostgresStore (needs ``_retrying(fn)``: a write transaction, retried on deadlocks)."""

    def claim(self, entries: Sequence["FileEntry"], owner: str, lease_s: float = LEASE_S,
              since: float | None = None) -> Claimed:
        paths = sorted({e.path for e in entries})  # one lock order for every claimer

        def run(c) -> Claimed:  # type: ignore[no-untyped-def]
            now = float(c.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
            start = now if since is None else since
            c.execute("INSERT INTO lookalike.claims (path, owner, expires) SELECT p, '', 0 FROM unnest(%s::text[]) p "
                      "ON CONFLICT (path) DO NOTHING", (paths,))
            images = {p: (int(s), float(m), None if i is None else int(i)) for p, s, m, i in c.execute(
                "SELECT path, size, mtime, ino FROM lookalike.images WHERE path = ANY(%s)", (paths,)).fetchall()}
            # decided on the rows as they are, then only the rows to take are locked (and decided again as the
            # lock found them): a row another live owner holds is never locked here, so its owner's renewal
            # below never waits for this transaction (locking every row of the batch, others' too, made two
            # claimers' renewals wait for each other: the deadlocks PostgreSQL reported, 5 in 6 runs of two
            # indexers on overlapping folders)
            seen = {p: (o, float(x), bool(d)) for p, o, x, d in c.execute(
                "SELECT path, owner, expires, done FROM lookalike.claims WHERE path = ANY(%s)", (paths,)).fetchall()}
            first = decide(entries, images, seen, owner, now, start)
            wanted = sorted(e.path for e in first.mine)
            rows = c.execute("SELECT path, owner, expires, done FROM lookalike.claims WHERE path = ANY(%s) "
                             "ORDER BY path FOR UPDATE SKIP LOCKED", (wanted,)).fetchall()
            held = {p: (o, float(x), bool(d)) for p, o, x, d in rows}
            got = decide(first.mine, images, held, owner, now, start, locked=set(wanted) - set(held))
            got.busy = first.busy + got.busy
            got.elsewhere += first.elsewhere
            c.execute("UPDATE lookalike.claims SET owner = %s, expires = %s, done = FALSE WHERE path = ANY(%s)",
                      (owner, now + lease_s, [e.path for e in got.mine]))
            c.execute("UPDATE lookalike.claims SET expires = %s WHERE owner = %s AND NOT done", (now + lease_s, owner))
            # old rows pruned by whoever claims next, skipping the ones another transaction holds (no waiting)
            c.execute("DELETE FROM lookalike.claims WHERE path IN (SELECT path FROM lookalike.claims WHERE expires < %s "
                      "AND path <> ALL(%s) FOR UPDATE SKIP LOCKED)", (now - DONE_TTL_S, paths))
            return got

        return self._retrying(run)  # type: ignore[attr-defined, no-any-return]

    def finish_claims(self, paths: Sequence[str], owner: str, lease_s: float = LEASE_S) -> None:
        def run(c) -> None:  # type: ignore[no-untyped-def]
            now = float(c.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()[0])
            c.execute("UPDATE lookalike.claims SET done = TRUE, expires = %s WHERE owner = %s AND path = ANY(%s)",
                      (now, owner, sorted(paths)))
            c.execute("UPDATE lookalike.claims SET expires = %s WHERE owner = %s AND NOT done", (now + lease_s, owner))

        self._retrying(run)  # type: ignore[attr-defined]

    def release_claims(self, owner: str) -> None:
        self._retrying(lambda c: c.execute("DELETE FROM lookalike.claims WHERE owner = %s AND NOT done",  # type: ignore[attr-defined]
                                           (owner,)))
