"""Walk folders for image files: recursive, regular files only, a symlink policy, no loops.

What is yielded: every regular file with an image extension below the roots, once, under its **real path**
(no symlink in it), with its device and inode, in a stable (sorted) order. Hidden files and folders and
AppleDouble ``._*`` files are skipped silently; everything else that is not indexed is reported through
``on_problem(path, reason)`` with a one-line reason:

- FIFOs, sockets and devices named like images (opening a FIFO would block forever, a device like
  ``/dev/zero`` never ends): nothing is ever opened here, the type comes from ``lstat``/``stat``;
- symlink loops and broken symlinks;
- symlinks whose target lies outside every root (``follow_symlinks=False``, the default): a link inside an
  indexed folder must not pull files from elsewhere into the index (and from there into the server). Roots
  named explicitly are resolved (``realpath``) first, so a root given through a symlink is fine.

With ``follow_symlinks=True`` links to anywhere are followed; :attr:`Crawl.outside` then lists the real
folders and files outside the roots that were walked, so the indexer can tell what vanished there.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".jfif"}
)


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, real (no symlink in it)
    size: int
    mtime: float
    dev: int = 0  # st_dev and st_ino of the file indexed: the server serves only this very file
    ino: int = 0


Problem = Callable[[str, str], None]  # (path, one-line reason)


def is_hidden(name: str) -> bool:
    return name.startswith(".")  # covers "._*" AppleDouble files too


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


# A name that is not valid UTF-8 (bytes from another encoding: Python holds them as surrogate escapes) cannot be
# stored, printed or served as text: such a file is reported and skipped, the rest of its folder indexed.
UTF8_REASON = "the file name is not valid UTF-8 (rename it to index it); skipped"


def utf8_name(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (for skip reasons)."""
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def not_a_file(path: str) -> str:
    """Why ``path`` (which exists) is not read as an image: "not a regular file: a FIFO (named pipe)"."""
    return f"not a regular file: {file_kind(os.stat(path).st_mode)}"


def not_regular(mode: int) -> str:
    return f"not a regular file: {file_kind(mode)}; skipped"


def inside(path: str, root: str) -> bool:
    """``path`` is ``root`` or below it (both absolute and normalised)."""
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False


@dataclass
class Crawl:
    """One walk over ``roots``; iterate it for the :class:`FileEntry` s."""

    roots: Iterable[str | os.PathLike[str]]
    on_problem: Problem | None = None
    follow_symlinks: bool = False
    outside: list[str] = field(default_factory=list)  # real folders/files outside the roots that were walked
    _real_roots: list[str] = field(default_factory=list)
    _seen_dirs: set[tuple[int, int]] = field(default_factory=set)
    _seen_files: set[str] = field(default_factory=set)

    def report(self, path: str, reason: str) -> None:
        if self.on_problem:
            self.on_problem(path, reason)

    def __iter__(self) -> Iterator[FileEntry]:
        given: list[tuple[str, str]] = []  # (as given, real)
        for root in self.roots:
            root_path = os.path.abspath(os.path.expanduser(os.fspath(root)))
            try:
                real = os.path.realpath(root_path, strict=True)
            except FileNotFoundError:
                self.report(root_path, "no such file or folder")
                continue
            except OSError as err:
                self.report(root_path, _link_reason(err))
                continue
            given.append((root_path, real))
        self._real_roots = [real for _, real in given]
        for root_path, real in given:
            try:
                st = os.stat(real)
            except OSError as err:
                self.report(root_path, f"cannot read: {err.strerror or err}")
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._folder(real)
            elif stat.S_ISREG(st.st_mode):
                yield from self._file(real, st)
            else:
                self.report(root_path, not_regular(st.st_mode))

    # ---------------------------------------------------------------------------------------------------
    def _folder(self, folder: str) -> Iterator[FileEntry]:
        # Real folders first, folders reached through symlinks after (each real folder is walked once).
        linked: list[str] = []
        yield from self._walk(folder, linked)
        while linked:
            yield from self._walk(linked.pop(0), linked)

    def _file(self, path: str, st: os.stat_result) -> Iterator[FileEntry]:
        if not utf8_name(path):  # its own name, or a folder's on the way (a root named so)
            bad_folder = utf8_name(os.path.basename(path))
            self.report(path, UTF8_REASON.replace("file name", "folder name") if bad_folder else UTF8_REASON)
            return
        if path not in self._seen_files:
            self._seen_files.add(path)
            yield FileEntry(path=path, size=st.st_size, mtime=st.st_mtime, dev=st.st_dev, ino=st.st_ino)

    def _walk(self, folder: str, linked: list[str]) -> Iterator[FileEntry]:
        try:
            st = os.stat(folder)
        except OSError as err:
            self.report(folder, f"cannot read folder: {err.strerror or err}")
            return
        key = (st.st_dev, st.st_ino)
        if key in self._seen_dirs:  # a folder reached twice (through a symlink to an ancestor, say)
            return
        self._seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as err:
            self.report(folder, f"cannot read folder: {err.strerror or err}")
            return
        subdirs: list[str] = []
        for e in entries:
            if is_hidden(e.name):
                continue
            try:
                if e.is_symlink():
                    yield from self._link(e, linked)
                    continue
                st = e.stat(follow_symlinks=False)
            except OSError as err:
                self.report(e.path, f"cannot stat: {err.strerror or err}")
                continue
            if stat.S_ISDIR(st.st_mode):
                if utf8_name(e.name):
                    subdirs.append(e.path)
                else:  # said once for the folder, not for each file below it
                    self.report(e.path, UTF8_REASON.replace("file name", "folder name"))
            elif is_image_name(e.name):
                if stat.S_ISREG(st.st_mode):
                    yield from self._file(e.path, st)
                else:
                    self.report(e.path, not_regular(st.st_mode))
        for sub in subdirs:
            yield from self._walk(sub, linked)

    def _link(self, e: os.DirEntry[str], linked: list[str]) -> Iterator[FileEntry]:
        """A symlink met while walking: resolved, checked against the policy, then its target's type."""
        try:
            target = os.path.realpath(e.path, strict=True)
            st = os.stat(target)
        except OSError as err:
            if is_image_name(e.name) or err.errno == errno.ELOOP:
                self.report(e.path, _link_reason(err))
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        if not is_dir and not is_image_name(e.name):
            return
        if not any(inside(target, root) for root in self._real_roots):
            if not self.follow_symlinks:
                self.report(e.path, f"symlink to {target}, outside the indexed folders: not followed "
                                    "(index --follow-symlinks allows it)")
                return
            if target not in self.outside:
                self.outside.append(target)
        if is_dir:
            linked.append(target)
        elif stat.S_ISREG(st.st_mode):
            yield from self._file(target, st)
        else:
            self.report(e.path, f"symlink to {target}: {not_regular(st.st_mode)}")


def _link_reason(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "symlink loop: not followed"
    if isinstance(err, FileNotFoundError):
        return "broken symlink: its target does not exist"
    return f"cannot resolve symlink: {err.strerror or err}"


def crawl(roots: Iterable[str | os.PathLike[str]], on_problem: Problem | None = None, *,
          follow_symlinks: bool = False) -> Iterator[FileEntry]:
    """Yield every image file under ``roots`` (files may be given directly), each once, in a stable order."""
    return iter(Crawl(roots, on_problem, follow_symlinks))


def folder_of(path: str) -> str:
    return str(Path(path).parent)
