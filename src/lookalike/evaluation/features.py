"""EfficientNet-Lite's last feature map, pooled every way ``bench/retrieval.py`` compares, cached per image.

An ONNX export of the network up to its last feature map, with free spatial size (so one graph serves the
160/224/288 px inputs of the multi-scale variants), runs once per image and scale; the poolings are numpy:
``mean`` (what the model ships), ``gem`` (generalised mean, p=3; p=2 and 4 too), ``max`` (MAC), ``rmac``
(regional max over a 3-level grid, Tolias et al. 2016) and ``rgem`` (the same regions, GeM). Results are
cached in one ``.npz`` per set, per image name, so a rerun only evaluates and a grown set computes only
what is new.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageStat

from lookalike.models.base import l2_normalize as l2n
from lookalike.models.base import resize_center_crop
from lookalike.progress import progress_bar

SCALES = (224, 160, 288)  # input sizes for the multi-scale variants; 224 is the model's own


# -- feature maps --------------------------------------------------------------------------------------------
class FeatureMaps:
    """EfficientNet-Lite0's last feature map for uint8 NHWC batches of any square size (an ONNX export with
    free spatial axes, cached beside the model's own export)."""

    def __init__(self, model_name: str = "efficientnet-lite0", threads: int = 0) -> None:
        import onnxruntime as ort

        from lookalike.models.efficientnet import _weights_path, onnx_cache_dir

        weights = _weights_path(model_name)
        path = onnx_cache_dir() / f"{model_name}-featuremap-w{os.path.getsize(weights)}.onnx"
        if not path.is_file():
            self._export(model_name, weights, path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        import torch

        self.fc_w = None
        with contextlib.redirect_stdout(io.StringIO()):
            from efficientnet_lite_pytorch import EfficientNet

            net = EfficientNet.from_pretrained(model_name, weights_path=weights, num_classes=1000)
        self.fc_w = net._fc.weight.detach().numpy().T.copy()
        self.fc_b = net._fc.bias.detach().numpy().copy()
        del net, torch

    @staticmethod
    def _export(model_name: str, weights: str, path: Path) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained(model_name, weights_path=weights, num_classes=1000).eval()

        class Graph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net.extract_features(x.permute(0, 3, 1, 2).float().sub(127.0).div(128.0))

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(Graph().eval(), (torch.zeros(1, 224, 224, 3, dtype=torch.uint8),), str(tmp),
                              input_names=["pixels"], output_names=["fmap"], opset_version=17, dynamo=False,
                              dynamic_axes={"pixels": {0: "n", 1: "h", 2: "w"}, "fmap": {0: "n", 2: "fh", 3: "fw"}})
        os.replace(tmp, path)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": np.ascontiguousarray(batch, dtype=np.uint8)})[0]

    def class_scores(self, pooled_mean: np.ndarray) -> np.ndarray:
        z = pooled_mean @ self.fc_w + self.fc_b
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


# -- pooling (numpy, over (n, C, h, w)) --------------------------------------------------------------------------
def pool_mean(f: np.ndarray) -> np.ndarray:
    return f.mean((2, 3))


def pool_max(f: np.ndarray) -> np.ndarray:
    return f.max((2, 3))


def pool_gem(f: np.ndarray, p: float = 3.0) -> np.ndarray:
    return np.power(np.power(np.clip(f, 1e-6, None), p).mean((2, 3)), 1.0 / p)


def rmac_regions(h: int, w: int, levels: int = 3) -> list[tuple[int, int, int, int]]:
    """Square regions of R-MAC (Tolias et al.): at level l, side 2*min(h,w)/(l+1), evenly spaced, ~40% overlap."""
    out = [(0, h, 0, w)]
    for lv in range(1, levels + 1):
        side = max(1, round(2 * min(h, w) / (lv + 1)))
        ny, nx = lv + (h > w), lv + (w > h)
        ys = np.unique(np.round(np.linspace(0, h - side, ny)).astype(int)) if ny > 1 else [0]
        xs = np.unique(np.round(np.linspace(0, w - side, nx)).astype(int)) if nx > 1 else [0]
        out += [(int(y), int(y) + side, int(x), int(x) + side) for y in ys for x in xs]
    return out


def pool_rmac(f: np.ndarray, levels: int = 3, regional: Callable[[np.ndarray], np.ndarray] = pool_max) -> np.ndarray:
    """Sum of the L2-normalised regional poolings (max by default) of the regions of :func:`rmac_regions`."""
    _, _, h, w = f.shape
    acc = np.zeros(f.shape[:2], np.float32)
    for y0, y1, x0, x1 in rmac_regions(h, w, levels):
        acc += l2n(regional(f[:, :, y0:y1, x0:x1]))
    return acc


POOLINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": pool_mean, "gem": pool_gem, "max": pool_max, "rmac": pool_rmac,
    "gem2": lambda f: pool_gem(f, 2.0), "gem4": lambda f: pool_gem(f, 4.0),
    "rgem": lambda f: pool_rmac(f, regional=pool_gem),
}


# -- extraction with a cache ------------------------------------------------------------------------------------
@dataclass
class Pooled:
    """Per scale, per pooling: (n, 1280) float32, not normalised; the class scores at 224 px; and per row
    the item it came from and its tag (an edit's name)."""
    vectors: dict[tuple[int, str], np.ndarray]
    class_scores: np.ndarray
    item: np.ndarray
    tag: np.ndarray


