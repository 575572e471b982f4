"""Named people: the library's faces clustered into people (:mod:`lookalike.search.faceclusters`), names
given by the user, and names as search words.

The story a user sees:

- ``update_people`` runs after ``index --faces`` (and from ``lookalike people`` when faces are waiting):
  new faces join the person their same-person neighbours belong to, or form new people. ``full=True``
  re-clusters every face of the unnamed people, warm-started from the current clusters so their ids stay.
- ``name_person(id, "Alice")`` names a cluster. Naming a second cluster "Alice" **merges** it into the first
  (the first one's id stays). A named cluster's faces are never moved by clustering again, and new faces keep
  joining it; renaming is naming again; ``unname`` gives the faces back to clustering.
- ``name_face(image, index, "Bob")`` (``lookalike people name 42:1 Bob``) moves one face (image id + its
  index in that image, as ``people show`` lists them) to the person called Bob, created if there is none: that is how a wrong face is **split** off a
  cluster. Such a face is *pinned*: clustering never moves it.
- A person's name is a search word (``person_hits``): "Alice" finds the photos with a face of Alice;
  "Alice beach" the photos of Alice that the other words also find; "Alice Bob" photos with both.

Why a wrapper around the words search (search/signals.py ``keyword_signal``) and not a keyword ``TermSource``:
a term source's list is fused with the others (any of the words), while a person is a restriction (all of
the names, and then the other words), as a filter is.

Score of a person hit, in [0, 1]: the face's membership (``faceclusters.membership``: 1 - its distance to the
person's mean face / 0.6), 1.0 for a face the user placed; an image's best face counts.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from lookalike.errors import LookalikeError, NotFound
from lookalike.search import faceclusters
from lookalike.search.fuse import rrf
from lookalike.stores.base import Filters, Hit
from lookalike.stores.people import FaceTable, PeopleChanges, PeopleStore

MAX_NAME = 80
LEASE_S = 120.0  # a clustering run's lease (as indexing claims): a killed run's is taken over after this
LEASE_POLL_S = 0.2
SAVE_ATTEMPTS = 5
PERSON_DEPTH = 10_000  # at most this many photos of one person take part in a words search


@dataclass
class FaceRef:
    image_id: int
    index: int  # the face's place among its image's faces (0 = the detector's most confident)
    box: tuple[int, int, int, int]
    score: float = 1.0
    pinned: bool = False

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["box"] = list(self.box)
        d["score"] = round(float(self.score), 4)
        return d


@dataclass
class Person:
    id: int
    name: str | None
    faces: int
    images: int
    sample: FaceRef | None = None  # the most typical face (highest membership, then the largest)

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "faces": self.faces, "images": self.images,
                "sample": self.sample.as_dict() if self.sample else None}


@dataclass
class PeopleSummary:
    faces: int = 0  # faces in the library
    placed: int = 0  # faces given a person in this run
    joined: int = 0  # ... of which joined an existing person
    new_people: int = 0
    removed_people: int = 0  # unnamed people left without faces
    people: int = 0
    confident: int = 0  # new faces placed at once (surely one person's: no neighbour search)
    reclustered: int = 0  # faces of people a new face bridged, re-clustered together
    retries: int = 0  # passes redone because people were saved meanwhile by someone else
    waited_s: float = 0.0  # time spent waiting for another run's clustering lease
    elapsed_s: float = 0.0

    def line(self) -> str:
        return (f"people: {self.people} ({self.new_people} new); {self.placed} faces placed "
                f"({self.joined} joined a known person) of {self.faces}, in {self.elapsed_s:.1f} s")

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["elapsed_s"] = round(self.elapsed_s, 3)
        return d


# -- clustering ---------------------------------------------------------------------------------------------
def stale(store: PeopleStore) -> bool:
    """Whether some face has no person yet."""
    return store.unplaced_faces() > 0


def update_people(store: PeopleStore, *, full: bool = False, progress: bool = False, owner: str | None = None,
                  wait_s: float = LEASE_S) -> PeopleSummary:
    """Give every face a person (see the module docstring); ``full``: re-cluster the unnamed people too.

    Safe under concurrency (two ``index --faces``, the server and a CLI): the run takes the store's clustering
    lease first (waiting up to ``wait_s`` while another live run holds it, then taking it over), and saves only
    if no one saved people since it read them (``people_generation``); otherwise it reads again and redoes
    its work (``PeopleSummary.retries``)."""
    from lookalike.stores.people import PeopleConflict

    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    t0 = time.perf_counter()
    waited = 0.0
    while not store.people_lease(owner, LEASE_S):
        if waited >= wait_s:
            break  # the other run is alive but slow: go on; the generation check keeps the result right
        time.sleep(LEASE_POLL_S)
        waited += LEASE_POLL_S
    try:
        for attempt in range(SAVE_ATTEMPTS):
            generation = store.people_generation()
            try:
                s = _update(store, full, progress, generation)
            except PeopleConflict:
                if attempt == SAVE_ATTEMPTS - 1:
                    raise LookalikeError("people not saved: they kept changing meanwhile; run lookalike people "
                                         "again") from None
                store.people_lease(owner, LEASE_S)
                continue
            s.retries, s.waited_s = attempt, round(waited, 2)
            s.elapsed_s = time.perf_counter() - t0
            return s
        raise AssertionError("unreachable")
    finally:
        store.release_people_lease(owner)


def _update(store: PeopleStore, full: bool, progress: bool, generation: int) -> PeopleSummary:
    """One clustering pass from the store's state at ``generation``; saved with that generation expected.

    Incremental (not ``full``): a new face that is confidently one person's (``faceclusters.confident``) is
    placed at once; the others go through Chinese whispers with every placed face clamped; when a new face has
    edges into two unnamed people (it bridges them), the faces of those people are freed too (warm-started): a
    re-clustering of just them (``faceclusters.place_new``). ``full``: every unnamed, unpinned face free."""
    table = store.face_table()
    people = {p.id: p for p in store.people()}
    named = {pid for pid, p in people.items() if p.name}
    s = PeopleSummary(faces=len(table.face_id))
    fixed = table.pinned | np.isin(table.person, list(named)) if len(named) else table.pinned.copy()
    new = table.person < 0
    if full:
        free = new | ~fixed
        labels = faceclusters.cluster(table.embedding, table.person, free, progress=progress) if free.any() \
            else table.person.copy()
    else:
        labels, stats = faceclusters.place_new(table.embedding, table.person, new, fixed, progress=progress)
        s.confident, s.reclustered = stats["confident"], stats["reclustered"]
    moved = labels != table.person
    s.placed = int(new.sum())
    s.joined = int((new & (labels >= 0)).sum())
    s.new_people = len({int(v) for v in labels[labels < 0]})
    scores = _scores(table, labels)
    touched = set(labels[moved].tolist()) | set(table.person[moved].tolist())
    changes = PeopleChanges()
    for i in np.flatnonzero(moved | np.isin(labels, list(touched)) | (np.abs(scores - table.score) > 1e-4)):
        changes.assign.append((int(table.face_id[i]), int(labels[i]), bool(table.pinned[i]), float(scores[i])))
    left = set(people) - set(labels.tolist())
    changes.drop = sorted(pid for pid in left if pid not in named)
    s.removed_people = len(changes.drop)
    if changes.assign or changes.drop:
        store.save_people(changes, expect=generation)
    s.people = len(set(labels.tolist()) | named)
    return s


def _scores(table: FaceTable, labels: np.ndarray) -> np.ndarray:
    scores = faceclusters.membership(table.embedding, labels) if len(labels) else np.zeros(0, np.float32)
    scores[table.pinned] = 1.0
    return scores


# -- listing ------------------------------------------------------------------------------------------------
def list_people(store: PeopleStore, *, min_faces: int = 1) -> list[Person]:
    """Every person with at least ``min_faces`` faces (named ones always), most faces first."""
    table = store.face_table(with_embeddings=False)
    out = []
    for row in store.people():
        m = table.person == row.id
        n = int(m.sum())
        if n < min_faces and not row.name:
            continue
        out.append(Person(row.id, row.name, n, int(len(np.unique(table.image_id[m]))), _sample(table, m)))
    out.sort(key=lambda p: (-p.faces, p.name is None, p.id))
    return out


def _sample(table: FaceTable, mask: np.ndarray) -> FaceRef | None:
    idx = np.flatnonzero(mask)
    if not len(idx):
        return None
    area = table.box[idx, 2].astype(np.int64) * table.box[idx, 3]
    best = idx[np.lexsort((-area, -table.score[idx]))[0]]
    return _ref(table, int(best))


def _ref(table: FaceTable, i: int) -> FaceRef:
    return FaceRef(int(table.image_id[i]), int(table.index[i]), tuple(int(v) for v in table.box[i]),  # type: ignore[arg-type]
                   float(table.score[i]), bool(table.pinned[i]))


def person_faces(store: PeopleStore, person: int | str) -> tuple[Person, list[FaceRef]]:
    """A person (id or name) and their faces, most typical first."""
    p = find_person(store, person)
    table = store.face_table(with_embeddings=False)
    idx = np.flatnonzero(table.person == p.id)
    idx = idx[np.lexsort((table.index[idx], table.image_id[idx], -table.score[idx]))]
    return p, [_ref(table, int(i)) for i in idx]


def image_people(store: PeopleStore, image_id: int) -> list[tuple[FaceRef, int | None, str | None]]:
    """The faces of one image, in order, each with its person's id and name (None: not placed yet)."""
    table = store.face_table(image_ids=[int(image_id)], with_embeddings=False)
    names = {r.id: r.name for r in store.people()}
    return [(_ref(table, i), int(table.person[i]) if table.person[i] >= 0 else None,
             names.get(int(table.person[i]))) for i in range(len(table.face_id))]


