"""User-facing errors: every one carries a single line that says what was wrong and what to do.

Exit statuses of the command line (README, ``lookalike --help``): 0 done; **2** a usage error (bad arguments or
input: the command as given cannot be done, :class:`LookalikeError`); **1** a runtime failure (the disk is full,
the library is read-only or corrupt, a folder is not a library, an unexpected error: :class:`RuntimeFailure`);
**130** interrupted. :func:`explain_failure` turns the low-level errors of SQLite and the OS into one
:class:`RuntimeFailure` line each, and the two a store raises for input it cannot bind (a text that is not
UTF-8, a number past 64 bits) into a :class:`LookalikeError` (usage: exit 2, HTTP 400).
"""

from __future__ import annotations

import errno
import re
import sqlite3

EXIT_USAGE = 2
EXIT_RUNTIME = 1
EXIT_INTERRUPTED = 130


class LookalikeError(Exception):
    """Base class. ``str(err)`` is one line, fit to print to a user."""

    status = 400  # HTTP status the REST API answers with
    exit_code = EXIT_USAGE  # status of the command line

    def __str__(self) -> str:  # keep messages on one line whatever was passed in
        return " ".join(super().__str__().split())


class RuntimeFailure(LookalikeError):
    """The command was fine, the environment failed it: disk full, read-only or corrupt library, ..."""

    status = 503
    exit_code = EXIT_RUNTIME


class ImageError(LookalikeError):
    """An image could not be read: corrupt, truncated, empty, too large, not an image."""

    status = 422


class NotFound(LookalikeError):
    status = 404


class TooLarge(LookalikeError):
    status = 413


class Forbidden(LookalikeError):
    status = 403


class ModelMismatch(LookalikeError):
    """The index was built by another model than the one asked for."""

    status = 409


_KEPT = "the index is consistent: what was written before stays, run the command again to go on"


def explain_failure(err: BaseException, library: str = "the library") -> LookalikeError | None:
    """One line for the failures a user can act on (SQLite and OS errors), looked for along the chain of
    errors (a failed ROLLBACK after a full disk reports the full disk); None for anything else."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        found = _explain_one(err, library)
        if found is not None:
            return found
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
    return None


NOT_UTF8 = ("a name or word that is not valid UTF-8 (bytes of another encoding) cannot be stored or looked up "
            "in the library: rename the file or folder, or type the word again")
TOO_LARGE_NUMBER = "a number too large: image ids and counts are at most 9223372036854775807"


def _explain_one(err: BaseException, library: str) -> LookalikeError | None:
    if isinstance(err, RuntimeFailure):
        return err
    text = str(err).lower()
    # what a store cannot bind (sqlite3 and psycopg alike): refused as input, nothing was written
    if isinstance(err, UnicodeEncodeError) and "surrogates not allowed" in text:
        return LookalikeError(NOT_UTF8)
    if isinstance(err, OverflowError) and ("sqlite integer" in text or "int too large" in text):
        return LookalikeError(TOO_LARGE_NUMBER)
    code = getattr(err, "errno", None)
    if isinstance(err, sqlite3.Error) or isinstance(err, RuntimeError) or isinstance(err, OSError):
        if "disk is full" in text or "no space left" in text or code == errno.ENOSPC:
            return RuntimeFailure(f"the disk holding {library} is full: free some space; {_KEPT}")
        if code == errno.EDQUOT or "quota" in text:
            return RuntimeFailure(f"disk quota exceeded while writing {library}: free some space; {_KEPT}")
        if code == errno.EFBIG or "file too large" in text:
            return RuntimeFailure(f"a file in {library} reached the largest size allowed here; {_KEPT}")
        if "readonly database" in text or "read-only" in text or code == errno.EROFS:
            return RuntimeFailure(f"{library} is read-only: lookalike needs to write there (give a writable "
                                  "--library, or copy the library somewhere writable)")
        if "not a database" in text or "malformed" in text or "database corrupt" in text:
            return RuntimeFailure(f"the database in {library} (lookalike.db) is corrupt: move it away and index "
                                  "again, or restore a backup")
        if "unable to open database" in text:
            return RuntimeFailure(f"cannot open the database in {library}: check that the folder exists and "
                                  "that you may write there")
        if "database is locked" in text:
            return RuntimeFailure(f"{library} is locked by another lookalike process: try again when it is done")
        if "disk i/o error" in text or code == errno.EIO:
            return RuntimeFailure(f"a disk error while using {library} (a full or failing disk?): {_KEPT}")
        if isinstance(err, PermissionError):
            return RuntimeFailure(f"permission denied: {err.filename or library}")
    return None


_URL_PASSWORD = re.compile(r"(postgres(?:ql)?://[^:/?#@\s]*:)[^@\s/]*@", re.IGNORECASE)  # a "/" ends the userinfo
_PARAM_PASSWORD = re.compile(r"((?:^|[?&\s])password=)[^&\s]*", re.IGNORECASE)


def mask_secrets(text: str, *urls: str) -> str:
    """``text`` with the passwords of PostgreSQL URLs in it (``user:PASSWORD@`` and ``password=`` parameters),
    and any password of ``urls`` wherever it appears (a server's message may quote it), replaced by ***."""
    secrets = {m.group(0)[len(m.group(1)):-1] for u in urls for m in _URL_PASSWORD.finditer(u)}
    secrets |= {m.group(0)[len(m.group(1)):] for u in urls for m in _PARAM_PASSWORD.finditer(u)}
    text = _PARAM_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))
    for secret in sorted(secrets - {"", "***"}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def write_report(err: BaseException, command: str | None = None) -> str | None:
    """The traceback into a file in the user's log folder (else the temp folder); its path, or None."""
    import os
    import sys
    import tempfile
    import time
    import traceback
    from pathlib import Path

    from lookalike import __version__

    text = mask_secrets(f"lookalike {__version__}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                        f"argv: {sys.argv!r}\ncommand: {command}\n\n"
                        + "".join(traceback.format_exception(err)), *sys.argv)
    folders = []
    try:
        from platformdirs import user_log_dir

        folders.append(Path(user_log_dir("lookalike", appauthor=False)))
    except Exception:  # noqa: BLE001
        pass
    folders.append(Path(tempfile.gettempdir()))
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"lookalike-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the user's own: paths, queries
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return str(path)
        except OSError:
            continue
    return None
