"""Copy-screening features in both SQL stores (``index --copy-features``; search/verify.py ``compact_features``):
one blob per image, written with the image's record (or by the extras back-fill) and dropped with it
(``ON DELETE CASCADE``; a re-index replaces it). ``lookalike dupes`` reads them for the pairs it screens, a few
thousand images at a time, so a million of them (~18 GB) never sit in memory at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from lookalike.stores.sql import SQLReads

SQLITE_MIGRATION = """
CREATE TABLE copy_features (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    data BLOB NOT NULL
);
"""
POSTGRES_MIGRATION = """
CREATE TABLE lookalike.copy_features (
    image_id bigint PRIMARY KEY REFERENCES lookalike.images (id) ON DELETE CASCADE,
    data bytea NOT NULL
);
"""
# the one statement both stores write with (an image's features replace its earlier ones)
PUT = ("INSERT INTO {t}copy_features (image_id, data) VALUES (?, ?) "
       "ON CONFLICT (image_id) DO UPDATE SET data = excluded.data")


class CopyFeatureSQL(SQLReads):
    def copy_features(self, ids: Sequence[int]) -> dict[int, bytes]:
        """The stored copy features of those images that have them."""
        ids = [int(i) for i in ids]
        if not ids:
            return {}
        rows = self._run(lambda q: self._in(q, "SELECT image_id, data FROM {t}copy_features WHERE {in}", "image_id", ids))
        return {int(i): bytes(d) for i, d in rows}
