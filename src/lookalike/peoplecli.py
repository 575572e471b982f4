"""``lookalike people``: the people found in the library's faces, and naming them (merge and split by naming).

    lookalike people                          # people, most faces first: id, name, faces, photos, sample face
    lookalike people --grid people.png        # a contact sheet of their sample faces
    lookalike people --recluster              # re-cluster the unnamed people (ids kept where they can be)
    lookalike people name 7 "Alice"           # name person 7; naming another person "Alice" merges it in
    lookalike people name 42:1 "Bob"          # move face 1 of image 42 to Bob (created if new): a split
    lookalike people show Alice               # Alice's faces: image id, face index, box, score, path
    lookalike people unname Alice             # forget the name; the faces are clustering's again
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from lookalike.errors import LookalikeError
from lookalike.config import count
from lookalike.shell import image_out

ACTIONS = ("list", "name", "show", "unname")


def register(sub: argparse._SubParsersAction, commands: dict[str, Callable[[argparse.Namespace], int]]) -> None:
    from lookalike.cli import _common

    p = sub.add_parser("people", help="people found in the faces (index --faces); name, merge and split them",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(p, read_db=False, model=False)
    p.add_argument("action", nargs="?", default="list", choices=ACTIONS, help="list (default), name, show, unname")
    p.add_argument("args", nargs="*", metavar="ARG",
                   help="name: PERSON NAME, or IMAGE_ID:N NAME for one face (N = 0 for the first); show/unname: PERSON")
    p.add_argument("--min-faces", type=count(1), default=1, help="list: people with at least this many faces (default 1)")
    p.add_argument("--recluster", action="store_true", help="list: re-cluster the unnamed people first")
    p.add_argument("--grid", metavar="OUT.png", type=image_out,
                   help="list/show: also write a contact sheet of the faces (.png, .jpg or .webp)")
    commands["people"] = cmd_people


def _face_arg(text: str) -> tuple[int, int] | None:
    """IMAGE_ID:INDEX (one face), or None for a person (an id or a name)."""
    m = re.fullmatch(r"\s*([0-9]+)\s*:\s*([0-9]+)\s*", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _arity(args: argparse.Namespace, n: int, usage: str) -> list[str]:
    if len(args.args) != n:
        raise LookalikeError(f"usage: lookalike people {usage}")
    return list(args.args)


def cmd_people(args: argparse.Namespace) -> int:
    from lookalike.cli import emit, library_from

    with library_from(args) as lib:
        if args.action == "list":
            _arity(args, 0, "[--min-faces N] [--grid OUT.png] [--recluster]")
            show = not args.json and sys.stderr.isatty()
            summary = lib.update_people(full=True, progress=show) if args.recluster else None
            people = lib.people(min_faces=args.min_faces)
            if args.grid:
                _grid(lib, [(p.sample, f"#{p.id} {p.name or ''}".strip(), f"{p.faces} faces") for p in people
                            if p.sample], args.grid)
            lines = [f"{p.id:5d}  {p.name or '-':<24} {p.faces:5d} faces {p.images:5d} photos  "
                     + (f"sample {p.sample.image_id}:{p.sample.index} at {tuple(p.sample.box)}" if p.sample else "")
                     for p in people] or ["no people (index with --faces to find faces)"]
            if summary:
                lines.append(summary.line())
            if args.grid:
                lines.append(f"grid written to {args.grid}")
            out: dict[str, object] = {"people": [p.as_dict() for p in people]}
            if summary:
                out["clustering"] = summary.as_dict()
            emit(args, out, "\n".join(lines))
        elif args.action == "name":
            who, name = _arity(args, 2, "name PERSON NAME  (or IMAGE_ID:N NAME for one face)")
            face = _face_arg(who)
            if face:
                person = lib.name_face(*face, name)
                text = f"face {who} is now {person.name} (person {person.id}, {person.faces} faces)"
            else:
                person = lib.name_person(who, name)
                text = f"person {person.id} is {person.name} ({person.faces} faces in {person.images} photos)"
            emit(args, {"person": person.as_dict()}, text)
        elif args.action == "show":
            (who,) = _arity(args, 1, "show PERSON [--grid OUT.png]")
            person, faces = lib.person_faces(who)
            paths = {i.id: i.path for i in lib.store.get(sorted({f.image_id for f in faces}))}
            if args.grid:
                _grid(lib, [(f, f"{f.image_id}:{f.index}", f"{f.score:.2f}") for f in faces], args.grid)
            lines = [f"person {person.id} {person.name or '(no name)'}: {person.faces} faces in {person.images} photos"]
            lines += [f"  {f.image_id}:{f.index:<3d} {f.score:6.3f}{' pinned' if f.pinned else '       '}  "
                      f"{tuple(f.box)}  {paths.get(f.image_id, '?')}" for f in faces]
            emit(args, {"person": person.as_dict(),
                        "faces": [{**f.as_dict(), "path": paths.get(f.image_id)} for f in faces]}, "\n".join(lines))
        else:
            (who,) = _arity(args, 1, "unname PERSON")
            person = lib.unname_person(who)
            emit(args, {"person": person.as_dict()}, f"person {person.id} has no name now ({person.faces} faces)")
    return 0


def _grid(lib, faces, out: str) -> None:  # type: ignore[no-untyped-def]
    from lookalike.grid import face_sheet

    paths = {i.id: i.path for i in lib.store.get(sorted({f.image_id for f, _, _ in faces}))}
    face_sheet([(paths.get(f.image_id), f.box, a, b) for f, a, b in faces], out)
