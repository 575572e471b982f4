"""The taught-concept classifier (models/concepts.py) on real photos' embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.models.concepts import (
    L2,
    check_word,
    cross_validate,
    fit_concept,
    fit_logistic,
    normalize_word,
    sample_weights,
    sigmoid,
)


@pytest.fixture(scope="module")
def vectors(indexed):  # type: ignore[no-untyped-def]
    """name -> embedding of the 16 core photos."""
    by_id = {st.id: p for p, st in indexed.store.file_states().items()}
    out = {}
    for ids, emb in indexed.store.iter_vectors():
        for i, e in zip(ids, emb):
            out[by_id[int(i)].rsplit("/", 1)[-1].split(".")[0]] = e
    return out


def test_fit_is_the_optimum_of_the_weighted_penalised_loss(vectors) -> None:  # type: ignore[no-untyped-def]
    names = sorted(vectors)
    x = np.stack([vectors[n] for n in names]).astype(np.float64)
    y = np.array([1.0 if n in ("chelsea", "black_cat") else 0.0 for n in names])
    c = np.where(y == 1, 0.5, 1.0 / (y == 0).sum())
    m = fit_logistic(x, y, c)
    p = sigmoid(x @ m.w + m.b)
    grad_w = x.T @ (c * (p - y)) + L2 * m.w  # the full-space gradient vanishes: the span trick is exact
    assert np.abs(grad_w).max() < 1e-6
    assert abs(float((c * (p - y)).sum())) < 1e-6
    assert p[y == 1].min() > p[y == 0].max()


def test_two_cats_rank_no_other_photo_above_a_held_out_cat(vectors) -> None:  # type: ignore[no-untyped-def]
    others = np.stack([v for n, v in vectors.items() if n not in ("chelsea", "black_cat")])
    m = fit_concept(vectors["chelsea"][None], None, others)
    # the held-out cat is not in the training data; only photos trained as negatives are below it
    assert m.predict(vectors["chelsea"][None])[0] > m.predict(vectors["black_cat"][None])[0] > m.predict(others).max()


def test_a_counter_example_lowers_its_neighbourhood(vectors) -> None:  # type: ignore[no-untyped-def]
    rest = np.stack([v for n, v in vectors.items() if n not in ("chelsea", "black_cat", "puppy")])
    pos = np.stack([vectors["chelsea"], vectors["black_cat"]])
    before = fit_concept(pos, None, rest)
    after = fit_concept(pos, vectors["puppy"][None], rest)
    assert after.predict(vectors["puppy"][None])[0] < before.predict(vectors["puppy"][None])[0]
    assert after.predict(vectors["puppy"][None])[0] < 0.5
    assert after.predict(pos).min() > 0.5


def test_direction_ranks_as_probability(vectors) -> None:  # type: ignore[no-untyped-def]
    x = np.stack(list(vectors.values()))
    m = fit_concept(x[:2], None, x[2:])
    s = x @ m.direction()
    assert np.allclose([m.probability_of_score(v) for v in s], m.predict(x), atol=1e-5)
    assert list(np.argsort(-s)) == list(np.argsort(-m.predict(x)))


def test_weights_balance_positives_and_library() -> None:
    w = sample_weights(4, 2, 100)
    assert w[:4].sum() == pytest.approx(1.0) and w[6:].sum() == pytest.approx(1.0)
    assert w[4] == pytest.approx(w[0])


def test_cross_validation_estimates_precision_from_held_out_ranks(vectors) -> None:  # type: ignore[no-untyped-def]
    x = np.stack(list(vectors.values()))
    assert cross_validate(x[:1], None, x[1:]).precision is None  # one example: nothing to hold out
    cats = ("chelsea", "black_cat")
    others = np.stack([v for n, v in vectors.items() if n not in cats])
    # each cat, held out, ranks above every other photo (test above): found at precision@1
    v = cross_validate(np.stack([vectors[n] for n in cats]), None, others, at=1)
    assert v.folds == 2 and v.details["held_out"] == 2
    assert v.precision == 1.0 and v.recall is not None and 0 <= v.recall <= 1
    # a cat and a guitar are no concept: neither, held out, is found near the top by the other
    mixed = ("chelsea", "guitar")
    rest = np.stack([v for n, v in vectors.items() if n not in mixed])
    assert cross_validate(np.stack([vectors[n] for n in mixed]), None, rest, at=1).precision < 1.0
    # a larger library pushes the same held-out ranks down: the estimate cannot rise
    assert cross_validate(np.stack([vectors[n] for n in mixed]), None, rest, at=1, library_size=10_000).precision == 0


def test_words() -> None:
    assert normalize_word("  My   Car ") == "my car"
    assert check_word("Rex") == "rex"
    for bad in ("", "   ", "id:4", "photos/rex.jpg", "x" * 61, "!!!", "rex!", "(rex)", "my car."):
        with pytest.raises(LookalikeError):
            check_word(bad)
    assert check_word("t-shirt") == "t-shirt" and check_word("O'Brien") == "o'brien"  # found as typed (split_taught)
    from lookalike.search.concepts import split_taught

    assert split_taught("o'brien, at the beach!", ["o'brien"]) == (["o'brien"], "at the beach")
