"""``lookalike db start|stop|status DIR`` and ``lookalike migrate --from SRC --to DST``.

Registered in cli.py's build_parser() through _EXTENSIONS; the work is done by lookalike.stores.pgserver and
lookalike.stores.migrate.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lookalike.config import count
from lookalike.shell import json_text

Command = Callable[[argparse.Namespace], int]


def register(sub: argparse._SubParsersAction, commands: dict[str, Command]) -> None:
    p = sub.add_parser("db", help="run a local PostgreSQL + pgvector for lookalike (start, stop, status)")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("dir", help="folder of the database (created by start)")
    p.add_argument("--port", type=count(1, 65535), help="port on 127.0.0.1 (default: the first free one from 5433)")
    p.add_argument("--replica-of", metavar="PRIMARY_DIR", help="start: make DIR a streaming replica of that database")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    commands["db"] = cmd_db

    p = sub.add_parser("migrate", help="copy a library between the embedded store and PostgreSQL (both ways)")
    p.add_argument("--from", dest="source", required=True, metavar="SRC", help="library folder or postgresql:// URL")
    p.add_argument("--to", dest="destination", required=True, metavar="DST", help="library folder or postgresql:// URL")
    p.add_argument("--batch", type=count(1, 100_000), default=500, help="images per transaction (default 500)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    commands["migrate"] = cmd_migrate


def _emit(args: argparse.Namespace, obj: object, text: str) -> None:
    print(json_text(obj) if args.json else text)


def cmd_db(args: argparse.Namespace) -> int:
    from lookalike.stores.pgserver import LocalServer

    server = LocalServer(args.dir)
    if args.action == "start":
        if args.replica_of:
            url = server.replica_of(LocalServer(args.replica_of), args.port)
        else:
            url = server.start(args.port)
        st = server.status()
        role = f"replica of {st['replica_of']}" if st.get("replica_of") else "primary"
        _emit(args, st, f"PostgreSQL running ({role}) in {server.folder}\n{url}\n"
                        f"use it with: --db '{url}'  or  export LOOKALIKE_DB='{url}'"
                        + ("  (as --read-db for searches)" if args.replica_of else ""))
    elif args.action == "stop":
        stopped = server.stop()
        _emit(args, {"folder": str(server.folder), "stopped": stopped},
              f"stopped PostgreSQL in {server.folder}" if stopped else f"PostgreSQL in {server.folder} was not running")
    else:
        st = server.status()
        if not st["initialised"]:
            text = f"no database in {server.folder}: `lookalike db start {server.folder}` makes one"
        else:
            role = f"replica of {st['replica_of']}" if st.get("replica_of") else "primary"
            text = f"{'running' if st['running'] else 'stopped'} ({role}, PostgreSQL {st['version']}) {st['url']}"
        _emit(args, st, text)
        return 0 if st.get("running") else 3
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from lookalike.errors import LookalikeError
    from lookalike.stores.migrate import describe, migrate, open_location

    if describe(args.source) == describe(args.destination):
        raise LookalikeError("--from and --to are the same place")
    src = open_location(args.source, must_exist=True)
    try:
        dst = open_location(args.destination, must_exist=False)
        try:
            bar = None
            if not args.json and sys.stderr.isatty():
                from tqdm import tqdm

                bar = tqdm(unit="img", file=sys.stderr, desc="copying")

            def progress(done: int, total: int) -> None:
                if bar is not None:
                    bar.total = total
                    bar.n = done
                    bar.refresh()

            summary = migrate(src, dst, source=args.source, destination=args.destination, batch=args.batch,
                              on_progress=progress)
            if bar is not None:
                bar.close()
        finally:
            dst.close()
    finally:
        src.close()
    _emit(args, summary.as_dict(), summary.line())
    return 0
