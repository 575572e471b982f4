"""Embedded store: faces (migration 2), the record of optional analyses, descriptions surviving a re-index."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lookalike.stores.base import FaceRecord, Filters, ImageRecord
from lookalike.stores.sql import split_sql as _split_sql
from lookalike.stores.sqlite import MIGRATIONS, SQLiteStore


def _vec(seed: int, dim: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _rec(path: str, seed: int, faces: list[FaceRecord] | None = None, width: int = 100, camera: str | None = None,
         extras: tuple[str, ...] = ()) -> ImageRecord:
    return ImageRecord(path=path, size=1, mtime=1.0, sha=f"sha{seed}", width=width, height=width,
                       embedding=_vec(seed, 8), tags=[(1, 0.5)], texts={"caption": "a photo of a thing"},
                       camera=camera, faces=faces or [], extras=extras)


def _face(seed: int, box: tuple[int, int, int, int] = (1, 2, 30, 40)) -> FaceRecord:
    return FaceRecord(box, _vec(seed, 128) * 0.5)  # dlib's descriptors have norms near 0.5 too


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    s = SQLiteStore(tmp_path)
    s.set_model_info("m", "1", 8)
    yield s
    s.close()


def test_faces_written_with_the_record_and_searched(store: SQLiteStore) -> None:
    alice, bob = _face(1), _face(2)
    near_alice = FaceRecord((5, 5, 50, 50), alice.embedding + 0.01)
    store.write(upserts=[_rec("/a.jpg", 1, [alice], extras=("faces",)), _rec("/b.jpg", 2, [bob, near_alice]),
                         _rec("/c.jpg", 3)])
    ids = {p: store.get_by_path(p).id for p in ("/a.jpg", "/b.jpg", "/c.jpg")}  # type: ignore[union-attr]
    faces = store.faces(list(ids.values()))
    assert len(faces[ids["/a.jpg"]]) == 1 and len(faces[ids["/b.jpg"]]) == 2 and ids["/c.jpg"] not in faces
    assert faces[ids["/a.jpg"]][0].box == (1, 2, 30, 40)
    assert np.allclose(faces[ids["/a.jpg"]][0].embedding, alice.embedding)
    hits = store.face_search(alice.embedding, 10)
    assert [h.id for h in hits] == [ids["/a.jpg"], ids["/b.jpg"]]  # bob's own face is far: one hit per image
    assert hits[0].score == pytest.approx(1.0) and hits[1].score > 0.8
    assert store.face_search(alice.embedding, 10, max_distance=0.05)[0].id == ids["/a.jpg"]
    assert len(store.face_search(alice.embedding, 1)) == 1


def test_face_search_filters(store: SQLiteStore) -> None:
    f = _face(1)
    store.write(upserts=[_rec("/x/a.jpg", 1, [f], width=50, camera="Canon"), _rec("/y/b.jpg", 2, [f], width=500)])
    assert len(store.face_search(f.embedding, 10)) == 2
    [hit] = store.face_search(f.embedding, 10, Filters(min_size=100))
    assert store.get([hit.id])[0].path == "/y/b.jpg"
    [hit] = store.face_search(f.embedding, 10, Filters(camera="canon"))
    assert store.get([hit.id])[0].path == "/x/a.jpg"
    assert store.face_search(f.embedding, 10, Filters(folder="/z")) == []


def test_extras_record_and_backfill_writes(store: SQLiteStore) -> None:
    store.write(upserts=[_rec("/d/a.jpg", 1, extras=("ocr",)), _rec("/d/b.jpg", 2), _rec("/e/c.jpg", 3)])
    a, b = store.get_by_path("/d/a.jpg").id, store.get_by_path("/d/b.jpg").id  # type: ignore[union-attr]
    assert [p for _, p in store.missing_extras("ocr", ["/d"])] == ["/d/b.jpg"]
    assert len(store.missing_extras("ocr")) == 2 and len(store.missing_extras("faces")) == 3
    store.write_extras(b, ("ocr", "faces"), {"ocr": "HELLO world"}, [_face(7)])
    assert store.missing_extras("ocr", ["/d"]) == []
    assert store.get([b])[0].texts == {"caption": "a photo of a thing", "ocr": "HELLO world"}
    assert [h.id for h in store.text_search("hello", 5)] == [b]
    # doing faces again replaces them, not adds
    store.write_extras(b, ("faces",), None, [_face(8), _face(9)])
    assert len(store.faces([b])[b]) == 2
    store.write_extras(a, ("faces",), None, [])
    assert store.faces([a]) == {} and all(i != a for i, _ in store.missing_extras("faces"))
    store.write_extras(999, ("ocr",), {"ocr": "gone"})  # an image removed meanwhile: nothing happens
    store.write(deletes=[b])
    assert store.face_search(_face(8).embedding, 5) == []


def test_reindex_keeps_description_drops_derived(store: SQLiteStore) -> None:
    store.write(upserts=[_rec("/a.jpg", 1, [_face(1)], extras=("faces", "ocr"))])
    i = store.get_by_path("/a.jpg").id  # type: ignore[union-attr]
    store.set_texts(i, {"description": "grandma's birthday", "ocr": "old text"})
    changed = _rec("/a.jpg", 5)  # the file's content changed
    changed.texts = {"caption": "a photo of another thing"}
    store.write(upserts=[changed])
    info = store.get([i])[0]
    assert info.texts == {"description": "grandma's birthday", "caption": "a photo of another thing"}
    assert store.faces([i]) == {} and len(store.missing_extras("faces")) == 1
    assert [h.id for h in store.text_search("birthday", 5)] == [i]
    assert store.text_search("old", 5) == []


def test_migration_2_upgrades_a_version_1_library(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "lookalike.db")
    for stmt in _split_sql(MIGRATIONS[0]):
        con.execute(stmt)
    con.execute("PRAGMA user_version=1")
    con.execute("INSERT INTO images(path, folder, size, mtime, sha, width, height, indexed_at) "
                "VALUES ('/old.jpg', '/', 1, 1, 's', 10, 10, 0)")
    con.commit()
    con.close()
    s = SQLiteStore(tmp_path)
    assert s.schema_version == len(MIGRATIONS) >= 2
    assert s.missing_extras("faces") == [(1, "/old.jpg")]
    s.close()
