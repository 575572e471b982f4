"""Named people through the library, on real photos: three people (each an original and four edited copies)
and photos without faces; clustering after index --faces, naming, names as search words, merge and split by
naming, photos added later."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lookalike.errors import LookalikeError, NotFound
from lookalike.library import Library
from lookalike.stores.base import Filters


@pytest.fixture
def lib(people_index: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The indexed people library, copied for each test (tests rename and merge)."""
    shutil.copytree(people_index, tmp_path / "lib")
    lib = Library(tmp_path / "lib", faces=True)
    yield lib
    lib.close()


def by_person(lib: Library) -> dict[str, set[str]]:
    """person folder -> the set of person ids its photos' faces were given."""
    out: dict[str, set[str]] = {}
    for p in lib.people():
        _, faces = lib.person_faces(p.id)
        for f in faces:
            folder = Path(lib.get(f.image_id).path).parent.name
            out.setdefault(folder, set()).add(p.id)
    return out


def photos_of(res) -> set[str]:  # type: ignore[no-untyped-def]
    return {Path(r.path).parent.name for r in res.results}


def test_index_finds_three_people(lib: Library) -> None:
    people = lib.people()
    assert [(p.faces, p.images, p.name) for p in people] == [(5, 5, None)] * 3
    groups = by_person(lib)
    assert set(groups) == {"astronaut", "grace_hopper", "interior_pexels-2560067"}
    assert all(len(ids) == 1 for ids in groups.values())  # each person's edited copies: one cluster
    assert len(set.union(*groups.values())) == 3  # different people: different clusters
    assert all(p.sample and p.sample.box[2] > 20 for p in people)


def test_a_name_is_a_search_word(lib: Library, people_photos: Path) -> None:
    grace = by_person(lib)["grace_hopper"].pop()
    person = lib.name_person(grace, "Grace Hopper")
    assert (person.id, person.name, person.faces) == (grace, "Grace Hopper", 5)
    res = lib.search("grace hopper")
    assert res.kind == "text" and len(res.results) == 5 and photos_of(res) == {"grace_hopper"}
    assert all(0.0 <= r.score <= 1.0 for r in res.results)
    assert res.explain["people"] == [{"id": grace, "name": "Grace Hopper"}]
    # filters apply; words that name nobody are words as before
    assert lib.search("Grace Hopper", filters=Filters(folder=str(people_photos / "other"))).results == []
    assert "people" not in lib.search("coffee").explain
    # combined with other words: only her photos, those the words find too
    res = lib.search("Grace Hopper in uniform")
    assert res.results and photos_of(res) == {"grace_hopper"}
    assert res.explain["people_rest"] == "in uniform"
    assert lib.search(text="Grace Hopper cat").results == []  # no photo of her shows a cat
    # threshold on the person score
    assert len(lib.search("Grace Hopper", threshold=0.5).results) == 5
    assert all(0.0 <= r.score <= 1.0 for r in lib.search("Grace Hopper").results)
    with pytest.raises(LookalikeError, match="between 0 and 1"):  # every score is in [0, 1]
        lib.search("Grace Hopper", threshold=1.01)


def test_merge_and_split_by_naming(lib: Library) -> None:
    groups = {k: v.pop() for k, v in by_person(lib).items()}
    lib.name_person(groups["grace_hopper"], "Grace")
    merged = lib.name_person(groups["astronaut"], "grace")  # the same name (any case): one person now
    assert (merged.id, merged.faces, merged.name) == (groups["grace_hopper"], 10, "grace")
    assert len(lib.people()) == 2
    assert photos_of(lib.search("Grace")) == {"grace_hopper", "astronaut"}
    # split: the astronaut's faces, one at a time, to a new name
    _, faces = lib.person_faces("grace")
    astro = [f for f in faces if Path(lib.get(f.image_id).path).parent.name == "astronaut"]
    for f in astro:
        eileen = lib.name_face(f.image_id, f.index, "Eileen")
    assert eileen.faces == 5 and eileen.id not in groups.values()
    assert photos_of(lib.search("Eileen")) == {"astronaut"} and photos_of(lib.search("Grace")) == {"grace_hopper"}
    _, moved = lib.person_faces("Eileen")
    assert all(f.pinned and f.score == 1.0 for f in moved)
    # re-clustering never moves named people's or pinned faces
    lib.update_people(full=True)
    assert {(p.name, p.faces) for p in lib.people()} == {("grace", 5), ("Eileen", 5), (None, 5)}


