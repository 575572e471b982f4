"""``lookalike watch``, ``lookalike undo`` and ``lookalike completion``, and the actions of ``dupes`` (--trash,
--move-to, --delete's confirmation): the commands that keep a library in step with the disk.

Registered in cli.py's build_parser() through _EXTENSIONS, like pgcli.py; the work is done by lookalike.watch,
lookalike.trash and lookalike.shell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lookalike.config import seconds
from lookalike.errors import LookalikeError
from lookalike.shell import json_text, print_skipped

Command = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    from lookalike.cli import _common
    from lookalike.shell import add_completion_command

    p = sub.add_parser("watch", help="index folders now, then keep the index up to date as files change")
    _common(p, read_db=False)
    p.add_argument("paths", nargs="+", help="folders to watch (recursively)")
    p.add_argument("--debounce", type=seconds(0), metavar="SECONDS",
                   help="seconds of quiet that end a burst of changes (default 2; env LOOKALIKE_WATCH_DEBOUNCE)")
    commands["watch"] = cmd_watch

    p = sub.add_parser("undo", help="put back the copies the last dupes --trash/--move-to moved (or ACTION's)")
    _common(p, read_db=False, model=False)
    p.add_argument("action", nargs="?", help="an action id (default: the latest not undone; see --list)")
    p.add_argument("--list", action="store_true", help="list the logged actions")
    commands["undo"] = cmd_undo

    add_completion_command(sub)
    commands["completion"] = cmd_completion


def act_on_dupes(args: argparse.Namespace, lib, report) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """--trash / --move-to: logged and undoable (lookalike/trash.py); --delete: permanent, confirmed."""
    if args.delete:
        return lib.remove_duplicates(report, delete=True)
    if not (args.trash or args.move_to) or not report.groups:
        return []
    from lookalike.trash import remove_copies

    groups = [(next(it.id for it in g.items if it.best), [it.id for it in g.items if not it.best])
              for g in report.groups]
    action = remove_copies(lib, groups, quarantine=args.move_to)
    out = [(m.path, f"moved to {m.to}" if m.to else f"left alone: {m.error}") for m in action.items]
    if any(m.to for m in action.items) and not args.quiet and not args.json:
        print(f"undo with: lookalike undo {action.id}", file=sys.stderr)
    return out


def confirm_delete(args: argparse.Namespace, n: int) -> None:
    """--delete removes files for good: only with --yes, or a 'y' typed at a terminal."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise LookalikeError(f"--delete would remove {n} files for good: add --yes to confirm (or use --trash, "
                             "which can be undone)")
    answer = input(f"Delete {n} file{'s' if n != 1 else ''} for good (not to the trash)? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise LookalikeError("nothing was deleted")


def cmd_undo(args: argparse.Namespace) -> int:
    from lookalike.trash import actions, undo

    with _library(args) as lib:
        if args.list:
            found = actions(lib)
            _emit(args, {"actions": [a.as_dict() for a in found]},
                  "\n".join(f"{a.id}  {a.at}  {a.how:<10}  {a.as_dict()['moved']} files"
                            f"{'  (undone)' if a.undone else ''}" for a in found) or "no actions logged")
            return 0
        action, done = undo(lib, args.action)
    _emit(args, {"action": action.as_dict(), "files": [{"path": p, "done": w} for p, w in done]},
          "\n".join(f"{w}: {p}" for p, w in done) + f"\nundid {action.id} ({action.how}, {action.at})")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    import signal
    import time

    from lookalike.watch import Watcher

    def on_batch(summary, changes: int) -> None:  # type: ignore[no-untyped-def]
        if args.json:
            print(json_text({"changes": changes, **summary.as_dict()}), flush=True)
        elif not args.quiet:
            print_skipped(summary.skipped)
            print(f"{time.strftime('%H:%M:%S')}  {changes or 'catch-up:'} {'changes: ' if changes else ''}"
                  f"{summary.line()}", flush=True)

    with _library(args, create=True) as lib:
        watcher = Watcher(lib, args.paths, debounce=args.debounce, on_batch=on_batch)
        signal.signal(signal.SIGTERM, lambda *_: watcher.request_stop())
        if not args.quiet and not args.json:
            print(f"lookalike: watching {', '.join(watcher.roots)}; Ctrl+C stops", file=sys.stderr, flush=True)
        watcher.run()
    return 0


def cmd_completion(args: argparse.Namespace) -> int:
    from lookalike.cli import build_parser
    from lookalike.shell import completion_script

    sys.stdout.write(completion_script(build_parser(), args.shell))
    return 0


def _library(args: argparse.Namespace, **kw: object):  # type: ignore[no-untyped-def]
    from lookalike.cli import library_from

    return library_from(args, **kw)  # type: ignore[arg-type]


def _emit(args: argparse.Namespace, obj: object, text: str) -> None:
    from lookalike.cli import emit

    emit(args, obj, text)
