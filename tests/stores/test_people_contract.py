"""The people role's contract (stores/people.py), run against the embedded store and a real PostgreSQL: faces
with their persons, names unique regardless of case, a person created per new label, faces deleted with their
photos, named people kept, person hits with filters. Records are synthetic (as in test_store_contract)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.stores.base import FaceRecord, Filters
from lookalike.stores.people import PeopleChanges

from test_store_contract import DIM, ids_by_path, record, unit  # noqa: E402  (same folder)


def face(seed: int, box: tuple[int, int, int, int] = (1, 2, 30, 40)) -> FaceRecord:
    return FaceRecord(box, unit(np.random.default_rng(seed), 128) * 0.5)


@pytest.fixture
def with_faces(store):  # type: ignore[no-untyped-def]
    """Four images: a/img0001 with two faces, a/img0002 and b/img0003 with one, a/img0004 with none."""
    store.set_model_info("m", "1", DIM)
    store.write(upserts=[
        record(1, faces=[face(1), face(2, (50, 60, 70, 80))], extras=("faces",)),
        record(2, faces=[face(3)], extras=("faces",)),
        record(3, folder="/photos/b", faces=[face(4)], extras=("faces",)),
        record(4, extras=("faces",)),
    ])
    return store


def test_face_table_and_placing(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    ids = ids_by_path(s)
    assert t.face_id.shape == (4,) and t.embedding.shape == (4, 128)
    assert list(t.image_id) == [ids["/photos/a/img0001.jpg"]] * 2 + [ids["/photos/a/img0002.jpg"], ids["/photos/b/img0003.jpg"]]
    assert list(t.index) == [0, 1, 0, 0] and t.box[1].tolist() == [50, 60, 70, 80]
    assert (t.person == -1).all() and s.unplaced_faces() == 4 and s.people() == []
    np.testing.assert_allclose(t.embedding[2], face(3).embedding, rtol=1e-6)
    # two new people (labels -1, -2) and a name given at once
    made = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 0.9), (int(t.face_id[2]), -1, False, 0.8),
                                               (int(t.face_id[1]), -2, True, 1.0)], names={-2: "Alice"}))
    assert set(made) == {-1, -2} and made[-1] != made[-2]
    rows = {r.id: r for r in s.people()}
    assert (rows[made[-1]].name, rows[made[-1]].faces) == (None, 2) and (rows[made[-2]].name, rows[made[-2]].faces) == ("Alice", 1)
    t = s.face_table()
    assert list(t.person) == [made[-1], made[-2], made[-1], -1] and list(t.pinned) == [False, True, False, False]
    np.testing.assert_allclose(t.score, [0.9, 1.0, 0.8, 0.0], rtol=1e-6)
    assert s.unplaced_faces() == 1
    one = s.face_table(image_ids=[ids["/photos/a/img0001.jpg"]], with_embeddings=False)
    assert list(one.index) == [0, 1] and one.embedding.shape == (2, 0)


def test_person_hits_and_filters(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    made = s.save_people(PeopleChanges(assign=[(int(f), -1, False, sc) for f, sc in zip(t.face_id, (0.5, 0.7, 0.9, 0.6))]))
    ids = ids_by_path(s)
    hits = s.person_hits(made[-1], 10)
    assert [(h.id, round(h.score, 4)) for h in hits] == [(ids["/photos/a/img0002.jpg"], 0.9),
                                                          (ids["/photos/a/img0001.jpg"], 0.7),  # its best face
                                                          (ids["/photos/b/img0003.jpg"], 0.6)]
    assert [h.id for h in s.person_hits(made[-1], 10, Filters(folder="/photos/b"))] == [ids["/photos/b/img0003.jpg"]]
    assert len(s.person_hits(made[-1], 1)) == 1 and s.person_hits(12345, 10) == []


def test_names_merge_drop_and_cascade(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    made = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0), (int(t.face_id[2]), -2, False, 1.0),
                                               (int(t.face_id[3]), -3, False, 1.0)], names={-1: "Alice"}))
    with pytest.raises(Exception):  # noqa: B017 - a second "alice" (any case) is refused by the database too
        s.save_people(PeopleChanges(names={made[-2]: "ALICE"}))
    assert {r.name for r in s.people()} == {"Alice", None}  # the failed transaction changed nothing
    # merge: person -2's face to Alice, -2 dropped
    s.save_people(PeopleChanges(assign=[(int(t.face_id[2]), made[-1], False, 1.0)], drop=[made[-2]]))
    assert sorted((r.name or "", r.faces) for r in s.people()) == [("", 1), ("Alice", 2)]
    # deleting a photo takes its faces' places along; an unnamed person left without faces goes, a named one stays
    ids = ids_by_path(s)
    s.write(deletes=[ids["/photos/a/img0001.jpg"], ids["/photos/b/img0003.jpg"]])
    s.save_people(PeopleChanges())
    assert sorted((r.name or "", r.faces) for r in s.people()) == [("Alice", 1)]
    # re-indexing a photo detects its faces anew: they wait to be placed again
    s.write(upserts=[record(2, faces=[face(3)], extras=("faces",))])
    assert s.unplaced_faces() == 1 and [(r.name, r.faces) for r in s.people()] == [("Alice", 0)]
    # a face deleted meanwhile is skipped; renaming to None keeps a person only while it has faces
    gone = int(t.face_id[0])
    s.save_people(PeopleChanges(assign=[(gone, made[-1], False, 1.0)], names={made[-1]: None}))
    assert s.people() == []


def test_ids_are_never_reused(with_faces) -> None:  # type: ignore[no-untyped-def]
    s = with_faces
    t = s.face_table()
    first = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0)]))[-1]
    s.save_people(PeopleChanges(drop=[first]))
    second = s.save_people(PeopleChanges(assign=[(int(t.face_id[0]), -1, False, 1.0)]))[-1]
    assert second > first