def test_unname_and_recluster_undoes_a_merge(lib: Library) -> None:
    groups = {k: v.pop() for k, v in by_person(lib).items()}
    lib.name_person(groups["grace_hopper"], "Grace")
    lib.name_person(groups["astronaut"], "Grace")
    lib.unname_person("Grace")
    summary = lib.update_people(full=True)
    assert summary.new_people == 1
    after = {k: v.pop() for k, v in by_person(lib).items() if len(v) == 1}
    assert len(after) == 3 and len(set(after.values())) == 3  # three people again, each one cluster
    assert groups["grace_hopper"] in (after["grace_hopper"], after["astronaut"])  # the merged id kept by one part


def test_photos_added_later_join_their_person(lib: Library, people_photos: Path, tmp_path: Path) -> None:
    grace = by_person(lib)["grace_hopper"].pop()
    lib.name_person(grace, "Grace")
    more = tmp_path / "more"
    from lookalike.evaluation.people import people_variants

    for person, variant, img in people_variants(("grace_hopper",), ("grayscale", "jpeg40")):
        if variant != "original":
            more.mkdir(exist_ok=True)
            img.save(more / f"{person}_{variant}.jpg", quality=90)
    summary = lib.index([more])
    assert summary.people["joined"] == 2 and summary.people["new_people"] == 0
    assert len(lib.search("Grace").results) == 7
    # the photos gone: the name stays, with the faces left
    for p in more.iterdir():
        p.unlink()
    lib.index([more])
    assert [(p.name, p.faces) for p in lib.people() if p.name] == [("Grace", 5)]


def test_bad_names_and_ids(lib: Library) -> None:
    pid = lib.people()[0].id
    for bad in ("", "   ", "42", "x" * 200):
        with pytest.raises(LookalikeError):
            lib.name_person(pid, bad)
    with pytest.raises(NotFound, match="no person with id"):
        lib.name_person(999_999, "Nobody")
    with pytest.raises(NotFound, match="no person named"):
        lib.person_faces("Nobody")
    _, faces = lib.person_faces(pid)
    with pytest.raises(NotFound, match="face"):
        lib.name_face(faces[0].image_id, 7, "Alice")  # the photo has one face
    cat = lib.store.get_by_path(str(next(p for p in lib.store.file_states() if "chelsea" in p)))
    with pytest.raises(NotFound, match="no face stored"):
        lib.name_face(cat.id, 0, "Alice")  # type: ignore[union-attr]


# One clustering run in its own interpreter (not a fork of this one: forking a process that holds faiss/ONNX
# thread pools can leave the child stuck on a lock another thread held), started together through a file.
RECLUSTER = """
import json, os, sys, time
from lookalike.library import Library
where, full, go = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
with Library(where, faces=True) as lib:
    lib.store.count()
    open(go + "." + str(os.getpid()), "w").close()  # ready
    while not os.path.exists(go):
        time.sleep(0.005)
    print(json.dumps(lib.update_people(full=full).as_dict()))
"""


@pytest.mark.parametrize("full", [(False, False), (True, False)])
def test_two_reclusterings_at_once(people_index: Path, tmp_path: Path, full) -> None:  # type: ignore[no-untyped-def]
    """Two processes cluster the same real faces at the same moment (two `index --faces`, or the server and
    `people --recluster`): the people are made once (3, not 6), every face is placed, and the second run
    waited for the first one's lease or redid its work on the new state (it found nothing left to create)."""
    import json
    import sqlite3
    import subprocess
    import sys
    import time

    shutil.copytree(people_index, tmp_path / "lib")
    with sqlite3.connect(tmp_path / "lib" / "lookalike.db") as db:  # the faces as indexing left them: unplaced
        db.execute("DELETE FROM face_people")
        db.execute("DELETE FROM people")
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", RECLUSTER, str(tmp_path / "lib"), "1" if f else "0", str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for f in full]
    end = time.monotonic() + 120
    while len(list(tmp_path.glob("go.*"))) < len(procs):  # both have opened the library
        assert time.monotonic() < end and all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    runs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=120)
        assert p.returncode == 0, stderr
        runs.append(json.loads(stdout.strip().splitlines()[-1]))
    assert sum(r["new_people"] for r in runs) == 3, runs
    assert sorted(r["placed"] for r in runs) == [0, 15], runs
    assert any(r["waited_s"] > 0 or r["retries"] > 0 for r in runs), runs
    with Library(tmp_path / "lib", faces=True) as lib:
        assert [(p.faces, p.images) for p in lib.people()] == [(5, 5)] * 3
        assert all(len(ids) == 1 for ids in by_person(lib).values()) and lib.store.unplaced_faces() == 0
