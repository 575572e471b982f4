"""dlib faces on real photos: the astronaut, a mirrored rescaled copy, another person, a cat."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.models.faces import SAME_PERSON, FaceModel, distance, face_model
from lookalike.samples import sample_photos


@pytest.fixture(scope="module")
def fm() -> FaceModel:
    return face_model()


def _photo(name: str) -> Image.Image:
    with Image.open(sample_photos()[name]) as im:
        return im.convert("RGB")


def test_same_person_in_a_mirrored_rescaled_copy(fm: FaceModel) -> None:
    astro = _photo("astronaut")
    a = fm.faces(astro)
    b = fm.faces(ImageOps.mirror(astro).resize((300, 300)))
    assert a and b
    assert a[0].embedding.shape == (128,) and a[0].embedding.dtype == np.float32
    assert distance(a[0].embedding[None], b[0].embedding)[0] < 0.35 < SAME_PERSON
    left, top, w, h = a[0].box
    assert 150 < left < 200 and 50 < top < 100 and 70 < w < 120  # Eileen Collins' face


def test_other_person_is_far(fm: FaceModel) -> None:
    a = fm.faces(_photo("astronaut"))[0]
    other = fm.faces(_photo("interior_pexels-2560067"))
    assert other and distance(other[0].embedding[None], a.embedding)[0] > SAME_PERSON


def test_no_faces(fm: FaceModel) -> None:
    assert fm.faces(_photo("chelsea")) == []
    assert fm.faces(_photo("coffee")) == []


def test_boxes_scale_to_full_size(fm: FaceModel) -> None:
    astro = _photo("astronaut")
    half = astro.resize((256, 256))
    full = fm.faces(astro)[0].box
    from_half = fm.faces(half, full_size=(512, 512))[0].box
    assert all(abs(x - y) <= 12 for x, y in zip(full, from_half))
