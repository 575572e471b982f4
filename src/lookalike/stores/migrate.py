"""Copy a library between stores (embedded <-> PostgreSQL, or PostgreSQL <-> PostgreSQL), then verify it.

Everything the store protocol holds travels: paths, sizes, mtimes, content hashes, dimensions, dates, cameras,
perceptual hashes, embeddings, class scores, tags, texts (OCR, captions, descriptions), faces, the record of
which optional analyses ran, the model identity, the taught words (classifiers and examples, by path), and the
people: names and which face is whose (a face is
matched by its image's path and its place in that image; people get new ids, and a source person whose name
the destination already has joins that person). Images are matched by path, so
a copy into a store that already holds some of them updates those rows (no doubles). Image ids are assigned
by the destination (they are store-local row numbers). After copying, every image is read back from the
destination and compared with the source: a difference is an error, never a silent loss.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError, ModelMismatch, NotFound
from lookalike.stores.base import ConceptRecord, FaceRecord, ImageInfo, ImageRecord, Store, batched

EXTRA_KINDS = ("ocr", "faces", "copies")  # the optional analyses (lookalike.extras) whose record travels


@dataclass
class MigrateSummary:
    source: str
    destination: str
    images: int = 0
    vectors: int = 0
    tags: int = 0
    texts: int = 0
    faces: int = 0
    concepts: int = 0  # taught words (lookalike teach), copied whole
    concepts_kept: list[str] = field(default_factory=list)  # taught in the destination too, differently: left there
    people: int = 0
    without_vectors: list[str] = field(default_factory=list)  # waiting for re-indexing; not copied
    verified: bool = False
    elapsed_s: float = 0.0

    def line(self) -> str:
        extra = f", {len(self.without_vectors)} without vectors not copied" if self.without_vectors else ""
        if self.concepts_kept:
            extra += (f"; taught words the destination already has with other examples, left as they are there: "
                      f"{', '.join(self.concepts_kept)} (teach them there to merge)")
        return (f"copied {self.images} images ({self.vectors} vectors, {self.tags} tags, {self.texts} texts, "
                f"{self.faces} faces, {self.people} people, {self.concepts} taught words) "
                f"from {self.source} to {self.destination} in {self.elapsed_s:.1f} s{extra}; "
                f"{'verified' if self.verified else 'NOT verified'}")

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d


def is_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def open_location(location: str, *, must_exist: bool, read_urls: Sequence[str] = ()) -> Store:
    """A store from a postgresql:// URL or a library folder."""
    if is_url(location):
        from lookalike.stores.postgres import PostgresStore

        return PostgresStore(location, read_urls=read_urls)
    from lookalike.stores.sqlite import DB_NAME, SQLiteStore

    folder = Path(location).expanduser()
    if must_exist and not (folder / DB_NAME).is_file():
        raise NotFound(f"no library in {folder} (expected {folder / DB_NAME})")
    return SQLiteStore(folder)


def describe(location: str) -> str:
    if is_url(location):
        from lookalike.stores.postgres import mask_url

        return mask_url(location)
    return os.fspath(Path(location).expanduser())


def migrate(src: Store, dst: Store, *, source: str = "source", destination: str = "destination", batch: int = 500,
            on_progress: Callable[[int, int], None] | None = None) -> MigrateSummary:
    t0 = time.perf_counter()
    s = MigrateSummary(describe(source), describe(destination))
    info = src.model_info()
    dinfo = dst.model_info()
    if info and dinfo and dst.count() and (info["name"], info["version"], str(info["dim"])) != (
            dinfo["name"], dinfo["version"], str(dinfo["dim"])):
        raise ModelMismatch(f"the destination holds images embedded by {dinfo['name']} ({dinfo['version']}), the source "
                            f"by {info['name']} ({info['version']}): copy into an empty destination")
    if info:
        dst.set_model_info(info["name"], info["version"], int(info["dim"]))
    # the search transform (search/example.py) was fitted on the source's vectors: it holds for an empty
    # destination, which then has the same ones; otherwise it is dropped, for the next index run to refit
    transform = src.search_transform() if dst.count() == 0 else None
    dst.set_search_transform(*(transform or ("", 0, None)))
    states = src.file_states()
    ids = sorted(st.id for st in states.values())
    lacking = {kind: {i for i, _ in src.missing_extras(kind)} for kind in EXTRA_KINDS}
    bulk = getattr(dst, "deferred_index", None)
    with bulk() if bulk is not None and dst.count() == 0 else nullcontext():
        for chunk in batched(ids, batch):
            records, missing = _records(src, chunk, lacking)
            s.without_vectors += missing
            dst.write(upserts=records)
            s.images += len(records)
            s.vectors += len(records)
            s.tags += sum(len(r.tags) for r in records)
            s.texts += sum(1 for r in records for v in r.texts.values() if v)
            s.faces += sum(len(r.faces) for r in records)
            if on_progress:
                on_progress(s.images + len(s.without_vectors), len(ids))
    s.people = copy_people(src, dst)
    theirs = {c.word: c for c in dst.concepts()}
    for concept in src.concepts():  # paths travel, ids do not: a concept is copied as it is
        there = theirs.get(concept.word)
        if there is not None and _concept(there) != _concept(concept):  # never overwritten: nothing is lost
            s.concepts_kept.append(concept.word)
            continue
        dst.put_concept(concept)
        s.concepts += 1
    verify(src, dst, ids, skip={p for p in s.without_vectors}, batch=batch)
    verify_people(src, dst)
    verify_concepts(src, dst, skip=set(s.concepts_kept))
    s.verified = True
    s.elapsed_s = time.perf_counter() - t0
    return s


