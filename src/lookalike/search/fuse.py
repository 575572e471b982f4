"""Rank fusion across signals (embedding, tags, text, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lookalike.stores.base import Hit


def rrf(lists: Mapping[str, Sequence[Hit]], weights: Mapping[str, float] | None = None, k: int = 60) -> list[Hit]:
    """Weighted reciprocal rank fusion: score(d) = sum_s w_s / (k + rank_s(d)), best first."""
    scores: dict[int, float] = {}
    for name, hits in lists.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        if w == 0:
            continue
        for rank, hit in enumerate(hits, start=1):
            scores[hit.id] = scores.get(hit.id, 0.0) + w / (k + rank)
    return [Hit(i, s) for i, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def weighted_sum(lists: Mapping[str, Sequence[Hit]], weights: Mapping[str, float]) -> list[Hit]:
    """Score fusion for signals on comparable scales: sum_s w_s * score_s(d)."""
    scores: dict[int, float] = {}
    for name, hits in lists.items():
        w = weights.get(name, 1.0)
        for hit in hits:
            scores[hit.id] = scores.get(hit.id, 0.0) + w * hit.score
    return [Hit(i, s) for i, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]
