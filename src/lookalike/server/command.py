"""``lookalike serve``: its options, and starting uvicorn (``--workers N``: server/workers.py). cli.py holds the
parser block and the command."""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
from dataclasses import replace

from lookalike.errors import LookalikeError
from lookalike.config import count
from lookalike.shell import print_skipped


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token", help="require this API token as 'Authorization: Bearer TOKEN' (env LOOKALIKE_TOKEN)")
    p.add_argument("--write-token", help="require this token for what writes or costs minutes: indexing, duplicates, "
                                         "removing copies (env LOOKALIKE_WRITE_TOKEN; default: --token)")
    p.add_argument("--allow-private-urls", action="store_true",
                   help="let URL queries fetch from loopback, private and link-local addresses")
    p.add_argument("--max-upload-mb", type=count(1, 100_000), help="largest query image accepted (default 20)")
    p.add_argument("--index-root", action="append", metavar="FOLDER",
                   help="folders the API may index, with everything below (repeatable; default: your home folder)")
    p.add_argument("--cors-origin", action="append", metavar="ORIGIN",
                   help="allow browser pages from this origin to call the API (repeatable; default: CORS off)")
    p.add_argument("--allowed-host", action="append", metavar="NAME",
                   help="a Host name to answer to on loopback besides this machine's, e.g. the name a reverse proxy "
                        "passes on (repeatable; others get a 403: DNS rebinding)")
    p.add_argument("--threads", type=count(0, 1024), default=1,
                   help="torch threads per model call (default 1: concurrent requests use the cores instead; "
                        "0 = all cores)")
    p.add_argument("--quarantine", metavar="FOLDER",
                   help="the web page's duplicate actions move copies into FOLDER (default: the desktop trash; "
                        "env LOOKALIKE_QUARANTINE)")
    p.add_argument("--watch", action="append", metavar="FOLDER",
                   help="keep the index of FOLDER up to date while serving (repeatable; see lookalike watch)")
    p.add_argument("--workers", type=count(1, 64), default=1, metavar="N",
                   help="server processes on the one port and library (default 1; one process uses about one "
                        "core). The first runs the indexing and duplicates jobs and --watch; the others hand "
                        "those requests to it")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn log level (default warning; info logs every request)")


def serve(args: argparse.Namespace, lib) -> int:  # type: ignore[no-untyped-def]
    _need_server_extra()
    configure(args, lib)
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise LookalikeError("--workers must be at least 1")
    if workers > 1:
        from lookalike.server.workers import serve_workers

        return serve_workers(args, lib, workers)
    import uvicorn

    _check_port(args.host, args.port)
    warn_if_public(args, lib)
    lib.store  # noqa: B018 - open the library now: a bad path fails before the server starts
    lib.warm_up()  # load the model (one forward pass), vocabulary, keyword index: the first queries are not slow
    app = create(lib)
    announce(args, lib)
    watcher = start_watching(args, lib)
    try:
        from lookalike.server.protocol import JsonErrorsH11Protocol

        uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level,
                    access_log=args.log_level in ("info", "debug"), http=JsonErrorsH11Protocol)
    finally:
        if watcher is not None:
            watcher.stop()
    return 0


def _need_server_extra() -> None:
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise LookalikeError(f"the web server needs the server extra ({err.name} is missing): "
                             "pip install 'lookalike[server]'") from None


def create(lib):  # type: ignore[no-untyped-def]
    from lookalike.server.app import create_app

    return create_app(lib, lib.settings)


def configure(args: argparse.Namespace, lib) -> None:  # type: ignore[no-untyped-def]
    """The options' settings on ``lib`` and this process's thread limits (every server process does this);
    a one-line error for a bad value."""
    overrides: dict[str, object] = {}
    if args.token:
        overrides["token"] = args.token
    if args.write_token:
        overrides["write_token"] = args.write_token
    if args.allow_private_urls:
        overrides["allow_private_urls"] = True
    if args.max_upload_mb is not None:
        if args.max_upload_mb < 1:
            raise LookalikeError("--max-upload-mb must be at least 1")
        overrides["max_upload_mb"] = args.max_upload_mb
    if args.threads < 0:
        raise LookalikeError("--threads must be 0 (all cores) or more")
    overrides["threads"] = args.threads
    if args.threads and "faiss" not in sys.modules and "torch" not in sys.modules:
        # OpenMP (faiss, torch) reads this once, when first loaded: one thread per call, so that a one-query
        # vector search does not spin a second core (measured: 8 ms of CPU per search at 2 threads, 0.5 at 1)
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.threads:
        _limit_blas_threads(args.threads)
    if args.index_root:
        overrides["index_roots"] = tuple(args.index_root)
    if args.cors_origin:
        overrides["cors_origins"] = tuple(args.cors_origin)
    if args.allowed_host:
        overrides["allowed_hosts"] = tuple(args.allowed_host)
    if args.quarantine:
        overrides["quarantine"] = args.quarantine
    lib.settings = replace(lib.settings, **overrides)


def warn_if_public(args: argparse.Namespace, lib) -> None:  # type: ignore[no-untyped-def]
    if not is_loopback(args.host) and not lib.settings.token:
        print(f"lookalike: warning: listening on {args.host} without --token: anyone who can reach this port can "
              "search and download your indexed photos", file=sys.stderr)


def announce(args: argparse.Namespace, lib, port: int | None = None, workers: int = 1) -> None:  # type: ignore[no-untyped-def]
    """The line (or, with --json, the object) that says where the server listens, once it is ready."""
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{args.port if port is None else port}/"
    if args.json:
        print(json.dumps({"url": url, "docs": url + "docs", "library": str(lib.settings.library),
                          "workers": workers}), flush=True)
    else:
        processes = f" with {workers} worker processes" if workers > 1 else ""
        print(f"lookalike: serving {lib.settings.library} at {url}{processes} (API docs at {url}docs); "
              "Ctrl+C stops", flush=True)


def _limit_blas_threads(n: int) -> None:
    """numpy's BLAS (OpenBLAS) started one thread per core when numpy was imported, before these options
    were read: limit it now. Under 16 clients on 2 busy cores a two-thread (2000 x 384) matrix-vector product
    (the keyword index's sentence similarities) took 1.7-4.3 ms of CPU and 12-50 ms wall, one thread 0.16 ms
    (measured side by side), and every exact re-rank of a search is such a product."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with the server extra
        return
    threadpool_limits(limits=n)


def start_watching(args: argparse.Namespace, lib):  # type: ignore[no-untyped-def]
    if not getattr(args, "watch", None):
        return None
    from lookalike.watch import Watcher

    def on_batch(summary, changes: int) -> None:  # type: ignore[no-untyped-def]
        if not getattr(args, "quiet", False):
            print_skipped(summary.skipped, prefix="lookalike: watch: ")
            print(f"lookalike: watch: {changes or 'catch-up'}{' changes' if changes else ''}: {summary.line()}",
                  file=sys.stderr, flush=True)

    return Watcher(lib, args.watch, on_batch=on_batch).start()


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (the bind address here; a connection's in server/guards.py)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Fail with one line before loading anything when the address cannot be listened on."""
    bind(host, port).close()


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not yet listening), or a one-line error; ``reuse_port``: with
    SO_REUSEPORT, so that other sockets of this user may bind the same port (server/workers.py)."""
    if not 0 <= port <= 65535:
        raise LookalikeError(f"--port must be between 0 and 65535, not {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        s.bind((host, port))
    except OSError as err:
        s.close()
        raise LookalikeError(f"cannot listen on {host}:{port}: {err.strerror or err} "
                             "(choose another --port or --host)") from None
    return s