def _records(src: Store, ids: Sequence[int], lacking: dict[str, set[int]]) -> tuple[list[ImageRecord], list[str]]:
    infos = src.get(ids)
    faces = src.faces([i.id for i in infos])
    features = src.copy_features([i.id for i in infos])
    emb, cls = src.vectors([i.id for i in infos])
    missing: list[str] = []
    if len(emb) != len(infos):  # some images lost their vectors (a model change waiting for re-indexing)
        have = src.vector_map([i.id for i in infos])
        missing = [i.path for i in infos if i.id not in have]
        infos = [i for i in infos if i.id in have]
        emb, cls = src.vectors([i.id for i in infos])
    kept = [(i, emb[j], None if cls is None else cls[j]) for j, i in enumerate(infos)]
    return [_record(i, e, c, faces.get(i.id, []), tuple(k for k in EXTRA_KINDS if i.id not in lacking[k]),
                    features.get(i.id)) for i, e, c in kept], missing


def _record(i: ImageInfo, emb: np.ndarray, cls: np.ndarray | None, faces: list[FaceRecord],
            extras: tuple[str, ...], copy_features: bytes | None = None) -> ImageRecord:
    return ImageRecord(path=i.path, size=i.size, mtime=i.mtime, sha=i.sha, width=i.width, height=i.height,
                       embedding=emb, class_scores=cls, tags=list(i.tags), texts=dict(i.texts),
                       taken_at=i.taken_at, camera=i.camera, phash=i.phash, faces=faces, extras=extras,
                       copy_features=copy_features, dev=i.dev, ino=i.ino)


def verify(src: Store, dst: Store, ids: Sequence[int], *, skip: set[str] = frozenset(), batch: int = 500) -> None:  # type: ignore[assignment]
    """Read every copied image back from ``dst`` and compare it with ``src``; raise on the first difference."""
    dst_ids = {p: st.id for p, st in dst.file_states().items()}
    wanted = set(ids)
    copied = {p for p, st in src.file_states().items() if st.id in wanted} - set(skip)
    for kind in EXTRA_KINDS:  # the same images lack each analysis on both sides
        if {p for _, p in src.missing_extras(kind)} & copied != {p for _, p in dst.missing_extras(kind)} & copied:
            raise LookalikeError(f"migration changed which images had {kind} analysed")
    for chunk in batched(list(ids), batch):
        a = [i for i in src.get(chunk) if i.path not in skip]
        missing = [i.path for i in a if i.path not in dst_ids]
        if missing:
            raise LookalikeError(f"migration lost {len(missing)} images, e.g. {missing[0]}")
        b = {i.path: i for i in dst.get([dst_ids[i.path] for i in a])}
        for x in a:
            y = b.get(x.path)
            if y is None or _fields(x) != _fields(y):
                raise LookalikeError(f"migration changed the record of {x.path}")
        ea, ca = src.vectors([i.id for i in a])
        eb, cb = dst.vectors([b[i.path].id for i in a])
        if ea.shape != eb.shape or not np.array_equal(ea, eb):
            raise LookalikeError("migration changed embeddings")
        if (ca is None) != (cb is None) or (ca is not None and not np.array_equal(ca, cb)):  # type: ignore[arg-type]
            raise LookalikeError("migration changed class scores")
        fa, fb = src.faces([i.id for i in a]), dst.faces([b[i.path].id for i in a])
        for x in a:
            if _faces(fa.get(x.id, [])) != _faces(fb.get(b[x.path].id, [])):
                raise LookalikeError(f"migration changed the faces of {x.path}")
        ka, kb = src.copy_features([i.id for i in a]), dst.copy_features([b[i.path].id for i in a])
        if any(ka.get(x.id) != kb.get(b[x.path].id) for x in a):
            raise LookalikeError("migration changed copy features")