def find_person(store: PeopleStore, person: int | str) -> Person:
    """A person by id (a number, or "#7") or by name (any case)."""
    key = str(person).strip()
    people = list_people(store, min_faces=0)
    if re.fullmatch(r"#?\d+", key):
        pid = int(key.lstrip("#"))
        found = [p for p in people if p.id == pid]
        if not found:
            raise NotFound(f"no person with id {pid} (lookalike people lists them)")
        return found[0]
    found = [p for p in people if p.name and p.name.casefold() == key.casefold()]
    if not found:
        raise NotFound(f"no person named {key!r} (lookalike people lists them)")
    return found[0]


# -- naming -------------------------------------------------------------------------------------------------
def clean_name(name: str) -> str:
    text = " ".join(str(name).split())
    if not text:
        raise LookalikeError("give a name, e.g. lookalike people name 7 \"Alice\"")
    if len(text) > MAX_NAME:
        raise LookalikeError(f"a name has at most {MAX_NAME} characters")
    if not re.search(r"[^\W\d_]", text):
        raise LookalikeError(f"a name needs a letter (a number is taken for a person id): {text!r}")
    return text


def name_person(store: PeopleStore, person: int | str, name: str) -> Person:
    """Name a person; when another person already has the name, this one's faces join that one (merge)."""
    name = clean_name(name)
    p = find_person(store, person)
    other = _named(store, name)
    changes = PeopleChanges()
    if other is not None and other.id != p.id:  # merge into the person who had the name first
        table = store.face_table(with_embeddings=False)
        for i in np.flatnonzero(table.person == p.id):
            changes.assign.append((int(table.face_id[i]), other.id, bool(table.pinned[i]), float(table.score[i])))
        changes.drop = [p.id]
        changes.names = {other.id: name}  # the spelling given last
        target = other.id
    else:
        changes.names = {p.id: name}
        target = p.id
    store.save_people(changes)
    if other is not None and other.id != p.id:
        update_scores(store, [target])
    return find_person(store, target)


