"""CLIP-style models (an image tower and a text tower in one vector space) through open_clip's model code.

Nothing is downloaded: the weights must already be on this machine. Model spec (``--model``):

    clip:ARCH:WEIGHTS
        ARCH     an open_clip config name (ViT-B-32, ViT-B-16, ViT-L-14, RN50, ViT-B-32-quickgelu, ...) or the path
                 of a JSON config in open_clip's format ({"embed_dim", "vision_cfg", "text_cfg"}, or an
                 ``open_clip_config.json`` with "model_cfg" and "preprocess_cfg")
        WEIGHTS  a checkpoint file (.pt/.pth/.bin state dict, or .safetensors), or an open_clip pretrained tag
                 (laion2b_s34b_b79k, openai, ...) whose file is already in the local Hugging Face or open_clip cache
    clip:DIR     a folder holding ``open_clip_config.json`` and a checkpoint (a Hugging Face snapshot of an
                 open_clip model, e.g. laion/CLIP-ViT-B-32-laion2B-s34B-b79K)

Preprocessing is open_clip's eval transform re-implemented with PIL + numpy (open_clip's own transforms need
torchvision): shorter side to the input size (bicubic unless the model says otherwise; or "squash" to a
square), central crop, then (x/255 - mean) / std with the model's mean/std.

Why open_clip is not imported the usual way: ``open_clip/__init__.py`` imports its torchvision-based transforms
and training code, and torchvision cannot sit beside the CPU torch build this project pins. Only the modules
needed here are loaded (model, transformer, tokenizer, pretrained, ...), under a private package name that
does not run ``__init__.py`` and so cannot clash with a full ``import open_clip`` elsewhere. The one torchvision
import among them (``FrozenBatchNorm2d`` in utils.py, used only to freeze a ResNet tower for training) gets a
placeholder that raises if it is ever used, unless torchvision itself is installed.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import threading
import types
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lookalike.errors import LookalikeError, NotFound
from lookalike.models.base import BaseModel, Encoded

PREPROCESS_VERSION = "1"  # bump when preprocessing changes the vectors
_PACKAGE = "_lookalike_open_clip"  # private name the open_clip modules are loaded under
_IMPORT_LOCK = threading.Lock()
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# checkpoint names open_clip looks for in a model folder, best first
_DIR_CHECKPOINTS = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
                    "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin", "pytorch_model.pth",
                    "model.pth")
_TEXT_BATCH = 256


# -- open_clip's modules -----------------------------------------------------------------------------------------
def open_clip_module(name: str) -> types.ModuleType:
    """One of open_clip's modules (``"model"``, ``"tokenizer"``, ``"pretrained"``, ...), loaded as described above."""
    with _IMPORT_LOCK:
        if _PACKAGE not in sys.modules:
            _load_package_shell()
        return importlib.import_module(f"{_PACKAGE}.{name}")


def _load_package_shell() -> None:
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError("CLIP models need open_clip: pip install ftfy regex && "
                             "pip install --no-deps open_clip_torch==3.3.0")
    folder = next(iter(spec.submodule_search_locations))
    pkg = types.ModuleType(_PACKAGE)
    pkg.__path__ = [folder]
    pkg.__package__ = _PACKAGE
    pkg.__spec__ = importlib.util.spec_from_file_location(_PACKAGE, os.path.join(folder, "__init__.py"),
                                                          submodule_search_locations=[folder])
    sys.modules[_PACKAGE] = pkg
    try:
        if importlib.util.find_spec("torchvision") is None:
            _import_utils_without_torchvision()
        importlib.import_module(f"{_PACKAGE}.model")
    except ImportError as err:
        for key in [k for k in sys.modules if k == _PACKAGE or k.startswith(_PACKAGE + ".")]:
            del sys.modules[key]
        raise LookalikeError(f"open_clip's model code failed to import: {err}") from None


class _FrozenBatchNorm2dPlaceholder:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise LookalikeError("freezing batch-norm layers needs torchvision, which is not installed")


def _import_utils_without_torchvision() -> None:
    """Import open_clip's utils.py with a stand-in for its single ``from torchvision.ops.misc import ...``; the
    stand-in modules live in sys.modules only for the duration of that one import."""
    names = ("torchvision", "torchvision.ops", "torchvision.ops.misc")
    stand_ins = {n: types.ModuleType(n) for n in names}
    stand_ins["torchvision.ops.misc"].FrozenBatchNorm2d = _FrozenBatchNorm2dPlaceholder  # type: ignore[attr-defined]
    sys.modules.update(stand_ins)
    try:
        importlib.import_module(f"{_PACKAGE}.utils")
    finally:
        for n in names:
            if sys.modules.get(n) is stand_ins[n]:
                del sys.modules[n]


