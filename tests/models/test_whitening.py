"""Tests for the learned whitening / centring of embeddings (lookalike.models.whitening), on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.models.whitening import DEFAULT, REFIT_GROWTH, Whitening


@pytest.fixture(scope="module")
def vectors(photos: Path, model) -> np.ndarray:  # type: ignore[no-untyped-def]
    from PIL import Image

    ims = [Image.open(p).convert("RGB") for p in sorted(photos.iterdir())]
    return model.encode(ims).embeddings


def test_centring_is_the_default_and_keeps_no_matrix(vectors: np.ndarray) -> None:
    w = Whitening.fit_batches([vectors], **DEFAULT)  # type: ignore[arg-type]
    assert w.projection is None and w.fitted_on == len(vectors) and w.dim == vectors.shape[1]
    out = w.apply(vectors)
    expected = vectors - vectors.mean(0)
    np.testing.assert_allclose(out, expected / np.linalg.norm(expected, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    # centring removes what all photos share: plain cosines of unrelated photos are all positive, centred
    # ones average -1/(n-1) (centred vectors sum to zero)
    off = ~np.eye(len(vectors), dtype=bool)
    assert (vectors @ vectors.T)[off].min() > 0
    assert abs((out @ out.T)[off].mean() + 1 / (len(vectors) - 1)) < 0.02


def test_streamed_fit_equals_one_shot(vectors: np.ndarray) -> None:
    one = Whitening.fit(vectors, dims=8, shrink=0.1, power=0.5)
    streamed = Whitening.fit_batches([vectors[:5], vectors[5:11], vectors[11:]], dims=8, shrink=0.1, power=0.5,
                                     beta=1.0)
    np.testing.assert_allclose(one.mean, streamed.mean, atol=1e-6)
    a, b = one.apply(vectors), streamed.apply(vectors)
    np.testing.assert_allclose(np.abs((a * b).sum(1)), 1.0, atol=1e-4)  # same space (axes up to sign)


def test_full_whitening_decorrelates_the_kept_axes(vectors: np.ndarray) -> None:
    w = Whitening.fit(vectors, dims=6, shrink=0.0, power=1.0)
    y = (vectors - w.mean) @ w.projection  # before the final L2
    np.testing.assert_allclose(np.cov(y.T), np.eye(6), atol=1e-3)


def test_round_trip_through_bytes(vectors: np.ndarray) -> None:
    for w in (Whitening.fit_batches([vectors], **DEFAULT), Whitening.fit(vectors, dims=4)):  # type: ignore[arg-type]
        back = Whitening.from_bytes(w.to_bytes())
        assert (back.power, back.shrink, back.beta, back.fitted_on) == (w.power, w.shrink, w.beta, w.fitted_on)
        np.testing.assert_array_equal(back.apply(vectors), w.apply(vectors))


def test_stale_when_the_collection_doubled_or_halved() -> None:
    w = Whitening(np.zeros(4, np.float32), None, fitted_on=100)
    assert not w.stale(100) and not w.stale(199) and not w.stale(51)
    assert w.stale(int(100 * REFIT_GROWTH)) and w.stale(50)


def test_nothing_to_fit_is_an_error() -> None:
    with pytest.raises(ValueError, match="no vectors"):
        Whitening.fit_batches([])
