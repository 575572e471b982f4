"""Is this photo an edited copy of that one? Geometric verification on top of embedding similarity.

Embedding cosine ranks an edited copy's original first almost always, but one cosine threshold cannot tell
a 40%-crop of a photo from a second shot of the same scene: their cosines overlap. So candidate pairs get a
second look, as classic copy-detection systems do:

1. local features (SIFT, on the grayscale image at :data:`FEATURE_SIDE` px) of both, matched with the ratio
   test, and a similarity transform (rotation, scale, shift) fitted by RANSAC; the mirrored query is tried
   too. An edit (crop, rotation, resize, mirror) is such a transform; another shot of a 3-D scene is not.
2. the candidate warped into the query's frame, and the overlap compared: normalised correlation of the
   pixels at 64 px (``pixel``), and of the gradient magnitude at 256 px, as the median over a 4x4 grid of
   cells (``detail``: a watermark spoils a few cells, not the median). A copy agrees pixel by pixel and
   edge by edge; a second shot, even of the same scene from nearly the same place, does not.

:func:`copy_score` turns cosine and the match into one calibrated score in [0, 1]: 0.5 is the point at which
each signal flagged no non-copy on the calibration set (the sample photos with 16 edits each and mvtb-data
distractors, see ``bench/quality.py``), so ``score > 0.5`` is the default "is a copy".

**Screening with index-time features** (``index --copy-features``): SIFT at 512 px costs ~88 ms of CPU an
image plus a fresh decode, which at a million photos is a day of work (docs/duplicates.md). So while indexing,
when the pixels are decoded anyway, :func:`compact_features` keeps ORB keypoints of the image and of its
mirror image at :data:`COMPACT_SIDE` px and that grayscale image (~4 ms, ~26-31 KB an image); ``lookalike
dupes`` first matches a pair by them (:func:`screen_inliers`, ~0.4 ms, no file read) and a pair with fewer
than :data:`SCREEN_INLIERS` inliers of a similarity transform is settled as "not a copy" without SIFT (an
image with too few keypoints to tell, :data:`SCREEN_MIN_POINTS`, is not screened). The screen only rejects:
another shot of a scene can fit a transform as well as a copy (up to 74 ORB inliers on mvtb-data), so every
pair that passes goes on to the full check above.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

FEATURE_SIDE = 512  # long side of the grayscale image features are computed on
MIN_INLIERS = 6  # RANSAC inliers below this: no transform, only the cosine counts
RATIO = 0.8  # Lowe's ratio test
RANSAC_PX = 5.0
# Calibration points: at each, no non-copy of the calibration sets scored higher (bench/quality.py: the sample
# photos x 16 edits among mvtb-data distractors, and 200 tuxpaint photo cut-outs among the same; chosen on
# those sets, so not held-out figures there). The cosine point came from the cut-outs: on white backgrounds
# a cropped orange is as close to a mandarin as a copy is (0.921); on the photos alone it was 0.864.
COSINE_AT = 0.93
PIXEL_AT = 0.992
DETAIL_AT = 0.76
# The screen (index-time ORB features). Chosen on bench/dupes_scale.py's real set (the calibration photos with
# planted edits among tuxpaint stamps and the held-out report set; 775 uncertain pairs): at 320 px, 256
# features, 8 inliers it kept 147 of the 150 pairs SIFT flagged and 29 of the 620 non-copies; 128 features kept
# 143, 4 inliers let 172 non-copies through, 400 px cost 35% more for the same 147.
COMPACT_SIDE = 320
COMPACT_FEATURES = 256
COMPACT_LEVELS = 8  # ORB's pyramid: scales up to 1.2^7 = 3.6x apart
SCREEN_INLIERS = 8
# An image with fewer compact keypoints than this cannot be screened (its pairs go to SIFT): 8 inliers would
# need more than half of its points to match, so "few inliers" says nothing. A plain room's 40% crop had 5
# (SIFT matched it, 7 inliers): the one planted copy the screen lost on the real set; 3 of its 688 images
# have fewer than 32 (a blank sun, that crop, a 28-px garment).
SCREEN_MIN_POINTS = 2 * SCREEN_INLIERS
SCREEN_RANSAC_PX = 3.0
SCREEN_RATIO = 0.85
# A pair that passes the screen is checked on its pixels with the screen's transform (a fresh 320-px decode, no
# SIFT); a copy score between these two is left to SIFT. On the real set above, outside 0.3-0.7 the two checks
# agreed on all 139 of 181 pairs (0.4-0.6: one garment pair differed).
SURE_BELOW, SURE_ABOVE = 0.3, 0.7
# Format 2 also keeps the 320-px grayscale itself (JPEG, GRAY_QUALITY; median 9.6 KB, p90 19 KB on the real set),
# so a pair that passes the screen is checked on it without reading either file. On the 148 pairs of the real
# set that pass the screen, the copy scores on the stored grays and on freshly decoded ones differed by at most
# 0.065, no verdict and no "unsure" band changed (q75: one band changed; q92: 13.8 KB). Format 1 (no gray)
# stays readable: its pairs are checked on a fresh decode.
_COMPACT_FORMAT = 2
_READABLE_FORMATS = (1, 2)
GRAY_QUALITY = 85
# what a verdict depends on: kept verdicts (lookalike dupes, stores/dupe_pairs.py) of another version are redone
VERSION = (f"sift{FEATURE_SIDE}m-r{RATIO}-i{MIN_INLIERS}-px{RANSAC_PX}-at{COSINE_AT}/{PIXEL_AT}/{DETAIL_AT}"
           f"|orb{COMPACT_SIDE}-{COMPACT_FEATURES}-i{SCREEN_INLIERS}-p{SCREEN_MIN_POINTS}-sure{SURE_BELOW}/{SURE_ABOVE}"
           f"-g{GRAY_QUALITY}")


@dataclass
class LocalFeatures:
    points: np.ndarray  # float32 (n, 2), keypoint positions in ``gray``
    descriptors: np.ndarray | None  # float32 (n, 128)
    gray: np.ndarray  # uint8 (h, w), long side FEATURE_SIDE


@dataclass
class Match:
    inliers: int = 0
    pixel: float = 0.0  # correlation of the aligned overlap's pixels (64 px)
    detail: float = 0.0  # correlation of the gradient magnitude, median over a 4x4 grid of cells (256 px)
    mirrored: bool = False
    transform: np.ndarray | None = None  # 2x3, query pixels -> candidate pixels (FEATURE_SIDE scale)

    @property
    def aligned(self) -> bool:
        return self.inliers >= MIN_INLIERS

    def as_dict(self) -> dict[str, object]:
        return {"inliers": self.inliers, "pixel": round(self.pixel, 4), "detail": round(self.detail, 4),
                "mirrored": self.mirrored}


def _cv2():  # type: ignore[no-untyped-def]
    import cv2

    return cv2


def local_features(image: Image.Image, *, mirror: bool = False) -> LocalFeatures:
    """SIFT keypoints of ``image`` (any mode), on its grayscale at FEATURE_SIDE px long side."""
    gray = image.convert("L")
    if mirror:
        gray = gray.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    w, h = gray.size
    s = FEATURE_SIDE / max(w, h)
    gray = gray.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    arr = np.ascontiguousarray(np.asarray(gray, dtype=np.uint8))
    # OpenCV's SIFT object is not documented as thread-safe: one per call is cheap (no weights)
    sift = _cv2().SIFT_create(nfeatures=1000, contrastThreshold=0.02)
    kp, des = sift.detectAndCompute(arr, None)
    pts = np.array([k.pt for k in kp], np.float32).reshape(-1, 2)
    return LocalFeatures(pts, des, arr)


# SIFT's descriptor is a 4x4 grid (rows along the keypoint's orientation) of 8 orientation bins: mirroring the
# image reverses the grid's rows and negates the bins. Index permutation from a descriptor to its mirror's.
_MIRROR = (np.arange(128).reshape(4, 4, 8)[::-1][..., (-np.arange(8)) % 8]).reshape(-1)


def mirrored(f: LocalFeatures) -> LocalFeatures:
    """The local features of the mirror image, derived from ``f`` without running SIFT again (half the cost
    of ``local_features(image, mirror=True)``): keypoints mirrored, descriptors permuted. On a sample photo
    59% of the descriptors equal the recomputed ones exactly and the median distance is 0 (SIFT is not
    quite mirror-symmetric: orientation bins, the strongest-1000 cut)."""
    w = f.gray.shape[1]
    pts = f.points.copy()
    pts[:, 0] = w - 0.5 - pts[:, 0]  # measured: a mirrored copy then aligns pixel-exactly (w - 1 - x: 0.9997)
    des = None if f.descriptors is None else np.ascontiguousarray(f.descriptors[:, _MIRROR])
    return LocalFeatures(pts, des, np.ascontiguousarray(f.gray[:, ::-1]))


def match(query: LocalFeatures, candidate: LocalFeatures,
          query_mirrored: LocalFeatures | Callable[[], LocalFeatures | None] | None = None) -> Match:
    """The better of matching ``query`` (and, when given, its mirror image) against ``candidate``. The mirror
    is tried only when the plain match is not already sure; it may be given as a function that computes it
    then (so a query whose results all match plainly is never described mirrored)."""
    best = _match(query, candidate)
    if query_mirrored is not None and not (best.aligned and max(best.pixel, best.detail) > 0.99):
        mirrored = query_mirrored() if callable(query_mirrored) else query_mirrored
        if mirrored is None:
            return best
        m = _match(mirrored, candidate)
        m.mirrored = True
        if _rank(m) > _rank(best):
            best = m
    return best


def _rank(m: Match) -> tuple[float, int]:
    return (m.aligned * max(_calibrate(m.pixel, PIXEL_AT), _calibrate(m.detail, DETAIL_AT)), m.inliers)


def _match(q: LocalFeatures, x: LocalFeatures) -> Match:
    cv2 = _cv2()
    if q.descriptors is None or x.descriptors is None or len(q.descriptors) < 3 or len(x.descriptors) < 3:
        return Match()
    pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(q.descriptors, x.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < 4:
        return Match()
    a = q.points[[m.queryIdx for m in good]]
    b = x.points[[m.trainIdx for m in good]]
    transform, inl = cv2.estimateAffinePartial2D(a, b, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PX)
    if transform is None or inl is None:
        return Match()
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    if not 0.125 < scale < 8:  # a degenerate fit (everything mapped onto a few points)
        return Match()
    keep = inl.ravel().astype(bool)
    # count distinct points on both sides, so many-to-one matches do not inflate the count
    n = min(len(np.unique(np.round(a[keep] / 3).astype(np.int32), axis=0)),
            len(np.unique(np.round(b[keep] / 3).astype(np.int32), axis=0)))
    m = Match(inliers=int(n), transform=transform)
    if m.aligned:
        _compare(m, q.gray, x.gray)
    return m


def _compare(m: Match, q: np.ndarray, x: np.ndarray) -> None:
    """``m.pixel`` and ``m.detail`` of the grayscale ``x`` warped by ``m.transform`` into ``q``'s frame."""
    cv2 = _cv2()
    hq, wq = q.shape
    warped = cv2.warpAffine(x, m.transform, (wq, hq), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
    valid = cv2.warpAffine(np.ones_like(x), m.transform, (wq, hq),
                           flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
    m.pixel = _overlap_correlation(q, warped, valid, 64, gradient=False)
    m.detail = _overlap_correlation(q, warped, valid, 256, gradient=True, cells=4)


def _overlap_correlation(a: np.ndarray, b: np.ndarray, valid: np.ndarray, side: int, *, gradient: bool,
                         cells: int = 0) -> float:
    """Normalised correlation of ``a`` and the aligned ``b`` over the valid overlap, at ``side`` px; with
    ``cells``, the median over a cells x cells grid of the textured cells' correlations (a watermark or a
    logo spoils a few cells, not the median; a second shot of a scene disagrees a little everywhere)."""
    cv2 = _cv2()
    h, w = a.shape
    f = side / max(w, h)
    size = (max(8, round(w * f)), max(8, round(h * f)))
    sigma = 0.5 / f

    def small(img: np.ndarray) -> np.ndarray:
        return cv2.resize(cv2.GaussianBlur(img, (0, 0), sigma), size, interpolation=cv2.INTER_AREA)

    sa, sb = small(a), small(b)
    mask = cv2.resize(valid, size, interpolation=cv2.INTER_NEAREST) > 0
    kernel = np.ones((3, 3), np.uint8)
    mask = cv2.erode(mask.astype(np.uint8), kernel) > 0  # away from the warped border
    if gradient:
        sa, sb = _gradient(sa), _gradient(sb)
        mask = cv2.erode(mask.astype(np.uint8), kernel) > 0
    if not cells:
        return _ncc(sa, sb, mask)
    h2, w2 = sa.shape
    per = []
    for i in range(cells):
        for j in range(cells):
            ys, xs = slice(i * h2 // cells, (i + 1) * h2 // cells), slice(j * w2 // cells, (j + 1) * w2 // cells)
            m = mask[ys, xs]
            if m.sum() >= 100 and sa[ys, xs][m].std() > 1.0:  # a cell with texture inside the overlap
                per.append(_ncc(sa[ys, xs], sb[ys, xs], m))
    return float(np.median(per)) if len(per) >= 4 else 0.0


def _gradient(img: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    f = img.astype(np.float32)
    return np.hypot(cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1))


def _ncc(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    x = a[mask].astype(np.float64)
    y = b[mask].astype(np.float64)
    if len(x) < 50:
        return 0.0
    x -= x.mean()
    y -= y.mean()
    den = np.sqrt((x * x).sum() * (y * y).sum())
    return float((x * y).sum() / den) if den > 0 else 0.0


def _calibrate(value: float, at: float) -> float:
    """Piecewise-linear map with 0 -> 0, ``at`` -> 0.5, 1 -> 1."""
    value = min(1.0, max(0.0, float(value)))
    return 0.5 * value / at if value < at else 0.5 + 0.5 * (value - at) / (1 - at)


def compact_gray(image: Image.Image) -> np.ndarray:
    """The grayscale ``image`` at COMPACT_SIDE px long side (up or down): the frame of its compact features."""
    gray = image.convert("L")
    w, h = gray.size
    s = COMPACT_SIDE / max(w, h)
    if s != 1:  # small images too: ORB finds few keypoints below ~200 px
        gray = gray.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(gray, dtype=np.uint8))


def compact_features(image: Image.Image) -> bytes:
    """Index-time screening features of ``image`` (any mode): ORB keypoints of :func:`compact_gray` and of its
    mirror image, packed (format, two counts as uint16, then per set the points as uint16 in 1/16 px and the
    32-byte descriptors), then that gray itself as a JPEG (:func:`stored_gray`)."""
    arr = compact_gray(image)
    cv2 = _cv2()
    orb = cv2.ORB_create(nfeatures=COMPACT_FEATURES, nlevels=COMPACT_LEVELS, edgeThreshold=15, patchSize=15,
                         fastThreshold=10)
    kp, des = orb.detectAndCompute(arr, None)
    sets = [_packed_points(kp, des)]
    if des is not None and kp:
        # the mirror image's descriptors at the mirrored keypoints (orientation reflected): no second detection
        # (0.7 instead of 1.6 ms on a sample photo); 94% of them lie within 30 bits of the mirror image's own
        w = arr.shape[1]
        mk = [cv2.KeyPoint(w - 1 - k.pt[0], k.pt[1], k.size, (180 - k.angle) % 360, k.response, k.octave, k.class_id)
              for k in kp]
        kp, des = orb.compute(np.ascontiguousarray(arr[:, ::-1]), mk)
    sets.append(_packed_points(kp, des))
    head = np.array([_COMPACT_FORMAT, len(sets[0][0]), len(sets[1][0])], "<u2").tobytes()
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG", quality=GRAY_QUALITY)
    return head + b"".join(p.tobytes() + d.tobytes() for p, d in sets) + buf.getvalue()


def _packed_points(kp, des) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    if des is None or not kp:
        return np.zeros((0, 2), "<u2"), np.zeros((0, 32), np.uint8)
    pts = np.clip(np.round(np.array([k.pt for k in kp], np.float64) * 16), 0, 65535).astype("<u2")
    return pts.reshape(-1, 2), np.ascontiguousarray(des, np.uint8)


def _header(data: bytes) -> tuple[int, int, int]:
    """(format, points of the image, points of its mirror image) of :func:`compact_features`' bytes."""
    fmt, n0, n1 = (int(v) for v in np.frombuffer(data, "<u2", 3))
    if fmt not in _READABLE_FORMATS:
        raise ValueError(f"copy features of format {fmt}, expected one of {_READABLE_FORMATS}")
    return fmt, n0, n1


def _unpack_compact(data: bytes) -> list[tuple[np.ndarray, np.ndarray]]:
    _, n0, n1 = _header(data)
    out, at = [], 6
    for n in (n0, n1):
        pts = np.frombuffer(data, "<u2", 2 * n, at).reshape(n, 2).astype(np.float32) / 16
        at += 4 * n
        des = np.frombuffer(data, np.uint8, 32 * n, at).reshape(n, 32)
        at += 32 * n
        out.append((pts, des))
    return out


def compact_points(data: bytes) -> int:
    """How many keypoints the image itself (not its mirror image) has in :func:`compact_features`."""
    return _header(data)[1]


def stored_gray(data: bytes) -> np.ndarray | None:
    """The :func:`compact_gray` kept in :func:`compact_features` (format 2), or None (format 1 has none)."""
    fmt, n0, n1 = _header(data)
    at = 6 + 36 * (n0 + n1)  # per point: 2 x uint16 position + a 32-byte descriptor
    if fmt < 2 or len(data) <= at:
        return None
    try:
        with Image.open(io.BytesIO(data[at:])) as im:
            return np.ascontiguousarray(np.asarray(im.convert("L"), dtype=np.uint8))
    except (OSError, ValueError) as err:
        raise ValueError(f"copy features with an unreadable gray image: {err}") from None


def points_only(data: bytes) -> bytes:
    """:func:`compact_features`' bytes cut back to format 1 (the points, no gray): what libraries indexed
    before format 2 hold (for the benchmark and tests that compare the two)."""
    _, n0, n1 = _header(data)
    return b"\x01\x00" + data[2:6 + 36 * (n0 + n1)]


def screenable(a: bytes, b: bytes) -> bool:
    """Whether a pair can be settled by :func:`screen_match` (both images have SCREEN_MIN_POINTS keypoints)."""
    return min(compact_points(a), compact_points(b)) >= SCREEN_MIN_POINTS


def screen_inliers(a: bytes, b: bytes) -> int:
    """Inliers of a similarity transform between two images' :func:`compact_features` (``a`` as it is or
    mirrored, against ``b``): below SCREEN_INLIERS the pair is not a copy."""
    return screen_match(a, b).inliers


def screen_match(a: bytes, b: bytes) -> Match:
    """The best similarity transform from ``a``'s :func:`compact_gray` (``mirrored``: from its mirror image)
    to ``b``'s, fitted on their compact features; ``inliers`` counts distinct points (no pixels compared)."""
    cv2 = _cv2()
    (pa, da), (pm, dm) = _unpack_compact(a)
    pb, db = _unpack_compact(b)[0]
    best = Match()
    if len(db) < 3:
        return best
    for mirror, (p, d) in enumerate(((pa, da), (pm, dm))):
        if len(d) < 3:
            continue
        dist, nearest = _two_nearest(d, db)
        good = np.flatnonzero(dist[:, 0] < SCREEN_RATIO * dist[:, 1])
        if len(good) < 4:
            continue
        x = p[good]
        y = pb[nearest[good, 0]]
        transform, inl = cv2.estimateAffinePartial2D(x, y, method=cv2.RANSAC, ransacReprojThreshold=SCREEN_RANSAC_PX)
        if transform is None or inl is None or not 0.125 < float(np.hypot(transform[0, 0], transform[1, 0])) < 8:
            continue
        keep = inl.ravel().astype(bool)
        n = min(_distinct(x[keep]), _distinct(y[keep]))
        if n > best.inliers:
            best = Match(inliers=n, mirrored=bool(mirror), transform=transform)
        if best.inliers >= SCREEN_INLIERS and not mirror and n >= 2 * SCREEN_INLIERS:
            break  # plainly aligned: the mirror image is not tried
    return best


def _two_nearest(d: np.ndarray, db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each row of ``d``, the Hamming distances and indices of its two nearest rows of ``db`` (binary
    descriptors). faiss's binary flat index on one OpenMP thread: 0.10 ms for 256 x 256 ORB descriptors, where
    BFMatcher.knnMatch took 0.75 ms (it builds a DMatch object per match) and cv2.batchDistance 0.36 ms; an
    OpenMP team per call cost more than the search (0.5 ms). Same distances and indices as knnMatch."""
    import faiss

    index = faiss.IndexBinaryFlat(db.shape[1] * 8)
    index.add(np.ascontiguousarray(db))
    threads = faiss.omp_get_max_threads()  # per thread: the caller's own setting is put back
    faiss.omp_set_num_threads(1)
    try:
        return index.search(np.ascontiguousarray(d), 2)
    finally:
        faiss.omp_set_num_threads(threads)


def _distinct(points: np.ndarray) -> int:
    """How many of ``points`` (compact-frame px, < 4096) fall in distinct 2-px cells: many-to-one matches count once."""
    cells = np.round(points / 2).astype(np.int64)
    return len(np.unique(cells[:, 0] * 4096 + cells[:, 1]))


def aligned_match(m: Match, a_gray: np.ndarray, b_gray: np.ndarray) -> Match:
    """:func:`screen_match`'s transform checked on the pixels as :func:`match` checks SIFT's: ``a_gray`` and
    ``b_gray`` are the two images' :func:`compact_gray` (decoded again); fills ``m.pixel`` and ``m.detail``."""
    if m.transform is not None and m.aligned:
        _compare(m, np.ascontiguousarray(a_gray[:, ::-1]) if m.mirrored else a_gray, b_gray)
    return m


def settled(score: float) -> bool:
    """Whether a copy score from :func:`aligned_match` is final, or SIFT is to decide (SURE_BELOW..SURE_ABOVE)."""
    return not SURE_BELOW <= score <= SURE_ABOVE


def cosine_score(cosine: float) -> float:
    """The calibrated copy score of an embedding cosine alone."""
    return _calibrate(cosine, COSINE_AT)


def copy_score(cosine: float, m: Match | None = None) -> float:
    """One score in [0, 1] from the embedding cosine and, when the pair was verified, the match; > 0.5 is a
    copy at the calibrated default."""
    score = cosine_score(cosine)
    if m is not None and m.aligned:
        score = max(score, _calibrate(m.pixel, PIXEL_AT), _calibrate(m.detail, DETAIL_AT))
    return score