def open_clip_config_dir() -> Path:
    """open_clip's built-in model configs (ViT-B-32.json, ...)."""
    return Path(open_clip_module("model").__file__).parent / "model_configs"


# -- preprocessing -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocess:
    """open_clip's eval transform: resize (shortest side, or squash), centre crop, normalise."""

    size: int
    mean: tuple[float, float, float] = _OPENAI_MEAN
    std: tuple[float, float, float] = _OPENAI_STD
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"

    def __post_init__(self) -> None:
        if self.interpolation not in ("bicubic", "bilinear"):
            raise LookalikeError(f"unsupported CLIP interpolation {self.interpolation!r}; bicubic or bilinear")
        if self.resize_mode not in ("shortest", "squash"):
            raise LookalikeError(f"unsupported CLIP resize mode {self.resize_mode!r}; shortest or squash")

    def __call__(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image -> uint8 (size, size, 3), as torchvision's Resize + CenterCrop do it for PIL images."""
        if image.mode != "RGB":
            image = image.convert("RGB")
        resample = Image.Resampling.BICUBIC if self.interpolation == "bicubic" else Image.Resampling.BILINEAR
        s = self.size
        w, h = image.size
        if self.resize_mode == "squash":
            nw, nh = s, s
        else:  # torchvision: the shorter side becomes s, the longer int(s * long / short)
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(s * long / short)
            nw, nh = (s, new_long) if w <= h else (new_long, s)
        if (nw, nh) != (w, h):
            image = image.resize((nw, nh), resample)
        if (nw, nh) != (s, s):  # torchvision's CenterCrop offsets
            top, left = int(round((nh - s) / 2.0)), int(round((nw - s) / 2.0))
            image = image.crop((left, top, left + s, top + s))
        return np.asarray(image, dtype=np.uint8)

    @classmethod
    def from_config(cls, size: Any, overrides: dict[str, Any]) -> "Preprocess":
        if isinstance(size, (list, tuple)):
            if len(size) != 2 or size[0] != size[1]:
                raise LookalikeError(f"CLIP input size {tuple(size)} is not square; only square inputs are supported")
            size = size[0]
        known = {k: overrides[k] for k in ("mean", "std", "interpolation", "resize_mode") if overrides.get(k)}
        for k in ("mean", "std"):
            if k in known:
                v = known[k]
                known[k] = tuple(float(x) for x in (v if isinstance(v, (list, tuple)) else (v, v, v)))
        return cls(size=int(size), **known)


# -- resolving a spec --------------------------------------------------------------------------------------------
@dataclass
class Resolved:
    name: str  # canonical spec, loadable from any working folder
    label: str  # architecture name for the version string
    model_cfg: dict[str, Any]
    preprocess_cfg: dict[str, Any]
    weights: str  # checkpoint file


def resolve(spec: str) -> Resolved:
    """Parse ``clip:ARCH:WEIGHTS`` / ``clip:DIR`` and find the config and the weights file, without building."""
    if not spec.startswith("clip:"):
        raise LookalikeError(f"not a CLIP model spec: {spec!r} (expected clip:ARCH:WEIGHTS)")
    arch, sep, weights = spec[len("clip:"):].partition(":")
    if not arch:
        raise LookalikeError(f"CLIP model spec {spec!r} names no architecture; use clip:ARCH:WEIGHTS")
    if not sep:
        return _resolve_dir(arch, spec)
    if not weights:
        raise LookalikeError(f"CLIP model spec {spec!r} names no weights; use clip:{arch}:/path/to/checkpoint")
    label, model_cfg, pre_cfg, arch_ref = _resolve_arch(arch)
    path = os.path.expanduser(weights)
    if os.path.isfile(path):
        path = os.path.abspath(path)
        return Resolved(f"clip:{arch_ref}:{path}", label, model_cfg, pre_cfg, path)
    if os.sep in weights or os.path.splitext(weights)[1] in (".pt", ".pth", ".bin", ".safetensors"):
        raise NotFound(f"CLIP weights file not found: {weights}")
    tag_cfg = pretrained_tag(arch, weights)
    if tag_cfg.get("quick_gelu") and not model_cfg.get("quick_gelu"):
        raise LookalikeError(f"weights {arch}/{weights} were trained with QuickGELU; "
                             f"use clip:{arch}-quickgelu:{weights}")
    found = cached_tag_file(arch, weights, tag_cfg)
    pre_cfg = {**pre_cfg, **{k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}}
    return Resolved(f"clip:{arch_ref}:{weights}", label, model_cfg, pre_cfg, found)


def _resolve_arch(arch: str) -> tuple[str, dict[str, Any], dict[str, Any], str]:
    """(label, model config, preprocess config, reference to record in the spec) for a config name or JSON file."""
    path = os.path.expanduser(arch)
    if arch.endswith(".json") or os.sep in arch:
        if not os.path.isfile(path):
            raise NotFound(f"CLIP config file not found: {arch}")
        model_cfg, pre_cfg = _read_config(path)
        return Path(path).stem, model_cfg, pre_cfg, os.path.abspath(path)
    cfg_file = open_clip_config_dir() / f"{arch.replace('/', '-')}.json"
    if not cfg_file.is_file():
        raise LookalikeError(f"unknown CLIP architecture {arch!r}; give an open_clip config name (e.g. ViT-B-32, "
                             f"ViT-L-14, RN50) or the path of a JSON config file")
    model_cfg, pre_cfg = _read_config(str(cfg_file))
    return arch, model_cfg, pre_cfg, arch


def _read_config(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as err:
        raise LookalikeError(f"cannot read CLIP config {path}: {err}") from None
    if not isinstance(data, dict):
        raise LookalikeError(f"CLIP config {path} is not a JSON object")
    model_cfg = data.get("model_cfg", data)
    if not isinstance(model_cfg, dict) or "vision_cfg" not in model_cfg or "embed_dim" not in model_cfg:
        raise LookalikeError(f"CLIP config {path} lacks embed_dim / vision_cfg (open_clip's model config format)")
    return model_cfg, dict(data.get("preprocess_cfg") or {})


def _resolve_dir(folder: str, spec: str) -> Resolved:
    path = os.path.abspath(os.path.expanduser(folder))
    cfg = os.path.join(path, "open_clip_config.json")
    if not os.path.isdir(path):
        raise NotFound(f"CLIP model folder not found: {folder} (or use clip:ARCH:WEIGHTS)")
    if not os.path.isfile(cfg):
        raise LookalikeError(f"CLIP model folder {folder} has no open_clip_config.json")
    model_cfg, pre_cfg = _read_config(cfg)
    weights = next((os.path.join(path, n) for n in _DIR_CHECKPOINTS if os.path.isfile(os.path.join(path, n))), None)
    if weights is None:
        raise NotFound(f"CLIP model folder {folder} holds no checkpoint ({', '.join(_DIR_CHECKPOINTS[:3])}, ...)")
    return Resolved(f"clip:{path}", Path(path).name, model_cfg, pre_cfg, weights)


def pretrained_tag(arch: str, tag: str) -> dict[str, Any]:
    """open_clip's settings for pretrained ``tag`` of ``arch`` (where its file lives, mean/std, QuickGELU)."""
    pretrained = open_clip_module("pretrained")
    tag_cfg = pretrained.get_pretrained_cfg(arch, tag)
    if not tag_cfg:
        tags = pretrained.list_pretrained_tags_by_model(arch)
        hint = f"known tags for {arch}: {', '.join(tags)}" if tags else f"{arch} has no open_clip pretrained tags"
        raise NotFound(f"CLIP weights {tag!r} are neither a file nor a pretrained tag ({hint})")
    return dict(tag_cfg)


def cached_tag_file(arch: str, tag: str, tag_cfg: dict[str, Any]) -> str:
    """The local file of a pretrained tag (Hugging Face hub cache, then open_clip's URL cache ~/.cache/clip).
    Never downloads: a tag that is not cached is a one-line error."""
    for candidate in _tag_candidates(tag_cfg):
        if os.path.isfile(candidate):
            return candidate
    raise LookalikeError(f"weights {arch}/{tag} are not on this machine and lookalike never downloads; fetch them "
                         f"where there is internet (open_clip.create_model('{arch}', pretrained='{tag}')) or give "
                         f"a checkpoint file: clip:{arch}:/path/to/open_clip_model.safetensors")


def _tag_candidates(tag_cfg: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if tag_cfg.get("file"):
        out.append(os.path.expanduser(tag_cfg["file"]))
    hub = tag_cfg.get("hf_hub", "")
    if hub:  # "org/repo/" (default file name) or "org/repo/file.bin"; a .safetensors twin is preferred
        repo, filename = os.path.split(hub)
        names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        if filename.endswith((".bin", ".pth")):
            names.insert(0, filename[:-4] + ".safetensors")
        out += [_hf_cached(repo, n) for n in names]
    url = tag_cfg.get("url", "")
    if url:
        out.append(os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(url)))
    return [p for p in out if p]


def _hf_cached(repo: str, filename: str) -> str:
    """A file of a Hugging Face repo in the local hub cache (HF_HUB_CACHE, else HF_HOME/hub), or ''."""
    cache = os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface"), "hub")
    folder = Path(cache) / f"models--{repo.replace('/', '--')}"
    ref = folder / "refs" / "main"
    snapshots = [ref.read_text().strip()] if ref.is_file() else []
    if (folder / "snapshots").is_dir():
        snapshots += sorted(p.name for p in (folder / "snapshots").iterdir())
    for rev in snapshots:
        p = folder / "snapshots" / rev / filename
        if p.is_file():
            return str(p)
    return ""


# -- building and loading ----------------------------------------------------------------------------------------
def build_network(model_cfg: dict[str, Any], label: str = "CLIP") -> Any:
    """An open_clip CLIP / CustomTextCLIP from a model config, randomly initialised (no tower weights fetched)."""
    model = open_clip_module("model")
    cfg = copy.deepcopy(model_cfg)
    if "multimodal_cfg" in cfg:
        raise LookalikeError(f"{label} is a CoCa model (captioner); only CLIP-style models are supported")
    vision, text = cfg.setdefault("vision_cfg", {}), cfg.setdefault("text_cfg", {})
    if "timm_model_name" in vision:
        vision["timm_model_pretrained"] = False
    if "hf_model_name" in text:
        text["hf_model_pretrained"] = False
        if not _hf_cached(text["hf_model_name"], "config.json"):  # transformers would fetch the tower's config
            raise LookalikeError(f"{label} has a Hugging Face text tower ({text['hf_model_name']}) that is not in the "
                                 f"local Hugging Face cache; lookalike never downloads")
    custom_text = cfg.pop("custom_text", False) or "hf_model_name" in text
    cls = model.CustomTextCLIP if custom_text else model.CLIP
    try:
        return cls(**cfg)
    except LookalikeError:
        raise
    except Exception as err:  # noqa: BLE001 - e.g. a timm or Hugging Face tower whose package is missing
        raise LookalikeError(f"cannot build CLIP architecture {label}: {type(err).__name__}: {err}") from None


def read_state_dict(path: str) -> dict[str, Any]:
    import torch

    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            ckpt: Any = load_file(path, device="cpu")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except ImportError:
        raise LookalikeError("reading .safetensors weights needs: pip install safetensors") from None
    except Exception as err:  # noqa: BLE001 - corrupt file, pickle with code in it, TorchScript archive, ...
        if "TorchScript" in str(err):
            raise LookalikeError(f"CLIP weights {path} are a TorchScript archive (OpenAI's original release), which "
                                 f"is not loaded; use the open_clip / Hugging Face state dict of the same weights") from None
        raise LookalikeError(f"cannot read CLIP weights {path}: not a PyTorch state dict that loads with "
                             f"weights_only=True, nor a .safetensors file ({type(err).__name__})") from None
    sd = ckpt["state_dict"] if isinstance(ckpt, dict) and "state_dict" in ckpt else ckpt
    if not isinstance(sd, dict) or not sd:
        raise LookalikeError(f"CLIP weights {path} hold no state dict")
    if next(iter(sd)).startswith("module."):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def load_weights(net: Any, path: str, label: str = "CLIP") -> None:
    """open_clip's ``factory.load_checkpoint`` steps (that module needs torchvision): convert third-party and
    old-format state dicts, fix scalar shapes, resize position embeddings, then a strict load."""
    import torch

    model, convert = open_clip_module("model"), open_clip_module("convert")
    sd = convert.convert_state_dict(net, read_state_dict(path))
    if "positional_embedding" in sd and not hasattr(net, "positional_embedding"):
        sd = model.convert_to_custom_text_state_dict(sd)
    for key in ("logit_scale", "logit_bias"):
        target = getattr(net, key, None)
        if key in sd and target is not None and target.ndim != sd[key].ndim:
            sd[key] = sd[key].reshape(target.shape)
    if "logit_bias" not in sd and getattr(net, "logit_bias", None) is not None and "logit_scale" in sd:
        sd["logit_bias"] = torch.zeros_like(sd["logit_scale"])
    sd.pop("text.transformer.embeddings.position_ids", None)
    model.resize_pos_embed(sd, net)
    model.resize_text_pos_embed(sd, net)
    own = net.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    reshaped = [f"{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}" for k in own
                if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or reshaped:
        raise LookalikeError(f"weights {path} do not fit {label}: {len(missing)} missing keys "
                             f"(e.g. {', '.join(missing[:2]) or '-'}), {len(unexpected)} unexpected keys "
                             f"(e.g. {', '.join(unexpected[:2]) or '-'}), {len(reshaped)} of another shape "
                             f"(e.g. {', '.join(reshaped[:2]) or '-'})")
    net.load_state_dict(sd, strict=True)


def build_tokenizer(model_cfg: dict[str, Any], label: str = "CLIP") -> Any:
    text = model_cfg.get("text_cfg", {})
    tok = open_clip_module("tokenizer")
    context_length = int(text.get("context_length", 77))
    if text.get("hf_tokenizer_name") or "siglip" in label.lower():
        try:
            if text.get("hf_tokenizer_name"):
                return tok.HFTokenizer(text["hf_tokenizer_name"], context_length=context_length,
                                       tokenizer_mode=text.get("tokenizer_mode"), **text.get("tokenizer_kwargs", {}))
            variant = "gemma" if "siglip2" in label.lower() else "mc4" if "i18n" in label.lower() else "c4-en"
            return tok.SigLipTokenizer(variant, context_length=context_length)
        except Exception as err:  # noqa: BLE001 - transformers missing, or the tokenizer files not cached
            raise LookalikeError(f"cannot load the text tokenizer of {label}: {type(err).__name__}: {err}") from None
    return tok.SimpleTokenizer(context_length=context_length, **text.get("tokenizer_kwargs", {}))


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    st = os.stat(path)
    key = (path, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


# -- the model ---------------------------------------------------------------------------------------------------
class ClipModel(BaseModel):
    """Image and text embeddings in one space; no class scores (``num_classes = 0``)."""

    num_classes = 0

    def __init__(self, net: Any, tokenizer: Any, preprocess: Preprocess, *, name: str, version: str, dim: int,
                 device: str = "cpu") -> None:
        import torch

        from lookalike.models.efficientnet import _resolve_device

        self._torch = torch
        self.name, self.version = name, version
        self.device = _resolve_device(device)
        self.net = net.eval().to(self.device)
        self.tokenizer = tokenizer
        self.pre = preprocess
        self.input_size = preprocess.size
        self.dim = dim
        self._mean = torch.tensor(preprocess.mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(preprocess.std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    @classmethod
    def from_spec(cls, spec: str, device: str = "cpu", threads: int = 0) -> "ClipModel":
        r = resolve(spec)
        pre = Preprocess.from_config(r.model_cfg["vision_cfg"].get("image_size", 224), r.preprocess_cfg)
        net = build_network(r.model_cfg, r.label)
        load_weights(net, r.weights, r.label)
        tokenizer = build_tokenizer(r.model_cfg, r.label)
        if threads:
            import torch

            torch.set_num_threads(threads)
        cfg_hash = hashlib.sha256(json.dumps({"model": r.model_cfg, "pre": asdict(pre)}, sort_keys=True,
                                             default=str).encode()).hexdigest()[:8]
        version = f"clip/{r.label}/cfg-{cfg_hash}/w-{file_sha256(r.weights)[:16]}/pre{PREPROCESS_VERSION}"
        return cls(net, tokenizer, pre, name=r.name, version=version, dim=int(r.model_cfg["embed_dim"]),
                   device=device)

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self.pre(image)

    def _autocast(self):  # type: ignore[no-untyped-def]
        import contextlib

        torch = self._torch
        if self.device.startswith("cuda"):
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def forward(self, batch: np.ndarray) -> Encoded:
        """``batch``: uint8 (n, H, W, 3). Returns L2-normalised image embeddings and no class scores."""
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - self._mean) / self._std
            with self._autocast():
                feats = self.net.encode_image(x)
            emb = torch.nn.functional.normalize(feats.float(), dim=-1)
        return Encoded(emb.cpu().numpy(), None)

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised text embeddings (n, dim), in the same space as the image embeddings."""
        torch = self._torch
        texts = [str(t) for t in texts]
        out = [np.zeros((0, self.dim), np.float32)]
        with torch.inference_mode():
            for i in range(0, len(texts), _TEXT_BATCH):
                tokens = self.tokenizer(texts[i:i + _TEXT_BATCH]).to(self.device)
                with self._autocast():
                    feats = self.net.encode_text(tokens)
                out.append(torch.nn.functional.normalize(feats.float(), dim=-1).cpu().numpy())
        return np.concatenate(out)
