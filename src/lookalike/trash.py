"""Removing duplicate copies safely, and undoing it: the desktop trash or a quarantine folder, and a log.

:func:`remove_copies` takes groups of (the copy to keep, the copies to remove) as image ids. For each group it
checks that the kept copy's file is still there (so that no group ever loses all its copies), then moves each
other copy into the freedesktop trash (``send2trash``: ``~/.local/share/Trash`` or the volume's
``.Trash-UID``) or into a quarantine folder, drops it from the index and appends what it did to
``<library>/trash-log.jsonl``: one JSON line per action (its id, time, and per file the original path and
where it went). :func:`undo` puts an action's files back where they were (refusing to overwrite a file that is
there now) and indexes them again (exact copies reuse their vectors; edited copies are re-embedded).

Permanent deletion is not here: it stays behind ``lookalike dupes --delete`` and its confirmation.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote

from lookalike.errors import LookalikeError, NotFound
from lookalike.shell import json_text
from lookalike.stores.base import ImageInfo

LOG_NAME = "trash-log.jsonl"


@dataclass
class Moved:
    path: str  # where the file was
    to: str | None  # where it went (trash or quarantine), None when it was left alone
    id: int | None = None  # its image id when it was removed
    info: str | None = None  # the freedesktop .trashinfo file, for undo
    error: str | None = None  # why it was left alone


@dataclass
class Action:
    id: str
    at: str
    how: str  # "trash" or "quarantine"
    items: list[Moved] = field(default_factory=list)
    undone: bool = False

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["moved"] = sum(1 for m in self.items if m.to)
        return d


def log_path(library) -> Path:  # type: ignore[no-untyped-def]
    return Path(library.settings.library) / LOG_NAME


def remove_copies(library, groups: Sequence[tuple[int, Sequence[int]]], *,  # type: ignore[no-untyped-def]
                  quarantine: str | os.PathLike[str] | None = None) -> Action:
    """Move the files of each group's ``remove`` ids to the trash (or ``quarantine``), keeping the ``keep`` id."""
    how = "quarantine" if quarantine else "trash"
    dest = Path(os.path.abspath(os.path.expanduser(quarantine))) if quarantine else None
    plan = _checked(library, groups)
    if dest is not None:
        _check_quarantine(library, dest)
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as err:  # a file of that name, a read-only or missing parent: nothing was moved
            why = "a file, not a folder" if dest.exists() and not dest.is_dir() else (err.strerror or str(err))
            raise LookalikeError(f"cannot move copies into {dest}: {why}; nothing was moved") from None
    action = Action(uuid.uuid4().hex[:10], time.strftime("%Y-%m-%dT%H:%M:%S"), how)
    removed: list[int] = []
    try:
        for group in plan:
            for info in group:
                try:
                    to, trashinfo = (_quarantine(info.path, dest) if dest is not None else _trash(info.path))
                except OSError as err:  # said with both ends: the copy's folder or the destination may be at fault
                    where = f" ({info.path} -> {dest})" if dest is not None else f" ({info.path} -> the trash)"
                    action.items.append(Moved(info.path, None, error=(err.strerror or str(err)) + where))
                    continue
                action.items.append(Moved(info.path, to, info.id, trashinfo))
                removed.append(info.id)
    finally:  # whatever stopped the loop, what was moved is logged (undo) and gone from the index
        if action.items:
            _append(library, {"action": asdict(action)})
        if removed:
            library.store.write(deletes=removed)
    return action


