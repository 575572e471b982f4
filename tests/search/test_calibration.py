"""Keyword scores are calibrated probabilities (search/calibration.py); --threshold works on them; the term
source hook; words that reached nothing before WordNet now reach their photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.library import Library
from lookalike.models.vocab import Vocabulary
from lookalike.search import calibration
from lookalike.search.keywords import TermHits
from lookalike.stores.base import Hit


def stems(res) -> list[str]:  # type: ignore[no-untyped-def]
    return [Path(r.path).stem for r in res.results]


def test_logistic_fit_recovers_a_known_model_and_ece() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 2))
    y = (rng.random(4000) < calibration.sigmoid(0.5 + x @ np.array([2.0, -1.0]))).astype(float)
    b, a = calibration.fit_logistic(x, y)
    assert b == pytest.approx(0.5, abs=0.15) and a == pytest.approx([2.0, -1.0], abs=0.2)
    table, ece = calibration.reliability(calibration.sigmoid(b + x @ a), y)
    assert ece < 0.03 and sum(r["n"] for r in table) == 4000
    _, bad = calibration.reliability(np.full(4000, 0.95), y)
    assert bad > 0.3


def test_isotonic_map_is_non_decreasing_and_follows_the_observed_rates() -> None:
    rng = np.random.default_rng(1)
    p = rng.random(5000)
    y = (rng.random(5000) < np.where(p < 0.5, 0.1, 0.8)).astype(float)  # a step the logistic cannot follow
    iso = calibration.fit_isotonic(p, y)
    assert np.all(np.diff(iso["x"]) > 0) and np.all(np.diff(iso["y"]) >= 0)
    mapped = np.interp(p, iso["x"], iso["y"])
    assert mapped[p < 0.45].mean() == pytest.approx(0.1, abs=0.03) and mapped[p > 0.55].mean() == pytest.approx(0.8, abs=0.03)
    model = {"features": ["log_rel_mass"], "intercept": 0.0, "coef": [1.0],
             "isotonic": {"x": [0.0, 0.5, 1.0], "y": [0.0, 0.0, 1.0]}}  # uses one of the feature columns
    x = calibration.features(np.array([0.0, 0.9]), 0.9)
    assert calibration.Calibrator(model).probability(x) == pytest.approx(
        np.interp(calibration.sigmoid(x[:, 0]), [0.0, 0.5, 1.0], [0.0, 0.0, 1.0]))


def test_shipped_model_names_its_set_and_is_monotone() -> None:
    cal = calibration.calibrator()
    assert cal.fitted_on and "tuxpaint" in cal.fitted_on
    p = cal.probability(calibration.features(np.array([0.0, 0.05, 0.2, 0.5, 0.9]), 0.9, ranks=np.zeros(5)))
    assert np.all((p >= 0) & (p <= 1)) and np.all(np.diff(p) > 0)
    weak = cal.probability(calibration.features(np.array([0.3]), 0.3))  # the same share, a weaker mapping
    assert weak[0] < cal.probability(calibration.features(np.array([0.9]), 0.9))[0]


def test_keyword_scores_are_probabilities_and_threshold_keeps_the_right_photos(indexed: Library) -> None:
    res = indexed.search("cat", limit=20)
    assert res.explain["score"] == "probability"
    assert all(0.0 <= r.score <= 1.0 for r in res.results)
    kept = indexed.search("cat", limit=20, threshold=0.5)
    assert set(stems(kept)) == {"chelsea", "black_cat"}
    assert all(r.score >= 0.5 for r in kept.results)
    assert set(stems(indexed.search("guitar", threshold=0.5))) == {"guitar"}


def test_words_that_reached_nothing_before(indexed: Library) -> None:
    before = Library(indexed.settings, store=indexed.store, model=indexed.model, vocabulary=Vocabulary(wordnet=False))
    assert before.search("architecture", limit=5, expand=False, semantic=False).results == []
    for word, stem, via in (("architecture", "china", "architecture: broader"), ("wheel", "motorcycle_left", "wheel: ")):
        new = indexed.search(word, limit=5)
        assert stem in stems(new)[:3], (word, new.explain)
        assert any(v.startswith(via) for c in new.explain["classes"] for v in c["via"])  # type: ignore[union-attr]


def test_term_source_hook(indexed: Library) -> None:
    """A source (as taught concepts will be) takes its word and gives per-image probabilities."""
    puppy = next(i for i in indexed.store.get(list(range(1, 40))) if Path(i.path).stem == "puppy")

    def rex(text, store, filters, depth):  # type: ignore[no-untyped-def]
        if "rex" not in text.split():
            return []
        return [TermHits("concept:rex", ("rex",), [Hit(puppy.id, 0.93)], {"examples": 3})]

    lib = Library(indexed.settings, store=indexed.store, model=indexed.model, vocabulary=indexed.vocabulary)
    lib.term_sources.append(rex)
    res = lib.search("rex", limit=5)
    assert stems(res)[0] == "puppy" and res.results[0].score == pytest.approx(0.93)
    assert res.explain["terms"] == {"concept:rex": {"words": ["rex"], "examples": 3}}
    both = lib.search("rex cat", limit=5)  # the vocabulary gets the words the source did not take
    assert {"puppy", "chelsea", "black_cat"} <= set(stems(both))
    assert "classes" in both.explain and "concept:rex" in both.explain["signals"]  # type: ignore[operator]


def test_monotone_pools_rising_runs() -> None:
    out = calibration.monotone([0.67, 0.71, 0.18, 0.3, 0.1])
    assert out == pytest.approx([0.69, 0.69, 0.24, 0.24, 0.1])
    assert np.all(np.diff(out) <= 0) and out.sum() == pytest.approx(1.96)  # the mean is kept
    assert calibration.monotone([]).size == 0
