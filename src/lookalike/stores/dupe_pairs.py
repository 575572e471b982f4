"""Verified duplicate pairs in both SQL stores (the ``PairStore`` role, stores/base.py): one set of statements
in the ``?`` / ``{t}`` spelling of stores/sql.py.

``lookalike dupes`` verifies the candidate pairs whose embedding cosine is uncertain (search/verify.py, tens of
ms a pair); the verdicts are kept here so that the next run verifies only pairs it has not seen. A row is
keyed by the two image ids (``image_a < image_b``) and goes with either image (``ON DELETE CASCADE``); it
records both images' content hashes at verification, and is read back only while both still have that
content (a file edited in place keeps its id, not its hash). ``version`` names the model and the
verification's calibration; rows of another version are never read and are pruned.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from lookalike.stores.base import PairVerdict
from lookalike.stores.sql import SQLReads

SQLITE_MIGRATION = """
CREATE TABLE dupe_pairs (
    image_a INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    image_b INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    sha_a TEXT NOT NULL,
    sha_b TEXT NOT NULL,
    version TEXT NOT NULL,
    cosine REAL NOT NULL,
    score REAL NOT NULL,
    verified_at REAL NOT NULL,
    PRIMARY KEY (image_a, image_b)
) WITHOUT ROWID;
CREATE INDEX dupe_pairs_b ON dupe_pairs(image_b);
"""
POSTGRES_MIGRATION = """
CREATE TABLE lookalike.dupe_pairs (
    image_a bigint NOT NULL REFERENCES lookalike.images (id) ON DELETE CASCADE,
    image_b bigint NOT NULL REFERENCES lookalike.images (id) ON DELETE CASCADE,
    sha_a text NOT NULL,
    sha_b text NOT NULL,
    version text NOT NULL,
    cosine real NOT NULL,
    score real NOT NULL,
    verified_at double precision NOT NULL,
    PRIMARY KEY (image_a, image_b)
);
CREATE INDEX dupe_pairs_b ON lookalike.dupe_pairs (image_b);
"""

_CURRENT = ("FROM {t}dupe_pairs p JOIN {t}images ia ON ia.id = p.image_a JOIN {t}images ib ON ib.id = p.image_b "
            "WHERE p.version = ? AND ia.sha = p.sha_a AND ib.sha = p.sha_b")
_STALE = ("version <> ? OR NOT EXISTS (SELECT 1 FROM {t}images i WHERE i.id = image_a AND i.sha = sha_a) "
          "OR NOT EXISTS (SELECT 1 FROM {t}images i WHERE i.id = image_b AND i.sha = sha_b)")
_PUT = ("INSERT INTO {t}dupe_pairs (image_a, image_b, sha_a, sha_b, version, cosine, score, verified_at) "
        "SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM {t}images WHERE id = ? AND sha = ?) "
        "AND EXISTS (SELECT 1 FROM {t}images WHERE id = ? AND sha = ?) "
        "ON CONFLICT (image_a, image_b) DO UPDATE SET sha_a = excluded.sha_a, sha_b = excluded.sha_b, "
        "version = excluded.version, cosine = excluded.cosine, score = excluded.score, "
        "verified_at = excluded.verified_at")


class DupePairSQL(SQLReads):
    """Mixed into a SQL store that runs ``_execute``: statements in one write transaction."""

    def _execute(self, statements: Sequence[tuple[str, Sequence[object]]]) -> None:
        raise NotImplementedError

    def dupe_pairs(self, version: str) -> list[PairVerdict]:
        """The verdicts of ``version`` whose two images still have the content they were verified with."""
        sql = self.dialect.sql(f"SELECT p.image_a, p.image_b, p.sha_a, p.sha_b, p.cosine, p.score {_CURRENT}")
        rows = self._run(lambda q: q(sql, (version,)), primary=True)
        return [PairVerdict(int(a), int(b), sa, sb, float(c), float(s)) for a, b, sa, sb, c, s in rows]

    def put_dupe_pairs(self, version: str, pairs: Sequence[PairVerdict]) -> None:
        """Keep these verdicts (replacing earlier ones of the same pairs), in one transaction. A pair whose
        image was removed or changed meanwhile is not kept."""
        now = time.time()
        sql = self.dialect.sql(_PUT)
        stmts = []
        for p in pairs:
            (a, sa), (b, sb) = sorted([(int(p.a), p.sha_a), (int(p.b), p.sha_b)])
            if a != b:
                stmts.append((sql, [a, b, sa, sb, version, float(p.cosine), float(p.score), now, a, sa, b, sb]))
        if stmts:
            self._execute(stmts)

    def prune_dupe_pairs(self, version: str) -> int:
        """Drop the verdicts of other versions and of images whose content changed; returns how many."""
        d = self.dialect
        stale = int(self._run(lambda q: q(d.sql(f"SELECT COUNT(*) FROM {{t}}dupe_pairs WHERE {_STALE}"),
                                          (version,)), primary=True)[0][0])
        if stale:
            self._execute([(d.sql(f"DELETE FROM {{t}}dupe_pairs WHERE {_STALE}"), [version])])
        return stale