def verify_concepts(src: Store, dst: Store, skip: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    """Every taught word of ``src`` (but ``skip``) is in ``dst`` with the same classifier and examples."""
    theirs = {c.word: c for c in dst.concepts()}
    for c in src.concepts():
        if c.word in skip:
            continue
        d = theirs.get(c.word)
        if d is None:
            raise LookalikeError(f"migration lost the taught word {c.word!r}")
        if _concept(c) != _concept(d):
            raise LookalikeError(f"migration changed the taught word {c.word!r}")


def _concept(c: ConceptRecord) -> tuple:
    return (c.model, c.model_version, c.dim, np.asarray(c.weights, np.float32).tobytes(), round(c.bias, 9),
            c.validation, [(e.path, e.positive, np.asarray(e.embedding, np.float32).tobytes()) for e in c.examples])


def _faces(faces: list[FaceRecord]) -> list[tuple]:
    return [(tuple(f.box), np.asarray(f.embedding, np.float32).tobytes()) for f in faces]


def _fields(i: ImageInfo) -> tuple:
    return (i.path, i.folder, i.size, i.mtime, i.sha, i.width, i.height, i.taken_at, i.camera, i.phash,
            sorted((int(c), round(float(s), 6)) for c, s in i.tags), dict(i.texts))


def _face_keys(store: Store) -> tuple[dict[tuple[str, int], int], "FaceTable"]:  # type: ignore[name-defined]  # noqa: F821
    """(path, face index) -> row in the store's face table, and the table."""
    table = store.face_table(with_embeddings=False)  # type: ignore[attr-defined]
    paths = {st.id: p for p, st in store.file_states().items()}
    return {(paths[int(im)], int(ix)): r for r, (im, ix) in enumerate(zip(table.image_id, table.index))
            if int(im) in paths}, table


def copy_people(src: Store, dst: Store) -> int:
    """Copy the people (names, and each face's person, pinned, score) after the images; returns how many."""
    from lookalike.stores.people import PeopleChanges

    src_keys, st = _face_keys(src)
    dst_keys, dt = _face_keys(dst)
    people = src.people()  # type: ignore[attr-defined]
    dst_named = {r.name.casefold(): r.id for r in dst.people() if r.name}  # type: ignore[attr-defined]
    label: dict[int, int] = {}
    changes = PeopleChanges()
    for row in people:
        label[row.id] = dst_named.get(row.name.casefold(), -(len(label) + 1)) if row.name else -(len(label) + 1)
        if row.name:
            changes.names[label[row.id]] = row.name
    for key, r in src_keys.items():
        if st.person[r] >= 0 and key in dst_keys:
            changes.assign.append((int(dt.face_id[dst_keys[key]]), label[int(st.person[r])], bool(st.pinned[r]),
                                   float(st.score[r])))
    if changes.assign or changes.names:
        dst.save_people(changes)  # type: ignore[attr-defined]
    return len({lab for _, lab, _, _ in changes.assign} | set(changes.names))


def verify_people(src: Store, dst: Store) -> None:
    """Every face has the same person (by name, or the same grouping for unnamed people) on both sides."""
    src_keys, st = _face_keys(src)
    dst_keys, dt = _face_keys(dst)
    src_names = {r.id: r.name for r in src.people()}  # type: ignore[attr-defined]
    dst_names = {r.id: r.name for r in dst.people()}  # type: ignore[attr-defined]
    pairs: dict[int, int] = {}
    back: dict[int, int] = {}
    for key, r in src_keys.items():
        if st.person[r] < 0:
            continue
        d = dst_keys.get(key)
        a = int(st.person[r])
        b = int(dt.person[d]) if d is not None else -1
        same = b >= 0 and pairs.setdefault(a, b) == b and back.setdefault(b, a) == a
        if not same or src_names.get(a) != dst_names.get(b) or st.pinned[r] != dt.pinned[d]:
            raise LookalikeError(f"migration changed the person of face {key[1]} of {key[0]}")
    named = {n.casefold() for n in src_names.values() if n}
    if named - {n.casefold() for n in dst_names.values() if n}:
        raise LookalikeError("migration lost the names of people")
