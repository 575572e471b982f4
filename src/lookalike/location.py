"""Where a library lives, checked before it is opened: only ``index`` creates one.

A folder given as ``--library`` must be a lookalike library (it holds ``lookalike.db``, a SQLite file), or,
for the commands that create one, a new or empty folder. Searching a typo'd path must not create an empty
library and answer "no results", and indexing into ``~/Pictures`` by mistake must not write a database among
the photos.
"""

from __future__ import annotations

from pathlib import Path

from lookalike.config import Settings
from lookalike.errors import NotFound, RuntimeFailure

DB_NAME = "lookalike.db"  # stores/sqlite.py
SQLITE_MAGIC = b"SQLite format 3\x00"
LIBRARY_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", f"{DB_NAME}-journal", "thumbs")


class NoLibrary(NotFound):
    """The library named does not exist."""


def check_library(settings: Settings, *, create: bool) -> None:
    """Refuse, with one line, a library that is missing (unless ``create``), not a folder, a folder that is
    not a library, or a database that is not SQLite. A PostgreSQL store (``--db``) is checked when opened."""
    if settings.db:
        return
    folder = Path(settings.library)
    db = folder / DB_NAME
    if folder.exists() and not folder.is_dir():
        raise RuntimeFailure(f"{folder} is a file, not a library folder: give a folder as --library")
    if db.exists():
        _check_database(db)
        if create or _size(db) > 0:
            return  # a 0-byte database (touched, or a failed copy) is no library yet: only index makes it one
    if not create:
        raise NoLibrary(f"no lookalike library at {folder}: index photos into it first "
                        f"(lookalike index FOLDER --library {folder}), or give the right --library")
    if folder.is_dir():
        others = sorted(p.name for p in folder.iterdir() if p.name not in LIBRARY_FILES and not p.name.startswith("."))
        if others:
            raise RuntimeFailure(f"{folder} is not a lookalike library (no {DB_NAME}, and it holds other files: "
                                 f"{', '.join(others[:3])}{' ...' if len(others) > 3 else ''}); give a new or empty "
                                 "folder as --library")


def _size(db: Path) -> int:
    try:
        return db.stat().st_size
    except OSError:
        return 0


def _check_database(db: Path) -> None:
    try:
        with open(db, "rb") as fh:
            head = fh.read(len(SQLITE_MAGIC))
    except OSError as err:
        raise RuntimeFailure(f"cannot read {db}: {err.strerror or err}") from None
    if head and head != SQLITE_MAGIC:
        raise RuntimeFailure(f"{db} is not a lookalike database (corrupt, or another kind of file): move it away "
                             "and index again, or restore a backup")
