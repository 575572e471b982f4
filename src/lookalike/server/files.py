"""Files the REST API hands out: thumbnails (made once, cached in the library folder) and original images.

Both are reached only through an indexed image's id, never through a path a client sends, and both refuse a
file that has vanished or changed on disk since it was indexed.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from pathlib import Path

from PIL import Image

from lookalike.errors import LookalikeError, NotFound
from lookalike.io.read import load, read_file
from lookalike.stores.base import ImageInfo

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


def check_unchanged(info: ImageInfo) -> os.stat_result:
    """The file's stat if it is still the regular file that was indexed (same size and mtime)."""
    try:
        st = os.stat(info.path)
    except FileNotFoundError:
        raise NotFound(f"image {info.id} is no longer on disk ({info.path}); re-index its folder") from None
    except OSError as err:
        raise NotFound(f"image {info.id} cannot be read: {err.strerror or err}") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(f"image {info.id} is no longer a regular file ({info.path})")
    if st.st_size != info.size or abs(st.st_mtime - info.mtime) > 1e-6:
        raise FileChanged(f"image {info.id} changed on disk since it was indexed ({info.path}); re-index its folder")
    return st


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
        check_unchanged(info)
        image = load(read_file(info.path, self.max_bytes), min_side=size, max_pixels=self.max_pixels).image
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            image.save(tmp, "JPEG", quality=85, optimize=True)
            os.replace(tmp, target)  # atomic: readers see the old state or the whole new file
        finally:
            tmp.unlink(missing_ok=True)
        return target
