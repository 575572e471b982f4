"""Is this result an edited copy of the query image? The top results of an image query, checked by the same
verification as ``lookalike dupes`` (search/verify.py).

For an example-image query a result's embedding cosine (``Hit.cosine`` when the search re-ranked by another
score, search/example.py; else ``Hit.score``) says similar, not necessarily the same photo. The first
``COPY_CHECK_TOP`` results whose cosine reaches dupes' candidate floor (``dupes.CANDIDATE_COSINE``) and whose
cosine alone does not already make them a copy are verified against the query, as ``dupes`` verifies only
its uncertain pairs: SIFT + RANSAC and the aligned overlap compared,
then :func:`verify.copy_score` in [0, 1], where 0.5 is the calibrated point at which the duplicate benchmark
(bench/quality.py) flagged no non-copy. So ``copy`` is ``copy_score > 0.5``, the same yes/no as ``dupes``
gives for the pair. Results below the floor or past the top are not verified: their ``copy_score`` is that of
the cosine alone. A URL query is not fetched a second time: its results get the cosine's score only.
Cost: one decode + SIFT per verified result (~50-150 ms each on 2 cores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lookalike.errors import LookalikeError
from lookalike.search import verify
from lookalike.search.plan import Query
from lookalike.stores.base import Hit

COPY_CHECK_TOP = 10


@dataclass(frozen=True)
class CopyCheck:
    copy: bool
    score: float
    verified: bool

    def as_dict(self) -> dict[str, object]:
        return {"copy": self.copy, "copy_score": round(self.score, 4), "verified": self.verified}


def check_copies(ctx, q: Query, hits: Sequence[Hit], top: int = COPY_CHECK_TOP) -> dict[int, CopyCheck]:  # type: ignore[no-untyped-def]
    """Image id -> CopyCheck for every hit (``Hit.score`` = cosine); the first ``top`` above the floor verified."""
    from lookalike.io.read import load
    from lookalike.search.dupes import CANDIDATE_COSINE

    out: dict[int, CopyCheck] = {}
    cos = {h.id: h.score if h.cosine is None else h.cosine for h in hits}  # dupes' scale, whatever ranked them
    # as in dupes: a pair whose cosine alone already says "copy" is not verified (a match can only raise
    # the score), nor one below the candidate floor
    todo = [h for h in hits[:top] if cos[h.id] >= CANDIDATE_COSINE and verify.cosine_score(cos[h.id]) <= 0.5]
    query = None
    if todo and q.kind != "image_url":
        try:
            if q.kind == "image_id":
                info = ctx.store.get([int(q.value)])  # type: ignore[call-overload]
                decoded = load(info[0].path, min_side=verify.FEATURE_SIDE, max_pixels=ctx.settings.max_pixels) if info else None
            else:
                decoded = ctx.load_query(q, min_side=verify.FEATURE_SIDE)
        except (LookalikeError, OSError):
            decoded = None
        if decoded is not None:
            query = (verify.local_features(decoded.image), verify.local_features(decoded.image, mirror=True))
    paths = {i.id: i.path for i in ctx.store.get([h.id for h in todo])} if query else {}
    for h in hits:
        score, checked = verify.cosine_score(cos[h.id]), False
        if query is not None and h in todo and h.id in paths:
            try:
                cand = load(paths[h.id], min_side=verify.FEATURE_SIDE, max_pixels=ctx.settings.max_pixels)
            except (LookalikeError, OSError):
                cand = None
            if cand is not None:
                m = verify.match(query[0], verify.local_features(cand.image), query[1])
                score, checked = verify.copy_score(cos[h.id], m), True
        out[h.id] = CopyCheck(score > 0.5, score, checked)
    return out
