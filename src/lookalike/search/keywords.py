"""What a keyword or free-text query becomes: weighted ImageNet classes, then (optionally) visual neighbours.

1. Lexical: :meth:`Vocabulary.match` (class names, WordNet synonyms and hypernyms: "cat", "fruit"; and every
   other WordNet noun through its parts, wholes, topics, broader kinds, gloss and meaning: "wheel",
   "architecture", "windmill", see :mod:`lookalike.models.wordnet`; a word's senses weighted by how often
   WordNet's sense-tagged corpus used each, scripts/gen_wordnet.py).
2. Semantic: the sentence model (:mod:`lookalike.models.text`) maps the query to its nearest class
   descriptions ("kitty" -> tabby, tiger cat; "ocean waves" -> seashore). It is asked whenever the
   vocabulary's links are weak: a word WordNet does not know, or no class reached by name or kind nor at
   ``STRONG_LEXICAL`` or more (only parts, wholes, broader kinds, gloss nouns or the generator's own
   "meaning" relation: "livestock", "handbag", "room", "blossom"); per class the larger weight wins.
   For a WordNet noun the model's answer is held to more (``SEM_FLOOR_KNOWN``, weights x
   ``SEM_KNOWN_FACTOR``): the vocabulary already says something, and the bare word is ambiguous
   ("windmill" -> kite, the bird of prey, at 0.47, left out; "livestock" -> barn, hog, boar at 0.52-0.62
   stay). --explain shows these classes with via "sentence model" (``SEMANTIC_VIA``; "term: meaning" is
   the lexicon's own link, which the same model made from the word's definition when it was generated).
   Each class has three descriptions (:func:`class_texts`): its name, its name with its WordNet gloss,
   and its names with the kinds above it.
3. Visual-neighbour expansion (pseudo-relevance feedback): the most confident hits of the tag search are
   taken as examples; their mean embedding is searched for, and the two lists are fused. Photos the classifier
   labels with an object class (a cut-out fish tagged "envelope") still look like the confident fish. A second
   round can take the top of that fusion as the examples and search again (``REFINE_SEEDS``; off by default).
4. Extra term sources (:data:`TermSource`: taught concepts, named people) take the words they know and add
   their own list, with their own per-image probabilities.

The lists are fused by reciprocal rank (the order; tied scores in a list share a rank, ``TIE``), and each
result shows its calibrated probability of showing what was asked (:mod:`lookalike.search.calibration`; a
term source's probability when that is higher), made non-increasing along the fused order (``MONOTONE``:
isotonic regression, a rising run shows its mean), so that the order and the numbers agree and a threshold
keeps a prefix of the list. Ranking by the calibrated probability instead was measured and is worse: it
knows the class mass but not the visual list (bench/keyword_quality.py, precision@10 with synonyms on
tuxpaint 0.715 fused vs 0.644 by probability, held-out photos 0.590 vs 0.545, with one visual round and the
three-feature calibration; with two rounds (``REFINE_SEEDS``) fused: 0.739 and 0.596; before the sense weights and
the third class description: tuxpaint 0.707 fused, 0.612 by probability, 0.699 by a probability refitted
with the fused score as a feature, 0.691 in leave-one-folder-out cross-validation; photos 0.586 / 0.545 /
0.569).
Every step is recorded in ``explain`` so a user can see what the query became.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from lookalike.models.vocab import STOPWORDS, Vocabulary, load_classes, normalize
from lookalike.stores.base import FTS_STOPWORDS, Filters, Hit, SearchStore
from lookalike.models.registry import process_wide

CLASS_TEXT_FILE = "class_text_minilm.npz"
ROWS_PER_CLASS = 3
CLASS_TEXT_KINDS = 4

# Semantic mapping: keep classes within SEM_MARGIN of the best one, above SEM_FLOOR, at most SEM_MAX.
SEM_FLOOR = 0.45
SEM_MARGIN = 0.12
SEM_MAX = 15
# The sentence model is asked when the vocabulary matched some word weakly (no class at STRONG_LEXICAL: a
# part of a class name, a part/whole/broader/gloss/meaning link) or not at all; per class the larger weight.
STRONG_LEXICAL = 0.9
STRONG_VIAS = ("name", "kind")  # a class reached through these is a strong link at any weight ("kitty", 0.81)
# ... for a query whose words WordNet all knows (weak links only): a higher floor on the model's best
# similarity, and its weights scaled to the lexicon's "meaning" relation (0.6, MEANING in
# scripts/gen_wordnet.py), so it adds neighbours without outweighing what the vocabulary reached. At 0.5
# "windmill" (0.47, kite) and "architecture" (0.44, pedestal) stay out; "livestock" (0.62), "handbag"
# (0.77), "blossom" (0.52) come in. Checked on the tuxpaint set (bench/keyword_quality.py), docs/extras.md.
SEM_FLOOR_KNOWN = 0.5
SEM_KNOWN_FACTOR = 0.6

# Visual-neighbour expansion
# (tuned on the keyword benchmark, bench/keyword_quality.py: a plateau of n 8-15, relative 0.3-0.5)
EXPAND_SEEDS = 10  # at most this many of the best tag hits serve as examples ...
EXPAND_RELATIVE = 0.3  # ... those scoring at least this share of the best tag hit's score ...
EXPAND_MIN_SEED_SCORE = 0.05  # ... and at least this much
EXPAND_MIN_SIM = 0.4  # neighbours less similar (cosine) to the examples' mean are left out
# RRF weight of the visual list (the tag list has 1.0). 1.5 since the weak-link fallback (issue 11): on
# tuxpaint (bench/keyword_quality.py) precision@10 with synonyms 0.674 at 1.0, 0.707 at 1.5, 0.710 at 2-3
# (0.663 at 0.7); chosen there, then checked on the held-out photos: 0.586 both (AP 0.566 -> 0.572).
EXPAND_WEIGHT = 1.5
# Second round (refinement): the top REFINE_SEEDS of the first fusion (tags + text + visual) are more often
# right than the tag list's top (tuxpaint precision@10 0.715 fused vs 0.624 tags alone), and include the
# photos the classifier mislabels but the first visual list found ("fish" cut-outs tagged "envelope"); the
# visual list is searched again from their mean and fused at REFINE_WEIGHT. On tuxpaint (bench/
# keyword_quality.py, precision@10 / AP with synonyms): 0.715 / 0.635 without, 0.739 / 0.666 at 5 seeds and
# weight 3 (0.72-0.73 / 0.65-0.67 over 4-10 seeds and weights 1.5-5). Measured there and not kept: keeping
# only seeds the tag list or the first visual list vouches for (a tag score >= 0.05, a cosine >= 0.5:
# 0.70-0.73, the gain is in the photos neither list is sure of), a logistic classifier of the seeds against
# a library sample as in search/teach.py instead of the mean (0.67-0.71 in either round; re-ranking the tag
# list by its probability, alone or times the tag score, 0.710-0.715 after one round), the mean of the k
# nearest seeds (0.64-0.71), the centroid centred on the library mean (0.71), seeds weighted by tag score
# (0.69-0.70), and the class mass diffused over the candidates' 3-NN graph as a fourth list (0.73-0.74 / 0.67,
# no better than this round alone; over the whole library's graph 0.73 / 0.69, which needs a graph the stores
# do not keep). Then checked on the held-out photos: 0.590 / 0.572 -> 0.596 / 0.578; not a robust gain there:
# with the ImageNet-only vocabulary (Vocabulary(wordnet=False)) the same round costs 0.573 -> 0.542.
# The first round's constants re-checked on tuxpaint with it (seed score floor 0-0.1, relative 0.1-0.5,
# cosine floor 0.3-0.5): 0.64-0.73, the values above 0.715 in one round; left as they are.
# Off by default (0): the held-out gain is within noise, and on a small library the top 5 of the first fusion
# hold photos that are not what was asked (the demo library's "dog": 3 tag hits, a snow landscape among the
# seeds, then first at the same score as the puppy). Set REFINE_SEEDS = 5 to measure it (bench/
# keyword_quality.py sets it per variant).
REFINE_SEEDS = 0
REFINE_WEIGHT = 3.0

# Scores within TIE of each other share a rank in the fusion: the visual list's cosines to the mean of two
# examples are equal for both (cos(a, (a+b)/2) = cos(b, (a+b)/2)), and their float order decided which came
# first ("dog" on the demo library: the horse silhouette above the puppy); the tag order decides now.
TIE = 1e-5
# The shown probabilities are made non-increasing along the fused order (isotonic, calibration.monotone).
MONOTONE = True

# --explain's name for the sentence model asked at query time (the lexicon's "meaning" links are its own)
SEMANTIC_VIA = "sentence model"

def class_texts() -> list[str]:
    """ROWS_PER_CLASS descriptions per class (rows 3i .. 3i+2): its display name; its name with the WordNet
    gloss; its names with the kinds above it, one word per level, up to CLASS_TEXT_KINDS ("studio couch,
    day bed: a kind of convertible, sofa, seat, furniture"). The third row came in on the tuxpaint keyword
    set: precision@10 with synonyms 0.710 -> 0.712 at query time ("livestock" 0.9 -> 1.0)."""
    out: list[str] = []
    for c in load_classes():
        out.append(c.name)
        out.append(f"{c.name}: {c.gloss}" if c.gloss else c.name)
        levels: dict[int, str] = {}
        for word, d in sorted(c.hypernyms, key=lambda wd: wd[1]):
            if d not in levels and len(levels) < CLASS_TEXT_KINDS:
                levels[d] = word
        names = ", ".join(dict.fromkeys([c.name, *c.words[:2]]))
        out.append(f"{names}: a kind of {', '.join(levels.values())}" if levels else names)
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
        return pick_nearest(self.similarities(text))

    def nearest_many(self, texts: Sequence[str]) -> list[dict[int, float]]:
        """:meth:`nearest` for many texts in one batch."""
        q = self.model.encode(list(texts))
        sims = (q @ self.embeddings.T).reshape(len(texts), -1, ROWS_PER_CLASS).max(axis=2)
        return [pick_nearest(row) for row in sims]

    def sims_of(self, text: str, classes: Sequence[int]) -> dict[int, float]:
        sims = self.similarities(text)
        return {int(c): round(float(sims[c]), 3) for c in classes}


def pick_nearest(sims: np.ndarray, floor: float = SEM_FLOOR) -> dict[int, float]:
    """Classes within SEM_MARGIN of the best similarity (above ``floor``, at most SEM_MAX), weighted 0.5-1."""
    order = np.argsort(-sims)[:SEM_MAX]
    top = float(sims[order[0]])
    if top < floor:
        return {}
    cut = max(floor, top - SEM_MARGIN)
    out: dict[int, float] = {}
    for i in order:
        s = float(sims[i])
        if s < cut:
            break
        out[int(i)] = round(0.5 + 0.5 * (s - cut) / max(top - cut, 1e-6), 4)
    return out


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
    how: dict[int, str] = field(default_factory=dict)  # class -> "term: relation" of its lexical weight

    def explain(self, vocab: Vocabulary, limit: int = 25) -> list[dict[str, object]]:
        """The heaviest classes, each with ``via``: the term and WordNet relation that reached it
        ("wheel: part of", "dog: kind", "cat: name", "sea: meaning" -- the lexicon's own link, made by the
        sentence model from the word's definition when the lexicon was generated) and/or SEMANTIC_VIA (the
        sentence model asked at query time)."""
        out = []
        for c, w in sorted(self.weights.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]:
            d = vocab.describe(c)
            via = [self.how.get(c, "words")] if c in self.lexical else []
            if c in self.semantic:
                via.append(SEMANTIC_VIA)
            out.append({"index": c, "name": d["name"], "wnid": d["wnid"], "weight": round(w, 3), "via": via})
        return out


def content_words(text: str) -> list[str]:
    return [w for w in normalize(text).split() if w not in STOPWORDS and w not in FTS_STOPWORDS]


def map_query(text: str, vocab: Vocabulary, semantic: bool | None = None) -> QueryTerms:
    """``text`` -> weighted classes. ``semantic``: use the sentence model (None = when it is installed)."""
    explained = vocab.match_explained(text)
    lexical = {c: w for c, (w, _) in explained.items()}
    words = content_words(text)
    unmatched = [w for w in words if not vocab.match(w)]
    terms = QueryTerms(text, dict(lexical), lexical=lexical, unmatched=unmatched,
                       how={c: how for c, (_, how) in explained.items()})
    use = semantic_available() if semantic is None else semantic
    if not use or not words:
        return terms
    strong = any(h.rsplit(": ", 1)[-1] in STRONG_VIAS for h in terms.how.values())
    if lexical and not unmatched and (strong or max(lexical.values()) >= STRONG_LEXICAL):
        return terms  # the words reach classes by name, synonym or kind: the vocabulary knows best
    known = bool(lexical) and not unmatched and vocab.lexicon is not None  # WordNet nouns, weak links only
    floor = SEM_FLOOR_KNOWN if known else SEM_FLOOR
    sem = pick_nearest(class_index().similarities(" ".join(words)), floor=floor)
    if known:
        sem = {c: round(w * SEM_KNOWN_FACTOR, 4) for c, w in sem.items()}
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
    return like_these(store, chosen, k, filters), chosen


def like_these(store: SearchStore, ids: Sequence[int], k: int, filters: Filters | None) -> list[Hit]:
    """Nearest neighbours (cosine >= EXPAND_MIN_SIM) of the mean embedding of the images ``ids``."""
    emb, _ = store.vectors(list(ids))
    if not len(emb):
        return []
    centroid = emb.mean(axis=0)
    norm = float(np.linalg.norm(centroid))
    if norm == 0:
        return []
    hits = store.knn(centroid / norm, k, filters)
    return [h for h in hits if h.score >= EXPAND_MIN_SIM]


@dataclass
class TermHits:
    """What an extra term source (taught concepts, named people) made of a query: the words it took, and
    its images best first with ``Hit.score`` = P(the image shows it) in [0, 1]."""

    name: str  # e.g. "concept:rex"; names the fused list and appears in explain["signals"]
    words: tuple[str, ...]  # normalised query words it consumed (the vocabulary does not see them)
    hits: list[Hit]
    explain: dict[str, object] = field(default_factory=dict)


# A term source is called with (query text, store, filters, depth) and returns the TermHits it recognises
# (none: []). search/signals.py passes the library's sources (Library.term_sources) to keyword_hits.
TermSource = Callable[[str, object, "Filters | None", int], Sequence[TermHits]]


@dataclass
class Candidates:
    """A words query's fused candidates (best first, RRF scores) and their calibrated probabilities."""

    fused: list[Hit]
    probability: dict[int, float]  # shown: non-increasing along ``fused`` (calibration.monotone)
    features: dict[int, np.ndarray]
    terms: QueryTerms | None
    own: dict[int, float] = field(default_factory=dict)  # each candidate's own calibrated probability


def keyword_candidates(store: SearchStore, vocab: Vocabulary, text: str, limit: int, filters: Filters | None,
                       explain: dict[str, object], *, expand: bool = True, semantic: bool | None = None,
                       sources: Sequence[TermSource] = ()) -> Candidates:
    """Tag search over the classes the query became, full-text search over the images' texts (OCR,
    descriptions, captions), the visual neighbours of the confident tag hits, and the lists of any extra term
    sources; fused by reciprocal rank. Every candidate gets the features of :mod:`.calibration` and a
    probability (a term source's own probability when higher). ``explain`` receives the classes (and how
    each was reached), the signals and the seeds."""
    from lookalike.search.calibration import calibrator, features, monotone
    from lookalike.search.fuse import rrf

    depth = max(limit * 2, 50)
    lists: dict[str, list[Hit]] = {}
    extra: dict[int, float] = {}
    remaining = text
    for source in sources:
        for th in source(text, store, filters, depth):
            lists[th.name] = list(th.hits)
            explain.setdefault("terms", {})[th.name] = {"words": list(th.words), **th.explain}  # type: ignore[index]
            for h in th.hits:
                extra[h.id] = max(extra.get(h.id, 0.0), float(h.score))
            taken = set(th.words)
            remaining = " ".join(w for w in normalize(remaining).split() if w not in taken)
    terms = map_query(remaining, vocab, semantic) if remaining.strip() else None
    if terms is not None:
        explain["classes"] = terms.explain(vocab)
        explain["semantic"] = terms.semantic_used
        if terms.unmatched:
            explain["unmatched"] = terms.unmatched
        if terms.weights:
            lists["tags"] = store.tag_search(terms.weights, depth, filters)
        lists["text"] = store.text_search(remaining, depth, filters)
        if expand and lists.get("tags"):
            visual, seeds = visual_expansion(store, lists["tags"], depth, filters)
            if visual:
                lists["visual"] = visual
                explain["expanded_from"] = seeds
    lists = {k: v for k, v in lists.items() if v}
    explain["signals"] = {k: len(v) for k, v in lists.items()}
    if not lists:
        return Candidates([], {}, {}, terms)
    fused = rrf(lists, {"visual": EXPAND_WEIGHT}, tie=TIE)
    if "visual" in lists and REFINE_SEEDS:
        top = [h.id for h in fused[:REFINE_SEEDS]]
        refined = like_these(store, top, depth, filters)
        if refined:
            lists["visual"] = refined
            explain["refined_from"] = top
            fused = rrf(lists, {"visual": REFINE_WEIGHT}, tie=TIE)
    ids = [h.id for h in fused]
    mass = _mass(store, ids, terms.weights if terms else {}, lists)
    wmax = max(terms.weights.values()) if terms and terms.weights else 0.0
    x = features(mass, wmax)
    p = calibrator().probability(x) if terms is not None else np.zeros(len(ids))
    p = np.maximum(p, [extra.get(i, 0.0) for i in ids])
    shown = monotone(p) if MONOTONE else p  # in the fused order, so order and probability agree
    prob = {i: round(float(pi), 6) for i, pi in zip(ids, shown)}
    explain["score"] = "probability"
    return Candidates(fused, prob, {i: x[k] for k, i in enumerate(ids)}, terms,
                      {i: round(float(pi), 6) for i, pi in zip(ids, p)})


def _mass(store: SearchStore, ids: list[int], weights: dict[int, float], lists: dict[str, list[Hit]]) -> np.ndarray:
    """Each candidate's class mass over the query's weights, from its full class probabilities (from the
    tag list's scores, over the top tags only, when the store cannot give every vector)."""
    if not ids or not weights:
        return np.zeros(len(ids))
    _, cls = store.vectors(ids)
    if cls is not None and len(cls) == len(ids):
        w = np.zeros(cls.shape[1], np.float32)
        for c, v in weights.items():
            w[c] = v
        return cls.astype(np.float32) @ w
    tag = {h.id: h.score for h in lists.get("tags", ())}
    return np.array([tag.get(i, 0.0) for i in ids])


def keyword_hits(store: SearchStore, vocab: Vocabulary, text: str, limit: int, filters: Filters | None,
                 explain: dict[str, object], *, expand: bool = True, semantic: bool | None = None,
                 sources: Sequence[TermSource] = ()) -> list[Hit]:
    """Ranked hits of a words query (:func:`keyword_candidates`): in fused order, each scored with its
    calibrated probability of showing what was asked."""
    cands = keyword_candidates(store, vocab, text, limit, filters, explain, expand=expand, semantic=semantic,
                               sources=sources)
    return [Hit(h.id, cands.probability[h.id]) for h in cands.fused]
