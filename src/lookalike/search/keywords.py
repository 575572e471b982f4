"""What a keyword or free-text query becomes: weighted ImageNet classes, then (optionally) visual neighbours.

1. Lexical: :meth:`Vocabulary.match` (class names, WordNet synonyms and hypernyms: "cat", "fruit").
2. Semantic: the sentence model (:mod:`lookalike.models.text`) maps the query to its nearest class
   descriptions ("kitty" -> tabby, tiger cat; "sea" -> seashore; "automobile" -> passenger car). It fills in
   where the vocabulary has nothing, and adds a little to a lexical match.
3. Visual-neighbour expansion (pseudo-relevance feedback): the most confident hits of the tag search are
   taken as examples; their mean embedding is searched for, and the two lists are fused. Photos the classifier
   labels with an object class (a cut-out fish tagged "envelope") still look like the confident fish.

Every step is recorded in ``explain`` so a user can see what the query became.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.models.vocab import STOPWORDS, Vocabulary, load_classes, normalize
from lookalike.stores.base import FTS_STOPWORDS, Filters, Hit, SearchStore
from lookalike.models.registry import process_wide

CLASS_TEXT_FILE = "class_text_minilm.npz"
ROWS_PER_CLASS = 2

# Semantic mapping: keep classes within SEM_MARGIN of the best one, above SEM_FLOOR, at most SEM_MAX.
SEM_FLOOR = 0.45
SEM_MARGIN = 0.12
SEM_MAX = 15
# The sentence model is asked only when the vocabulary matched some word weakly (a part of a class name, as
# "sea" in "sea lion") or not at all; a class's weight is then the larger of the two.
STRONG_LEXICAL = 0.9

# Visual-neighbour expansion
# (tuned on the keyword benchmark, bench/keyword_quality.py: a plateau of n 8-15, relative 0.3-0.5)
EXPAND_SEEDS = 10  # at most this many of the best tag hits serve as examples ...
EXPAND_RELATIVE = 0.3  # ... those scoring at least this share of the best tag hit's score ...
EXPAND_MIN_SEED_SCORE = 0.05  # ... and at least this much
EXPAND_MIN_SIM = 0.4  # neighbours less similar (cosine) to the examples' mean are left out
EXPAND_WEIGHT = 1.0  # RRF weight of the visual list (the tag list has 1.0)

def class_texts() -> list[str]:
    """Two descriptions per class (rows 2i, 2i+1): its display name, and its name with the WordNet gloss."""
    out: list[str] = []
    for c in load_classes():
        out.append(c.name)
        out.append(f"{c.name}: {c.gloss}" if c.gloss else c.name)
    return out


def texts_key(texts: Sequence[str]) -> str:
    return hashlib.blake2b("\n".join(texts).encode(), digest_size=12).hexdigest()


class ClassIndex:
    """Sentence embeddings of the class descriptions; nearest classes of a text."""

    def __init__(self) -> None:
        from lookalike.models.text import text_model

        self.model = text_model()
        texts = class_texts()
        self.embeddings = _shipped_embeddings(texts)
        if self.embeddings is None:
            self.embeddings = self.model.encode_cached(texts, "class-text")

    def similarities(self, text: str) -> np.ndarray:
        """(1000,) cosine similarity of ``text`` to each class (max over its descriptions)."""
        q = self.model.encode([text])[0]
        sims = self.embeddings @ q
        return sims.reshape(-1, ROWS_PER_CLASS).max(axis=1)

    def nearest(self, text: str) -> dict[int, float]:
        """Class -> weight in (0, 1] for the classes nearest to ``text`` (empty when none is close)."""
        sims = self.similarities(text)
        order = np.argsort(-sims)[:SEM_MAX]
        top = float(sims[order[0]])
        if top < SEM_FLOOR:
            return {}
        cut = max(SEM_FLOOR, top - SEM_MARGIN)
        out: dict[int, float] = {}
        for i in order:
            s = float(sims[i])
            if s < cut:
                break
            out[int(i)] = round(0.5 + 0.5 * (s - cut) / max(top - cut, 1e-6), 4)
        return out

    def sims_of(self, text: str, classes: Sequence[int]) -> dict[int, float]:
        sims = self.similarities(text)
        return {int(c): round(float(sims[c]), 3) for c in classes}


def _shipped_embeddings(texts: Sequence[str]) -> np.ndarray | None:
    try:
        raw = importlib.resources.files("lookalike.models").joinpath("data", CLASS_TEXT_FILE).read_bytes()
    except (FileNotFoundError, OSError):
        return None
    data = np.load(io.BytesIO(raw))
    if str(data["key"]) != texts_key(texts):
        return None  # the vocabulary changed since the file was generated
    return data["emb"].astype(np.float32)


class_index = process_wide(ClassIndex)  # the class-text embeddings, built once per process


def semantic_available() -> bool:
    from lookalike.models.text import available

    return available()


@dataclass
class QueryTerms:
    """A text query as weighted classes, with how each class got there."""

    text: str
    weights: dict[int, float]
    lexical: dict[int, float] = field(default_factory=dict)
    semantic: dict[int, float] = field(default_factory=dict)
    unmatched: list[str] = field(default_factory=list)  # words the vocabulary does not know
    semantic_used: bool = False

    def explain(self, vocab: Vocabulary, limit: int = 25) -> list[dict[str, object]]:
        out = []
        for c, w in sorted(self.weights.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
            d = vocab.describe(c)
            via = [s for s, src in (("words", self.lexical), ("meaning", self.semantic)) if c in src]
            out.append({"index": c, "name": d["name"], "wnid": d["wnid"], "weight": round(w, 3), "via": via})
        return out


def content_words(text: str) -> list[str]:
    return [w for w in normalize(text).split() if w not in STOPWORDS and w not in FTS_STOPWORDS]


def map_query(text: str, vocab: Vocabulary, semantic: bool | None = None) -> QueryTerms:
    """``text`` -> weighted classes. ``semantic``: use the sentence model (None = when it is installed)."""
    lexical = vocab.match(text)
    words = content_words(text)
    unmatched = [w for w in words if not vocab.match(w)]
    terms = QueryTerms(text, dict(lexical), lexical=lexical, unmatched=unmatched)
    use = semantic_available() if semantic is None else semantic
    if not use or not words:
        return terms
    if lexical and max(lexical.values()) >= STRONG_LEXICAL and not unmatched:
        return terms  # every word is a class name, synonym or near hypernym: the vocabulary knows best
    sem = class_index().nearest(" ".join(words))
    if not sem:
        return terms
    terms.semantic = sem
    terms.semantic_used = True
    for c, w in sem.items():
        terms.weights[c] = round(max(terms.weights.get(c, 0.0), w), 6)
    return terms


def visual_expansion(store: SearchStore, seeds: Sequence[Hit], k: int, filters: Filters | None,  # type: ignore[no-untyped-def]
                     n_seeds: int = EXPAND_SEEDS, relative: float = EXPAND_RELATIVE,
                     min_score: float = EXPAND_MIN_SEED_SCORE) -> tuple[list[Hit], list[int]]:
    """Nearest neighbours of the mean embedding of the most confident ``seeds`` (hits best first, scores
    from the tag search). Returns (neighbours, seed ids); empty when no hit is confident enough."""
    if not seeds:
        return [], []
    floor = max(min_score, relative * seeds[0].score)
    chosen = [h.id for h in seeds[:n_seeds] if h.score >= floor]
    if not chosen:
        return [], []
    emb, _ = store.vectors(chosen)
    if not len(emb):
        return [], []
    centroid = emb.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    if norm == 0:
        return [], chosen
    hits = store.knn(centroid / norm, k, filters)
    return [h for h in hits if h.score >= EXPAND_MIN_SIM], chosen


def keyword_hits(store: SearchStore, vocab: Vocabulary, text: str, limit: int, filters: Filters | None,  # type: ignore[no-untyped-def]
                 explain: dict[str, object], *, expand: bool = True, semantic: bool | None = None) -> list[Hit]:
    """Ranked hits of a words query: tag search over the classes the query became, full-text search over the
    images' texts (OCR, descriptions, captions), and the visual neighbours of the confident tag hits; fused by
    reciprocal rank. ``explain`` receives the classes (and how each was reached), the signals and the seeds."""
    from lookalike.search.fuse import rrf

    terms = map_query(text, vocab, semantic)
    explain["classes"] = terms.explain(vocab)
    explain["semantic"] = terms.semantic_used
    if terms.unmatched:
        explain["unmatched"] = terms.unmatched
    depth = max(limit * 2, 50)
    lists: dict[str, list[Hit]] = {}
    if terms.weights:
        lists["tags"] = store.tag_search(terms.weights, depth, filters)
    lists["text"] = store.text_search(text, depth, filters)
    if expand and lists.get("tags"):
        visual, seeds = visual_expansion(store, lists["tags"], depth, filters)
        if visual:
            lists["visual"] = visual
            explain["expanded_from"] = seeds
    lists = {k: v for k, v in lists.items() if v}
    explain["signals"] = {k: len(v) for k, v in lists.items()}
    if not lists:
        return []
    if len(lists) == 1:
        return next(iter(lists.values()))
    return rrf(lists, {"tags": 1.0, "text": 1.0, "visual": EXPAND_WEIGHT})
