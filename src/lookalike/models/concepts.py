"""Taught concepts: a linear classifier on the stored embeddings, fitted from a few examples.

The model is L2-regularised logistic regression, ``p(x) = sigmoid(w . x + b)``, on the library's
L2-normalised embeddings, fitted in numpy (no sklearn):

- positives: the user's examples; negatives: the counter-examples ("not a carrot") plus photos sampled at
  random from the library (a random photo is almost never the concept). Weighted so that the positives and
  the library sample each weigh 1 in total, and each counter-example weighs as much as one positive
  (``COUNTER_WEIGHT``): a handful of counter-examples then moves the boundary, a sampled negative that
  happens to be an unlabelled positive does not.
- solved by Newton's method in the span of the samples: by the representer theorem the optimal ``w`` lies
  in the row space of ``X`` (n samples << d = 1280 dimensions), so after one Cholesky factorisation of the
  Gram matrix ``X X^T`` each Newton step is an (n+1)x(n+1) solve (about 6 steps). Tens of examples + 256 library samples: ~10-30 ms on one core.
- the model is linear, so ranking a library by ``p`` is ranking it by ``w . x``: an inner-product search of
  the unit vector ``w/|w|`` in the vector index (exact or faiss/pgvector), then ``p = sigmoid(|w| s + b)``
  for the score ``s`` it returns. Nothing is stored per image; photos indexed later are found at once.

Estimated precision (``cross_validate``): stratified k-fold over the examples, counter-examples and library
sample; each held-out example's rank among the held-out library photos (scaled to the library's size) by the
concept fitted without it, turned into an estimate of precision@10 of a search by the word (the share of
held-out examples within the top 30 unlabelled photos). Unlabelled photos of the concept count against it,
so it is an estimate, not a measurement (bench/concepts.py --estimate compares it with the labels).

Tuned constants (``L2``, ``LIBRARY_NEGATIVES``, ``COUNTER_WEIGHT``, ``ESTIMATE_DEPTH``) were chosen on the DEV classes of
bench/concepts.py (tuxpaint birds, fruit, christmas; mvtb campus and calibration), never on the classes
whose figures are reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

L2 = 0.01  # ridge penalty lambda/2 |w|^2 against a total sample weight of ~2 (bench/concepts.py dev classes)
LIBRARY_NEGATIVES = 256  # photos sampled from the library as negatives (fewer when the library is smaller)
COUNTER_WEIGHT = 1.0  # a counter-example weighs this many positives
NEWTON_STEPS = 25
NEWTON_TOL = 1e-6
CV_FOLDS = 5
ESTIMATE_AT = 10  # the estimate is of precision@10 (bench/concepts.py measures the same)
ESTIMATE_DEPTH = 3  # a held-out positive counts as found within the top 3 * ESTIMATE_AT unlabelled photos


@dataclass
class LinearModel:
    """``p(x) = sigmoid(w . x + b)`` on L2-normalised embeddings."""

    w: np.ndarray  # float32 (dim,)
    b: float

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.w))

    def direction(self) -> np.ndarray:
        """The unit vector to search for: the inner-product ranking by it is the ranking by ``p``."""
        n = self.norm
        return (self.w / n).astype(np.float32) if n > 0 else self.w.astype(np.float32)

    def logits(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, np.float32) @ self.w + self.b

    def predict(self, x: np.ndarray) -> np.ndarray:
        return sigmoid(self.logits(x))

    def probability_of_score(self, score: float) -> float:
        """``p`` of a vector whose inner product with :meth:`direction` is ``score``."""
        return float(sigmoid(np.float64(self.norm * score + self.b)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    out = np.empty_like(z)
    pos = z >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
    e = np.exp(z[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, weights: np.ndarray, l2: float = L2,
                 gram: np.ndarray | None = None) -> LinearModel:
    """Weighted L2-regularised logistic regression (bias not penalised), Newton's method in the samples'
    span. ``x``: (n, d), ``y``: (n,) in {0, 1}, ``weights``: (n,) >= 0; ``gram``: ``x x^T`` when the caller
    has it (cross-validation takes each fold's from one product)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    c = np.asarray(weights, np.float64)
    n, d = x.shape
    # coordinates in the samples' span: x x^T = L L^T, so x = L Q^T with Q = x^T L^-T orthonormal and
    # w = Q v keeps |w| = |v| (the jitter only guards against duplicate samples)
    lower = np.linalg.cholesky((x @ x.T if gram is None else gram) + 1e-8 * np.eye(n))
    z = np.hstack([lower, np.ones((n, 1))])  # (n, n+1): the span's coordinates, then the bias
    m = z.shape[1]
    reg = np.full(m, l2)
    reg[-1] = 1e-9  # the bias is (almost) free
    theta = np.zeros(m)
    # start the bias at the weighted log-odds: fewer steps, and the answer for an empty span
    pw, nw = float(c[y == 1].sum()), float(c[y == 0].sum())
    theta[-1] = math.log(max(pw, 1e-12) / max(nw, 1e-12))
    for _ in range(NEWTON_STEPS):
        p = sigmoid(z @ theta)
        grad = z.T @ (c * (p - y)) + reg * theta
        s = c * p * (1 - p)
        hess = (z * s[:, None]).T @ z + np.diag(reg)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(hess, grad, rcond=None)[0]
        theta -= step
        if float(np.abs(step).max()) < NEWTON_TOL:
            break
    w = x.T @ np.linalg.solve(lower.T, theta[:-1])
    return LinearModel(w.astype(np.float32), float(theta[-1]))


def sample_weights(n_pos: int, n_counter: int, n_library: int, counter_weight: float = COUNTER_WEIGHT) -> np.ndarray:
    """Positives weigh 1 in total, the library sample 1 in total, each counter-example as ``counter_weight``
    positives. Order: positives, counter-examples, library sample."""
    per_pos = 1.0 / max(n_pos, 1)
    return np.concatenate([np.full(n_pos, per_pos), np.full(n_counter, counter_weight * per_pos),
                           np.full(n_library, 1.0 / max(n_library, 1))])


def fit_concept(positives: np.ndarray, counter: np.ndarray | None = None, library: np.ndarray | None = None, *,
                l2: float = L2, counter_weight: float = COUNTER_WEIGHT) -> LinearModel:
    """A concept from its examples (rows of unit embeddings), counter-examples and library sample."""
    x, groups = _design(positives, counter, library)
    return _fit_groups(x, groups, l2, counter_weight)


def _design(positives: np.ndarray, counter: np.ndarray | None, library: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray]:
    """The samples stacked (positives, counter-examples, library) and each one's group (0, 1, 2)."""
    pos = np.asarray(positives, np.float32)
    dim = pos.shape[1]
    neg, lib = _rows(counter, dim), _rows(library, dim)
    groups = np.concatenate([np.zeros(len(pos), int), np.ones(len(neg), int), np.full(len(lib), 2)])
    return np.vstack([pos, neg, lib]), groups


def _fit_groups(x: np.ndarray, groups: np.ndarray, l2: float, counter_weight: float,
                gram: np.ndarray | None = None) -> LinearModel:
    counts = [int((groups == g).sum()) for g in (0, 1, 2)]
    per = sample_weights(*counts, counter_weight)  # weights in group order: positives, counter, library
    order = np.argsort(groups, kind="stable")
    weights = np.empty(len(groups))
    weights[order] = per
    return fit_logistic(x, (groups == 0).astype(float), weights, l2, gram)


def _rows(a: np.ndarray | None, dim: int) -> np.ndarray:
    if a is None or not len(a):
        return np.zeros((0, dim), np.float32)
    return np.asarray(a, np.float32).reshape(-1, dim)


@dataclass
class Validation:
    """Cross-validated estimate of the concept at ``p >= 0.5`` (None when there were too few examples)."""

    precision: float | None = None
    recall: float | None = None
    folds: int = 0
    details: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"precision": None if self.precision is None else round(self.precision, 3),
                "recall": None if self.recall is None else round(self.recall, 3), "folds": self.folds, **self.details}


