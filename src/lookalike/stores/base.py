"""The store protocol, split by role, and the records that cross it. Every store passes the same test suite.

Roles: ``IndexStore`` (the indexer writes), ``SearchStore`` (searches read), ``ExtrasStore`` (optional
analyses), ``ConceptStore`` (taught words), ``AdminStore`` (stats, upkeep, close), ``PeopleStore`` (faces
clustered into named people), ``PairStore`` (verified duplicate pairs); ``Store`` is all of them. A consumer names the role it uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from lookalike.stores.people import FaceTable, PeopleChanges, PersonRow


@dataclass(frozen=True)
class FileState:
    id: int
    path: str
    size: int
    mtime: float
    sha: str
    dev: int | None = None  # st_dev, st_ino as indexed (signed 64-bit, see file_id); None: indexed before v3
    ino: int | None = None


def file_id(dev: int, ino: int) -> tuple[int, int]:
    """(st_dev, st_ino) as the signed 64-bit integers both databases hold (values past 2**63 wrap)."""
    return tuple(v - (1 << 64) if v >= (1 << 63) else v for v in (int(dev), int(ino)))  # type: ignore[return-value]


@dataclass
class ImageRecord:
    """Everything indexing learns about one file; written whole or not at all."""

    path: str
    size: int
    mtime: float
    sha: str
    width: int
    height: int
    embedding: np.ndarray  # float32 (dim,), L2-normalised
    class_scores: np.ndarray | None = None  # float32 (num_classes,)
    tags: list[tuple[int, float]] = field(default_factory=list)  # top classes (index, probability)
    texts: dict[str, str] = field(default_factory=dict)  # kind -> searchable text ("caption", "ocr", ...)
    taken_at: str | None = None
    camera: str | None = None
    phash: str | None = None
    faces: list["FaceRecord"] = field(default_factory=list)  # detected faces (index --faces)
    extras: tuple[str, ...] = ()  # optional analyses that ran on this image ("ocr", "faces", "copies")
    copy_features: bytes | None = None  # index --copy-features (search/verify.py compact_features)
    dev: int | None = None  # the file's st_dev and st_ino (file_id): the server hands out only this very file
    ino: int | None = None

    @property
    def folder(self) -> str:
        return folder_of(self.path)


@dataclass
class FaceRecord:
    """One detected face: its box in full-size pixels (left, top, width, height) and 128-d embedding."""

    box: tuple[int, int, int, int]
    embedding: np.ndarray  # float32 (128,)


@dataclass(frozen=True)
class Move:
    id: int
    path: str
    size: int
    mtime: float
    dev: int | None = None  # file_id of the file now at ``path``
    ino: int | None = None


@dataclass
class ImageInfo:
    """An indexed image as searches return it (no vectors)."""

    id: int
    path: str
    folder: str
    size: int
    mtime: float
    sha: str
    width: int
    height: int
    taken_at: str | None = None
    camera: str | None = None
    phash: str | None = None
    dev: int | None = None  # file_id as indexed; None for images indexed before schema v3
    ino: int | None = None
    tags: list[tuple[int, float]] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Filters:
    """Restrictions that apply to every kind of search."""

    folder: str | None = None  # this folder and everything under it
    after: str | None = None  # ISO date/time, on date taken (file mtime when there is no EXIF date)
    before: str | None = None
    camera: str | None = None  # substring, case-insensitive
    min_size: int | None = None  # shorter side in pixels

    def active(self) -> bool:
        return any(v is not None for v in (self.folder, self.after, self.before, self.camera, self.min_size))

    def matches(self, info: "ImageInfo") -> bool:
        """The same test as the stores' SQL, in Python (for lists already in memory)."""
        import os
        from datetime import datetime, timezone

        if self.folder:
            folder = os.path.normpath(os.path.abspath(os.path.expanduser(self.folder)))
            if info.folder != folder and not info.folder.startswith(folder.rstrip(os.sep) + os.sep):
                return False
        if self.after or self.before:
            taken = info.taken_at or datetime.fromtimestamp(info.mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
            if (self.after and taken < self.after) or (self.before and taken >= self.before):
                return False
        if self.camera and self.camera.lower() not in (info.camera or "").lower():
            return False
        return not (self.min_size and min(info.width, info.height) < self.min_size)


@dataclass(frozen=True)
class Hit:
    id: int
    score: float
    cosine: float | None = None  # an image query's plain embedding cosine, where ``score`` is another (search/example.py)


@dataclass
class ConceptExample:
    """An example (or counter-example) of a taught word: its path and embedding (the concept's model).
    ``image_id`` is the example's id in this store when it is indexed (not stored: ids are store-local)."""

    path: str
    positive: bool
    embedding: np.ndarray  # float32 (dim,)
    image_id: int | None = None


@dataclass
class ConceptRecord:
    """A taught word: ``p(x) = sigmoid(weights . x + bias)`` on the vectors of one model, and its examples."""

    word: str  # normalised (lookalike.models.concepts.normalize_word)
    model: str
    model_version: str
    dim: int
    weights: np.ndarray  # float32 (dim,)
    bias: float
    examples: list[ConceptExample] = field(default_factory=list)
    validation: dict[str, object] = field(default_factory=dict)  # cross-validated estimate
    created_at: float = 0.0
    updated_at: float = 0.0


def folder_of(path: str) -> str:
    import os

    return os.path.dirname(path)


class IndexStore(Protocol):
    """Writing the index: the indexer's role (file states, content hashes, writes, model identity)."""

    # model identity of the stored vectors
    def model_info(self) -> dict[str, str] | None: ...
    def set_model_info(self, name: str, version: str, dim: int) -> None: ...
    def clear_vectors(self) -> None: ...

    # change detection
    def file_states(self, under: Sequence[str] | None = None) -> dict[str, FileState]: ...
    def by_sha(self, shas: Sequence[str]) -> dict[str, list[FileState]]: ...

    # writes: one transaction per call
    def write(self, upserts: Sequence[ImageRecord] = (), moves: Sequence[Move] = (),
              deletes: Sequence[int] = (), touches: Sequence[Move] = ()) -> None: ...
    def copy_vectors(self, src_id: int) -> tuple[np.ndarray, np.ndarray | None]: ...
    def set_texts(self, image_id: int, texts: dict[str, str]) -> None: ...

    # work claims, so that concurrent indexers share the files (stores/claims.py)
    def claim(self, entries: Sequence[Any], owner: str, lease_s: float = ..., since: float | None = None) -> Any: ...
    def finish_claims(self, paths: Sequence[str], owner: str, lease_s: float = ...) -> None: ...
    def release_claims(self, owner: str) -> None: ...


class SearchStore(Protocol):
    """Searching: records and vectors by id, and the rankings (best first)."""

    def get(self, ids: Sequence[int]) -> list[ImageInfo]: ...
    def browse(self, filters: Filters | None = None, offset: int = 0,
               limit: int = 50) -> tuple[list[int], int]: ...  # newest first by date taken; (page, total)
    def get_by_path(self, path: str) -> ImageInfo | None: ...
    def vectors(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray | None]: ...
    def vector_map(self, ids: Sequence[int]) -> dict[int, np.ndarray]: ...  # id -> embedding, ids with vectors
    def iter_vectors(self, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]: ...

    def knn(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[Hit]: ...
    def knn_many(self, vectors: np.ndarray, k: int, filters: Filters | None = None) -> list[list[Hit]]: ...
    # the k nearest and the vectors the index holds for them (row i is hit i's): the stored ones, or a
    # compressed index's decoded codes (scores from them, approximate); what search by example re-scores
    def knn_vectors(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> tuple[list[Hit], np.ndarray]: ...
    def tag_search(self, weights: dict[int, float], k: int, filters: Filters | None = None) -> list[Hit]: ...
    def text_search(self, query: str, k: int, filters: Filters | None = None) -> list[Hit]: ...


class ExtrasStore(Protocol):
    """Optional analyses (OCR, faces, copy features): their results, what is still to run, face search."""

    def write_extras(self, image_id: int, kinds: Sequence[str], texts: dict[str, str] | None = None,
                     faces: Sequence[FaceRecord] | None = None, copy_features: bytes | None = None) -> None: ...
    def copy_features(self, ids: Sequence[int]) -> dict[int, bytes]: ...
    def missing_extras(self, kind: str, under: Sequence[str] | None = None) -> list[tuple[int, str]]: ...
    def faces(self, ids: Sequence[int]) -> dict[int, list[FaceRecord]]: ...
    def face_search(self, embedding: np.ndarray, k: int, filters: Filters | None = None,
                    max_distance: float = 0.6) -> list[Hit]: ...


class ConceptStore(Protocol):
    """Taught words (lookalike teach): stored whole, by word; and random library vectors as negatives."""

    def concepts(self) -> list[ConceptRecord]: ...
    def concept_words(self) -> list[str]: ...
    def concept(self, word: str) -> ConceptRecord | None: ...
    def put_concept(self, concept: ConceptRecord) -> None: ...
    def delete_concept(self, word: str) -> bool: ...
    def sample_vectors(self, n: int, *, seed: int = 0, exclude: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]: ...


class AdminStore(Protocol):
    """Administration: size and state, upkeep after a run of writes, closing."""

    def count(self) -> int: ...
    def stats(self) -> dict[str, object]: ...
    # after a run of writes: bring derived search structures up to date (vector index, statistics)
    def optimize(self, progress: bool = False) -> dict[str, object]: ...
    def close(self) -> None: ...


class PeopleStore(Protocol):
    """People (stores/people.py): faces with the person each belongs to, people with their names."""

    def face_table(self, image_ids: Sequence[int] | None = None, *,
                   with_embeddings: bool = True) -> "FaceTable": ...
    def people(self) -> list["PersonRow"]: ...
    def unplaced_faces(self) -> int: ...
    def save_people(self, changes: "PeopleChanges", expect: int | None = None) -> dict[int, int]: ...
    def people_generation(self) -> int: ...
    def people_lease(self, owner: str, seconds: float) -> bool: ...
    def release_people_lease(self, owner: str) -> None: ...
    def person_hits(self, person_id: int, k: int, filters: Filters | None = None) -> list[Hit]: ...


class TransformStore(Protocol):
    """The library's search transform (search/example.py): fitted on its own vectors, one at a time."""

    def search_transform(self) -> tuple[str, int, bytes] | None: ...  # (model version, fitted on, data)
    def set_search_transform(self, model_version: str, fitted_on: int, data: bytes | None) -> None: ...


@dataclass(frozen=True)
class PairVerdict:
    """A candidate duplicate pair that went through verification (search/dupes.py), as the library keeps it.
    ``a < b`` are image ids; ``sha_a``/``sha_b`` their content hashes when it was verified: the verdict holds
    only while both images still have that content."""

    a: int
    b: int
    sha_a: str
    sha_b: str
    cosine: float  # embedding cosine of the pair
    score: float  # calibrated copy score (search/verify.py): > 0.5 is a copy at the default threshold


class PairStore(Protocol):
    """Verified duplicate pairs, kept so that a later ``dupes`` run verifies only pairs it has not seen
    (stores/dupe_pairs.py). ``version`` names the model and the verification that made a verdict; a pair goes
    with either image (removed), reads skip pairs whose images changed content since."""

    def dupe_pairs(self, version: str) -> list[PairVerdict]: ...  # the current ones of this version
    def put_dupe_pairs(self, version: str, pairs: Sequence[PairVerdict]) -> None: ...  # one transaction
    def prune_dupe_pairs(self, version: str) -> int: ...  # drop other versions' and changed images' pairs


class Store(IndexStore, SearchStore, ExtrasStore, ConceptStore, AdminStore, PeopleStore, TransformStore, PairStore,
            Protocol):
    """Every role: what ``open_store`` returns and both stores implement (one contract suite per role)."""


def encode_vector(v: np.ndarray, dtype: str = "<f4") -> bytes:
    return np.ascontiguousarray(v, dtype=dtype).tobytes()


def decode_vector(b: bytes | None, dtype: str = "<f4") -> np.ndarray | None:
    if b is None:
        return None
    return np.frombuffer(b, dtype=dtype).astype(np.float32)


def batched(seq: Sequence, n: int) -> Iterator[Sequence]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


FTS_STOPWORDS = frozenset(
    "a an and are as at be by for from has in is it of on or that the this to was were with photo photos "
    "picture pictures image images find show me".split()
)
