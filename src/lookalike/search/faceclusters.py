"""Faces into people: Chinese whispers on the same-person graph of dlib's 128-d face descriptors. Pure (arrays in,
labels out); the store side is :mod:`lookalike.search.people`.

Method (Biemann 2006, "Chinese Whispers"; the clustering dlib itself ships for these descriptors, see its
``face_clustering.py`` example): every face is a node; two faces are joined when their L2 distance is below
``SAME_PERSON`` (0.6, dlib's own rule for this model: 99.38% on LFW, measured by dlib, not by us), with weight
``1 - d / 0.6`` so that near-threshold edges count little. Each node starts with a label; in a seeded random
order, each free node takes the label with the largest summed edge weight among its neighbours (ties: the
smallest label), until no label changes. It needs no number of clusters and no density parameters (HDBSCAN
would need a minimum cluster size, wrong for a person seen once), it is linear in the edges, and it works
incrementally in a natural way: nodes whose label is settled are *clamped* (they vote but never change), so

- new faces (``label = -1``) join the cluster their same-person neighbours belong to, or form new clusters
  among themselves (given negative temporary labels ``-1, -2, ...``);
- a full re-clustering frees the unnamed clusters' faces but starts each from its current label (a warm
  start), so the ids that survive are the ones users saw; named clusters and faces a user placed stay clamped.

Why not agglomerative linkage: single linkage chains different people through one bad face; Chinese whispers
lets the majority of a node's neighbours decide. The neighbour graph comes from faiss range search (exact L2).

Cost. The exact range search compares every free face with every face: O(new x all) for new faces (faiss,
vectorised: ~1 ms per new face at 20k faces on 2 cores), O(all^2) for a re-clustering. A new face is placed
without any search when it is *confidently* one person's (:func:`confident`): by the triangle inequality on the
clusters' means and radii it has a same-person edge into one cluster and none into any other, checked at the
cost of one distance per cluster. (Pruning the whole graph the same way was tried and dropped: in 128
dimensions every cluster's mean lies within reach, ``threshold + radius``, of most faces, so it pruned almost
nothing and its Python loop was slower than faiss's flat search.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.progress import progress_bar

SAME_PERSON = 0.6  # = lookalike.models.faces.SAME_PERSON (not imported: dlib need not be installed here)
MAX_ITERATIONS = 50  # Chinese whispers converges in a handful of passes; this is only a guard


@dataclass
class Graph:
    """Symmetric sparse neighbour lists in CSR form: ``cols[lims[i]:lims[i+1]]`` are node i's neighbours."""

    lims: np.ndarray  # int64 (n+1,)
    cols: np.ndarray  # int64 (edges,)
    weights: np.ndarray  # float32 (edges,)

    def neighbours(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.lims[i]), int(self.lims[i + 1])
        return self.cols[a:b], self.weights[a:b]


