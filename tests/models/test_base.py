"""Model preprocessing (lookalike.models.base.resize_center_crop): resampling only the central square gives the
pixels of resizing the whole image and cropping (up to rounding), on real photos of every shape."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.io.read import load
from lookalike.models.base import resize_center_crop
from lookalike.samples import sample_photos


def _reference(image: Image.Image, size: int, crop_fraction: float = 0.875) -> np.ndarray:
    """The plain way: resize the whole image (shorter side to size/crop_fraction), then crop the centre."""
    short = round(size / crop_fraction)
    w, h = image.size
    scale = short / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    if (nw, nh) != (w, h):
        image = image.resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=None if scale > 0.5 else 2.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.uint8)


@pytest.mark.parametrize("name", ["chelsea", "rocket", "gold_fish", "perception_image8", "retina",
                                  "interior_pexels-4543103", "interior_pexels-36444540"])
@pytest.mark.parametrize("size", [224, 260])
def test_crop_box_resize_equals_resize_then_crop(name, size):
    photos = sample_photos()
    if name not in photos:
        pytest.skip(f"sample photo {name} not installed")
    for min_side in (256, None):  # the reduced (draft) decode the indexer uses, and the full image
        img = load(photos[name], min_side=min_side).image
        got, ref = resize_center_crop(img, size), _reference(img, size)
        assert got.shape == ref.shape == (size, size, 3)
        diff = np.abs(got.astype(np.int16) - ref.astype(np.int16))
        assert diff.max() <= 2 and diff.mean() < 0.5  # rounding only


def test_exact_size_and_tiny_images():
    img = Image.new("RGB", (256, 300), (10, 200, 30))
    assert resize_center_crop(img, 224).shape == (224, 224, 3)
    tiny = Image.new("L", (20, 12), 77)  # upscaled, grayscale made 3-channel
    out = resize_center_crop(tiny, 224)
    assert out.shape == (224, 224, 3) and (out == 77).all()


def test_model_identity_matches_name_version_and_dimension(fake_model) -> None:  # type: ignore[no-untyped-def]
    from lookalike.models.base import ModelIdentity

    stored = ModelIdentity.stored({"name": fake_model.name, "version": "1", "dim": "48"})
    assert stored == ModelIdentity.of(fake_model) and stored.matches(fake_model) and stored.mismatch(fake_model) is None
    assert ModelIdentity.stored(None) is None
    for info, says in [({"name": "other", "version": "1", "dim": "48"}, "search with --model other"),
                       ({"name": fake_model.name, "version": "1", "dim": "512"}, "search with --model"),
                       ({"name": fake_model.name, "version": "0", "dim": "48"}, "version 0"),
                       ({"name": fake_model.name, "version": "1", "dim": ""}, "search with --model")]:
        other = ModelIdentity.stored(info)
        assert other is not None and not other.matches(fake_model)
        assert says in (other.mismatch(fake_model) or "")
