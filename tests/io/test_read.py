"""Decoding real photos and rejecting bad files with one-line reasons."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import ImageError
from lookalike.io.read import decode, load, rgb_within, to_rgb
from lookalike.samples import sample_photos


@pytest.fixture(scope="module")
def chelsea() -> Image.Image:
    return Image.open(sample_photos()["chelsea"]).convert("RGB")


def _bytes(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_decodes_real_photo(chelsea: Image.Image) -> None:
    d = decode(_bytes(chelsea, "JPEG", quality=90))
    assert d.image.mode == "RGB"
    assert (d.width, d.height) == chelsea.size
    assert len(d.sha) == 32 and d.nbytes > 1000


def test_rgb_within_caps_the_longer_side(chelsea: Image.Image) -> None:
    small, scale = rgb_within(chelsea, 200)  # 451 x 300
    assert small.size == (200, 133) and small.mode == "RGB" and scale == pytest.approx(200 / 451)
    same, one = rgb_within(chelsea.convert("L"), 1000)
    assert same.mode == "RGB" and same.size == chelsea.size and one == 1.0


def test_jpeg_draft_keeps_shorter_side(chelsea: Image.Image) -> None:
    big = chelsea.resize((chelsea.width * 6, chelsea.height * 6))
    d = decode(_bytes(big, "JPEG"), min_side=256)
    assert (d.width, d.height) == big.size  # the record keeps the full size
    assert min(d.image.size) >= 256 and d.image.width < big.width  # decoded at a reduced scale
    full = decode(_bytes(big, "JPEG"), min_side=None)
    assert full.image.size == big.size


def test_exif_orientation_applied(chelsea: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    exif[0x0110] = "TestCam X1"
    exif[0x010F] = "Acme"
    d = decode(_bytes(chelsea, "JPEG", exif=exif.tobytes()), min_side=None)
    assert d.image.size == (chelsea.height, chelsea.width)
    assert (d.width, d.height) == (chelsea.height, chelsea.width)
    assert d.camera == "Acme TestCam X1"


def test_exif_date_taken(chelsea: Image.Image) -> None:
    exif = Image.Exif()
    exif.get_ifd(0x8769)[36867] = "2021:07:04 15:30:00"
    d = decode(_bytes(chelsea, "JPEG", exif=exif.tobytes()))
    assert d.taken_at == "2021-07-04T15:30:00"


def test_rgba_composited_on_white() -> None:
    img = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red
    img.paste((0, 0, 255, 255), (0, 0, 32, 64))
    d = decode(_bytes(img, "PNG"))
    px = np.asarray(d.image)
    assert tuple(px[10, 50]) == (255, 255, 255)  # transparent -> white, not black or red
    assert tuple(px[10, 10]) == (0, 0, 255)


@pytest.mark.parametrize("mode", ["P", "L", "1", "CMYK", "I;16", "LA", "I", "F"])
def test_modes_convert_to_rgb(chelsea: Image.Image, mode: str) -> None:
    small = chelsea.resize((80, 60))
    if mode == "I;16":
        arr = (np.asarray(small.convert("L"), dtype=np.uint16) * 257)
        img = Image.fromarray(arr)
        assert img.mode.startswith("I;16")
    elif mode in ("I", "F"):
        img = small.convert("L").convert(mode)
    else:
        img = small.convert(mode)
    out = to_rgb(img)
    assert out.mode == "RGB" and out.size == (80, 60)
    assert np.asarray(out).std() > 5  # the picture survived conversion


def test_sixteen_bit_png_file(chelsea: Image.Image) -> None:
    arr = np.asarray(chelsea.convert("L"), dtype=np.uint16) * 257
    d = decode(_bytes(Image.fromarray(arr), "PNG"))
    assert d.image.mode == "RGB" and np.asarray(d.image).std() > 5


def test_animated_gif_first_frame() -> None:
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    d = decode(buf.getvalue())
    r, g, b = np.asarray(d.image)[20, 20]
    assert r > 200 and g < 50 and b < 50


def test_empty_file() -> None:
    with pytest.raises(ImageError, match="empty file"):
        decode(b"")


def test_not_an_image() -> None:
    with pytest.raises(ImageError, match="not an image"):
        decode(b"this is a text file named .jpg\n" * 20)


def test_truncated_jpeg(chelsea: Image.Image) -> None:
    data = _bytes(chelsea, "JPEG")
    with pytest.raises(ImageError, match="truncated or corrupt"):
        decode(data[: len(data) // 2])


def test_corrupt_middle(chelsea: Image.Image) -> None:
    data = bytearray(_bytes(chelsea, "PNG"))
    data[200:600] = b"\x00" * 400
    with pytest.raises(ImageError):
        decode(bytes(data))


def test_decompression_bomb() -> None:
    bomb = _bytes(Image.new("1", (12_000, 12_000)), "PNG")  # 144 MP in a few KB
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="decompression bomb"):
        decode(bomb)
    with pytest.raises(ImageError, match="too large"):
        decode(_bytes(Image.new("RGB", (100, 100)), "PNG"), max_pixels=5_000)


def test_errors_are_one_line(chelsea: Image.Image) -> None:
    for bad in (b"", b"GIF89a" + b"\x00" * 10, _bytes(chelsea, "JPEG")[:300]):
        with pytest.raises(ImageError) as info:
            decode(bad)
        assert "\n" not in str(info.value) and str(info.value)


def test_load_unicode_path(tmp_path: Path, chelsea: Image.Image) -> None:
    p = tmp_path / "фото 猫 café.jpg"
    chelsea.save(p)
    d = load(p)
    assert d.image.size[0] > 0


def test_missing_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        load(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="folder"):
        load(tmp_path)


@pytest.mark.parametrize("fmt", ["HEIF", "AVIF"])
def test_heic_and_avif(chelsea: Image.Image, fmt: str) -> None:
    pytest.importorskip("pillow_heif")
    import lookalike.io.read  # noqa: F401 - registers the HEIF opener

    try:
        data = _bytes(chelsea, fmt, quality=80)
    except (KeyError, OSError) as err:
        pytest.skip(f"this Pillow cannot write {fmt}: {err}")
    d = decode(data)
    assert d.image.size == chelsea.size and d.image.mode == "RGB"
    assert abs(np.asarray(d.image).astype(float).mean() - np.asarray(chelsea).astype(float).mean()) < 8


# -- hardening (issue 12): never block on a FIFO, never read more than the cap -------------------------------
def test_fifo_refused_without_blocking(tmp_path: Path) -> None:
    import os
    import threading

    from lookalike.io.read import read_file

    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    out: list[BaseException] = []
    t = threading.Thread(target=lambda: out.append(pytest.raises(ImageError, read_file, fifo).value), daemon=True)
    t.start()
    t.join(5)
    if t.is_alive():  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("read_file blocked on a FIFO")
    assert "FIFO" in str(out[0])


def test_device_refused_and_size_cap(tmp_path: Path) -> None:
    from lookalike.io.read import read_file

    with pytest.raises(ImageError, match="character device"):
        read_file("/dev/zero", max_bytes=None)
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 5000)
    with pytest.raises(ImageError, match="too large"):
        read_file(big, max_bytes=4096)
    assert len(read_file(big, max_bytes=5000)) == 5000


def test_nofollow_refuses_a_swapped_in_symlink(tmp_path: Path) -> None:
    import os

    from lookalike.io.read import read_file

    (tmp_path / "real.jpg").write_bytes(b"abc")
    os.symlink(tmp_path / "real.jpg", tmp_path / "link.jpg")
    assert read_file(tmp_path / "link.jpg") == b"abc"
    with pytest.raises(ImageError, match="symlink"):
        read_file(tmp_path / "link.jpg", nofollow=True)
