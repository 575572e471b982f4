"""Rank fusion across signals (embedding, tags, text, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lookalike.stores.base import Hit


def rrf(lists: Mapping[str, Sequence[Hit]], weights: Mapping[str, float] | None = None, k: int = 60,
        tie: float | None = None) -> list[Hit]:
    """Weighted reciprocal rank fusion: score(d) = sum_s w_s / (k + rank_s(d)), best first. With ``tie``,
    consecutive hits of a list whose scores are within ``tie`` of the first of their run share one rank
    (the mean of their positions), so that the order of equal scores is not read as evidence."""
    scores: dict[int, float] = {}
    for name, hits in lists.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        if w == 0:
            continue
        for hit, rank in zip(hits, _ranks(hits, tie)):
            scores[hit.id] = scores.get(hit.id, 0.0) + w / (k + rank)
    return [Hit(i, s) for i, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]


def _ranks(hits: Sequence[Hit], tie: float | None) -> list[float]:
    """1-based ranks of ``hits`` (best first); runs of scores within ``tie`` get their mean position."""
    if tie is None:
        return [float(r) for r in range(1, len(hits) + 1)]
    out: list[float] = []
    start = 0
    for i in range(1, len(hits) + 1):
        if i == len(hits) or abs(hits[i].score - hits[start].score) > tie:
            out += [(start + 1 + i) / 2.0] * (i - start)
            start = i
    return out


def weighted_sum(lists: Mapping[str, Sequence[Hit]], weights: Mapping[str, float]) -> list[Hit]:
    """Score fusion for signals on comparable scales: sum_s w_s * score_s(d)."""
    scores: dict[int, float] = {}
    for name, hits in lists.items():
        w = weights.get(name, 1.0)
        for hit in hits:
            scores[hit.id] = scores.get(hit.id, 0.0) + w * hit.score
    return [Hit(i, s) for i, s in sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))]