def name_face(store: PeopleStore, image_id: int, index: int, name: str) -> Person:
    """Move one face (image id + index) to the person called ``name`` (created when there is none); pinned."""
    name = clean_name(name)
    table = store.face_table(image_ids=[int(image_id)], with_embeddings=False)
    rows = np.flatnonzero(table.index == int(index))
    if not len(table.face_id):
        raise NotFound(f"no face stored for image id {image_id} (index with --faces)")
    if not len(rows):
        raise NotFound(f"image {image_id} has {len(table.face_id)} face(s): index 0 to {len(table.face_id) - 1}")
    i = int(rows[0])
    other = _named(store, name)
    old = int(table.person[i])
    changes = PeopleChanges(assign=[(int(table.face_id[i]), other.id if other else -1, True, 1.0)])
    if other is None:
        changes.names = {-1: name}
    mapping = store.save_people(changes)
    target = other.id if other else mapping[-1]
    update_scores(store, [target, old] if old >= 0 else [target])
    return find_person(store, target)


def unname(store: PeopleStore, person: int | str) -> Person:
    """Remove a person's name; its faces (also the pinned ones) are clustering's again."""
    p = find_person(store, person)
    table = store.face_table(with_embeddings=False)
    changes = PeopleChanges(names={p.id: None})
    for i in np.flatnonzero((table.person == p.id) & table.pinned):
        changes.assign.append((int(table.face_id[i]), p.id, False, float(table.score[i])))
    store.save_people(changes)
    return find_person(store, p.id)


