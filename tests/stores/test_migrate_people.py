"""People survive `lookalike migrate` (embedded -> PostgreSQL -> embedded): names, each face's person, pinned
faces; a name works as a search word on the copy. Real photos of three people, indexed with --faces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lookalike.cli import main
from lookalike.config import Settings
from lookalike.library import Library

pytest.importorskip("psycopg")
pytestmark = pytest.mark.postgres


def people_by_path(lib: Library) -> dict[tuple[str, int], tuple[str | None, bool]]:
    """(photo path, face index) -> (person's name or a stand-in for the unnamed person's grouping, pinned)."""
    out: dict[tuple[str, int], tuple[str | None, bool]] = {}
    for p in lib.people(update=False):
        _, faces = lib.person_faces(p.id)
        first = min(lib.get(f.image_id).path for f in faces) if faces else ""
        for f in faces:
            out[(lib.get(f.image_id).path, f.index)] = (p.name or f"unnamed:{first}", f.pinned)
    return out


def test_people_round_trip_through_postgres(people_index: Path, pg_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    shutil.copytree(people_index, src)
    with Library(src) as lib:
        pid = lib.people()[0].id
        lib.name_person(pid, "Alice")
        _, faces = lib.person_faces("Alice")
        lib.name_face(faces[-1].image_id, faces[-1].index, "Bob")  # a pinned face, split off
        before = people_by_path(lib)
    assert len(before) == 15 and ("Bob", True) in before.values()
    assert main(["migrate", "--from", str(src), "--to", pg_url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verified"] and summary["people"] == 4
    with Library(settings=Settings(db=pg_url)) as on_pg:
        assert people_by_path(on_pg) == before
        assert len(on_pg.search("alice").results) == 4 and len(on_pg.search("Bob").results) == 1
    back = tmp_path / "back"
    assert main(["migrate", "--from", pg_url, "--to", str(back), "--json"]) == 0
    capsys.readouterr()
    with Library(back) as returned:
        assert people_by_path(returned) == before
        assert {p.name for p in returned.people()} == {"Alice", "Bob", None}
