"""Taught words at query time, and relevance feedback (``--more-like`` / ``--less-like``).

A taught word's hits come from the vector index: the concept is linear, so the photos with the highest
probability are those with the highest inner product with ``w/|w|`` (one faiss / pgvector search, with the
query's filters); each hit's score is the concept's probability ``sigmoid(|w| s + b)``, in [0, 1]. Photos
indexed after teaching are found as soon as they are indexed (nothing is stored per image, nothing to
re-score): this scales with the vector index, not with the number of concepts x photos.

Taught words reach keyword searches as a term source of search/keywords.py (:class:`ConceptTerms`): a words
query is split into taught words and the rest (:func:`split_taught`, longest phrase first): "rex on the
beach" -> concept "rex" + the words "on the beach" for the vocabulary; keywords.py fuses the lists by
reciprocal rank and shows each photo's higher probability (the concept's or the vocabulary's calibrated one).

Relevance feedback (:func:`feedback`): the marked photos fit a quick concept on the fly (the same
classifier as ``teach``: good marks against bad marks + a library sample; with bad marks only, the top of
the original list stands in for the good ones). The original list and the feedback model's list (the
original candidates and the model's own nearest photos, by probability) are fused by reciprocal rank,
bad-marked photos are dropped, and each result shows the feedback model's probability, made non-increasing
along the fused order (search/calibration.py's ``monotone``, as keyword results are), so the numbers agree
with the order and a threshold keeps the top of the list (the raw probabilities went 0.94, 0.07, 0.12, ...
for "animal" with a goldfish marked good on the notebook's 13 photos).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lookalike.errors import LookalikeError, NotFound
from lookalike.models.concepts import WORD_EDGE, LinearModel, fit_concept, library_sample_size, normalize_word
from lookalike.search.calibration import monotone
from lookalike.search.fuse import rrf
from lookalike.stores.base import ConceptRecord, Filters, Hit

FEEDBACK_WEIGHT = 2.0  # RRF weight of the feedback model's list against the original list (1.0)
PSEUDO_POSITIVES = 5  # with only bad marks: this many of the best remaining results stand in as good ones
FEEDBACK_SEED = 1


def model_of(rec: ConceptRecord) -> LinearModel:
    return LinearModel(np.asarray(rec.weights, np.float32), float(rec.bias))


def concept_hits(store, rec: ConceptRecord, k: int, filters: Filters | None = None) -> list[Hit]:  # type: ignore[no-untyped-def]
    """The ``k`` photos most likely to show ``rec`` (vector-index search), scored by probability."""
    m = model_of(rec)
    return [Hit(h.id, m.probability_of_score(h.score)) for h in store.knn(m.direction(), k, filters)]


def probabilities(store, models: Sequence[LinearModel], ids: Sequence[int]) -> dict[int, np.ndarray]:  # type: ignore[no-untyped-def]
    """id -> each model's probability, from the stored vectors (ids without vectors are left out)."""
    got = store.vector_map(ids)
    if not got:
        return {}
    keys = list(got)
    x = np.stack([got[i] for i in keys])
    p = np.stack([m.predict(x) for m in models], axis=1)
    return dict(zip(keys, p))


def split_taught(text: str, taught: Sequence[str]) -> tuple[list[str], str]:
    """(taught words found in ``text``, longest phrase first, left to right; the remaining words)."""
    tokens = [t.strip(WORD_EDGE) for t in normalize_word(text).split()]
    phrases = sorted({normalize_word(w) for w in taught}, key=lambda w: -len(w.split()))
    found: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(tokens):
        for ph in phrases:
            n = len(ph.split())
            if " ".join(tokens[i:i + n]) == ph:
                if ph not in found:
                    found.append(ph)
                i += n
                break
        else:
            rest.append(tokens[i])
            i += 1
    return found, " ".join(t for t in rest if t)