def cross_validate(positives: np.ndarray, counter: np.ndarray | None = None, library: np.ndarray | None = None, *,
                   folds: int = CV_FOLDS, seed: int = 0, l2: float = L2, counter_weight: float = COUNTER_WEIGHT,
                   library_size: int | None = None, at: int = ESTIMATE_AT) -> Validation:
    """Stratified k-fold (k = min(folds, positives)): fit on k-1 parts, score the held-out one. The Gram
    matrix is computed once; each fold's is a sub-matrix of it.

    ``precision`` estimates precision@``at`` of a search by the word: each held-out positive's rank among
    the library's unlabelled photos (the held-out part of the library sample, scaled to ``library_size``,
    the photos that are not examples) is taken; the estimate is the share of held-out positives ranked
    within ``ESTIMATE_DEPTH * at``. The unlabelled photos include the concept's own unlabelled photos, so
    the depth is wider than ``at`` (3x, chosen on the DEV classes of bench/concepts.py --estimate).
    ``recall``: the share of held-out positives at ``p >= 0.5``."""
    x, groups = _design(positives, counter, library)
    k = min(folds, int((groups == 0).sum()))
    n_lib = int((groups == 2).sum())
    if k < 2 or n_lib < k:
        return Validation()
    size = max(library_size if library_size is not None else n_lib, 1)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(groups), int)
    for g in (0, 1, 2):  # stratified: each group spread over the folds
        where = np.flatnonzero(groups == g)
        fold[where] = rng.permutation(len(where)) % k
    gram = x.astype(np.float64) @ x.T.astype(np.float64)
    hits: list[float] = []
    found = 0
    for f in range(k):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        m = _fit_groups(x[train], groups[train], l2, counter_weight, gram[np.ix_(train, train)])
        held = m.logits(x[test[groups[test] == 0]])
        unlabelled = np.sort(m.logits(x[test[groups[test] == 2]]))
        above = len(unlabelled) - np.searchsorted(unlabelled, held, side="right")  # unlabelled photos above each
        rank = above / len(unlabelled) * size  # its expected rank among the library's unlabelled photos
        hits += (rank < ESTIMATE_DEPTH * at).astype(float).tolist()
        found += int((held >= 0).sum())
    return Validation(float(np.mean(hits)), found / len(hits), k, {"at": at, "held_out": len(hits)})