def extract(items: Sequence[Callable[[], list[tuple[str, Image.Image]]]], names: Sequence[str], fm: FeatureMaps,
            cache: Path, label: str, scales: Sequence[int] = SCALES, batch: int = 16, workers: int = 2,
            progress: bool = True) -> Pooled:
    """Pool every image at every scale with every pooling. ``items``: loaders, each giving one or more
    (tag, image) (a file; an original's edits), named by ``names``. Cached in ``cache/label.npz`` per name, so
    a rerun only evaluates, and a set that gained a photo only computes that one."""
    cache.mkdir(parents=True, exist_ok=True)
    file = cache / f"{label}.npz"
    keys = [f"{s}:{p}" for s in scales for p in POOLINGS]
    old: dict[str, np.ndarray] = {}
    if file.is_file():
        z = np.load(file)
        if all(k in z.files for k in keys):
            old = {k: z[k] for k in [*keys, "class_scores", "tag", "name"]}
    have = {str(n) for n in old.get("name", [])}
    todo = [i for i, n in enumerate(names) if n not in have]
    new = _compute([items[i] for i in todo], [names[i] for i in todo], fm, scales, batch, workers,
                   progress and bool(todo), label) if todo else None
    merged = {k: np.concatenate([v for v in (old.get(k), None if new is None else new[k]) if v is not None])
              for k in [*keys, "class_scores", "tag", "name"]}
    if todo:
        np.savez(file, **merged)
    rows_of: dict[str, list[int]] = {}
    for r, n in enumerate(merged["name"]):
        rows_of.setdefault(str(n), []).append(r)
    order = [r for n in names for r in rows_of.get(n, [])]
    item = np.array([i for i, n in enumerate(names) for _ in rows_of.get(n, [])], np.int64)
    vecs = {(int(k.split(":")[0]), k.split(":")[1]): merged[k][order] for k in keys}
    return Pooled(vecs, merged["class_scores"][order], item, merged["tag"][order])


def _compute(items: Sequence[Callable[[], list[tuple[str, Image.Image]]]], names: Sequence[str], fm: FeatureMaps,
             scales: Sequence[int], batch: int, workers: int, progress: bool, label: str) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {f"{s}:{p}": [] for s in scales for p in POOLINGS}
    cls: list[np.ndarray] = []
    bar = progress_bar(len(items), progress, f"features {label}", unit="item")

    def prep(load: Callable[[], list[tuple[str, Image.Image]]]) -> list[tuple[str, dict[int, np.ndarray]]]:
        return [(tag, {s: resize_center_crop(img, s) for s in scales}) for tag, img in load()]

    def run(arrs: list[tuple[str, dict[int, np.ndarray]]]) -> None:
        for s in scales:
            f = fm(np.stack([a[s] for _, a in arrs]))
            for p, fn in POOLINGS.items():
                out[f"{s}:{p}"].append(fn(f).astype(np.float32))
            if s == 224:
                cls.append(fm.class_scores(pool_mean(f)).astype(np.float32))

    pending: list[tuple[str, dict[int, np.ndarray]]] = []
    row_names: list[str] = []
    tags: list[str] = []
    with ThreadPoolExecutor(workers) as pool:
        for n, arrs in zip(names, pool.map(prep, items)):
            pending += arrs
            row_names += [n] * len(arrs)
            tags += [t for t, _ in arrs]
            bar.update(1)
            if len(pending) >= batch:
                run(pending)
                pending = []
    if pending:
        run(pending)
    bar.close()
    res = {k: np.concatenate(v) for k, v in out.items()}
    res.update(class_scores=np.concatenate(cls), tag=np.array(tags, dtype=str), name=np.array(row_names, dtype=str))
    return res


def file_loader(path: str, min_side: int = round(max(SCALES) / 0.875)) -> Callable[[], list[tuple[str, Image.Image]]]:
    """Decode as the indexer does (JPEG draft to just above the largest input size)."""
    def load() -> list[tuple[str, Image.Image]]:
        from lookalike.io.read import load as read

        return [("", read(path, min_side=min_side).image)]
    return load


def copy_queries(originals: Sequence[str], edits: Sequence[str] | None = None) -> list[Callable[[], list[tuple[str, Image.Image]]]]:
    """The edit suite of ``evaluation/copies.py``, one loader per original giving (edit, image) for its edits
    (blank results dropped as there)."""
    edits = list(edits or EDITS_ALL())

    def loader(path: str) -> Callable[[], list[tuple[str, Image.Image]]]:
        def load() -> list[tuple[str, Image.Image]]:
            return _edited(path, edits)
        return load
    return [loader(p) for p in originals]


def EDITS_ALL() -> list[str]:  # noqa: N802
    from lookalike.evaluation.edits import EDITS

    return list(EDITS)


def _edited(path: str, edits: Sequence[str]) -> list[tuple[str, Image.Image]]:
    from lookalike.evaluation.copies import BLANK_STD, WORK_SIDE
    from lookalike.evaluation.edits import apply
    from lookalike.io.read import load as read

    img = read(path, min_side=None).image
    if max(img.size) > WORK_SIDE:
        img = img.copy()
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    out = []
    for e in edits:
        edited = apply(e, img, seed=os.path.basename(path))
        if ImageStat.Stat(edited.convert("L")).stddev[0] >= BLANK_STD:
            out.append((e, edited))
    return out
