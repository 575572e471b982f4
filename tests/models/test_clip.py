"""Tests for CLIP-style models (lookalike.models.clip): a tiny, randomly initialised open_clip CLIP built from a
config, saved to a checkpoint file and loaded back through the model spec, on real photos and texts."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

if importlib.util.find_spec("open_clip") is None or importlib.util.find_spec("ftfy") is None:
    pytest.skip("open_clip not installed (pip install '.[clip]' && pip install --no-deps open_clip_torch==3.3.0)",
                allow_module_level=True)

import torch  # noqa: E402

from lookalike.errors import LookalikeError, ModelMismatch, NotFound  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.models.base import Model, TextEncoder  # noqa: E402
from lookalike.models.clip import ClipModel, Preprocess, build_network, open_clip_module, resolve  # noqa: E402
from lookalike.models.registry import load_model  # noqa: E402
from lookalike.samples import copy_samples, sample_photos  # noqa: E402

# open_clip's model config format; vocab_size must be the BPE tokenizer's 49408
TINY = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
NAMES = ["chelsea", "astronaut", "coffee", "rocket"]


def _save(folder: Path, seed: int, cfg: dict = TINY) -> tuple[Path, Path]:
    torch.manual_seed(seed)
    net = build_network(cfg, "tiny")
    cfg_path, ckpt = folder / "tiny-clip.json", folder / f"tiny-clip-{seed}.pt"
    cfg_path.write_text(json.dumps(cfg))
    torch.save(net.state_dict(), ckpt)
    return cfg_path, ckpt


@pytest.fixture(scope="session")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _save(tmp_path_factory.mktemp("tiny_clip"), seed=0)


@pytest.fixture(scope="session")
def clip(tiny: tuple[Path, Path]) -> ClipModel:
    return load_model(f"clip:{tiny[0]}:{tiny[1]}")  # type: ignore[return-value]


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    found = sample_photos()
    return [Image.open(found[n]).convert("RGB") for n in NAMES]


def _one_line(err: pytest.ExceptionInfo[BaseException]) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


# -- loading ---------------------------------------------------------------------------------------------------
def test_loads_open_clip_architecture_from_checkpoint(clip: ClipModel, tiny: tuple[Path, Path]) -> None:
    assert isinstance(clip, Model) and isinstance(clip, TextEncoder)
    assert (clip.dim, clip.input_size, clip.num_classes) == (32, 64, 0)
    assert type(clip.net) is open_clip_module("model").CLIP
    assert Path(sys.modules[type(clip.net).__module__].__file__).parent == Path(  # type: ignore[arg-type]
        next(iter(importlib.util.find_spec("open_clip").submodule_search_locations)))  # type: ignore[union-attr]
    saved = torch.load(tiny[1], weights_only=True)
    for key in ("visual.conv1.weight", "token_embedding.weight", "text_projection"):
        assert torch.equal(clip.net.state_dict()[key], saved[key])  # the file's weights, not a fresh random init
    assert "torchvision" not in sys.modules or importlib.util.find_spec("torchvision") is not None
    assert clip.name == f"clip:{tiny[0]}:{tiny[1]}"  # absolute paths: loadable again from any folder
    assert clip.version.startswith("clip/tiny-clip/") and "/w-" in clip.version


def test_version_follows_weights_content(clip: ClipModel, tiny: tuple[Path, Path], tmp_path: Path) -> None:
    copy = tmp_path / "same-weights.pt"
    shutil.copyfile(tiny[1], copy)
    same = ClipModel.from_spec(f"clip:{tiny[0]}:{copy}")
    assert same.version == clip.version and same.name != clip.name
    _, other_ckpt = _save(tmp_path, seed=1)
    other = ClipModel.from_spec(f"clip:{tiny[0]}:{other_ckpt}")
    assert other.version != clip.version


def test_folder_with_config_and_safetensors(tmp_path: Path, images: list[Image.Image], clip: ClipModel) -> None:
    st = pytest.importorskip("safetensors.torch")
    folder = tmp_path / "hf-snapshot"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": TINY, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}))
    st.save_file({k: v.contiguous() for k, v in clip.net.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    m = load_model(f"clip:{folder}")
    assert m.name == f"clip:{folder}" and m.dim == 32
    assert m.pre.mean == (0.5, 0.5, 0.5) and m.pre.std == (0.5, 0.5, 0.5)  # type: ignore[attr-defined]
    assert m.version != clip.version  # other preprocessing, other vectors
    e = m.encode(images[:1]).embeddings
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)


# -- embeddings ------------------------------------------------------------------------------------------------
def test_image_embeddings(clip: ClipModel, images: list[Image.Image]) -> None:
    enc = clip.encode(images)
    assert enc.class_scores is None
    assert enc.embeddings.shape == (4, 32) and enc.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(enc.embeddings, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(clip.encode(images).embeddings, enc.embeddings)  # deterministic
    for i, im in enumerate(images):
        np.testing.assert_allclose(clip.encode([im]).embeddings[0], enc.embeddings[i], atol=1e-5)
    sims = enc.embeddings @ enc.embeddings.T
    assert (sims[~np.eye(4, dtype=bool)] < 0.9999).all()  # different photos, different vectors
    assert clip.encode([]).embeddings.shape == (0, 32)


def test_forward_normalises_with_model_mean_std(clip: ClipModel, images: list[Image.Image]) -> None:
    pixels = np.stack([clip.preprocess(im) for im in images])
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(clip.pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(clip.pre.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(clip.net.encode_image((x - mean) / std), dim=-1).numpy()
    np.testing.assert_allclose(clip.forward(pixels).embeddings, ref, atol=1e-5)
    assert clip.pre.mean == (0.48145466, 0.4578275, 0.40821073)  # open_clip's default (OpenAI) statistics


def test_text_embeddings(clip: ClipModel) -> None:
    texts = ["a cat", "an astronaut in a white suit", "a cup of coffee", ""]
    t = clip.encode_text(texts)
    assert t.shape == (4, 32) and t.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(clip.encode_text(texts), t)
    np.testing.assert_allclose(clip.encode_text(texts[1:2])[0], t[1], atol=1e-5)
    assert float(t[0] @ t[1]) < 0.9999
    assert clip.encode_text([]).shape == (0, 32)


# -- preprocessing ---------------------------------------------------------------------------------------------
def test_preprocess_follows_torchvision_resize_and_center_crop(images: list[Image.Image]) -> None:
    """Resize(224) on a 451x300 photo gives 336x224 (int(224*451/300)); CenterCrop offsets round((336-224)/2)=56."""
    chelsea = images[0]
    assert chelsea.size == (451, 300)
    pre = Preprocess(size=224)
    want = np.asarray(chelsea.resize((336, 224), Image.Resampling.BICUBIC).crop((56, 0, 280, 224)))
    np.testing.assert_array_equal(pre(chelsea), want)
    portrait = chelsea.transpose(Image.Transpose.ROTATE_90)  # 300x451
    want = np.asarray(portrait.resize((224, 336), Image.Resampling.BICUBIC).crop((0, 56, 224, 280)))
    np.testing.assert_array_equal(pre(portrait), want)
    squash = Preprocess(size=224, resize_mode="squash", interpolation="bilinear")
    np.testing.assert_array_equal(squash(chelsea), np.asarray(chelsea.resize((224, 224), Image.Resampling.BILINEAR)))
    square = chelsea.crop((0, 0, 224, 224))
    np.testing.assert_array_equal(pre(square), np.asarray(square))  # already the input size: untouched
    out = pre(chelsea.convert("L"))
    assert out.shape == (224, 224, 3) and out.dtype == np.uint8


def test_preprocess_rejects_unsupported_settings() -> None:
    with pytest.raises(LookalikeError, match="resize mode"):
        Preprocess(size=224, resize_mode="longest")
    with pytest.raises(LookalikeError, match="not square"):
        Preprocess.from_config([224, 256], {})


# -- specs and errors ------------------------------------------------------------------------------------------
@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No weights cached: an empty home, Hugging Face cache and open_clip cache."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return tmp_path


def test_tag_not_cached_is_refused_without_download(empty_caches: Path) -> None:
    with pytest.raises(LookalikeError, match="never downloads") as err:
        load_model("clip:ViT-B-32:laion2b_s34b_b79k")
    assert "clip:ViT-B-32:/path/to/" in _one_line(err)


def test_tag_found_in_hugging_face_cache(empty_caches: Path) -> None:
    repo = empty_caches / ".cache" / "huggingface" / "hub" / "models--laion--CLIP-ViT-B-32-laion2B-s34B-b79K"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    weights = repo / "snapshots" / "abc123" / "open_clip_model.safetensors"
    weights.write_bytes(b"stand-in: resolve() only locates the file")
    r = resolve("clip:ViT-B-32:laion2b_s34b_b79k")
    assert r.weights == str(weights) and r.name == "clip:ViT-B-32:laion2b_s34b_b79k"
    assert r.model_cfg["embed_dim"] == 512 and r.preprocess_cfg["interpolation"] == "bicubic"


def test_openai_tag_needs_quickgelu_architecture(empty_caches: Path) -> None:
    with pytest.raises(LookalikeError, match="clip:ViT-B-32-quickgelu:openai") as err:
        load_model("clip:ViT-B-32:openai")
    _one_line(err)


def test_architectures_that_would_fetch_or_are_not_clip(empty_caches: Path, tiny: tuple[Path, Path]) -> None:
    with pytest.raises(LookalikeError, match="roberta-base.*never downloads") as err:
        load_model(f"clip:roberta-ViT-B-32:{tiny[1]}")  # its text tower's config would come from the hub
    _one_line(err)
    with pytest.raises(LookalikeError, match="CoCa") as err:
        load_model(f"clip:coca_ViT-B-32:{tiny[1]}")
    _one_line(err)


@pytest.mark.parametrize("spec, error, text", [
    ("clip:ViT-B-32:weights.pt", NotFound, "weights file not found"),
    ("clip:NoSuchArch:laion", LookalikeError, "unknown CLIP architecture"),
    ("clip:ViT-B-32:no-such-tag", NotFound, "known tags for ViT-B-32"),
    ("clip:ViT-B-32:/no/such/file.pt", NotFound, "weights file not found"),
    ("clip:/no/such/config.json:/no/such/file.pt", NotFound, "config file not found"),
    ("clip:/no/such/folder", NotFound, "folder not found"),
    ("clip:ViT-B-32:", LookalikeError, "names no weights"),
    ("clip:", LookalikeError, "names no architecture"),
])
def test_bad_specs_are_one_line_errors(spec: str, error: type, text: str) -> None:
    with pytest.raises(error, match=text) as err:
        load_model(spec)
    _one_line(err)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script, used to make a TorchScript file
def test_weights_that_do_not_fit_or_do_not_load(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    wider = {**TINY, "embed_dim": 48}
    cfg = tmp_path / "wider.json"
    cfg.write_text(json.dumps(wider))
    with pytest.raises(LookalikeError, match="do not fit") as err:
        load_model(f"clip:{cfg}:{tiny[1]}")
    _one_line(err)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(LookalikeError, match="cannot read CLIP weights") as err:
        load_model(f"clip:{tiny[0]}:{junk}")
    _one_line(err)
    scripted = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(scripted))
    with pytest.raises(LookalikeError, match="TorchScript") as err:
        load_model(f"clip:{tiny[0]}:{scripted}")
    _one_line(err)
    folder = tmp_path / "no-config"
    folder.mkdir()
    with pytest.raises(LookalikeError, match="open_clip_config.json"):
        load_model(f"clip:{folder}")


# -- in a library ----------------------------------------------------------------------------------------------
def test_library_with_clip_then_back_to_efficientnet(clip: ClipModel, tmp_path: Path, model: Model) -> None:
    photos = copy_samples(tmp_path / "photos", NAMES)
    lib_dir = tmp_path / "library"
    with Library(lib_dir, model=clip.name) as lib:
        summary = lib.index([tmp_path / "photos"])
        assert summary.indexed == 4, summary.skipped
        info = lib.info()["model"]
        assert info == {"name": clip.name, "version": clip.version, "dim": "32"}  # type: ignore[comparison-overlap]
        for p in photos:  # identical input, identical vector: the photo itself comes first
            top = lib.search(image=p).results[0]
            assert top.path == str(p) and top.score == pytest.approx(1.0, abs=1e-4)
            assert top.tags == []
        found = lib.search(text="a cat on a table", limit=3)
        assert found.explain["text_embedding"] == clip.name
        assert len(found.results) == 3 and {r.path for r in found.results} <= {str(p) for p in photos}
        with pytest.raises(LookalikeError, match="no class scores") as err:
            lib.search(image=photos[0], by="tags")
        _one_line(err)

    with Library(lib_dir) as lib:  # no model given: the index's own model is used
        assert lib.model.name == clip.name
        assert lib.search(image=photos[1]).results[0].path == str(photos[1])

    with Library(lib_dir, model="efficientnet-lite0") as lib:  # another model: everything is re-embedded
        summary = lib.index([tmp_path / "photos"])
        assert summary.indexed == 4
        stats = lib.info()
        assert stats["images"] == 4 and stats["vectors"] == 4
        assert stats["model"]["name"] == "efficientnet-lite0" and stats["model"]["dim"] == "1280"  # type: ignore[index]
        emb, cls = lib.store.vectors([r.id for r in lib.search(image=photos[0]).results])
        assert emb.shape == (4, 1280) and cls is not None and cls.shape == (4, 1000)
        assert lib.search(image=photos[0]).results[0].tags  # ImageNet tags are back
        assert "text_embedding" not in lib.search(text="cat").explain

    with Library(lib_dir, model=clip.name) as lib:  # searching with the old model now is a clear mismatch
        with pytest.raises(ModelMismatch) as err:
            lib.search(image=photos[0])
        _one_line(err)


def test_weights_replaced_in_place_are_detected(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    """Same spec, new file content (a fine-tuned checkpoint saved over the old one): searches refuse to mix
    vector spaces, and the next index run re-embeds."""
    from lookalike.models import registry

    ckpt = tmp_path / "finetuned.pt"
    shutil.copyfile(tiny[1], ckpt)
    spec = f"clip:{tiny[0]}:{ckpt}"
    photos = copy_samples(tmp_path / "photos", NAMES[:2])
    with Library(tmp_path / "library", model=spec) as lib:
        assert lib.index([tmp_path / "photos"]).indexed == 2
    _, other = _save(tmp_path, seed=2)
    shutil.copyfile(other, ckpt)
    for key in [k for k in registry._CACHE if k[0] == spec]:  # a new process would load the file afresh
        registry._CACHE.pop(key)
    with Library(tmp_path / "library") as lib:
        with pytest.raises(ModelMismatch, match="re-index") as err:
            lib.search(image=photos[0])
        _one_line(err)
        assert lib.index([tmp_path / "photos"]).indexed == 2
        assert lib.search(image=photos[0]).results[0].path == str(photos[0])
