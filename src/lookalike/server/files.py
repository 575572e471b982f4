"""Files the REST API hands out: thumbnails (made once, cached in the library folder) and original images.

Both are reached only through an indexed image's id, never through a path a client sends, and both hand out
only **the very file that was indexed**: :func:`open_indexed` opens the stored path without following any
symlink (an ``openat`` walk from ``/``, ``O_NOFOLLOW`` on every component, the last one ``O_NONBLOCK``), then
checks what it opened with ``fstat``: a regular file with the device, inode, size and mtime recorded when it
was indexed. A photo swapped for a symlink to a private key padded to the same size and mtime, a folder on the
way swapped for a link, a FIFO or a device put in its place: all refused (409, re-index), and the bytes sent
are read from that checked descriptor, so nothing can be swapped in between the check and the read. What the
server reads whole (to make a thumbnail) must also have the indexed content hash, so a file rewritten in place
with its size and mtime put back gets a 409 there. An original is streamed, so its bytes are hashed from the
checked descriptor before the first one is sent (then read again from the start: the page cache serves them);
a file whose change time (``st_ctime``, which no user can set back) is the one already verified is not hashed
again. What this cannot see: bytes rewritten while the response is being sent, after the check.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from lookalike.errors import LookalikeError, NotFound
from lookalike.io.crawl import file_kind
from lookalike.io.read import content_hash, content_hasher, load
from lookalike.stores.base import ImageInfo, file_id

THUMB_SIZES = (128, 256, 512)
DEFAULT_THUMB = 256
_SHA = re.compile(r"^[0-9a-f]{8,128}$")

MEDIA_TYPES = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg",
    ".png": "image/png", ".gif": "image/gif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".webp": "image/webp", ".heic": "image/heic", ".heif": "image/heif", ".avif": "image/avif",
}


class FileChanged(LookalikeError):
    status = 409


def media_type(path: str) -> str:
    return MEDIA_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def open_nofollow(path: str) -> int:
    """A descriptor of ``path`` opened without following a symlink in any component (``OSError`` if one is)."""
    parts = [p for p in path.split(os.sep) if p]
    if not os.path.isabs(path) or not parts or any(p in (".", "..") for p in parts):
        raise OSError(errno.EINVAL, "not an absolute, normalised path")
    fd = os.open(os.sep, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1], _FILE_FLAGS, dir_fd=fd)
    finally:
        os.close(fd)


def open_indexed(info: ImageInfo) -> tuple[int, os.stat_result]:
    """An open descriptor of the file ``info`` describes, and its stat, if it is still that very file."""
    changed = f"image {info.id} is no longer the file that was indexed ({info.path})"
    try:
        fd = open_nofollow(info.path)
    except FileNotFoundError:
        raise NotFound(f"image {info.id} is no longer on disk ({info.path}); re-index its folder") from None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise FileChanged(f"{changed}: a symlink is on its path now; re-index its folder") from None
        raise NotFound(f"image {info.id} cannot be read: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileChanged(f"{changed}: it is {file_kind(st.st_mode)} now; re-index its folder")
        if info.ino is not None and file_id(st.st_dev, st.st_ino) != (info.dev, info.ino):
            raise FileChanged(f"{changed}: another file is in its place; re-index its folder")
        if st.st_size != info.size or abs(st.st_mtime - info.mtime) > 1e-6:
            raise FileChanged(f"image {info.id} changed on disk since it was indexed ({info.path}); re-index its folder")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def check_unchanged(info: ImageInfo) -> os.stat_result:
    """The file's stat if it is still the regular file that was indexed (see :func:`open_indexed`)."""
    fd, st = open_indexed(info)
    os.close(fd)
    return st


def read_indexed(info: ImageInfo, max_bytes: int) -> bytes:
    """The bytes of the indexed file (checked by :func:`open_indexed`), at most ``max_bytes``, and they must be
    the bytes that were indexed (their content hash): a file rewritten in place with its size and mtime put
    back (``touch -r``) keeps its inode, so only its content tells. What is made from them (a thumbnail, cached
    by that hash) then never outlives the indexed file."""
    fd, st = open_indexed(info)
    try:
        if st.st_size > max_bytes:
            raise LookalikeError(f"image {info.id} is larger than the {max_bytes // 1_000_000} MB limit")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)[:max_bytes]
    finally:
        os.close(fd)
    if info.sha and content_hash(data) != info.sha:
        raise _rewritten(info)
    return data


def _rewritten(info: ImageInfo) -> FileChanged:
    return FileChanged(f"the file of image {info.id} was rewritten since it was indexed (its bytes differ); "
                       "re-index its folder with rehash (lookalike index --rehash)")


_VERIFIED: OrderedDict[tuple[int, int, int, int, int], str] = OrderedDict()  # file identity + ctime -> hash seen
_VERIFIED_MAX = 4096
_verified_lock = threading.Lock()


def _check_content(fd: int, st: os.stat_result, info: ImageInfo, chunk: int) -> None:
    """Raise :class:`FileChanged` unless the descriptor's bytes have the indexed content hash (see the module
    docstring: a file whose ctime did not move since it was last verified is not read again)."""
    if not info.sha:
        return
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _verified_lock:
        if _VERIFIED.get(key) == info.sha:
            _VERIFIED.move_to_end(key)
            return
    h = content_hasher()
    left = st.st_size
    while left > 0 and (data := os.pread(fd, min(chunk, left), st.st_size - left)):
        h.update(data)
        left -= len(data)
    if h.hexdigest() != info.sha:
        raise _rewritten(info)
    with _verified_lock:
        _VERIFIED[key] = info.sha
        while len(_VERIFIED) > _VERIFIED_MAX:
            _VERIFIED.popitem(last=False)


def stream_indexed(info: ImageInfo, chunk: int = 1 << 16) -> tuple[Iterator[bytes], os.stat_result]:
    """The indexed file's bytes in chunks, read from the checked descriptor (closed at the end), and its stat.
    The bytes are checked against the indexed content hash before this returns."""
    fd, st = open_indexed(info)
    try:
        _check_content(fd, st, info, chunk)
    except BaseException:
        os.close(fd)
        raise

    def chunks() -> Iterator[bytes]:
        try:
            left = st.st_size
            while left > 0:
                data = os.read(fd, min(chunk, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            os.close(fd)

    return chunks(), st


class Thumbnails:
    """JPEG thumbnails in ``<library>/thumbs/<sha>_<size>.jpg``, written atomically, keyed by content."""

    def __init__(self, folder: str | os.PathLike[str], *, max_pixels: int, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_pixels = max_pixels
        self.max_bytes = max_bytes

    def path(self, info: ImageInfo, size: int) -> Path:
        if size not in THUMB_SIZES:
            raise LookalikeError(f"thumbnail size must be one of {', '.join(map(str, THUMB_SIZES))}")
        if not _SHA.match(info.sha or ""):
            raise LookalikeError(f"image {info.id} has no usable content hash; re-index its folder")
        return self.folder / f"{info.sha}_{size}.jpg"

    def get(self, info: ImageInfo, size: int = DEFAULT_THUMB) -> Path:
        """The cached thumbnail, made now from the original if it is not there yet."""
        target = self.path(info, size)
        if target.is_file():
            return target
        image = load(read_indexed(info, self.max_bytes), min_side=size, max_pixels=self.max_pixels).image
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            image.save(tmp, "JPEG", quality=85, optimize=True)
            os.replace(tmp, target)  # atomic: readers see the old state or the whole new file
        finally:
            tmp.unlink(missing_ok=True)
        return target