class ConceptTerms:
    """The term source (search/keywords.py ``TermSource``) of taught words: called with a words query, it
    returns one list per taught word in it, scored by the concept's probability. ``embed`` re-embeds example
    files when a concept must be re-fitted after a model change (Library.embed_files)."""

    def __init__(self, embed=None) -> None:  # type: ignore[no-untyped-def]
        self.embed = embed

    def __call__(self, text: str, store, filters: Filters | None, depth: int) -> list:  # type: ignore[no-untyped-def,type-arg]
        from lookalike.search.keywords import TermHits
        from lookalike.search.teach import current

        known = store.concept_words()
        if not known:
            return []
        found, _ = split_taught(text, known)
        out = []
        for word in found:
            rec = store.concept(word)
            if rec is None:  # forgotten meanwhile
                continue
            rec = current(store, rec, self.embed)
            out.append(TermHits(f"concept:{word}", tuple(word.split()), concept_hits(store, rec, depth, filters),
                                {"taught": True, "examples": sum(e.positive for e in rec.examples),
                                 "counter_examples": sum(not e.positive for e in rec.examples),
                                 "precision": rec.validation.get("precision")}))
        return out


def _vectors_of(store, ids: Sequence[int], what: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    got = store.vector_map(ids)
    lacking = [i for i in ids if i not in got]
    if lacking:
        raise NotFound(f"no indexed image with id {lacking[0]} ({what})")
    return np.stack([got[i] for i in ids]).astype(np.float32)


def feedback(store, base: Sequence[Hit], more: Sequence[int], less: Sequence[int], k: int,  # type: ignore[no-untyped-def]
             filters: Filters | None, explain: dict[str, object]) -> list[Hit]:
    """``base`` (an ordinary search's hits, possibly empty) re-ranked by the marks: photos like ``more``
    up, photos like ``less`` down, the ``less`` photos themselves out. See the module docstring."""
    more = list(dict.fromkeys(int(i) for i in more))
    less = list(dict.fromkeys(int(i) for i in less))
    if set(more) & set(less):
        raise LookalikeError(f"image {sorted(set(more) & set(less))[0]} is marked both more-like and less-like")
    if not more and not less:
        return list(base)
    bad = set(less)
    pseudo = [] if more else [h.id for h in base if h.id not in bad][:PSEUDO_POSITIVES]
    if not more and not pseudo:
        if not base:
            raise LookalikeError("give --more-like too, or a query whose results --less-like can re-rank")
        explain["feedback"] = {"more_like": more, "less_like": less, "pseudo_positives": []}
        return [h for h in base if h.id not in bad]  # nothing left to learn from: the marked ones go
    pos = _vectors_of(store, more or pseudo, "more-like")
    neg = _vectors_of(store, less, "less-like") if less else None
    exclude = sorted(set(more) | bad | set(pseudo))
    _, lib = store.sample_vectors(library_sample_size(store.count(), len(exclude)), seed=FEEDBACK_SEED, exclude=exclude)
    model = fit_concept(pos, neg, lib)
    depth = max(k * 3, 50)
    own = [Hit(h.id, model.probability_of_score(h.score)) for h in store.knn(model.direction(), depth, filters)]
    probs = {h.id: h.score for h in own}
    missing = [h.id for h in base if h.id not in probs]
    probs.update({i: float(p[0]) for i, p in probabilities(store, [model], missing).items()})
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    lists: dict[str, list[Hit]] = {"feedback": [Hit(i, s) for i, s in ranked if i not in bad]}
    if base:
        lists["query"] = [h for h in base if h.id not in bad]
    explain["feedback"] = {"more_like": more, "less_like": less, "pseudo_positives": pseudo,
                           "weight": FEEDBACK_WEIGHT}
    fused = rrf(lists, {"query": 1.0, "feedback": FEEDBACK_WEIGHT}) if len(lists) > 1 else lists["feedback"]
    kept = [h.id for h in fused if h.id in probs]
    return [Hit(i, float(p)) for i, p in zip(kept, monotone([probs[i] for i in kept]))]


def explain_concept(rec: ConceptRecord) -> dict[str, object]:
    """A concept as ``lookalike concepts`` and the REST API list it (no vectors)."""
    return {"word": rec.word, "examples": [e.path for e in rec.examples if e.positive],
            "counter_examples": [e.path for e in rec.examples if not e.positive],
            "model": {"name": rec.model, "version": rec.model_version, "dim": rec.dim},
            "validation": dict(rec.validation), "created_at": rec.created_at, "updated_at": rec.updated_at}
