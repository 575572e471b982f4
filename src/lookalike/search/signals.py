"""One function per search signal. Each returns a ``Signal``: its hits (best first) and its own explanation.

- ``keyword_signal``: words -> tag search over the classes they map to, full-text search over the images'
  texts and visual neighbours of the confident tag hits (search/keywords.py), plus, when the index was
  built by a model with a text tower (CLIP), the text embedding's nearest images (``text_embedding_signal``);
  the two fused by reciprocal rank. Names of people among the words (search/people.py) restrict the hits to
  their photos.
- ``image_signal``: an example image (file, URL, bytes or an indexed id) -> nearest embeddings (``by=
  "embedding"``) or the visual-words method (``by="tags"``, ``tag_vector_hits``).
- ``face_signal``: a face photo (or an indexed image's first stored face) -> images with a face within
  models/faces.SAME_PERSON of it.

They need a ``SearchContext``: the store (its search roles), the model and vocabulary, and the query
encoding (``query_vectors``, ``load_query``, ``check_model``); ``Library`` is one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from lookalike.errors import LookalikeError, NotFound
from lookalike.models.base import Model
from lookalike.search.fuse import rrf
from lookalike.search.plan import Query
from lookalike.stores.base import ExtrasStore, Filters, Hit, PeopleStore, SearchStore

TAG_QUERY_CLASSES = 20  # by="tags": the query's top classes sent to the tag index
TAG_CANDIDATES = 5  # by="tags": candidates per wanted result (at least 100), re-ranked exactly


class SignalStore(SearchStore, ExtrasStore, PeopleStore, Protocol):
    """The store roles the signals use: searching, stored faces, people, and the model that built the index."""

    def model_info(self) -> dict[str, str] | None: ...
    def search_transform(self) -> tuple[str, int, bytes] | None: ...


class SearchContext(Protocol):
    store: SignalStore
    model: Model
    vocabulary: Any

    def check_model(self) -> None: ...
    def query_vectors(self, q: Query) -> tuple[np.ndarray, np.ndarray | None]: ...
    def load_query(self, q: Query, min_side: int | None) -> Any: ...


@dataclass
class Signal:
    hits: list[Hit]
    explain: dict[str, object] = field(default_factory=dict)


def keyword_signal(ctx: SearchContext, text: str, limit: int, filters: Filters | None, *, expand: bool = True,
                   semantic: bool | None = None) -> Signal:
    """Words; a named person's name among them restricts the hits to that person's photos (search/people.py)."""
    from lookalike.search.people import person_hits

    explain: dict[str, object] = {}

    def words(rest: str, depth: int) -> list[Hit]:
        found = words_signal(ctx, rest, depth, filters, expand=expand, semantic=semantic)
        explain.update(found.explain)
        return found.hits

    named = person_hits(ctx.store, text, limit, filters, explain, words)
    if named is not None:
        return Signal(named, explain)
    return words_signal(ctx, text, limit, filters, expand=expand, semantic=semantic)


def words_signal(ctx: SearchContext, text: str, limit: int, filters: Filters | None, *, expand: bool = True,
                 semantic: bool | None = None) -> Signal:
    from lookalike.search.keywords import keyword_hits

    explain: dict[str, object] = {}
    hits = keyword_hits(ctx.store, ctx.vocabulary, text, limit, filters, explain, expand=expand, semantic=semantic,
                        sources=getattr(ctx, "term_sources", ()))
    tower = text_embedding_signal(ctx, text, limit, filters)
    explain.update(tower.explain)
    if not tower.hits:
        return Signal(hits, explain)
    if not hits:
        return Signal(tower.hits, explain)
    # fused order; the score shown stays the keyword probability (the text tower's cosine where there is none)
    shown = {h.id: h.score for h in tower.hits} | {h.id: h.score for h in hits}
    return Signal([Hit(h.id, shown[h.id]) for h in rrf({"keywords": hits, "text_embedding": tower.hits})], explain)


def text_embedding_signal(ctx: SearchContext, text: str, limit: int, filters: Filters | None) -> Signal:
    """Free text through the model's text tower, when the index was built by a model that has one (CLIP)."""
    from lookalike.models.base import TextEncoder
    from lookalike.models.registry import embeds_text

    info = ctx.store.model_info()
    if not info or not embeds_text(info["name"]) or not isinstance(ctx.model, TextEncoder):
        return Signal([])
    ctx.check_model()
    hits = ctx.store.knn(ctx.model.encode_text([text])[0], limit * 2, filters)
    return Signal(hits, {"text_embedding": ctx.model.name})


def image_signal(ctx: SearchContext, q: Query, by: str, limit: int, filters: Filters | None) -> Signal:
    emb, cls = ctx.query_vectors(q)
    if by == "tags":
        return Signal(tag_vector_hits(ctx.store, ctx.model, cls, limit, filters))
    from lookalike.search.example import example_hits, load_transform

    transform = load_transform(ctx.store, ctx.model.version) if by == "embedding" else None  # "cosine": plain
    explain: dict[str, object] = {"rerank": "centred + database-side augmentation" if transform else None}
    if transform is None and by == "embedding":
        explain["hint"] = "plain cosine: run `lookalike index` to fit this library's search transform"
    return Signal(example_hits(ctx.store, emb, limit, filters, transform), explain)


def tag_vector_hits(store: SearchStore, model: Model, cls: np.ndarray | None, limit: int,
                    filters: Filters | None) -> list[Hit]:
    """The visual-words method: inner product of class-score vectors. Candidates come from the tag index
    (the query's top classes), then are ranked by the exact inner product of the full vectors."""
    if cls is None:
        raise LookalikeError(f"model {model.name} has no class scores; use --by embedding")
    top = np.argsort(-cls)[:TAG_QUERY_CLASSES]
    weights = {int(c): float(cls[c]) for c in top if cls[c] > 0}
    cands = store.tag_search(weights, max(limit * TAG_CANDIDATES, 100), filters)
    if not cands:
        return []
    ids = [h.id for h in cands]
    _, vecs = store.vectors(ids)
    if vecs is None:
        return cands[:limit]
    scores = vecs @ cls.astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    return [Hit(ids[i], float(scores[i])) for i in order[:limit]]


def face_signal(ctx: SearchContext, q: Query, limit: int, filters: Filters | None) -> Signal:
    from lookalike.models.faces import SAME_PERSON, face_model

    if q.kind == "image_id":
        stored = ctx.store.faces([int(q.value)]).get(int(q.value), [])  # type: ignore[call-overload]
        if not stored:
            raise NotFound(f"no face stored for image id {q.value} (index with --faces)")
        box, emb, n = stored[0].box, stored[0].embedding, len(stored)
    else:
        decoded = ctx.load_query(q, min_side=None)
        found = face_model().faces(decoded.image, (decoded.width, decoded.height))
        if not found:
            raise LookalikeError("no face found in the query photo (faces need to be frontal, at least ~40 px)")
        box, emb, n = found[0].box, found[0].embedding, len(found)
    hits = ctx.store.face_search(emb, limit, filters, max_distance=SAME_PERSON)
    return Signal(hits, {"face": {"box": list(box), "faces_in_query": n, "max_distance": SAME_PERSON}})
