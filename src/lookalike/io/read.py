"""Decode image files into RGB Pillow images, with guards. One preprocessing path for indexing and queries.

Every failure raises :class:`ImageError` with a one-line reason: empty file, not an image, truncated or
corrupt data, decompression bomb, unreadable file.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import warnings
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from lookalike.config import DEFAULT_MAX_FILE_MB
from lookalike.errors import ImageError
from lookalike.io.crawl import not_regular

ImageFile.LOAD_TRUNCATED_IMAGES = False
Image.MAX_IMAGE_PIXELS = None  # we check pixel counts ourselves, with our own limit and message
# Pillow's own warnings about a file ("Corrupt EXIF data. Expecting to read 12 bytes...") reached the user as two
# lines naming Pillow's source and not the file; what cannot be read is reported per file by the callers. Set
# once, here, for every thread (warnings.catch_warnings is not thread-safe: the decoders run in threads).
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL(\.|$)")

try:  # HEIC/AVIF where the plugin is installed
    import pillow_heif  # type: ignore[import-not-found]

    pillow_heif.register_heif_opener()
    if hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()
except Exception:  # pragma: no cover - optional
    pass

DEFAULT_MAX_PIXELS = 100_000_000

_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME = 306
_MAKE = 271
_MODEL = 272


@dataclass
class Decoded:
    """A decoded image and what was learnt while reading it."""

    image: Image.Image  # RGB, EXIF orientation applied; may be reduced (JPEG draft) but never below min_side
    width: int  # full size, after orientation
    height: int
    sha: str  # content hash of the file's bytes
    nbytes: int
    taken_at: str | None = None  # ISO 8601 from EXIF
    camera: str | None = None  # "Make Model" from EXIF
    format: str | None = None


def content_hasher():  # type: ignore[no-untyped-def]
    """The hash of :func:`content_hash`, to feed in pieces (a file streamed, server/files.py)."""
    return hashlib.blake2b(digest_size=16)


def content_hash(data: bytes) -> str:
    h = content_hasher()
    h.update(data)
    return h.hexdigest()


def read_file(path: str | os.PathLike[str], max_bytes: int | None = None, *, nofollow: bool = False) -> bytes:
    """The bytes of a regular file, never more than ``max_bytes`` (default: the ``max_file_mb`` setting).

    The file is opened non-blocking (a FIFO must not hang the caller) and checked with ``fstat`` before a byte
    is read: FIFOs, devices (``/dev/zero`` would never end) and sockets are refused. At most ``max_bytes + 1``
    bytes are read, so a file that grows while it is read cannot fill memory either. ``nofollow``: refuse a
    symlink in the last component (the indexer reads real paths; a file swapped for a link is not followed)."""
    cap = DEFAULT_MAX_FILE_MB * 1_000_000 if max_bytes is None else int(max_bytes)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    if nofollow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:
        raise ImageError("cannot read file: permission denied") from None
    except IsADirectoryError:
        raise ImageError("is a folder, not an image file") from None
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except OSError as err:
        if nofollow and err.errno == errno.ELOOP:
            raise ImageError("the file became a symlink since it was found; not followed") from None
        raise ImageError(f"cannot read file: {err.strerror or err}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ImageError("is a folder, not an image file")
        if not stat.S_ISREG(st.st_mode):
            raise ImageError(not_regular(st.st_mode))
        if st.st_size > cap:
            raise ImageError(f"file too large ({_mb(st.st_size)} > {_mb(cap)} limit)")
        os.set_blocking(fd, True)
        data = _read_at_most(fd, cap + 1, st.st_size)
    except OSError as err:
        raise ImageError(f"cannot read file: {err.strerror or err}") from None
    finally:
        os.close(fd)
    if len(data) > cap:
        raise ImageError(f"file too large (it grew past the {_mb(cap)} limit while it was read)")
    return data


def _read_at_most(fd: int, n: int, size: int) -> bytes:
    """At most ``n`` bytes; the usual file (``size`` bytes, unchanged) in one read: one copy, no join."""
    chunks = [os.read(fd, min(size + 1, n))]
    got = len(chunks[0])
    while got < n and chunks[-1]:
        chunks.append(os.read(fd, min(1 << 20, n - got)))
        got += len(chunks[-1])
    chunks = [c for c in chunks if c]
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _mb(n: int) -> str:
    return f"{n // 1_000_000} MB" if n >= 1_000_000 else f"{n} bytes"


def open_checked(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image's header parsed (no pixel decoded) and checked: an image this installation reads, with
    pixels, no more than ``max_pixels`` of them (the decompression-bomb guard). The guards of :func:`decode`,
    also for a query image whose vectors the library already holds (``Library.query_vectors``)."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("not an image, or a format this installation cannot read") from None
    except Exception as err:  # noqa: BLE001 - Pillow raises many types on bad headers
        raise ImageError(f"corrupt image header: {_reason(err)}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError("image has no pixels")
    if width * height > max_pixels:
        raise ImageError(
            f"image too large: {width}x{height} = {width * height / 1e6:.0f} MP exceeds the "
            f"{max_pixels / 1e6:.0f} MP limit (decompression bomb guard)"
        )
    return img


def decode(data: bytes, *, min_side: int | None = 256, max_pixels: int = DEFAULT_MAX_PIXELS,
           sha: str | None = None) -> Decoded:
    """Decode bytes into an RGB image. ``min_side`` lets JPEGs decode at a reduced scale (DCT draft mode)
    while keeping the shorter side at least that long; ``None`` decodes at full size. ``sha``: the bytes'
    content hash when the caller has computed it already."""
    img = open_checked(data, max_pixels)
    width, height = img.size
    fmt = img.format
    taken_at, camera, orientation = _exif(img)
    try:
        if min_side and fmt == "JPEG":
            img.draft("RGB" if img.mode in ("RGB", "YCbCr") else None, (min_side, min_side))
        # the bytes are in memory already: hand them to the decoder in one piece instead of Pillow's 64 kB
        # blocks (the same pixels; 0.6 ms less CPU per 12 MP phone JPEG, about 3 % of its decode)
        img.decodermaxblock = max(int(getattr(img, "decodermaxblock", 0)), len(data) + 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
        rgb = to_rgb(img)
        if orientation and orientation != 1:
            rgb.info["exif"] = img.info.get("exif", b"")
            rgb = ImageOps.exif_transpose(rgb)
    except ImageError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ImageError(f"truncated or corrupt image data: {_reason(err)}") from None
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Decoded(rgb, width, height, sha or content_hash(data), len(data), taken_at, camera, fmt)


def load(source: str | os.PathLike[str] | bytes, *, min_side: int | None = 256,
         max_pixels: int = DEFAULT_MAX_PIXELS, max_bytes: int | None = None) -> Decoded:
    data = source if isinstance(source, bytes) else read_file(source, max_bytes)
    return decode(data, min_side=min_side, max_pixels=max_pixels)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB: alpha composited on white, palette/CMYK/16-bit/float/grayscale converted."""
    if getattr(img, "is_animated", False):
        img.seek(0)
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        import numpy as np

        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16") and hi <= 65535 and hi > 255:
            lo, hi = 0.0, 65535.0 if hi > 4095 else 4095.0
        scale = 255.0 / (hi - lo) if hi > lo else 1.0
        img = Image.fromarray(((arr - lo) * scale).clip(0, 255).astype(np.uint8), "L")
        mode = "L"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def rgb_within(image: Image.Image, max_side: int) -> tuple[Image.Image, float]:
    """``image`` as RGB with its longer side at most ``max_side`` (bilinear), and the scale applied (1.0 when
    it was small enough): what the face detector and the OCR take."""
    img = image.convert("RGB") if image.mode != "RGB" else image
    if max(img.size) <= max_side:
        return img, 1.0
    scale = max_side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    return img.resize(size, Image.Resampling.BILINEAR), scale


def _exif(img: Image.Image) -> tuple[str | None, str | None, int | None]:
    try:
        exif = img.getexif()
    except Exception:  # noqa: BLE001 - broken EXIF must not lose the image
        return None, None, None
    if not exif:
        return None, None, None
    orientation = exif.get(0x0112)
    try:
        sub = exif.get_ifd(_EXIF_IFD)
    except Exception:  # noqa: BLE001
        sub = {}
    raw = sub.get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    taken = None
    if isinstance(raw, str):
        try:
            taken = datetime.strptime(raw.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            taken = None
    make, model = (str(exif.get(t) or "").strip().strip("\x00") for t in (_MAKE, _MODEL))
    camera = model if make and model.lower().startswith(make.lower().split()[0]) else f"{make} {model}".strip()
    return taken, camera or None, int(orientation) if isinstance(orientation, int) else None


def _reason(err: Exception) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:200]
