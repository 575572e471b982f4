"""The public API. The CLI and the REST API are thin layers over these functions.

    from lookalike import Library
    lib = Library("~/photos-index")
    lib.index(["~/Pictures"])
    lib.search("cat")                  # keywords
    lib.search(image="query.jpg")      # by example
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from lookalike.config import Settings
from lookalike.errors import LookalikeError, ModelMismatch, NotFound
from lookalike.indexer import Indexer, IndexSummary, Progress
from lookalike.io.fetch import fetch_url
from lookalike.io.read import load
from lookalike.models.base import Model
from lookalike.search.plan import Query, plan
from lookalike.stores import open_store
from lookalike.stores.base import Filters, Hit, ImageInfo, Store

SEARCH_BY = ("embedding", "tags")


@dataclass
class Result:
    id: int
    path: str
    score: float
    tags: list[dict[str, object]]
    width: int
    height: int
    folder: str
    taken_at: str | None = None
    camera: str | None = None

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["score"] = round(float(self.score), 6)
        return d


@dataclass
class SearchResult:
    query: str
    kind: str
    by: str
    results: list[Result]
    explain: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"query": self.query, "kind": self.kind, "by": self.by,
                                  "results": [r.as_dict() for r in self.results]}
        if self.explain:
            out["explain"] = self.explain
        return out


class Library:
    def __init__(self, library: str | os.PathLike[str] | None = None, *, settings: Settings | None = None,
                 **overrides: object) -> None:
        if settings is None:
            settings = Settings.from_env(library=library, **overrides)
        elif library is not None or overrides:
            from dataclasses import replace

            settings = replace(settings, **({"library": Path(library)} if library is not None else {}), **overrides)  # type: ignore[arg-type]
        self.settings = settings
        self._model_explicit = "model" in overrides or bool(os.environ.get("LOOKALIKE_MODEL"))

    # -- stages ------------------------------------------------------------------------------------------
    @cached_property
    def store(self) -> Store:
        return open_store(self.settings)

    @cached_property
    def model(self) -> Model:
        from lookalike.models.registry import load_model

        name = self.settings.model
        info = self.store.model_info()
        if info and not self._model_explicit and info["name"] != name:
            name = info["name"]  # search with the model that built the index
        return load_model(name, self.settings.device, self.settings.threads)

    @cached_property
    def vocabulary(self):  # type: ignore[no-untyped-def]
        from lookalike.models.vocab import Vocabulary

        return Vocabulary()

    # -- indexing ----------------------------------------------------------------------------------------
    def index(self, paths: Sequence[str | os.PathLike[str]], *, progress: bool = False,
              on_progress: Progress | None = None) -> IndexSummary:
        return Indexer(self.store, self.model, self.settings, progress=progress, on_progress=on_progress).run(paths)

    # -- search ------------------------------------------------------------------------------------------
    def search(self, query: str | None = None, *, image: str | os.PathLike[str] | bytes | None = None,
               text: str | None = None, url: str | None = None, image_id: int | None = None,
               by: str = "embedding", limit: int = 20, threshold: float | None = None,
               filters: Filters | None = None) -> SearchResult:
        q = self._query(query, image=image, text=text, url=url, image_id=image_id)
        if by not in SEARCH_BY:
            raise LookalikeError(f"unknown --by {by!r}; choose one of {', '.join(SEARCH_BY)}")
        limit = max(1, min(int(limit), 10_000))
        explain: dict[str, object] = {}
        if q.kind == "text":
            hits = self._keyword_hits(str(q.value), limit, filters, explain)
            by = "keywords"
        else:
            emb, cls = self.query_vectors(q)
            if by == "tags":
                hits = self._tag_vector_hits(cls, limit, filters)
            else:
                hits = self.store.knn(emb, limit, filters)
        if threshold is not None:
            hits = [h for h in hits if h.score >= threshold]
        return SearchResult(q.describe(), q.kind, by, self.results(hits[:limit]), explain)

    def _query(self, query: str | None, *, image, text, url, image_id) -> Query:  # type: ignore[no-untyped-def]
        given = [v is not None for v in (query, image, text, url, image_id)]
        if sum(given) != 1:
            raise LookalikeError("give exactly one query: words, an image file, image bytes, a URL or an image id")
        if query is not None:
            return plan(query)
        if text is not None:
            return Query("text", text)
        if url is not None:
            return Query("image_url", url)
        if image_id is not None:
            return Query("image_id", int(image_id))
        if isinstance(image, bytes):
            return Query("image_bytes", image)
        path = os.path.abspath(os.path.expanduser(os.fspath(image)))  # type: ignore[arg-type]
        if not os.path.isfile(path):
            raise NotFound(f"query image not found: {image}")
        return Query("image_path", path)

    def query_vectors(self, q: Query) -> tuple[np.ndarray, np.ndarray | None]:
        """The query image through the same read and model stages as indexed images."""
        self._check_model()
        if q.kind == "image_id":
            emb, cls = self.store.vectors([int(q.value)])  # type: ignore[call-overload]
            if not len(emb):
                raise NotFound(f"no indexed image with id {q.value}")
            return emb[0], None if cls is None else cls[0]
        s = self.settings
        if q.kind == "image_url":
            data = fetch_url(str(q.value), allow_private=s.allow_private_urls, timeout=s.url_timeout_s,
                             max_bytes=s.max_upload_mb * 1_000_000)
        elif q.kind == "image_bytes":
            data = q.value  # type: ignore[assignment]
        else:
            data = str(q.value)  # type: ignore[assignment]
        decoded = load(data, min_side=round(self.model.input_size / 0.875), max_pixels=s.max_pixels,  # type: ignore[arg-type]
                       max_bytes=s.max_file_mb * 1_000_000)
        enc = self.model.encode([decoded.image])
        return enc.embeddings[0], None if enc.class_scores is None else enc.class_scores[0]

    def _check_model(self) -> None:
        info = self.store.model_info()
        if info and (info["name"] != self.model.name or str(info["dim"]) != str(self.model.dim)):
            raise ModelMismatch(f"this index was built with {info['name']}; search with --model {info['name']} "
                                f"or re-index with {self.model.name}")
        if info and info["version"] and info["version"] != self.model.version:  # same name, other weights
            raise ModelMismatch(f"this index was built with {info['name']} version {info['version']}, but that "
                                f"model is now {self.model.version}; re-index to re-embed with it")

    def _keyword_hits(self, text: str, limit: int, filters: Filters | None, explain: dict[str, object]) -> list[Hit]:
        from lookalike.search.fuse import rrf

        weights = self.vocabulary.match(text)
        explain["classes"] = [
            {**self.vocabulary.describe(c), "weight": round(w, 3)}
            for c, w in sorted(weights.items(), key=lambda kv: -kv[1])[:25]
        ]
        tag_hits = self.store.tag_search(weights, limit * 2, filters) if weights else []
        text_hits = self.store.text_search(text, limit * 2, filters)
        lists = {"tags": tag_hits, "text": text_hits, "text_embedding": self._text_vector_hits(text, limit, filters, explain)}
        lists = {k: v for k, v in lists.items() if v}
        if len(lists) <= 1:
            return next(iter(lists.values()), [])
        return rrf(lists)

    def _text_vector_hits(self, text: str, limit: int, filters: Filters | None, explain: dict[str, object]) -> list[Hit]:
        """Free text through the model's text tower, when the index was built by a model that has one (CLIP)."""
        from lookalike.models.base import TextEncoder
        from lookalike.models.registry import embeds_text

        info = self.store.model_info()
        if not info or not embeds_text(info["name"]) or not isinstance(self.model, TextEncoder):
            return []
        self._check_model()
        explain["text_embedding"] = self.model.name
        return self.store.knn(self.model.encode_text([text])[0], limit * 2, filters)

    def _tag_vector_hits(self, cls: np.ndarray | None, limit: int, filters: Filters | None) -> list[Hit]:
        """The visual-words method: inner product of class-score vectors. Candidates come from the tag index
        (the query's top classes), then are ranked by the exact inner product of the full vectors."""
        if cls is None:
            raise LookalikeError(f"model {self.model.name} has no class scores; use --by embedding")
        top = np.argsort(-cls)[:20]
        weights = {int(c): float(cls[c]) for c in top if cls[c] > 0}
        cands = self.store.tag_search(weights, max(limit * 5, 100), filters)
        if not cands:
            return []
        ids = [h.id for h in cands]
        _, vecs = self.store.vectors(ids)
        if vecs is None:
            return cands[:limit]
        scores = vecs @ cls.astype(np.float32)
        order = np.argsort(-scores, kind="stable")
        return [Hit(ids[i], float(scores[i])) for i in order[:limit]]

    def results(self, hits: Sequence[Hit]) -> list[Result]:
        infos = {i.id: i for i in self.store.get([h.id for h in hits])}
        return [self._result(infos[h.id], h.score) for h in hits if h.id in infos]

    def _result(self, info: ImageInfo, score: float) -> Result:
        return Result(id=info.id, path=info.path, score=score, tags=self.tag_dicts(info.tags), width=info.width,
                      height=info.height, folder=info.folder, taken_at=info.taken_at, camera=info.camera)

    def tag_dicts(self, tags: Sequence[tuple[int, float]], min_score: float = 0.05, limit: int = 5) -> list[dict[str, object]]:
        out = []
        for cls, score in tags[:limit]:
            if score < min_score and out:
                break
            d = self.vocabulary.describe(cls)
            out.append({"name": d["name"], "wnid": d["wnid"], "score": round(float(score), 4)})
        return out

    # -- records -----------------------------------------------------------------------------------------
    def get(self, image_id: int) -> ImageInfo:
        found = self.store.get([image_id])
        if not found:
            raise NotFound(f"no indexed image with id {image_id}")
        return found[0]

    def folders(self) -> list[tuple[str, int]]:
        """Every folder that directly holds indexed images, with its image count, sorted by path."""
        counts: dict[str, int] = {}
        for path in self.store.file_states():
            folder = os.path.dirname(path)
            counts[folder] = counts.get(folder, 0) + 1
        return sorted(counts.items())

    def info(self) -> dict[str, object]:
        stats = dict(self.store.stats())
        stats["library"] = str(self.settings.library) if not self.settings.db else None
        return stats

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()

    def __enter__(self) -> "Library":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
