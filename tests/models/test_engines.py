"""Inference engines of EfficientNet-Lite (lookalike.models.efficientnet): torch eager and ONNX Runtime give the
same vectors on real photos, the ONNX export is cached and checked, and bad choices fail with one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.config import Settings
from lookalike.errors import LookalikeError
from lookalike.io.read import load
from lookalike.models import efficientnet
from lookalike.models.efficientnet import EfficientNetLite, onnx_export_path
from lookalike.samples import sample_photos

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private user cache folder for the whole session (the export is made once, here)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield mp


@pytest.fixture(scope="session")
def torch_model() -> EfficientNetLite:
    return EfficientNetLite(engine="torch", threads=2)


@pytest.fixture(scope="session")
def onnx_model(onnx_cache) -> EfficientNetLite:  # type: ignore[no-untyped-def]
    return EfficientNetLite(engine="onnx", threads=2)


@pytest.fixture(scope="session")
def photo_batch(torch_model: EfficientNetLite) -> np.ndarray:
    photos = sorted(sample_photos().items())[::6]  # a dozen real photos of every kind and size
    return np.stack([torch_model.preprocess(load(p).image) for _, p in photos])


def test_onnx_engine_gives_the_torch_vectors_on_real_photos(torch_model, onnx_model, photo_batch):
    ref = torch_model.forward(photo_batch)
    got = onnx_model.forward(photo_batch)
    assert onnx_model.engine == "onnx" and torch_model.engine == "torch"
    cos = (ref.embeddings * got.embeddings).sum(axis=1)
    assert cos.min() >= 0.999
    assert np.allclose(np.linalg.norm(got.embeddings, axis=1), 1.0, atol=1e-4)
    assert got.class_scores is not None and ref.class_scores is not None
    assert np.allclose(got.class_scores.sum(axis=1), 1.0, atol=1e-4)
    assert (got.class_scores.argmax(axis=1) == ref.class_scores.argmax(axis=1)).all()


def test_engines_share_one_version_so_switching_never_reembeds(torch_model, onnx_model):
    assert torch_model.version == onnx_model.version
    assert onnx_model.dim == 1280 and onnx_model.input_size == 224


def test_onnx_engine_handles_any_batch_size(onnx_model, photo_batch):
    one = onnx_model.forward(photo_batch[:1])
    many = onnx_model.forward(photo_batch)
    assert one.embeddings.shape == (1, 1280)
    assert float(one.embeddings[0] @ many.embeddings[0]) >= 0.9999


def test_export_is_cached_and_reused(onnx_model, monkeypatch):
    path = onnx_export_path(onnx_model.name, efficientnet._weights_path(onnx_model.name))
    assert path.is_file() and path.stat().st_size > 1_000_000
    assert not list(path.parent.glob("*.tmp"))  # written atomically

    def no_export(*a, **k):  # noqa: ANN002, ANN003
        raise AssertionError("exported again although the cache holds the export")

    monkeypatch.setattr(EfficientNetLite, "_export_onnx", no_export)
    again = EfficientNetLite(engine="auto")
    assert again.engine == "onnx" and again.net is None  # loaded from the cache, torch model never built


def test_damaged_cache_file_is_exported_again(onnx_model, photo_batch, tmp_path, monkeypatch):
    good = onnx_export_path(onnx_model.name, efficientnet._weights_path(onnx_model.name))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = onnx_export_path(onnx_model.name, efficientnet._weights_path(onnx_model.name))
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an onnx file")
    exports = []

    def export(self, weights: str, dest: Path) -> None:  # the real export is tested above; reuse its file
        exports.append(dest)
        dest.write_bytes(good.read_bytes())

    monkeypatch.setattr(EfficientNetLite, "_export_onnx", export)
    model = EfficientNetLite(engine="onnx", threads=2)
    assert exports == [path] and model.engine == "onnx"
    ref = onnx_model.forward(photo_batch[:4]).embeddings
    assert ((model.forward(photo_batch[:4]).embeddings * ref).sum(axis=1) >= 0.9999).all()


def test_export_that_disagrees_with_torch_is_refused(onnx_model, torch_model, monkeypatch):
    good = onnx_export_path(onnx_model.name, efficientnet._weights_path(onnx_model.name))
    monkeypatch.setattr(efficientnet, "MIN_EXPORT_COSINE", 1.5)  # no export can pass this bar
    with pytest.raises(LookalikeError, match="disagrees with torch"):
        torch_model._check_export(good)


def test_failed_export_leaves_nothing_and_auto_falls_back_to_torch(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(torch.onnx, "export", lambda m, a, f, **k: Path(f).write_bytes(b"half an export"))

    def bad_check(self, path: Path) -> None:
        raise LookalikeError("the ONNX export disagrees with torch (cosine 0.5000)")

    monkeypatch.setattr(EfficientNetLite, "_check_export", bad_check)
    with pytest.raises(LookalikeError, match="disagrees with torch"):
        EfficientNetLite(engine="onnx")
    assert EfficientNetLite(engine="auto").engine == "torch"
    assert not [p for p in Path(tmp_path).rglob("*") if p.is_file()]  # nothing half-written left behind


def test_without_onnxruntime(monkeypatch):
    monkeypatch.setattr(efficientnet, "_onnx_available", lambda: False)
    with pytest.raises(LookalikeError, match=r"pip install 'lookalike\[onnx\]'"):
        EfficientNetLite(engine="onnx")
    assert EfficientNetLite(engine="auto").engine == "torch"


def test_unknown_engine_is_a_one_line_error():
    with pytest.raises(LookalikeError) as err:
        EfficientNetLite(engine="tensorrt")
    assert "\n" not in str(err.value) and "auto, torch, onnx" in str(err.value)


def test_onnx_engine_is_cpu_only():
    with pytest.raises(LookalikeError, match="CPU only"):
        EfficientNetLite(engine="onnx", device="cuda")


def test_engine_setting_from_environment():
    assert Settings.from_env({}).engine == "auto"
    s = Settings.from_env({"LOOKALIKE_ENGINE": "torch", "LOOKALIKE_THREADS": "1"})
    assert (s.engine, s.threads) == ("torch", 1)


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_matches_cpu(torch_model, photo_batch):  # pragma: no cover - no GPU on CI
    gpu = EfficientNetLite(device="cuda")
    assert gpu.engine == "torch" and gpu.half
    cos = (gpu.forward(photo_batch).embeddings * torch_model.forward(photo_batch).embeddings).sum(axis=1)
    assert cos.min() >= 0.99
