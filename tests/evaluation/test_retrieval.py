"""Tests for the by-example benchmark's pieces (lookalike.evaluation.features, lookalike.evaluation.retrieval):
the feature-map graph on real photos, the poolings, the metrics, and the library's search as a score matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.evaluation import features as F
from lookalike.evaluation import retrieval as R
from lookalike.models.whitening import Whitening


@pytest.fixture(scope="module")
def fmaps(photos: Path) -> tuple[dict[int, np.ndarray], list[Image.Image]]:
    fm = F.FeatureMaps()
    ims = [Image.open(photos / f"{n}.jpg").convert("RGB") for n in ("chelsea", "coffee", "rocket", "puppy")]
    return {s: fm(np.stack([F.resize_center_crop(im, s) for im in ims])) for s in (224, 288)}, ims


def test_feature_map_mean_is_the_shipped_embedding(fmaps, model) -> None:  # type: ignore[no-untyped-def]
    maps, ims = fmaps
    assert maps[224].shape == (4, 1280, 7, 7) and maps[288].shape == (4, 1280, 9, 9)  # one graph, any size
    shipped = model.encode(ims).embeddings
    ours = R.l2n(F.pool_mean(maps[224]))
    assert float((ours * shipped).sum(1).min()) > 0.9999  # the benchmark's "mean" row is today's vectors


def test_poolings_on_real_feature_maps(fmaps) -> None:  # type: ignore[no-untyped-def]
    f = fmaps[0][224]
    np.testing.assert_allclose(F.pool_gem(f, 1.0), F.pool_mean(np.clip(f, 1e-6, None)), rtol=1e-4, atol=1e-6)
    assert np.all(F.pool_gem(f, 3.0) >= F.pool_mean(np.clip(f, 1e-6, None)) - 1e-5)  # power means grow with p
    g, mx = F.pool_gem(f, 20.0), F.pool_max(f)  # towards the max as p grows: >= max * (1/49) ** (1/20)
    big = mx > 0.01  # (tiny activations ** 20 underflow float32)
    assert np.all(g <= mx + 1e-4) and np.all(g[big] >= 0.8 * mx[big])
    for name, fn in F.POOLINGS.items():
        out = fn(f)
        assert out.shape == (4, 1280) and np.isfinite(out).all(), name


def test_rmac_regions_cover_the_map_at_three_levels() -> None:
    for h, w in ((7, 7), (5, 9), (9, 5)):
        regions = F.rmac_regions(h, w)
        assert regions[0] == (0, h, 0, w)
        assert all(0 <= y0 < y1 <= h and 0 <= x0 < x1 <= w for y0, y1, x0, x1 in regions)
        cover = np.zeros((h, w), int)
        for y0, y1, x0, x1 in regions[1:]:
            cover[y0:y1, x0:x1] += 1
        assert cover.min() >= 1 and len(regions) > 6


def test_labelled_metrics_by_hand() -> None:
    labels = ["a", "a", "b", "b", ""]  # the last is a distractor: ranked, never a query
    s = np.array([[0, .9, .1, .2, .8], [.9, 0, .1, .2, .3], [.1, .1, 0, .5, .6], [.2, .2, .5, 0, .1],
                  [.8, .3, .6, .1, 0]], np.float32)
    m = R.labelled_metrics(s, labels, k=1)
    assert m["precision_at_10"] == 0.75  # a: 1, 1; b: 0 (the distractor first), 1
    assert m["map"] == 0.875  # a: AP 1, 1; b: 0.5 (its mate second), 1; mean over classes


def test_copy_metrics_ties_count_against_the_original() -> None:
    s = np.array([[0.9, 0.5], [0.7, 0.7], [0.2, 0.95]], np.float32)
    m = R.copy_metrics(s, np.array([0, 0, 1]))
    assert m["recall_at_1"] == round(2 / 3, 4) and m["threshold_zero_fp"] == 0.7
    assert m["tpr_at_zero_fp"] == round(2 / 3, 4)


def test_example_scores_leave_the_query_out(fmaps) -> None:  # type: ignore[no-untyped-def]
    f = fmaps[0][224]
    db = R.l2n(np.concatenate([F.pool_mean(f), F.pool_max(f), F.pool_gem(f)]))  # 12 related vectors
    s = R.example_scores(db, db, Whitening.fit_batches([db]), self_query=True)
    assert np.isneginf(np.diag(s)).all() and np.isfinite(s[~np.eye(len(db), dtype=bool)]).all()
    # each photo's other two poolings are its nearest: found first
    for i in range(len(db)):
        mates = {j for j in range(len(db)) if j % 4 == i % 4 and j != i}
        assert set(np.argsort(-s[i])[:2]) == mates


def test_fashion_set(tmp_path: Path) -> None:
    if not R.FASHION_MNIST.is_dir():
        pytest.skip("Debian dataset-fashion-mnist not installed")
    root = R.build_fashion_set(tmp_path / "f", per_class=3)
    paths, labels = R.labelled_paths(root)
    assert len(paths) == 30 and sorted(set(labels)) == sorted(R.FASHION_CLASSES)
    assert Image.open(paths[0]).size == (28, 28)