@dataclass
class Groups:
    """Faces in clusters (a label per face; a face with a negative label is a cluster of its own): each
    cluster's mean, radius (its farthest face from the mean) and mean squared distance to the mean."""

    ids: np.ndarray  # int64 (n,): the face's cluster, 0 .. len(means) - 1
    means: np.ndarray  # float32 (clusters, d)
    radius: np.ndarray  # float32 (clusters,)
    spread: np.ndarray  # float32 (clusters,): mean squared distance of its faces to the mean
    members: list[np.ndarray]  # faces of each cluster
    labels: np.ndarray  # int64 (clusters,): the label each cluster had (-1: a face of its own)

    @classmethod
    def of(cls, embeddings: np.ndarray, labels: np.ndarray) -> "Groups":
        lab = np.asarray(labels, dtype=np.int64)
        key = lab.copy()
        alone = np.flatnonzero(lab < 0)
        key[alone] = max(int(lab.max()) if len(lab) else 0, 0) + 1 + np.arange(len(alone))
        values, ids = np.unique(key, return_inverse=True)
        g = len(values)
        order = np.argsort(ids, kind="stable")
        counts = np.bincount(ids, minlength=g)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        sums = np.add.reduceat(embeddings[order].astype(np.float64), starts, axis=0) if g else \
            np.zeros((0, embeddings.shape[1]))
        means = (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
        d = np.linalg.norm(embeddings - means[ids], axis=1)
        radius = np.maximum.reduceat(d[order], starts).astype(np.float32) if g else np.zeros(0, np.float32)
        spread = (np.bincount(ids, weights=d * d, minlength=g) / np.maximum(counts, 1)).astype(np.float32)
        members = np.split(order, np.cumsum(counts)[:-1])
        first = order[starts] if g else np.zeros(0, np.int64)
        return cls(ids.astype(np.int64), means, radius, spread, members, np.where(lab[first] >= 0, lab[first], -1))


def neighbour_graph(embeddings: np.ndarray, rows: np.ndarray | None = None,
                    threshold: float = SAME_PERSON, progress: bool = False) -> Graph:
    """Edges from each node in ``rows`` (default: all) to every other node closer than ``threshold`` (L2).
    Only the lists of ``rows`` are filled; the others are empty (they are clamped and never read)."""
    x = np.ascontiguousarray(embeddings, dtype=np.float32)
    n = len(x)
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    if n == 0 or len(rows) == 0:
        return Graph(np.zeros(n + 1, dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return _csr(n, _flat_lists(x, rows, threshold, progress))


def _flat_lists(x: np.ndarray, rows: np.ndarray, threshold: float, progress: bool
                ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    per_row: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    bar = progress_bar(len(rows), progress and len(rows) > 4096, "people: neighbours", unit="face")
    for start in range(0, len(rows), 4096):
        chunk = rows[start:start + 4096]
        rl, d2, ids = index.range_search(x[chunk], threshold * threshold)
        for k, r in enumerate(chunk):
            a, b = int(rl[k]), int(rl[k + 1])
            keep = ids[a:b] != r
            d = np.sqrt(np.maximum(d2[a:b][keep], 0.0))
            per_row[int(r)] = (ids[a:b][keep].astype(np.int64), (1.0 - d / threshold).astype(np.float32))
        bar.update(len(chunk))
    bar.close()
    return per_row


def _csr(n: int, per_row: dict[int, tuple[np.ndarray, np.ndarray]]) -> Graph:
    lims = np.zeros(n + 1, dtype=np.int64)
    counts = np.zeros(n, dtype=np.int64)
    for r, (c, _) in per_row.items():
        counts[r] = len(c)
    lims[1:] = np.cumsum(counts)
    cols = np.zeros(int(lims[-1]), dtype=np.int64)
    weights = np.zeros(int(lims[-1]), dtype=np.float32)
    for r, (c, w) in per_row.items():
        order = np.argsort(c, kind="stable")
        cols[lims[r]:lims[r + 1]] = c[order]
        weights[lims[r]:lims[r + 1]] = w[order]
    return Graph(lims, cols, weights)


def chinese_whispers(graph: Graph, labels: np.ndarray, free: np.ndarray, *, seed: int = 0,
                     max_iterations: int = MAX_ITERATIONS) -> tuple[np.ndarray, int]:
    """Run Chinese whispers over the ``free`` nodes (bool mask); the others keep their labels. ``labels``:
    int64, a node's current label (>= 0) or -1 for none; a free node without a label starts alone with a
    fresh one. Returns (labels, passes). Fresh clusters come out as -1, -2, ... (in node order); labels
    >= 0 are the given ones."""
    n = len(labels)
    lab = np.asarray(labels, dtype=np.int64).copy()
    free = np.asarray(free, dtype=bool)
    if n == 0:
        return lab, 0
    fresh_base = max(int(lab.max()), -1) + 1  # fresh labels above every given one while iterating
    unlabelled = np.flatnonzero(free & (lab < 0))
    lab[unlabelled] = fresh_base + np.arange(len(unlabelled))
    order = np.flatnonzero(free)
    rng = np.random.default_rng(seed)
    passes = 0
    for passes in range(1, max_iterations + 1):
        changed = 0
        for i in rng.permutation(order):
            cols, w = graph.neighbours(int(i))
            if not len(cols):
                continue
            votes: dict[int, float] = {}
            for c, wt in zip(lab[cols].tolist(), w.tolist()):
                votes[c] = votes.get(c, 0.0) + wt
            best = min(votes, key=lambda k: (-votes[k], k))
            if best != lab[i]:
                lab[i] = best
                changed += 1
        if not changed:
            break
    _split_disconnected(graph, lab, free, fresh_base)
    # fresh labels -> -1, -2, ... in order of each cluster's first node
    out = lab.copy()
    fresh = [int(v) for v in dict.fromkeys(lab[lab >= fresh_base].tolist())]
    for k, v in enumerate(fresh):
        out[lab == v] = -(k + 1)
    return out, passes


def _split_disconnected(graph: Graph, lab: np.ndarray, free: np.ndarray, fresh_base: int) -> None:
    """A label whose faces fell apart (no same-label edge joins the parts: a warm start after two people were
    merged by hand and the name removed) keeps its id on the part holding its clamped faces, else the largest;
    the other parts get fresh labels. In place."""
    parent = np.arange(len(lab))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for i in np.flatnonzero(free):
        cols, _ = graph.neighbours(int(i))
        for j in cols[lab[cols] == lab[i]].tolist():
            a, b = root(int(i)), root(j)
            if a != b:
                parent[a] = b
    clamped = ~free
    for members in _groups(lab[clamped], np.flatnonzero(clamped)).values():  # a label's clamped faces stay together
        for j in members[1:].tolist():
            a, b = root(int(members[0])), root(j)
            if a != b:
                parent[a] = b
    roots = np.array([root(i) for i in range(len(lab))])
    next_label = max(int(lab.max()) + 1, fresh_base)
    free_labels = set(lab[free].tolist())
    for v, members in _groups(lab, np.arange(len(lab))).items():
        if v not in free_labels:
            continue
        parts, sizes = np.unique(roots[members], return_counts=True)
        if len(parts) < 2:
            continue
        anchored = [r for r in parts if clamped[members[roots[members] == r]].any()]
        keep = anchored[0] if anchored else parts[int(np.argmax(sizes))]
        for r in parts:
            if r != keep:
                lab[members[roots[members] == r]] = next_label
                next_label += 1


def _groups(labels: np.ndarray, idx: np.ndarray) -> dict[int, np.ndarray]:
    """label -> the ``idx`` entries carrying it (one sort, not one scan per label)."""
    order = np.argsort(labels, kind="stable")
    values, starts = np.unique(labels[order], return_index=True)
    return {int(v): idx[order[a:b]] for v, a, b in zip(values, starts, [*starts[1:], len(order)])}


def cluster(embeddings: np.ndarray, labels: np.ndarray, free: np.ndarray, *, threshold: float = SAME_PERSON,
            seed: int = 0, progress: bool = False) -> np.ndarray:
    """Labels after clustering the ``free`` faces among all: see :func:`chinese_whispers`. ``progress``: a
    progress bar over the neighbour search (the long part: quadratic when every face is free)."""
    free = np.asarray(free, dtype=bool)
    graph = neighbour_graph(embeddings, np.flatnonzero(free), threshold, progress=progress)
    return chinese_whispers(graph, labels, free, seed=seed)[0]


def place_new(embeddings: np.ndarray, labels: np.ndarray, new: np.ndarray, fixed: np.ndarray, *,
              threshold: float = SAME_PERSON, seed: int = 0, progress: bool = False) -> tuple[np.ndarray, dict[str, int]]:
    """The incremental step: labels after placing the ``new`` faces (bool mask) among the clustered ones.
    Confident faces (:func:`confident`) take their cluster's label at once; the others go through Chinese
    whispers (neighbours by the exact search) with every placed face clamped; when one of them has edges into two
    clusters that are not ``fixed`` (named or pinned faces), those clusters' faces are freed too, warm-started
    (a re-clustering of just them). Returns (labels, {"confident": n, "reclustered": n})."""
    lab = np.asarray(labels, np.int64).copy()
    new = np.asarray(new, bool)
    stats = {"confident": 0, "reclustered": 0}
    rows = np.flatnonzero(new)
    if not len(rows):
        return lab, stats
    sure = confident(embeddings, lab, rows, threshold)
    lab[rows] = sure
    free = new.copy()
    free[rows[sure >= 0]] = False
    stats["confident"] = int((sure >= 0).sum())
    if free.any():
        graph = neighbour_graph(embeddings, np.flatnonzero(free), threshold)
        bridged = bridges(graph, lab, np.flatnonzero(free), ~np.asarray(fixed, bool))
        if bridged:
            extra = np.isin(lab, sorted(bridged)) & ~np.asarray(fixed, bool)
            stats["reclustered"] = int(extra.sum())
            free |= extra
        else:  # the graph already built is the one to cluster on
            return chinese_whispers(graph, lab, free, seed=seed)[0], stats
        lab = cluster(embeddings, lab, free, threshold=threshold, seed=seed, progress=progress)
    return lab, stats


def confident(embeddings: np.ndarray, labels: np.ndarray, rows: np.ndarray, threshold: float = SAME_PERSON
              ) -> np.ndarray:
    """For each face of ``rows`` (faces without a cluster), the label of the one cluster it surely belongs to,
    else -1, from the clusters' means alone (no neighbour search). Sure, by the triangle inequality:
    ``|x - mean|^2 + spread < threshold^2`` for its nearest cluster, so its mean squared distance to that
    cluster's faces is below ``threshold^2`` (it has a same-person edge into it), and ``|x - mean| >=
    threshold + radius`` for every other cluster, so it has no edge into any other person. Chinese whispers
    would give it that label unless other new faces around it outvoted the cluster (a new person standing
    next to a known one): the price of placing it at the cost of one distance per cluster."""
    rows = np.asarray(rows, np.int64)
    out = np.full(len(rows), -1, np.int64)
    if not len(rows) or not (np.asarray(labels) >= 0).any():
        return out
    x = np.asarray(embeddings, np.float32)
    g = Groups.of(x, labels)
    known = np.flatnonzero(g.labels >= 0)  # faces without a cluster (this one, the other new ones) do not count
    means = g.means[known].astype(np.float64)
    sq = (means**2).sum(1)
    for start in range(0, len(rows), 1024):
        part = rows[start:start + 1024]
        q = x[part].astype(np.float64)
        d2 = np.maximum((q * q).sum(1)[:, None] - 2 * q @ means.T + sq[None, :], 0.0)
        best = np.argmin(d2, axis=1)
        at = np.arange(len(part))
        edge = d2[at, best] + g.spread[known][best] < threshold**2
        reach = np.sqrt(d2) < threshold + g.radius[known][None, :] + 1e-6
        reach[at, best] = False
        sure = edge & ~reach.any(axis=1)
        out[start:start + len(part)][sure] = g.labels[known][best[sure]]
    return out


def bridges(graph: Graph, labels: np.ndarray, rows: np.ndarray, movable: np.ndarray) -> set[int]:
    """Labels of ``movable`` faces that some face of ``rows`` has edges into along with another such label:
    a new face between two unnamed people, a sign they may be one (then worth re-clustering together)."""
    out: set[int] = set()
    for i in np.asarray(rows, np.int64).tolist():
        cols, _ = graph.neighbours(int(i))
        touched = {int(v) for v in labels[cols[movable[cols]]].tolist() if v >= 0}
        if len(touched) > 1:
            out |= touched
    return out


def centroids(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct labels, their mean descriptors, each face's row in them)."""
    values, inverse = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(values), embeddings.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, embeddings)
    return values, (sums / np.bincount(inverse, minlength=len(values))[:, None]).astype(np.float32), inverse


def membership(embeddings: np.ndarray, labels: np.ndarray, threshold: float = SAME_PERSON) -> np.ndarray:
    """Per face, how typical it is of its person, in [0, 1]: ``1 - d / threshold`` clipped, ``d`` the L2
    distance to the mean descriptor of its cluster. 1 = the cluster's average face; 0.5 = half the
    same-person distance away; a person seen once scores 1."""
    if not len(labels):
        return np.zeros(0, dtype=np.float32)
    _, means, inverse = centroids(embeddings, labels)
    d = np.linalg.norm(embeddings - means[inverse], axis=1)
    return np.clip(1.0 - d / threshold, 0.0, 1.0).astype(np.float32)


def pairwise_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Pairwise precision / recall / F1 of a clustering against true identities (pairs of faces put together
    that belong together, over all pairs put together / all pairs that belong together)."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    same_t = truth[:, None] == truth[None, :]
    same_p = predicted[:, None] == predicted[None, :]
    iu = np.triu_indices(len(truth), k=1)
    tp = int((same_t & same_p)[iu].sum())
    pp, tt = int(same_p[iu].sum()), int(same_t[iu].sum())
    precision = tp / pp if pp else 1.0
    recall = tp / tt if tt else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "pairs_true": tt, "pairs_predicted": pp}
