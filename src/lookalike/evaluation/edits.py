"""Edited copies of a photo, as people make them: crops, rotations, mirrors, watermarks, recompression,
downscaling, colour changes. Used by the quality benchmark (``bench/quality.py``, ``lookalike eval``), the
scale benchmark's data and the tests. Deterministic: the same photo and seed give the same edit.

Each edit is a function ``(image, rng) -> image`` on RGB Pillow images. ``EDITS`` names them; ``HARD`` are
the two that the DESIGN notes found hardest (a 40% crop, a 20-degree rotation).
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from functools import partial

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Edit = Callable[[Image.Image, random.Random], Image.Image]


def crop(image: Image.Image, rng: random.Random, fraction: float) -> Image.Image:
    """Cut ``fraction`` of the width and of the height away, at a random place (0.4 keeps 60% x 60%)."""
    w, h = image.size
    cw, ch = max(1, round(w * (1 - fraction))), max(1, round(h * (1 - fraction)))
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    return image.crop((left, top, left + cw, top + ch))


def rotate(image: Image.Image, rng: random.Random, degrees: float) -> Image.Image:
    """Rotate by ``degrees`` (either way), same canvas size, corners filled black."""
    return image.rotate(degrees * rng.choice((-1, 1)), resample=Image.Resampling.BICUBIC, expand=False)


def mirror(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.mirror(image)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def text_watermark(image: Image.Image, rng: random.Random) -> Image.Image:
    """A large semi-transparent caption across the middle and a small one in a corner."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    w, h = base.size
    big = _font(max(12, w // 9))
    text = rng.choice(("SAMPLE", "© lookalike", "PREVIEW", "stock photo"))
    box = draw.textbbox((0, 0), text, font=big)
    tx, ty = (w - (box[2] - box[0])) // 2, (h - (box[3] - box[1])) // 2
    draw.text((tx, ty), text, font=big, fill=(255, 255, 255, 150), stroke_width=2, stroke_fill=(0, 0, 0, 150))
    draw.text((w // 40, h - h // 12), "@someone 2026", font=_font(max(10, w // 30)), fill=(255, 255, 255, 220))
    return Image.alpha_composite(base, layer).convert("RGB")


def logo_watermark(image: Image.Image, rng: random.Random, logo: Image.Image | None = None) -> Image.Image:
    """A logo over a quarter of the width, in a random corner, at 70% opacity (perception's sample logo
    where installed, else a drawn badge)."""
    if logo is None:
        logo = default_logo()
    base = image.convert("RGBA")
    w, h = base.size
    lw = max(8, w // 4)
    mark = logo.convert("RGBA").resize((lw, max(4, round(logo.height * lw / logo.width))), Image.Resampling.LANCZOS)
    alpha = mark.getchannel("A").point(lambda a: a * 7 // 10)
    mark.putalpha(alpha)
    m = max(2, w // 40)
    x = rng.choice((m, w - mark.width - m))
    y = rng.choice((m, h - mark.height - m))
    base.alpha_composite(mark, (max(0, x), max(0, y)))
    return base.convert("RGB")


def default_logo() -> Image.Image:
    from lookalike.samples import perception_logo

    path = perception_logo()
    if path is not None:
        with Image.open(path) as im:
            return im.convert("RGBA")
    badge = Image.new("RGBA", (200, 80), (0, 0, 0, 0))
    d = ImageDraw.Draw(badge)
    d.rounded_rectangle((0, 0, 199, 79), radius=20, fill=(20, 90, 200, 255))
    d.text((24, 18), "LOGO", font=_font(40), fill=(255, 255, 255, 255))
    return badge


def jpeg(image: Image.Image, rng: random.Random, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return im.convert("RGB")


def downscale(image: Image.Image, rng: random.Random, factor: float) -> Image.Image:
    w, h = image.size
    return image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR)


def brightness_contrast(image: Image.Image, rng: random.Random) -> Image.Image:
    """Brightness and contrast each 30% up or down (stronger changes wash a bright photo out to white, which
    leaves nothing to recognise)."""
    out = ImageEnhance.Brightness(image).enhance(rng.choice((0.7, 1.3)))
    return ImageEnhance.Contrast(out).enhance(rng.choice((0.7, 1.3)))


def grayscale(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def recolour(image: Image.Image, rng: random.Random) -> Image.Image:
    """Hue turned by a sixth of the circle and saturation raised (a filter, as apps apply)."""
    hsv = image.convert("HSV")
    h, s, v = hsv.split()
    shift = rng.choice((40, -40))
    h = h.point(lambda x: (x + shift) % 256)
    s = s.point(lambda x: min(255, int(x * 1.3)))
    return Image.merge("HSV", (h, s, v)).convert("RGB")


EDITS: dict[str, Edit] = {
    "crop10": partial(crop, fraction=0.10),
    "crop25": partial(crop, fraction=0.25),
    "crop40": partial(crop, fraction=0.40),
    "rotate5": partial(rotate, degrees=5),
    "rotate10": partial(rotate, degrees=10),
    "rotate20": partial(rotate, degrees=20),
    "mirror": mirror,
    "text": text_watermark,
    "logo": logo_watermark,
    "jpeg20": partial(jpeg, quality=20),
    "jpeg40": partial(jpeg, quality=40),
    "downscale4": partial(downscale, factor=0.25),
    "resize50": partial(downscale, factor=0.5),
    "brightness": brightness_contrast,
    "grayscale": grayscale,
    "recolour": recolour,
}
HARD = ("crop40", "rotate20")


def apply(name: str, image: Image.Image, seed: int | str = 0) -> Image.Image:
    """The edit ``name`` of ``image`` (RGB), deterministic for a given seed."""
    try:
        fn = EDITS[name]
    except KeyError:
        raise KeyError(f"unknown edit {name!r}; known: {', '.join(EDITS)}") from None
    return fn(image.convert("RGB"), random.Random(f"{name}:{seed}"))