def _checked(library, groups: Sequence[tuple[int, Sequence[int]]]) -> list[list[ImageInfo]]:  # type: ignore[no-untyped-def]
    """Each group's copies to move (ImageInfo), every group checked before anything moves: its kept copy is on
    disk (so that no group loses all its copies), the ids to move are indexed images, none is a kept one (of its
    group or another)."""
    plan = []
    kept_ids = {int(keep) for keep, _ in groups}
    for keep, others in groups:
        kept = library.store.get([int(keep)])
        if not kept or not os.path.isfile(kept[0].path):
            raise NotFound(f"the copy to keep (id {keep}) is not on disk any more; nothing was moved")
        ids = [int(i) for i in others]
        both = sorted(kept_ids & set(ids))
        if both:
            raise LookalikeError(f"image {both[0]} is both a copy to keep and one to move; nothing was moved")
        infos = library.store.get(ids)
        unknown = sorted(set(ids) - {i.id for i in infos})
        if unknown:
            raise NotFound(f"no indexed image with id {unknown[0]}; nothing was moved")
        plan.append(infos)
    return plan


def _check_quarantine(library, dest: Path) -> None:  # type: ignore[no-untyped-def]
    """Refuse, before anything moves, a quarantine folder whose name cannot be logged for undo (not UTF-8) or
    that lies in a folder of indexed photos (the copies would be renamed beside their originals and indexed
    again the next time that folder is)."""
    from lookalike.display import quote_path
    from lookalike.io.crawl import inside, utf8_name

    if not utf8_name(str(dest)):
        raise LookalikeError(f"cannot move copies into {quote_path(str(dest))}: its name is not valid UTF-8 "
                             "(give another folder); nothing was moved")
    real = os.path.realpath(dest)
    for folder, _ in library.folders():
        if inside(real, os.path.realpath(folder)):
            raise LookalikeError(f"cannot move copies into {dest}: it is inside {folder}, a folder of indexed photos "
                                 "(they would be indexed again there); give a folder outside them; nothing was moved")


def actions(library) -> list[Action]:  # type: ignore[no-untyped-def]
    """Every logged action, oldest first, with ``undone`` set for those already undone."""
    path = log_path(library)
    if not path.is_file():
        return []
    found: dict[str, Action] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a crash: the others still count
        if "action" in entry:
            a = entry["action"]
            found[a["id"]] = Action(a["id"], a["at"], a["how"], [Moved(**m) for m in a["items"]])
        elif entry.get("undo") in found:
            found[entry["undo"]].undone = True
    return list(found.values())


