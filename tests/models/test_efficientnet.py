"""Tests for EfficientNet-Lite (lookalike.models.efficientnet) on real photos."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from PIL import Image

from lookalike.errors import LookalikeError
from lookalike.models.base import Model
from lookalike.models.efficientnet import VARIANTS, EfficientNetLite
from lookalike.models.registry import load_model
from lookalike.samples import sample_photos

DOMESTIC_CATS = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def images() -> dict[str, Image.Image]:
    found = sample_photos()
    return {n: Image.open(found[n]).convert("RGB") for n in ("chelsea", "astronaut", "coffee", "rocket")}


def test_lite0_protocol_and_dims(model: EfficientNetLite) -> None:
    assert isinstance(model, Model)
    assert (model.name, model.dim, model.num_classes, model.input_size) == ("efficientnet-lite0", 1280, 1000, 224)
    assert model.name in model.version


def test_preprocess_shape_and_dtype(model: EfficientNetLite, images: dict[str, Image.Image]) -> None:
    for im in images.values():
        arr = model.preprocess(im)
        assert arr.shape == (224, 224, 3) and arr.dtype == np.uint8
    gray = images["chelsea"].convert("L")  # one channel in, three out
    assert model.preprocess(gray).shape == (224, 224, 3)


def test_embeddings_normalised_scores_are_probabilities(model: EfficientNetLite, images: dict[str, Image.Image]) -> None:
    enc = model.encode(list(images.values()))
    assert enc.embeddings.shape == (4, 1280) and enc.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(enc.embeddings, axis=1), 1.0, atol=1e-5)
    assert enc.class_scores is not None and enc.class_scores.shape == (4, 1000)
    np.testing.assert_allclose(enc.class_scores.sum(axis=1), 1.0, atol=1e-4)
    assert (enc.class_scores >= 0).all()


def test_chelsea_is_a_cat(model: EfficientNetLite, images: dict[str, Image.Image]) -> None:
    scores = model.encode([images["chelsea"]]).class_scores
    assert scores is not None and int(np.argmax(scores[0])) in DOMESTIC_CATS


def test_batch_equals_single(model: EfficientNetLite, images: dict[str, Image.Image]) -> None:
    ims = list(images.values())
    batch = model.encode(ims)
    for i, im in enumerate(ims):
        one = model.encode([im])
        np.testing.assert_allclose(one.embeddings[0], batch.embeddings[i], atol=1e-4)
        np.testing.assert_allclose(one.class_scores[0], batch.class_scores[i], atol=1e-4)  # type: ignore[index]


def test_empty_batch(model: EfficientNetLite) -> None:
    enc = model.encode([])
    assert enc.embeddings.shape == (0, 1280) and enc.class_scores is not None and enc.class_scores.shape == (0, 1000)


def test_variant_input_sizes_match_the_model_package() -> None:
    """VARIANTS' sizes are the ones efficientnet_lite_pytorch builds each variant for (lite1 240, lite2 260)."""
    from efficientnet_lite_pytorch import EfficientNet

    for name, (_, _, size) in VARIANTS.items():
        assert EfficientNet.get_image_size(name) == size, name
    assert [v[2] for v in VARIANTS.values()] == [224, 240, 260]


def test_unknown_variant_is_one_line_error() -> None:
    with pytest.raises(LookalikeError, match="unknown model") as err:
        EfficientNetLite("efficientnet-lite9")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["efficientnet-lite1", "efficientnet-lite2"])
def test_larger_variants_when_installed(name: str, images: dict[str, Image.Image]) -> None:
    package = VARIANTS[name][0]
    if importlib.util.find_spec(package) is None:
        with pytest.raises(LookalikeError, match=f"pip install {package.replace('_', '-')}"):
            load_model(name)
        pytest.skip(f"{package} not installed (pip install '.[models]')")
    m = load_model(name)
    assert (m.dim, m.num_classes, m.input_size) == (1280, 1000, VARIANTS[name][2])
    assert m.preprocess(images["chelsea"]).shape == (m.input_size, m.input_size, 3)
    enc = m.encode([images["chelsea"], images["rocket"]])
    np.testing.assert_allclose(np.linalg.norm(enc.embeddings, axis=1), 1.0, atol=1e-5)
    assert enc.class_scores is not None and int(np.argmax(enc.class_scores[0])) in DOMESTIC_CATS
