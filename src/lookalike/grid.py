"""Contact sheets: the query and its results as one PNG (thumbnail, rank, score, path)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from lookalike.io.read import load

THUMB = 200
LABEL_H = 46
PAD = 8


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType
        return ImageFont.load_default()


def _thumb(source: str | bytes | None) -> Image.Image:
    tile = Image.new("RGB", (THUMB, THUMB), (235, 235, 235))
    if source is None:
        return tile
    try:
        img = load(source, min_side=THUMB).image
    except Exception:  # noqa: BLE001 - a missing file shows as a grey tile
        return tile
    img.thumbnail((THUMB, THUMB))
    tile.paste(img, ((THUMB - img.width) // 2, (THUMB - img.height) // 2))
    return tile


def _shorten(text: str, n: int = 30) -> str:
    return text if len(text) <= n else "…" + text[-(n - 1):]


def contact_sheet(results: Sequence[tuple[str, float]], out: str | os.PathLike[str], *,
                  query_image: str | bytes | None = None, query_label: str = "", columns: int = 6) -> str:
    """Write a PNG grid: the query first (if an image or a label is given), then (path, score) results."""
    return _save(contact_image(results, query_image=query_image, query_label=query_label, columns=columns), out)


def _save(sheet: Image.Image, out: str | os.PathLike[str]) -> str:
    out = os.fspath(out)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        sheet.save(out)
    except OSError as err:  # /proc/x.png, a name too long, a full disk: the place failed the command
        from lookalike.errors import RuntimeFailure

        raise RuntimeFailure(f"cannot write the contact sheet {out}: {err.strerror or err}") from None
    return out


def contact_image(results: Sequence[tuple[str, float]], *, query_image: str | bytes | None = None,
                  query_label: str = "", columns: int = 6) -> Image.Image:
    """The contact sheet as a PIL image (what ``SearchResult.show()`` returns in a notebook)."""
    cells: list[tuple[Image.Image, str, str]] = []
    if query_image is not None or query_label:
        cells.append((_thumb(query_image), "query", _shorten(query_label or "")))
    for rank, (path, score) in enumerate(results, start=1):
        cells.append((_thumb(path), f"#{rank}  {score:.3f}", _shorten(os.path.basename(path))))
    return layout(cells, columns, query_first=query_image is not None or bool(query_label))


def layout(cells: Sequence[tuple[Image.Image, str, str]], columns: int, query_first: bool = False) -> Image.Image:
    """(thumbnail, line 1, line 2) cells in a grid; ``query_first``: the first cell framed in red."""
    cols = max(1, min(columns, len(cells)))
    rows = max(1, (len(cells) + cols - 1) // cols)
    w, h = cols * (THUMB + PAD) + PAD, rows * (THUMB + LABEL_H + PAD) + PAD
    sheet = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    big, small = _font(15), _font(12)
    for n, (img, line1, line2) in enumerate(cells):
        x = PAD + (n % cols) * (THUMB + PAD)
        y = PAD + (n // cols) * (THUMB + LABEL_H + PAD)
        sheet.paste(img, (x, y))
        if n == 0 and query_first:
            draw.rectangle([x - 3, y - 3, x + THUMB + 2, y + THUMB + 2], outline=(220, 60, 60), width=3)
        draw.text((x, y + THUMB + 4), line1, fill=(20, 20, 20), font=big)
        draw.text((x, y + THUMB + 24), line2, fill=(90, 90, 90), font=small)
    return sheet


def face_sheet(faces: Sequence[tuple[str | None, Sequence[int], str, str]], out: str | os.PathLike[str], *,
               columns: int = 8) -> str:
    """Write a PNG grid of faces: (image path, face box (left, top, width, height) in full-size pixels, line 1,
    line 2) each, the face cut out with a quarter of its size as margin."""
    cells = [(_face_thumb(path, box), _shorten(a, 24), _shorten(b, 30)) for path, box, a, b in faces]
    return _save(layout(cells, columns), out)


def _face_thumb(path: str | None, box: Sequence[int]) -> Image.Image:
    tile = Image.new("RGB", (THUMB, THUMB), (235, 235, 235))
    if path is None:
        return tile
    try:
        face = face_crop(path, box, THUMB)
    except Exception:  # noqa: BLE001 - a missing file shows as a grey tile
        return tile
    tile.paste(face, ((THUMB - face.width) // 2, (THUMB - face.height) // 2))
    return tile


def face_crop(source: str | bytes, box: Sequence[int], size: int = THUMB, **limits: int) -> Image.Image:
    """The face at ``box`` (left, top, width, height in full-size pixels) with a quarter of its size as margin,
    at most ``size`` pixels a side. ``limits``: ``max_pixels`` / ``max_bytes`` of :func:`lookalike.io.read.load`."""
    img = load(source, min_side=None, **limits).image  # full size: the box is in full-size pixels
    x, y, w, h = (int(v) for v in box)
    m = max(w, h) // 4
    face = img.crop((max(0, x - m), max(0, y - m), min(img.width, x + w + m), min(img.height, y + h + m)))
    face.thumbnail((size, size))
    return face
