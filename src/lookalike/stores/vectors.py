"""Vector indexes over the embeddings, through faiss (the exact one in numpy). Derived data: the SQLite table
stays the source of truth; an index is rebuilt, caught up from the change log, or loaded from its saved copy
beside the database.

Kinds (inner product = cosine on L2-normalised vectors):

============  ===================================================================  ======================
kind          what it is                                                           memory per vector
============  ===================================================================  ======================
flat          exact: every vector is scored (numpy, stores/exact.py)                4 x dim bytes
ivf           k-means inverted file: a query probes its ``nprobe`` nearest         4 x dim
              clusters (of ``nlist``), then ranks their members exactly
ivf-sq8       the same with 8-bit scalar-quantised (residual) vectors; the store   dim
              re-scores the best 3 x k with the float32 vectors from SQLite
ivf-sq8-fast  the same codes, clusters found through an HNSW graph over the          dim
              centroids; scored from the codes in memory, no database read
ivf-pca-sq8   IVF (HNSW over the centroids, adaptive probing) over 8-bit codes of  384 + dim + 16
              a 384-d rotation of each vector; the best 100 re-scored by adding
              the query's product with 8-bit codes of what the first code left
              over (stores/reduced.py); no database read per query
ivf-pqfs-sq8  IVF over 4-bit fast-scan PQ codes (dim/10 sub-quantizers) for        dim / 20 + dim
              candidates, clusters found through an HNSW graph over the
              centroids; the best 10 x ``k_factor`` re-scored with 8-bit codes
              of the whole vectors held in memory (faiss IndexRefine); no
              database read per query
ivf-pq        product-quantised codes (``dim / 8`` bytes), for very large sets     dim / 8
hnsw          HNSW graph (M=32) over float vectors                                 4 x dim + ~300
hnsw-sq8      HNSW graph over 8-bit codes                                          dim + ~300
============  ===================================================================  ======================

``auto`` (the default) is ``flat`` below :data:`FLAT_MAX` vectors (exact, and fast enough there) and
:data:`AUTO_LARGE` (``ivf-pca-sq8``, nprobe nlist/32 within [32, 64]; a query scans those of its nprobe
clusters within 0.15 cosine of its nearest centroid, stores/probing.py) above. Through the store at 1M, side by
side in one run on a quiet machine (``bench/search_scale.py --n 1000000 --kind ivf-sq8-fast,ivf-pca-sq8``, load
1.6): ``store.knn`` recall@10 0.9845 -> 0.9865, wall p50 3.31 -> 1.78 ms, p99 9.16 -> 3.27 ms, 1,319 -> 1,698 B
per image, score error mean 0.00024 -> 0.00008 (docs/scale.md). Earlier, at 1M x 1280 (``bench/ann_choices.py``,
faiss alone, one thread, 2 shared cores at load 6-11; docs/scale.md has every row):

========================================  =========  =================  ========  ===================
choice (nlist 4096)                       recall@10  CPU p50 / p99 ms   B/image   score error mean/max
========================================  =========  =================  ========  ===================
ivf-sq8 np32 + exact re-rank of 30 (RAM)  0.989      2.09 / 4.34        1,309     0 (SQLite reads)
ivf-sq8, all centroids scored, np64       0.983      2.65 / 5.69        1,309     0.0002 / 0.0013
ivf-sq8-fast np32                         0.9795     1.20 / 3.51        1,309     0.0002 / 0.0013
ivf-sq8-fast np64 (the default)           0.983      2.06 / 5.31        1,309     0.0002 / 0.0013
ivf-pqfs-sq8 np128, 1,000 re-scored       0.967      1.48 / 1.94        1,377     0.0009 / 0.0053
========================================  =========  =================  ========  ===================

Through the store at 1M (``bench/search_scale.py``, load 2.3): ``store.knn`` recall@10 0.983, p50 3.0 ms /
p99 5.6 ms, 1,319 B per image of index (the old ivf-sq8 + SQLite re-rank: p50 3.84 / p99 51 ms). With the
adaptive probing (same index, one run, load 8.4): CPU p50 7.56 -> 4.09 ms, p99 12.6 -> 9.8 ms, recall 0.9845
both (docs/scale.md).

Scores of ``ivf-pca-sq8``, ``ivf-sq8-fast`` and ``ivf-pqfs-sq8`` are the 8-bit codes' cosines (errors above), not exact ones;
the other compressed kinds are re-scored exactly by the store from SQLite, paying page reads per query.

A library whose saved index is of another kind (an ``ivf-sq8`` built by ``auto`` before) loads and answers as
before; the next ``optimize()`` (after ``lookalike index``) rebuilds it as the new kind. Trained kinds are
retrained when the collection has doubled or halved since training; adds and removals in between are
incremental (removals are tombstones, compacted at the next rebuild).

Every stored vector has a slot (faiss's own sequential id); ``ids`` maps slots to image ids and ``live``
marks the slots still in use, so all kinds share one add/remove/filter path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence

from lookalike.stores.faiss_lazy import faiss
import numpy as np

from lookalike.config import VECTOR_INDEX_KINDS
from lookalike.errors import LookalikeError
from lookalike.stores import index_file, reduced
from lookalike.stores.exact import ExactIndex
from lookalike.stores.probing import PROBE_MARGIN, adaptive_search

KINDS = VECTOR_INDEX_KINDS
FLAT_MAX = 25_000  # auto: exact search below this many vectors
AUTO_LARGE = "ivf-pca-sq8"  # auto: the kind above FLAT_MAX (ivf-sq8-fast before; docs/scale.md has both)
HNSW_M = 32
REFINE_FACTOR = 100  # ivf-pqfs-sq8: candidates per result at k = 10 (1,000), re-scored with the 8-bit codes
COARSE_HNSW_M = 32  # ivf-sq8-fast and ivf-pqfs-sq8 find their clusters through an HNSW graph over the centroids
FAST_KINDS = ("ivf-sq8-fast", "ivf-pqfs-sq8", "ivf-pca-sq8")  # scored from their codes in memory, no database read
STORE_RERANKED = ("ivf-sq8", "ivf-pq", "hnsw-sq8")  # kinds whose candidates the store re-scores exactly
TRAIN_PER_LIST = 40  # k-means training points per cluster (faiss warns below 39)
KMEANS_ITERATIONS = 10


def auto_kind(n: int) -> str:
    return "flat" if n < FLAT_MAX else AUTO_LARGE


def default_nlist(n: int) -> int:
    """Clusters for an IVF index of ``n`` vectors: ~4 sqrt(n) as a power of two, at most n / 39 (k-means
    wants ~39 training points per cluster), in [16, 65536]."""
    target = min(4 * math.sqrt(max(n, 1)), max(n, 1) / 39)
    return int(min(65536, max(16, 2 ** round(math.log2(max(1.0, target))))))


def default_nprobe(nlist: int, kind: str = "ivf-sq8") -> int:
    """Clusters a query probes. The kinds scored in memory: 1/32 of them, within [32, 64] (ivf-sq8-fast at 50k,
    nlist 1024: np16 recall@10 0.973, np32 0.985; at 1M, nlist 4096: np64 0.983, bench/search_scale.py and
    bench/ann_choices.py); the other IVF kinds: 1/32, within [16, 32].
    """
    if kind in FAST_KINDS:
        return int(min(nlist, max(32, min(64, nlist // 32))))
    return int(min(nlist, max(16, min(32, nlist // 32))))


def pqfs_m(dim: int) -> int:
    """Sub-quantizers of the 4-bit fast-scan PQ codes: the divisor of ``dim`` nearest dim/10, and at least
    16 when the dimension allows (1280-d: 128, i.e. 64 bytes a vector)."""
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    want = max(dim / 10, min(dim, 16))
    return min(divisors, key=lambda m: (abs(m - want), -m))


class VectorIndex:
    """A faiss index with image ids, tombstones and filtered search. Not thread-safe: the store locks."""

    def __init__(self, kind: str, dim: int, index: faiss.Index, *, trained_on: int = 0,
                 ids: np.ndarray | None = None, live: np.ndarray | None = None, nprobe: int | None = None,
                 ef_search: int = 128, seq: int = 0, k_factor: int = REFINE_FACTOR) -> None:
        self.kind = kind
        self.dim = dim
        self.index = index
        self._exact = isinstance(index, ExactIndex)  # flat without faiss (stores/exact.py)
        # the inverted-file part of IVF kinds (None for the others)
        self.ivf = None if self._exact else _extract_ivf(index)
        self._coarse_hnsw = self.ivf is not None and isinstance(faiss.downcast_index(self.ivf.quantizer), faiss.IndexHNSW)
        self.trained_on = trained_on  # vectors in the collection when the index was trained
        self.ids = np.zeros(0, np.int64) if ids is None else ids
        self.live = np.zeros(0, bool) if live is None else live
        # image id -> its live slot (-1: none); an array, not a dict: 8 bytes per id at a million images
        self._slot = np.full(int(self.ids.max()) + 1 if len(self.ids) else 0, -1, np.int64)
        self._slot[self.ids[self.live]] = np.flatnonzero(self.live)
        self._n_live = int(self.live.sum())
        self._live_bits: np.ndarray | None = None  # self.live packed for faiss's IDSelectorBitmap, kept till a change
        self.nprobe = nprobe or (default_nprobe(self.ivf.nlist, kind) if self.ivf is not None else 0)
        self.ef_search = ef_search
        # ivf-sq8-fast and ivf-pca-sq8: a query scans the clusters within this cosine of its nearest centroid,
        # up to nprobe of them (stores/probing.py); 0: always nprobe
        self.probe_margin = PROBE_MARGIN if kind in ("ivf-sq8-fast", "ivf-pca-sq8") else 0.0
        # ivf-pca-sq8: candidates from the reduced copy, re-scored with the full codes (stores/reduced.py)
        self._reduced = reduced.Reduced(index) if kind == "ivf-pca-sq8" else None
        self.k_factor = k_factor  # ivf-pqfs-sq8: candidates per result (at k <= 10) re-scored with 8-bit codes
        self.seq = seq  # the store's change-log position this index reflects

    # -- construction ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, kind: str, dim: int, n_expected: int, *, nlist: int | None = None) -> "VectorIndex":
        """An empty index of ``kind`` for about ``n_expected`` vectors (``train`` it before adding when
        :attr:`needs_training`)."""
        if kind == "auto":
            kind = auto_kind(n_expected)
        if kind not in KINDS:
            raise LookalikeError(f"unknown vector index {kind!r}; choose one of {', '.join(KINDS)}")
        if kind == "flat":
            return cls(kind, dim, ExactIndex(dim))
        metric = faiss.METRIC_INNER_PRODUCT
        if kind == "ivf-sq8-fast":
            nl = nlist or default_nlist(n_expected)
            index = faiss.index_factory(dim, f"IVF{nl}_HNSW{COARSE_HNSW_M},SQ8", metric)
        elif kind == "ivf-pca-sq8":
            index = reduced.create(dim, nlist or default_nlist(n_expected), COARSE_HNSW_M)
        elif kind == "ivf-pqfs-sq8":
            nl = nlist or default_nlist(n_expected)
            index = faiss.index_factory(dim, f"IVF{nl}_HNSW{COARSE_HNSW_M},PQ{pqfs_m(dim)}x4fs,Refine(SQ8)", metric)
        elif kind.startswith("ivf"):
            nl = nlist or default_nlist(n_expected)
            codec = {"ivf": "Flat", "ivf-sq8": "SQ8", "ivf-pq": f"PQ{_pq_m(dim)}"}[kind]
            index = faiss.index_factory(dim, f"IVF{nl},{codec}", metric)
        else:
            codec = "Flat" if kind == "hnsw" else "SQ8"
            index = faiss.index_factory(dim, f"HNSW{HNSW_M},{codec}" if codec != "Flat" else f"HNSW{HNSW_M}", metric)
            index.hnsw.efConstruction = 80
        return cls(kind, dim, index)

    @classmethod
    def build(cls, dim: int, batches: Iterable[tuple[np.ndarray, np.ndarray]], *, kind: str = "auto",
              n: int | None = None, sample: np.ndarray | None = None) -> "VectorIndex":
        """An index over ``batches`` of (ids, vectors). Trained kinds need ``n`` (the collection size) and a
        training ``sample`` of vectors (else the first batches are used)."""
        idx = cls.create(kind, dim, n or 0)
        pending: list[tuple[np.ndarray, np.ndarray]] = []
        it = iter(batches)
        if idx.needs_training:
            if sample is None:
                want, got = idx.train_size(n or 0), 0
                for ids, vecs in it:
                    pending.append((ids, vecs))
                    got += len(ids)
                    if got >= want:
                        break
                sample = np.concatenate([v for _, v in pending]) if pending else np.zeros((0, dim), np.float32)
            idx.train(sample, n or len(sample))
        for ids, vecs in pending:
            idx.add(ids, vecs)
        for ids, vecs in it:
            idx.add(ids, vecs)
        return idx

    @property
    def nlist(self) -> int:
        """IVF clusters (0 for other kinds)."""
        ivf = self.ivf
        return int(ivf.nlist) if ivf is not None else 0

    @property
    def compressed(self) -> bool:
        """Whether scores come from quantised codes (approximate cosines)."""
        return self.kind in (*STORE_RERANKED, *FAST_KINDS)

    @property
    def rerank_from_store(self) -> bool:
        """Whether the store re-scores candidates with the exact float32 vectors from the database (the older
        compressed kinds). ``ivf-pca-sq8``, ``ivf-sq8-fast`` and ``ivf-pqfs-sq8`` are scored from their 8-bit
        codes in memory: within 0.0031 / 0.0021 / 0.009 of the exact cosine at 1M (bench/search_scale.py)."""
        return self.kind in STORE_RERANKED

    @property
    def refined(self) -> bool:
        """ivf-pqfs-sq8: faiss's IndexRefine re-scores ``k_factor`` candidates per result."""
        return self.kind == "ivf-pqfs-sq8"

    @property
    def needs_training(self) -> bool:
        return not self.index.is_trained

    def train_size(self, n: int) -> int:
        ivf = self.ivf
        if ivf is not None:
            return min(n, TRAIN_PER_LIST * ivf.nlist)
        return min(n, 65_536)  # sq8 range / pq codebooks of an HNSW-SQ8

    def train(self, sample: np.ndarray, n: int) -> None:
        sample = np.ascontiguousarray(sample, dtype=np.float32)
        ivf = self.ivf
        if ivf is not None and len(sample) < ivf.nlist:
            raise LookalikeError(f"an IVF index with {ivf.nlist} clusters needs at least that many vectors to train")
        if ivf is not None:
            ivf.cp.niter = KMEANS_ITERATIONS
        if self._reduced is not None:
            self._reduced.train(sample)
        else:
            self.index.train(sample)
        self.trained_on = n
        if ivf is not None:
            self.nprobe = default_nprobe(ivf.nlist, self.kind)

    # -- contents -------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n_live

    @property
    def dead(self) -> int:
        return len(self.ids) - self._n_live

    def slots_of(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The live slots of ``ids`` (those present), in order."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        ok = (ids >= 0) & (ids < len(self._slot))
        slots = np.full(len(ids), -1, np.int64)
        slots[ok] = self._slot[ids[ok]]
        return slots[slots >= 0]

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=np.int64)
        if not len(ids):
            return
        vecs = np.ascontiguousarray(vecs, dtype=np.float32).reshape(len(ids), self.dim)
        if len(_unique(ids)) != len(ids):
            raise ValueError("duplicate ids in one add")
        self.remove(ids)
        start = len(self.ids)
        slots = np.arange(start, start + len(ids), dtype=np.int64)
        # every kind numbers its vectors 0, 1, 2, ... itself, so the slots are faiss's own ids (an IVF direct
        # map, made by a small filtered search, refuses explicit ids)
        assert self.index.ntotal == start
        if self._reduced is not None:
            self._reduced.add(vecs)
        else:
            self.index.add(vecs)
        self.ids = np.concatenate([self.ids, ids])
        self.live = np.concatenate([self.live, np.ones(len(ids), bool)])
        top = int(ids.max()) + 1
        if top > len(self._slot):
            grown = np.full(max(top, len(self._slot) * 5 // 4), -1, np.int64)
            grown[: len(self._slot)] = self._slot
            self._slot = grown
        self._slot[ids] = slots
        self._n_live += len(ids)
        self._live_bits = None

    def remove(self, ids: Sequence[int] | np.ndarray) -> None:
        slots = self.slots_of(ids)
        if len(slots):
            slots = _unique(slots)
            self.live[slots] = False
            self._slot[self.ids[slots]] = -1
            self._n_live -= len(slots)
            self._live_bits = None

    def needs_rebuild(self, n: int, kind: str = "auto") -> bool:
        """Whether an index over ``n`` vectors would better be rebuilt: another kind is wanted, the collection
        doubled or halved since training, or over a quarter of the slots are tombstones."""
        want = auto_kind(n) if kind == "auto" else kind
        if want != self.kind:
            # hysteresis around FLAT_MAX so a collection at the boundary does not flip back and forth
            if kind == "auto" and self.kind == AUTO_LARGE and n >= FLAT_MAX // 2:
                return False
            return True
        if self.kind != "flat" and self.trained_on and (n > 2 * self.trained_on or n < self.trained_on // 2):
            return True
        return self.dead > max(1000, len(self.ids) // 4)

    # -- search ---------------------------------------------------------------------------------------------
    def search(self, query: np.ndarray, k: int, allowed: Sequence[int] | None = None) -> list[tuple[int, float]]:
        """The ``k`` best (image id, score), best first; only ids in ``allowed`` when given."""
        ids, scores = self.search_many(np.asarray(query, dtype=np.float32).reshape(1, -1), k, allowed)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]

    def search_many(self, queries: np.ndarray, k: int, allowed: Sequence[int] | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores), each (n_queries, k), best first; missing results are id -1."""
        q = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        out_ids = np.full((len(q), max(k, 0)), -1, np.int64)
        out_scores = np.full((len(q), max(k, 0)), -np.inf, np.float32)
        if k <= 0 or not len(self) or not len(q):
            return out_ids, out_scores
        if allowed is not None:
            slots = _unique(self.slots_of(allowed))
            if not len(slots):
                return out_ids, out_scores
            if len(slots) <= 4096:
                return self._exact_subset(q, k, slots, out_ids, out_scores)
            bits = np.zeros(len(self.ids), bool)
            bits[slots] = True
            mask: np.ndarray | None = bits
            packed = None if self._exact else np.packbits(bits, bitorder="little")
            n_allowed = len(slots)
        else:
            mask = packed = None
            if self.dead:  # tombstones: the live slots only (packed once per change, not per query)
                mask = self.live
                if self._live_bits is None and not self._exact:
                    self._live_bits = np.packbits(self.live, bitorder="little")
                packed = self._live_bits
            n_allowed = len(self)
        kk = min(k, n_allowed)
        if self._exact:
            scores, slots_found = self.index.search(q, kk, mask)
        else:
            scores, slots_found = self._search(q, kk, packed)
        short = (slots_found < 0).sum(axis=1) > 0
        if short.any() and self.kind != "flat":  # probes/graph found too few that pass the filter: widen
            s2, f2 = self._search(q[short], kk, packed, wide=True)
            scores[short], slots_found[short] = s2, f2
        valid = slots_found >= 0
        out_ids[:, :kk] = np.where(valid, self.ids[np.where(valid, slots_found, 0)], -1)
        out_scores[:, :kk] = np.where(valid, scores, -np.inf)
        return out_ids, out_scores

    def _search(self, q: np.ndarray, k: int, packed: np.ndarray | None, wide: bool = False
                ) -> tuple[np.ndarray, np.ndarray]:
        """faiss's search; ``packed``: the allowed slots as a little-endian bitmap (None: all)."""
        sel = None
        if packed is not None:
            sel = faiss.IDSelectorBitmap(len(self.ids), faiss.swig_ptr(packed))
        ivf = self.ivf
        if ivf is not None:
            nprobe = ivf.nlist if wide else self.nprobe
            coarse = faiss.SearchParametersHNSW(efSearch=max(64, 2 * nprobe)) if self._coarse_hnsw else None
            if self._reduced is not None:
                return self._reduced.search(q, k, nprobe, 0.0 if wide else self.probe_margin, sel, coarse)
            params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel)
            if self.probe_margin and not wide and not self.refined:
                return adaptive_search(ivf, q, k, nprobe, self.probe_margin, sel, coarse)
            if coarse is not None:
                params = faiss.SearchParametersIVF(nprobe=nprobe, sel=sel, quantizer_params=coarse)
            if self.refined:  # 10 x k_factor candidates (as many for k = 1 as for 10; 5 per result past 200)
                base = params
                factor = max(10 * self.k_factor, 5 * k) / max(k, 1)
                params = faiss.IndexRefineSearchParameters(k_factor=factor, base_index_params=base)
        elif self.kind.startswith("hnsw"):
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search * (8 if wide else 1), k), sel=sel)
        else:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        scores, slots = self.index.search(q, k, params=params)
        return scores, slots

    def _exact_subset(self, q: np.ndarray, k: int, slots: np.ndarray, out_ids: np.ndarray,
                      out_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores over a few allowed vectors (decoded from the index's own codes)."""
        vecs = self._decode(slots)
        scores = q @ vecs.T
        kk = min(k, len(slots))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :kk]
        out_ids[:, :kk] = self.ids[slots[top]]
        out_scores[:, :kk] = np.take_along_axis(scores, top, axis=1)
        return out_ids, out_scores

    def reconstruct(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """The vectors the index holds for the live ``ids`` (those present, in order): the stored float32
        vectors for ``flat``, ``ivf`` and ``hnsw``; decoded codes for the compressed kinds."""
        slots = self.slots_of(ids)
        if not len(slots):
            return np.zeros((0, self.dim), np.float32)
        return self._decode(slots)

    def _decode(self, slots: np.ndarray) -> np.ndarray:
        """The vectors the index holds at ``slots``: ivf-pca-sq8 from its two codes, an IndexRefine
        (ivf-pqfs-sq8) from its flat 8-bit codes by slot, another IVF through a direct map made on first need."""
        if self._reduced is not None:
            return self._reduced.reconstruct(slots)
        if self.ivf is not None and not self.refined and not self.ivf.direct_map.type:
            self.ivf.make_direct_map()
        return self.index.reconstruct_batch(slots)

    # -- memory and persistence -----------------------------------------------------------------------------
    def memory_bytes(self) -> int:
        """Bytes the index holds for its vectors (codes, lists, graph) plus the id maps."""
        held = self.index.ntotal * self.dim * 4 if self._exact else int(faiss.serialize_index(self.index).nbytes)
        return held + self.ids.nbytes + self.live.nbytes

    def describe(self) -> dict[str, object]:
        ivf = self.ivf
        out: dict[str, object] = {"kind": self.kind, "vectors": len(self), "tombstones": self.dead,
                                  "trained_on": self.trained_on}
        if ivf is not None:
            out.update(nlist=int(ivf.nlist), nprobe=int(self.nprobe))
            if self.probe_margin:
                out.update(probe_margin=self.probe_margin)
        if self.refined:
            out.update(k_factor=self.k_factor)
        if self._reduced is not None:
            out.update(reduced_dims=reduced.reduced_dims(self.dim), refine_candidates=reduced.REFINE_CANDIDATES)
        if self.kind.startswith("hnsw"):
            out.update(M=HNSW_M, ef_search=self.ef_search)
        return out

    def save(self, path: str | os.PathLike[str], meta: dict[str, object] | None = None) -> None:
        """Write atomically beside the database (stores/index_file.py): the old file or the new one survives a
        crash, never half of one."""
        index_file.write(path, {"kind": self.kind, "dim": self.dim, "seq": self.seq, "trained_on": self.trained_on,
                                "nprobe": self.nprobe, "ef_search": self.ef_search, "k_factor": self.k_factor,
                                **(meta or {})}, self.ids, self.live,
                         self.index.to_faiss() if self._exact else self.index)

    @staticmethod
    def read_header(path: str | os.PathLike[str]) -> dict[str, object]:
        return index_file.read_header(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> tuple["VectorIndex", dict[str, object]]:
        """The saved index and its header; raises ``ValueError`` for a file that is not a whole index."""
        header, ids, live, index = index_file.read(path)
        idx = cls(str(header["kind"]), int(header["dim"]), index, trained_on=int(header["trained_on"]), ids=ids,
                  live=live, nprobe=int(header.get("nprobe") or 0) or None,
                  ef_search=int(header.get("ef_search") or 128), seq=int(header["seq"]),
                  k_factor=int(header.get("k_factor") or REFINE_FACTOR))
        return idx, header


def _unique(a: np.ndarray) -> np.ndarray:
    """np.unique of a 1-d integer array, without what np.unique imports on first use (numpy.ma, ~10 ms of
    CPU in every process that searches: stores/exact.py says why that counts)."""
    a = np.sort(np.asarray(a).ravel())
    return a[np.concatenate(([True], a[1:] != a[:-1]))] if len(a) else a


def _extract_ivf(index: faiss.Index) -> faiss.IndexIVF | None:
    try:
        return faiss.extract_index_ivf(index)
    except RuntimeError:
        return None


def _pq_m(dim: int) -> int:
    """PQ sub-quantisers: dim/8 bytes per vector (1280-d: 160 B, 32x smaller), a divisor of dim."""
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return m


__all__ = ["KINDS", "FLAT_MAX", "AUTO_LARGE", "VectorIndex", "auto_kind", "default_nlist", "default_nprobe", "pqfs_m"]