def undo(library, action_id: str | None = None) -> tuple[Action, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """Put the files of an action (default: the latest not undone) back, and index them again. Returns the
    action and (path, what happened) per file."""
    known = actions(library)
    if action_id is None:
        todo = [a for a in known if not a.undone]
        if not todo:
            raise NotFound("nothing to undo: no duplicates were moved to the trash or a quarantine folder")
        action = todo[-1]
    else:
        action = next((a for a in known if a.id == action_id), None)  # type: ignore[assignment]
        if action is None:
            raise NotFound(f"no action {action_id!r} in {log_path(library)}")
        if action.undone:
            raise LookalikeError(f"action {action_id} was already undone")
    done: list[tuple[str, str]] = []
    back: list[str] = []
    for m in action.items:
        if not m.to:
            continue
        if os.path.lexists(m.path):
            done.append((m.path, "left alone: a file is there now"))
            continue
        if not os.path.exists(m.to):
            done.append((m.path, f"left alone: {m.to} is gone (was the trash emptied?)"))
            continue
        os.makedirs(os.path.dirname(m.path), exist_ok=True)
        shutil.move(m.to, m.path)
        if m.info and os.path.isfile(m.info):
            os.remove(m.info)
        back.append(m.path)
        done.append((m.path, "restored"))
    if back:
        library.index(back)
    _append(library, {"undo": action.id, "at": time.strftime("%Y-%m-%dT%H:%M:%S")})
    action.undone = True
    return action, done


# -- where files go ----------------------------------------------------------------------------------------------
def _append(library, entry: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    path = log_path(library)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json_text(entry) + "\n")  # a name that is not UTF-8 is kept as its \\udcXX escape
        f.flush()
        os.fsync(f.fileno())


def _quarantine(path: str, dest: Path) -> tuple[str, None]:
    stem, ext = os.path.splitext(os.path.basename(path))
    target, n = dest / f"{stem}{ext}", 1
    while target.exists():
        target, n = dest / f"{stem}-{n}{ext}", n + 1
    shutil.move(path, target)
    return str(target), None


def _trash(path: str) -> tuple[str, str | None]:
    """send2trash, then find where the file went (its .trashinfo names the original path) for undo."""
    try:
        from send2trash import send2trash
    except ImportError:  # pragma: no cover - a declared dependency
        raise LookalikeError("the trash needs send2trash: pip install send2trash (or give a quarantine folder)") from None
    path = os.path.abspath(path)
    started = time.time() - 1
    send2trash(path)
    if sys.platform in ("darwin", "win32"):  # the system's own trash: put back from there by hand
        return "trash", None
    for trash, topdir in _trash_dirs(path):
        found = _find_trashed(Path(trash), topdir, path, started)
        if found:
            return found
    return "trash", None


def _trash_dirs(path: str) -> list[tuple[str, str]]:
    """The trash folders a file may have gone to, each with the folder its .trashinfo paths are relative to."""
    from send2trash import plat_other as fd

    mount = os.fsdecode(fd.find_mount_point(os.fsencode(os.path.dirname(path))))
    return [(fd.HOMETRASH, os.fsdecode(fd.XDG_DATA_HOME)),
            (os.path.join(mount, ".Trash", str(os.getuid())), mount),
            (os.path.join(mount, f".Trash-{os.getuid()}"), mount)]


def _find_trashed(trash: Path, topdir: str, original: str, since: float) -> tuple[str, str] | None:
    info_dir = trash / "info"
    if not info_dir.is_dir():
        return None
    stem, ext = os.path.splitext(os.path.basename(original))
    best: tuple[float, Path] | None = None
    for info in info_dir.glob(f"{_glob_escape(stem)}*{_glob_escape(ext)}.trashinfo"):
        try:
            st = info.stat()
            text = info.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if st.st_mtime < since:
            continue
        line = next((ln for ln in text.splitlines() if ln.startswith("Path=")), "")
        recorded = unquote(line[5:])
        full = recorded if os.path.isabs(recorded) else os.path.normpath(os.path.join(topdir, recorded))
        if os.path.normpath(full) == os.path.normpath(original) and (best is None or st.st_mtime > best[0]):
            best = (st.st_mtime, info)
    if best is None:
        return None
    name = best[1].name[: -len(".trashinfo")]
    return str(trash / "files" / name), str(best[1])


def _glob_escape(text: str) -> str:
    import glob

    return glob.escape(text)


# -- reviewing a group: why its first copy is the best ---------------------------------------------------------
def why_best(best, others: Sequence) -> str:  # type: ignore[no-untyped-def]
    """In words, which rule of ``search.dupes.quality_key`` made ``best`` (an ImageInfo) win over ``others``:
    most pixels, then a camera's EXIF, then the oldest file, then the largest file."""
    if not others:
        return "the only copy"
    px = best.width * best.height
    if all(px > o.width * o.height for o in others):
        return f"most pixels ({best.width}×{best.height})"
    ties = [o for o in others if o.width * o.height == px]
    if best.camera and any(not o.camera for o in ties):
        return f"camera EXIF ({best.camera})"
    ties = [o for o in ties if bool(o.camera) == bool(best.camera)]
    if ties and all(best.mtime < o.mtime for o in ties):
        return "oldest file"
    if ties and all(best.size > o.size for o in ties):
        return "largest file (least compressed)"
    return "same pixels, date and size: the first by name"


def group_reasons(store, groups: Sequence) -> list[str]:  # type: ignore[no-untyped-def]
    """why_best for each DupeGroup (its items' records read in one call)."""
    infos = {i.id: i for i in store.get([it.id for g in groups for it in g.items])}
    out = []
    for g in groups:
        best = next((infos.get(it.id) for it in g.items if it.best), None)
        others = [infos[it.id] for it in g.items if not it.best and it.id in infos]
        out.append(why_best(best, others) if best is not None else "")
    return out
