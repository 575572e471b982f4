"""People in the stores: which person each face belongs to, and the people's names. Shared by both SQL stores
(the statements are written once, in the ``?`` / ``{t}`` spelling of :mod:`lookalike.stores.sql`).

Tables (SQLite migration 6, PostgreSQL migration 5): ``people (id, name, created_at)``, ids never reused, names unique
regardless of case; ``face_people (face_id -> faces, person_id -> people, pinned, score)``. A face's row goes
with the face (a re-indexed photo's faces are detected anew and placed again by clustering); a person goes
when the last face leaves it unless it has a name. ``pinned``: placed by the user, never moved by clustering.

Concurrency (two ``index --faces`` processes, or the server and a CLI, on one library): two rows of ``meta``,
no migration:

- ``people_generation``: bumped by every ``save_people`` in its own transaction. A clustering run reads it
  before it reads the faces and saves with ``expect=`` that value: when anything saved people in between (another
  clustering, a name given in the web page), the save raises :class:`PeopleConflict` and changes nothing; the run
  reads again and redoes its work. The check is one ``UPDATE ... RETURNING`` of that row: under SQLite's write
  lock (``BEGIN IMMEDIATE``), and in PostgreSQL a row lock that makes a concurrent saver wait and then see the
  committed value (READ COMMITTED re-reads the row), so exactly one of two racing saves wins.
- ``people_lease``: ``owner expires``, taken by a clustering run before it starts (:meth:`PeopleSQL.people_lease`)
  so that a second run waits instead of clustering the same faces for nothing; a run that was killed stops
  renewing it and the next one takes it over after ``seconds``. The lease saves work; correctness rests on the
  generation check (a run whose lease ran out still cannot overwrite a newer state).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
import numpy as np

from lookalike.stores.base import Filters, Hit, PeopleStore

__all__ = ["FaceTable", "PeopleChanges", "PeopleConflict", "PeopleSQL", "PeopleStore", "PersonRow"]

@dataclass
class FaceTable:
    """Every stored face (or those of some images) with its person, as arrays in (image id, face) order."""

    face_id: np.ndarray  # int64 (n,)
    image_id: np.ndarray  # int64 (n,)
    index: np.ndarray  # int64 (n,): the face's place among its image's faces (as Store.faces lists them)
    box: np.ndarray  # int64 (n, 4): left, top, width, height
    person: np.ndarray  # int64 (n,): person id, -1 for none yet
    pinned: np.ndarray  # bool (n,)
    score: np.ndarray  # float32 (n,): membership in [0, 1]
    embedding: np.ndarray  # float32 (n, 128), or (n, 0) when not asked for


@dataclass(frozen=True)
class PersonRow:
    id: int
    name: str | None
    faces: int


@dataclass
class PeopleChanges:
    """One transaction of changes. Labels >= 0 are person ids; a negative label is a person to create (one
    per distinct label; ``save_people`` returns label -> new id)."""

    assign: list[tuple[int, int, bool, float]] = field(default_factory=list)  # (face id, label, pinned, score)
    names: dict[int, str | None] = field(default_factory=dict)  # label -> name (None: no name)
    drop: list[int] = field(default_factory=list)  # person ids removed (their faces are left without a person)


class PeopleConflict(Exception):
    """``save_people(expect=...)``: someone saved people since the caller read them; nothing was saved."""


GENERATION = "people_generation"
LEASE = "people_lease"

Execute = Callable[[str, Sequence[object]], list[tuple]]
Many = Callable[[str, Sequence[Sequence[object]]], None]


class PeopleSQL:
    """The people role in shared SQL. The store provides ``dialect``, ``_run`` (reads, see stores/sql.py) and
    ``_people_tx(fn)``: ``fn(execute, many)`` in one write transaction, ``execute(sql, args) -> rows`` and
    ``many(sql, rows)`` taking the shared spelling."""

    def _people_tx(self, fn: Callable[[Execute, Many], object]) -> object:
        raise NotImplementedError

    def face_table(self, image_ids: Sequence[int] | None = None, *, with_embeddings: bool = True) -> FaceTable:
        d = self.dialect  # type: ignore[attr-defined]
        cols = "f.id, f.image_id, f.x, f.y, f.w, f.h, COALESCE(fp.person_id, -1), COALESCE(fp.pinned, 0), " \
               "COALESCE(fp.score, 0)" + (", f.embedding" if with_embeddings else "")
        sql = f"SELECT {cols} FROM {{t}}faces f LEFT JOIN {{t}}face_people fp ON fp.face_id = f.id WHERE {{in}}"
        if image_ids is None:
            rows = self._run(lambda q: q(d.sql(sql.replace("{in}", d.true)), ()), primary=True)  # type: ignore[attr-defined]
        else:
            ids = [int(i) for i in image_ids]
            rows = self._run(lambda q: self._in(q, sql, "f.image_id", ids), primary=True) if ids else []  # type: ignore[attr-defined]
        rows.sort(key=lambda r: (int(r[1]), int(r[0])))
        n = len(rows)
        image = np.array([int(r[1]) for r in rows], dtype=np.int64)
        index = np.zeros(n, dtype=np.int64)
        for i in range(1, n):
            index[i] = index[i - 1] + 1 if image[i] == image[i - 1] else 0
        emb = d.matrix([r[9] for r in rows]) if with_embeddings and n else np.zeros((n, 0), np.float32)
        return FaceTable(
            face_id=np.array([int(r[0]) for r in rows], dtype=np.int64), image_id=image, index=index,
            box=np.array([[int(v) for v in r[2:6]] for r in rows], dtype=np.int64).reshape(n, 4),
            person=np.array([int(r[6]) for r in rows], dtype=np.int64),
            pinned=np.array([bool(r[7]) for r in rows], dtype=bool),
            score=np.array([float(r[8]) for r in rows], dtype=np.float32), embedding=emb)

    def people(self) -> list[PersonRow]:
        sql = self.dialect.sql(  # type: ignore[attr-defined]
            "SELECT p.id, p.name, COUNT(fp.face_id) FROM {t}people p LEFT JOIN {t}face_people fp "
            "ON fp.person_id = p.id GROUP BY p.id, p.name ORDER BY p.id")
        return [PersonRow(int(r[0]), r[1], int(r[2])) for r in self._run(lambda q: q(sql, ()), primary=True)]  # type: ignore[attr-defined]

    def unplaced_faces(self) -> int:
        sql = self.dialect.sql(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM {t}faces f WHERE NOT EXISTS (SELECT 1 FROM {t}face_people fp WHERE fp.face_id = f.id)")
        return int(self._run(lambda q: q(sql, ()), primary=True)[0][0])  # type: ignore[attr-defined]

    def people_generation(self) -> int:
        """How many times people were saved (0 for none): read it before reading the faces, pass it to
        ``save_people(expect=)``."""
        rows = self._run(lambda q: q(self.dialect.sql("SELECT value FROM {t}meta WHERE key = ?"), (GENERATION,)),  # type: ignore[attr-defined]
                         primary=True)
        return int(rows[0][0]) if rows else 0

    def people_lease(self, owner: str, seconds: float) -> bool:
        """Take (or renew) the clustering lease for ``seconds``: True when ``owner`` holds it now, False while
        another owner's lease runs."""
        now = time.time()

        def run(execute: Execute, many: Many) -> bool:
            execute("INSERT INTO {t}meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (LEASE, " 0"))
            execute("UPDATE {t}meta SET value = value WHERE key = ?", (LEASE,))  # PostgreSQL: the row lock first
            holder, _, expires = str(execute("SELECT value FROM {t}meta WHERE key = ?", (LEASE,))[0][0]).rpartition(" ")
            if holder and holder != owner and float(expires or 0) > now:
                return False
            execute("UPDATE {t}meta SET value = ? WHERE key = ?", (f"{owner} {now + seconds:.3f}", LEASE))
            return True

        return bool(self._people_tx(run))

    def release_people_lease(self, owner: str) -> None:
        """Give the lease back (only when ``owner`` holds it)."""
        self._people_tx(lambda execute, many: execute(
            "UPDATE {t}meta SET value = ' 0' WHERE key = ? AND value LIKE ?", (LEASE, owner.replace("%", "_") + " %")))

    def save_people(self, changes: PeopleChanges, expect: int | None = None) -> dict[int, int]:
        """Apply ``changes`` in one transaction: create the people of negative labels, place faces (faces
        deleted meanwhile are skipped), drop people, set names; then remove unnamed people left without
        faces. Returns label -> id of the people created. ``expect``: the ``people_generation`` the changes
        were computed from; when people were saved since, :class:`PeopleConflict` and nothing is saved."""
        now = time.time()

        def run(execute: Execute, many: Many) -> dict[int, int]:
            execute("INSERT INTO {t}meta (key, value) VALUES (?, '0') ON CONFLICT (key) DO NOTHING", (GENERATION,))
            after = int(execute("UPDATE {t}meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = ? "
                                "RETURNING value", (GENERATION,))[0][0])
            if expect is not None and after != int(expect) + 1:
                raise PeopleConflict(f"people were saved meanwhile (generation {after - 1}, expected {expect})")
            created: dict[int, int] = {}
            labels = [lab for _, lab, _, _ in changes.assign] + list(changes.names)
            for lab in dict.fromkeys(lab for lab in labels if lab < 0):
                created[lab] = int(execute("INSERT INTO {t}people (name, created_at) VALUES (NULL, ?) RETURNING id",
                                           (now,))[0][0])
            drop = [int(p) for p in changes.drop]
            if drop:
                many("DELETE FROM {t}people WHERE id = ?", [(p,) for p in drop])
            many("INSERT INTO {t}face_people (face_id, person_id, pinned, score) SELECT ?, ?, ?, ? "
                 "WHERE EXISTS (SELECT 1 FROM {t}faces WHERE id = ?) AND EXISTS (SELECT 1 FROM {t}people WHERE id = ?) "
                 "ON CONFLICT (face_id) DO UPDATE SET person_id = EXCLUDED.person_id, pinned = EXCLUDED.pinned, "
                 "score = EXCLUDED.score",
                 [(f, created.get(lab, lab), int(pin), float(s), f, created.get(lab, lab))
                  for f, lab, pin, s in changes.assign])
            for lab, name in changes.names.items():
                execute("UPDATE {t}people SET name = ? WHERE id = ?", (name, created.get(lab, lab)))
            execute("DELETE FROM {t}people WHERE name IS NULL AND NOT EXISTS "
                    "(SELECT 1 FROM {t}face_people fp WHERE fp.person_id = {t}people.id)", ())
            return created

        return self._people_tx(run)  # type: ignore[return-value]

    def person_hits(self, person_id: int, k: int, filters: Filters | None = None) -> list[Hit]:
        """Images with a face of the person, by their best face's membership score, then id."""
        from lookalike.stores.sql import filter_sql

        d = self.dialect  # type: ignore[attr-defined]
        where, args = filter_sql(filters, d, "i")
        sql = d.sql("SELECT f.image_id, MAX(fp.score) AS s FROM {t}face_people fp JOIN {t}faces f ON f.id = fp.face_id "
                    "JOIN {t}images i ON i.id = f.image_id WHERE fp.person_id = ? AND ") + where + d.sql(
                    " GROUP BY f.image_id ORDER BY s DESC, f.image_id LIMIT ?")
        rows = self._run(lambda q: q(sql, [int(person_id), *args, int(k)]))  # type: ignore[attr-defined]
        return [Hit(int(i), float(s)) for i, s in rows]
