"""Walk folders for image files: recursive, no symlink loops, hidden files and AppleDouble `._*` skipped."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".heif", ".avif", ".jfif"}
)


@dataclass(frozen=True)
class FileEntry:
    path: str  # absolute, normalised
    size: int
    mtime: float


Problem = Callable[[str, str], None]  # (path, one-line reason)


def is_hidden(name: str) -> bool:
    return name.startswith(".")  # covers "._*" AppleDouble files too


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def crawl(roots: Iterable[str | os.PathLike[str]], on_problem: Problem | None = None) -> Iterator[FileEntry]:
    """Yield every image file under ``roots`` (files may be given directly), each once, in a stable order."""
    report = on_problem or (lambda path, reason: None)
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    for root in roots:
        root_path = os.path.abspath(os.path.expanduser(os.fspath(root)))
        if not os.path.exists(root_path):
            report(root_path, "no such file or folder")
            continue
        if os.path.isfile(root_path):
            entry = _entry(root_path, report)
            if entry and entry.path not in seen_files:
                seen_files.add(entry.path)
                yield entry
            continue
        # Real folders first, symlinked folders after, so a file is reported under its real path when it can be.
        linked: list[str] = []
        for entry in _walk(root_path, seen_dirs, report, linked):
            if entry.path not in seen_files:
                seen_files.add(entry.path)
                yield entry
        while linked:
            for entry in _walk(linked.pop(0), seen_dirs, report, linked):
                if entry.path not in seen_files:
                    seen_files.add(entry.path)
                    yield entry


def _walk(folder: str, seen_dirs: set[tuple[int, int]], report: Problem, linked: list[str]) -> Iterator[FileEntry]:
    try:
        st = os.stat(folder)
    except OSError as err:
        report(folder, f"cannot read folder: {err.strerror or err}")
        return
    key = (st.st_dev, st.st_ino)
    if key in seen_dirs:  # a symlink loop or a folder reached twice
        return
    seen_dirs.add(key)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as err:
        report(folder, f"cannot read folder: {err.strerror or err}")
        return
    subdirs: list[str] = []
    for e in entries:
        if is_hidden(e.name):
            continue
        try:
            if e.is_dir(follow_symlinks=True):
                (linked if e.is_symlink() else subdirs).append(e.path)
                continue
        except OSError:
            continue
        if is_image_name(e.name):
            entry = _entry(e.path, report)
            if entry:
                yield entry
    for sub in subdirs:
        yield from _walk(sub, seen_dirs, report, linked)


def _entry(path: str, report: Problem) -> FileEntry | None:
    try:
        st = os.stat(path)
    except OSError as err:
        report(path, f"cannot stat file: {err.strerror or err}")
        return None
    return FileEntry(path=os.path.normpath(path), size=st.st_size, mtime=st.st_mtime)


def folder_of(path: str) -> str:
    return str(Path(path).parent)
