"""Geometric verification: edited copies of real photos align and agree; different photos do not."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.evaluation.edits import apply
from lookalike.samples import sample_photos
from lookalike.search import verify


def photo(name: str) -> Image.Image:
    with Image.open(sample_photos()[name]) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("edit", ["crop40", "rotate20", "mirror", "text", "jpeg20", "grayscale"])
def test_an_edited_copy_aligns_with_its_original(edit: str) -> None:
    original = photo("coffee")
    copy = apply(edit, original, seed="test")
    m = verify.match(verify.local_features(copy), verify.local_features(original),
                     verify.local_features(copy, mirror=True))
    assert m.aligned and m.mirrored == (edit == "mirror")
    assert verify.copy_score(0.7, m) > 0.5, m.as_dict()  # a copy, even where the cosine alone is unsure


@pytest.mark.parametrize("a,b", [("coffee", "chelsea"), ("china", "flower"),
                                 ("interior_pexels-7303773", "interior_pexels-cup-of-couple-7303788")])
def test_different_photos_are_not_copies(a: str, b: str) -> None:
    # the last pair: two shots of the same kitchen corner, the hardest kind of non-copy
    m = verify.match(verify.local_features(photo(a)), verify.local_features(photo(b)),
                     verify.local_features(photo(a), mirror=True))
    assert verify.copy_score(0.6, m) < 0.5, m.as_dict()


def test_calibrated_scores() -> None:
    assert verify.cosine_score(verify.COSINE_AT) == pytest.approx(0.5)
    assert verify.cosine_score(1.0) == 1.0 and verify.cosine_score(0.0) == 0.0
    assert verify.cosine_score(0.5) < verify.cosine_score(0.8) < verify.cosine_score(0.9)
    assert verify.copy_score(0.9, verify.Match()) == verify.cosine_score(0.9)  # no alignment: cosine only


def test_the_mirror_is_described_only_when_the_plain_match_is_unsure() -> None:
    original = photo("coffee")
    asked: list[str] = []

    def mirrored(img: Image.Image, name: str):  # type: ignore[no-untyped-def]
        def compute() -> verify.LocalFeatures:
            asked.append(name)
            return verify.local_features(img, mirror=True)
        return compute

    target = verify.local_features(original)
    same = verify.match(verify.local_features(original), target, mirrored(original, "same"))
    flipped = apply("mirror", original, seed="test")
    m = verify.match(verify.local_features(flipped), target, mirrored(flipped, "flipped"))
    assert same.aligned and not same.mirrored and m.aligned and m.mirrored
    assert asked == ["flipped"]  # the unedited photo matched plainly, for sure: its mirror was never computed


def test_mirrored_features_are_the_mirror_images_own() -> None:
    """Derived without running SIFT again: a mirrored copy of a real photo aligns pixel-exactly through them,
    and most descriptors equal the ones SIFT computes on the mirror image."""
    original = photo("coffee")
    f = verify.local_features(original)
    derived, recomputed = verify.mirrored(f), verify.local_features(original, mirror=True)
    assert np.array_equal(derived.gray, recomputed.gray)
    m = verify.match(derived, verify.local_features(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    assert m.aligned and m.pixel > 0.999 and m.detail > 0.999, m.as_dict()
    import cv2

    nearest = cv2.BFMatcher(cv2.NORM_L2).knnMatch(derived.descriptors, recomputed.descriptors, k=1)
    assert np.median([n[0].distance for n in nearest]) < 1.0  # most keypoints' descriptors are the same numbers


def indexed(image: Image.Image) -> Image.Image:
    """The image as indexing decodes it for the model (short side >= 256 px): what copy features see."""
    s = 256 / min(image.size)
    return image.resize((round(image.width * s), round(image.height * s))) if s < 1 else image


@pytest.mark.parametrize("edit", ["crop40", "rotate20", "mirror", "text", "jpeg20", "downscale4", "grayscale"])
def test_copy_features_let_an_edited_copy_through_the_screen(edit: str) -> None:
    original = photo("coffee")
    a = verify.compact_features(indexed(apply(edit, original, seed="test")))
    b = verify.compact_features(indexed(original))
    for f, image in ((a, indexed(apply(edit, original, seed="test"))), (b, indexed(original))):
        gray = verify.stored_gray(f)  # the 320-px gray kept as a JPEG after the points
        assert gray is not None and gray.shape == verify.compact_gray(image).shape
        assert np.abs(gray.astype(int) - verify.compact_gray(image)).mean() < 3
        assert len(f) <= 6 + 2 * verify.COMPACT_FEATURES * 36 + 30_000
    # either image may come first in a pair (a mirrored copy: the first one's mirror image matches)
    assert verify.screen_inliers(a, b) >= verify.SCREEN_INLIERS
    assert verify.screen_inliers(b, a) >= verify.SCREEN_INLIERS


@pytest.mark.parametrize("a,b", [("coffee", "chelsea"), ("china", "flower"), ("astronaut", "rocket")])
def test_copy_features_screen_out_different_photos(a: str, b: str) -> None:
    fa, fb = verify.compact_features(indexed(photo(a))), verify.compact_features(indexed(photo(b)))
    assert verify.screen_inliers(fa, fb) < verify.SCREEN_INLIERS
    assert verify.screen_inliers(fb, fa) < verify.SCREEN_INLIERS


def test_copy_features_of_a_blank_image_match_nothing() -> None:
    blank = verify.compact_features(Image.new("RGB", (300, 200), "white"))
    other = verify.compact_features(indexed(photo("coffee")))
    assert verify.screen_inliers(blank, other) == 0 and verify.screen_inliers(other, blank) == 0
    with pytest.raises(ValueError, match="format"):
        verify.screen_inliers(b"\x07\x00" + blank[2:], other)
    with pytest.raises(ValueError, match="format"):
        verify.stored_gray(b"\x07\x00" + blank[2:])
    assert not verify.screenable(blank, other) and verify.screenable(other, other)


def test_copy_features_of_the_first_format_still_screen_but_keep_no_gray() -> None:
    a, b = (verify.compact_features(indexed(im)) for im in (apply("crop25", photo("coffee"), seed="t"), photo("coffee")))
    old = verify.points_only(a)  # format 1: the points only
    assert old[:2] == b"\x01\x00" and verify.compact_points(old) == verify.compact_points(a)
    assert verify.stored_gray(old) is None and verify.stored_gray(a) is not None
    assert verify.screen_inliers(old, b) == verify.screen_inliers(a, b) >= verify.SCREEN_INLIERS
    with pytest.raises(ValueError, match="gray"):
        verify.stored_gray(a[:-200] + b"\x00" * 10)  # a truncated gray: one clear error, not a crash


def test_a_low_texture_copy_is_left_to_sift_not_screened_out() -> None:
    # a plain room's 40% crop: ORB finds 5 corners at 320 px, so the screen sees no inliers, but SIFT matches it
    original = photo("interior_pexels-7303800")
    crop = original.crop((56, 158, 56 + 1152, 158 + 768))  # where the benchmark's seeded crop fell
    a, b = verify.compact_features(indexed(crop)), verify.compact_features(indexed(original))
    assert verify.compact_points(a) < verify.SCREEN_MIN_POINTS <= verify.compact_points(b)
    assert verify.screen_inliers(a, b) < verify.SCREEN_INLIERS  # the screen alone would have rejected it
    assert not verify.screenable(a, b) and not verify.screenable(b, a)
    m = verify.match(verify.local_features(crop), verify.local_features(original))
    assert verify.copy_score(0.6, m) > 0.5


def test_the_screens_nearest_descriptors_are_knnmatchs_and_leave_threads_alone() -> None:
    import cv2
    import faiss

    a = verify._unpack_compact(verify.compact_features(indexed(photo("coffee"))))[0][1]
    b = verify._unpack_compact(verify.compact_features(indexed(apply("rotate10", photo("coffee"), seed="t"))))[0][1]
    dist, nearest = verify._two_nearest(a, b)
    knn = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(a, b, k=2)
    assert dist.tolist() == [[m[0].distance, m[1].distance] for m in knn]
    assert [n for n, m in zip(nearest[:, 0], knn) if m[0].distance < m[1].distance] == \
        [m[0].trainIdx for m in knn if m[0].distance < m[1].distance]  # ties may pick either
    before = faiss.omp_get_max_threads()
    verify._two_nearest(a, b)
    assert faiss.omp_get_max_threads() == before  # one OpenMP thread inside the call only