def library_sample_size(library_size: int, exclude: int = 0) -> int:
    return max(0, min(LIBRARY_NEGATIVES, library_size - exclude))


def seed_of(word: str) -> int:
    """A fixed random seed per word: teaching the same examples twice gives the same concept."""
    import hashlib

    return int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")


WORD_EDGE = ".,;:!?\"'()"  # stripped from the ends of a query's words before taught words are matched


def normalize_word(word: str) -> str:
    """A taught word as it is stored and matched: lower case, single spaces."""
    return " ".join(str(word).lower().split())


def check_word(word: str) -> str:
    from lookalike.errors import LookalikeError

    w = normalize_word(word)
    if not w:
        raise LookalikeError("give the word to teach, e.g. lookalike teach rex photos/rex*.jpg")
    if len(w) > 60:
        raise LookalikeError(f"a taught word is at most 60 characters, not {len(w)}")
    if w.startswith(("id:", "http://", "https://")) or any(ch in w for ch in "/\\"):
        raise LookalikeError(f"{word!r} looks like an image or a path, not a word; give the word first")
    # a query's words lose this punctuation at their ends (search/concepts.py split_taught): a word that needs
    # it ("rex!", "!!!") could be taught but never found
    if any(t.strip(WORD_EDGE) != t or not any(ch.isalnum() for ch in t) for t in w.split()):
        raise LookalikeError(f"{word!r} cannot be searched for: each word of it needs a letter or digit and no "
                             f"{' '.join(WORD_EDGE)} at its ends")
    if any(t.startswith("-") for t in w.split()):  # in a query "-rex" leaves rex out (search/plan.py)
        raise LookalikeError(f"{word!r} cannot be searched for: a word that starts with '-' is left out of a "
                             "search (cat -dog); teach it without the '-'")
    return w


def mean_direction(vectors: Sequence[np.ndarray]) -> np.ndarray:
    v = np.mean(np.asarray(vectors, np.float32), axis=0)
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