def update_scores(store: PeopleStore, people: Sequence[int]) -> None:
    """Recompute the membership scores of the faces of ``people`` (after faces moved)."""
    table = store.face_table()
    m = np.isin(table.person, list(people))
    if not m.any():
        return
    scores = _scores(table, table.person)
    store.save_people(PeopleChanges(assign=[(int(table.face_id[i]), int(table.person[i]), bool(table.pinned[i]),
                                            float(scores[i])) for i in np.flatnonzero(m)]))


def _named(store: PeopleStore, name: str):  # type: ignore[no-untyped-def]
    for row in store.people():
        if row.name and row.name.casefold() == name.casefold():
            return row
    return None


# -- names as search words ----------------------------------------------------------------------------------
@dataclass
class PeopleInQuery:
    people: list[tuple[int, str]] = field(default_factory=list)  # (id, name) found in the words
    rest: str = ""  # the words left over


def people_in(store: PeopleStore, text: str) -> PeopleInQuery:
    """The named people whose whole name appears in ``text`` (any case; longest names first), and the rest."""
    names = sorted(((r.id, r.name) for r in store.people() if r.name), key=lambda r: -len(r[1]))
    found = PeopleInQuery(rest=text)
    for pid, name in names:
        pattern = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, name.split())) + r"(?!\w)", re.IGNORECASE)
        if pattern.search(found.rest):
            found.people.append((pid, name))
            found.rest = " ".join(pattern.sub(" ", found.rest).split())
    return found


def person_hits(store: PeopleStore, text: str, limit: int, filters: Filters | None, explain: dict[str, object],
                words: Callable[[str, int], list[Hit]]) -> list[Hit] | None:
    """Hits of a words query that names people, or None when it names nobody (then it is an ordinary words
    query). ``words(rest, depth)`` ranks the other words; only photos of every named person are kept, ordered
    by fusion of the person and word rankings, scored by the smaller of the two scores."""
    from lookalike.search.keywords import content_words

    found = people_in(store, text)
    if not found.people:
        return None
    explain["people"] = [{"id": pid, "name": name} for pid, name in found.people]
    lists = [store.person_hits(pid, PERSON_DEPTH, filters) for pid, _ in found.people]
    score: dict[int, float] = {h.id: h.score for h in lists[0]}
    for hits in lists[1:]:  # photos with all of them
        other = {h.id: h.score for h in hits}
        score = {i: min(s, other[i]) for i, s in score.items() if i in other}
    ranked = [Hit(i, s) for i, s in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))]
    if not content_words(found.rest):
        return ranked[:limit]
    explain["people_rest"] = found.rest
    other_hits = [h for h in words(found.rest, max(limit * 10, 500)) if h.id in score]
    by_words = {h.id: h.score for h in other_hits}
    fused = rrf({"people": [h for h in ranked if h.id in by_words], "words": other_hits})
    return [Hit(h.id, min(score[h.id], by_words[h.id])) for h in fused][:limit]
