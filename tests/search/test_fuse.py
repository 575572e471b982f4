"""Reciprocal rank fusion (search/fuse.py): weights, and tied scores sharing a rank."""

from __future__ import annotations

import pytest

from lookalike.search.fuse import rrf
from lookalike.stores.base import Hit


def test_weighted_rrf_and_ties() -> None:
    tags = [Hit(1, 0.8), Hit(2, 0.5), Hit(3, 0.1)]
    visual = [Hit(2, 0.7495947), Hit(1, 0.7495946)]  # two examples: equal cosines to their mean
    fused = rrf({"tags": tags, "visual": visual}, {"visual": 1.5})
    assert [h.id for h in fused] == [2, 1, 3]  # the float order of the tie decided
    tied = rrf({"tags": tags, "visual": visual}, {"visual": 1.5}, tie=1e-5)
    assert [h.id for h in tied] == [1, 2, 3]  # one shared rank (1.5): the tag list decides
    assert tied[0].score == pytest.approx(1 / 61 + 1.5 / 61.5)
    assert [h.id for h in rrf({"a": [Hit(5, 1.0), Hit(6, 0.5)]}, tie=1e-5)] == [5, 6]  # no tie: ranks 1, 2
