"""Search orchestration: a query's signals planned (search/plan.py), each searched on its own
(search/signals.py), then one list: a single signal's hits as they are, several fused by weighted reciprocal
rank (search/fuse.py), each signal searched ``COMBINED_DEPTH`` times deeper than the results wanted (at least
``COMBINED_MIN``) so that fusion has overlap to work with (chosen values, not measured optima).

The explanation is assembled here, from each signal's own: the signals' explanations side by side (their keys
do not overlap, but for "signals"), and for a combined search "signals" is the fusion's summary (weight and
hit count per signal), in place of the keyword signal's per-list counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lookalike.errors import LookalikeError
from lookalike.search.copies import CopyCheck, check_copies
from lookalike.search.fuse import rrf
from lookalike.search.plan import MAX_LIMIT, SEARCH_BY, Query, signal_parts, signal_weights, split_exclusions
from lookalike.search.signals import SearchContext, Signal, face_signal, image_signal, keyword_signal
from lookalike.stores.base import Filters, Hit

COMBINED_DEPTH, COMBINED_MIN = 3, 50  # a combined search asks each signal for max(3 x limit, 50) hits
# "-word" in a text query: a photo is left out when the word's own search gives it a calibrated probability of
# showing the word of at least EXCLUDE_P (more likely than not; search/calibration.py; chosen, not fitted), or,
# in a words-only query (EXCLUDE_RELATIVE), a higher one than that of showing the words searched for (the
# classifier's classes compete: a photo tagged more "dog" than "cat"). Looked for among the word search's first
# EXCLUDE_DEPTH results, deeper (x4, up to MAX_LIMIT) while the last of them still has P >= EXCLUDE_P: its
# probabilities fall along its order, so the absolute rule sees every photo it applies to, and the relative
# rule compares below that with what the word's list gives (bench/exclusion_scale.py, 9,990 photos: "animal
# -cat" 61 ms at a fixed depth of 10,000, 54 ms at 1,000; "room -chair" 134 / 119 ms; "animal" 16 ms; noisy,
# the quality figures below are the same at either depth). bench/exclusion.py, "X -Y" for
# every pair of folders, folder-Y photos in the top 10 / precision@10 of X: held-out photos 60 -> 61 /
# 0.510 -> 0.510 with P alone, 60 -> 42 / 0.510 with the relative rule; tuxpaint (where the calibration was
# fitted, and where the rule was picked among P >= 0.2, 0.3, 0.5 with and without it) 42 -> 31 and 42 -> 18 /
# 0.737 -> 0.731.
EXCLUDE_P = 0.5
EXCLUDE_RELATIVE = True
EXCLUDE_DEPTH = 1000


@dataclass
class Found:
    """What a search found, before the hits become results: the query as described, its kind, what it
    searched by, the hits (best first, at most the limit) and the explanation."""

    query: str
    kind: str
    by: str
    hits: list[Hit]
    explain: dict[str, object] = field(default_factory=dict)
    copies: dict[int, CopyCheck] = field(default_factory=dict)  # image queries: is each top result a copy


def run_search(ctx: SearchContext, query: str | None = None, *,
               image: str | os.PathLike[str] | bytes | None = None, text: str | None = None,
               url: str | None = None, image_id: int | None = None,
               face: str | os.PathLike[str] | bytes | None = None, by: str = "embedding", limit: int = 20,
               threshold: float | None = None, filters: Filters | None = None,
               weights: Mapping[str, float] | None = None, expand: bool = True,
               semantic: bool | None = None, copies: bool = True, more_like: Sequence[int] = (),
               less_like: Sequence[int] = ()) -> Found:
    """Every argument is checked before any work; see ``Library.search`` for their meaning. Relevance
    feedback (``more_like``/``less_like``, search/concepts.py) re-ranks the list before the threshold."""
    if by not in SEARCH_BY:
        raise LookalikeError(f"unknown --by {by!r}; choose one of {', '.join(SEARCH_BY)}")
    if int(limit) < 1:  # refused, not silently raised to 1 (the CLI and the API refuse it too)
        raise LookalikeError(f"limit must be at least 1, not {limit}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:  # it would keep everything or nothing
        raise LookalikeError(f"the threshold must be between 0 and 1 (every score is), not {threshold:g}")
    limit = min(int(limit), MAX_LIMIT)
    if (more_like or less_like) and all(v is None for v in (query, image, text, url, image_id, face)):
        return _feedback_only(ctx, more_like, less_like, limit, threshold, filters)
    parts = signal_parts(query, image=image, text=text, url=url, image_id=image_id, face=face)
    explain: dict[str, object] = {}
    asked = parts["text"].describe() if "text" in parts else None
    excluded = _exclusions(ctx, parts, filters, explain, expand=expand, semantic=semantic)
    w = signal_weights(weights, parts)
    feedback = bool(more_like or less_like)  # re-ranking needs candidates beyond the limit
    depth = limit if len(parts) == 1 and not feedback else max(limit * COMBINED_DEPTH, COMBINED_MIN)
    if excluded:  # room for what is left out
        depth = min(depth * 2 + sum(1 for v in excluded.values() if v >= EXCLUDE_P), MAX_LIMIT)
    signals = {name: search_signal(ctx, name, q, by, depth, filters, expand=expand, semantic=semantic)
               for name, q in parts.items()}
    for sig in signals.values():
        explain.update(sig.explain)
    if len(parts) == 1:
        name, q = next(iter(parts.items()))
        hits = signals[name].hits
        kind, by = ("face", "face") if name == "face" else (q.kind, "keywords" if name == "text" else by)
        described = asked if name == "text" and asked else q.describe()
    else:
        # ordered by fusion; shown: the best of the image's own scores in its signals (each in [0, 1]: the
        # words' probability, the cosine, the face similarity), so a threshold keeps its meaning
        own: dict[int, float] = {}
        for sig in signals.values():
            for h in sig.hits:
                own[h.id] = max(own.get(h.id, 0.0), float(h.score))
        hits = [Hit(h.id, own[h.id]) for h in rrf({n: s.hits for n, s in signals.items()}, w)]
        kind, by = "combined", "+".join(parts)
        described = " + ".join(f"{n}:{asked if n == 'text' and asked else q.describe()}" for n, q in parts.items())
        explain["signals"] = {n: {"weight": w[n], "hits": len(signals[n].hits)} for n in parts}
    if feedback:
        from lookalike.search.concepts import feedback as rerank

        hits = rerank(ctx.store, hits, more_like, less_like, limit, filters, explain)
    if excluded:  # the relative rule where the scores are P(the words): words alone, not re-ranked by marks
        relative = EXCLUDE_RELATIVE and len(parts) == 1 and "text" in parts and not feedback
        kept_hits = [h for h in hits if not _left_out(excluded.get(h.id), h.score if relative else None)]
        explain["excluded"]["from_results"] = len(hits) - len(kept_hits)  # type: ignore[index]
        hits = kept_hits
    hits = _in_unit_interval(hits, threshold)
    found = Found(described, kind, by, hits[:limit], explain)
    if copies and len(parts) == 1 and "image" in parts and by == "embedding":
        found.copies = check_copies(ctx, parts["image"], found.hits)
    return found


def _exclusions(ctx: SearchContext, parts: dict[str, Query], filters: Filters | None, explain: dict[str, object],
                *, expand: bool, semantic: bool | None) -> dict[int, float]:
    """Image id -> the largest probability that it shows one of a text query's ``-word``s (their own keyword
    searches); the text signal keeps its other words, and is dropped when it had none but the query has another
    signal (an example image "-people")."""
    if "text" not in parts:
        return {}
    kept, words = split_exclusions(str(parts["text"].value))
    if not words:
        return {}
    if kept:
        parts["text"] = Query("text", kept)
    elif len(parts) > 1:
        del parts["text"]
    else:
        raise LookalikeError(f"the query only leaves out ({' '.join('-' + w for w in words)}): give words to "
                             "search for too, or an example image")
    out: dict[int, float] = {}
    per_word: dict[str, int] = {}
    for word in words:
        depth = EXCLUDE_DEPTH
        sig = keyword_signal(ctx, word, depth, filters, expand=expand, semantic=semantic)
        while sig.hits and sig.hits[-1].score >= EXCLUDE_P and len(sig.hits) >= depth and depth < MAX_LIMIT:
            depth = min(depth * 4, MAX_LIMIT)  # more photos than that show the word: look further
            sig = keyword_signal(ctx, word, depth, filters, expand=expand, semantic=semantic)
        per_word[word] = sum(1 for h in sig.hits if h.score >= EXCLUDE_P)
        for h in sig.hits:
            if h.score > 0:
                out[h.id] = max(out.get(h.id, 0.0), float(h.score))
    explain["excluded"] = {"words": per_word, "min_probability": EXCLUDE_P, "relative": EXCLUDE_RELATIVE,
                           "photos": sum(1 for v in out.values() if v >= EXCLUDE_P)}
    return out


def _left_out(p_excluded: float | None, p_asked: float | None) -> bool:
    """A result goes when it shows an excluded word with P >= EXCLUDE_P, or (``p_asked``: a words-only query,
    EXCLUDE_RELATIVE) more likely than it shows the words searched for."""
    if p_excluded is None:
        return False
    return p_excluded >= EXCLUDE_P or (p_asked is not None and p_excluded > p_asked)


def _feedback_only(ctx: SearchContext, more_like: Sequence[int], less_like: Sequence[int], limit: int,
                   threshold: float | None, filters: Filters | None) -> Found:
    """No query, only marks: the photos most like ``more_like`` (and least like ``less_like``)."""
    from lookalike.search.concepts import feedback

    explain: dict[str, object] = {}
    hits = _in_unit_interval(feedback(ctx.store, [], more_like, less_like, limit, filters, explain), threshold)
    return Found("more like " + ", ".join(f"id:{i}" for i in more_like), "feedback", "feedback", hits[:limit], explain)


def _in_unit_interval(hits: list[Hit], threshold: float | None) -> list[Hit]:
    """The shown scores clipped to [0, 1] (the order is kept): an image query's centred cosine is below 0 for
    photos less like it than the collection's mean, a float cosine can be 1 + 1e-7. Then the threshold."""
    out = [h if 0.0 <= h.score <= 1.0 else Hit(h.id, min(1.0, max(0.0, float(h.score))), h.cosine) for h in hits]
    return out if threshold is None else [h for h in out if h.score >= threshold]


def search_signal(ctx: SearchContext, name: str, q: Query, by: str, limit: int, filters: Filters | None, *,
                  expand: bool = True, semantic: bool | None = None) -> Signal:
    """One planned signal ("text", "image" or "face") searched on its own."""
    if name == "text":
        return keyword_signal(ctx, str(q.value), limit, filters, expand=expand, semantic=semantic)
    if name == "face":
        return face_signal(ctx, q, limit, filters)
    return image_signal(ctx, q, by, limit, filters)
