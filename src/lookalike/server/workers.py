"""``lookalike serve --workers N``: N server processes on one port and one library.

One server process runs its searches on about one core (one interpreter: the event loop, the framework and
most of a search hold the GIL), so on a machine with more cores one process cannot use them. With
``--workers N`` the command becomes a small supervisor:

1. it binds the TCP port itself (so a taken port fails at once, with one line) and a Unix socket in a private
   temporary folder, the *job socket*;
2. it starts N worker processes (``spawn``: nothing of the supervisor's threads or open files is inherited),
   each of which opens the library, loads the models (``warm_up``) and serves the port with its own uvicorn.
   On Linux each worker listens on a socket of its own bound to the port with SO_REUSEPORT (the supervisor's
   holds the port without listening), so the kernel spreads new connections evenly over the workers by a hash
   of their addresses. With one listening socket shared by all, whichever worker woke first took every
   connection waiting (uvicorn accepts them in a loop): 16 keep-alive clients mostly landed on one worker,
   and two workers served 1.02x what one did (bench/serve_load.py --workers 2). Elsewhere the supervisor
   listens and the workers share its socket. A worker exits when the supervisor dies (PR_SET_PDEATHSIG);
   on Linux it is named ``lookalike-w<i>`` (``ps -o pid,comm``).
3. it prints the "serving" line once every worker has said it is ready, then waits. A worker that exits
   (a crash, the out-of-memory killer) is started again, with one line on stderr; worker 0's running jobs
   are lost with it, as they are when a server restarts. More than ``RESTARTS`` exits within
   ``RESTART_WINDOW_S`` is a crash loop: the others are stopped, one line, exit 1. Ctrl+C or SIGTERM stops
   them all (exit 0, as a single server does).

Searches, thumbnails, files, browsing, concepts and people are answered by whichever worker took the
connection: they read the library, which every worker shares (a photo indexed through one is found through
another at its next search: the vector index catches up from the store's change log). Jobs are different:
an indexing or duplicates job is a thread in the process that started it, with its progress in memory. So
worker 0 runs them all (and ``--watch``), and serves the job socket too; the other workers forward every
request under :data:`JOB_PATHS` to it over that socket, body and answer streamed unchanged (worker 0 checks
the token, the body cap and CORS as it would for a direct request). Each response names the worker that made
it in ``X-Lookalike-Worker`` (and a forwarded one the worker that passed it on, ``X-Lookalike-Forwarded-By``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import shutil
import signal
import socket
import sys
import tempfile
import time
from typing import Any

from lookalike.errors import RuntimeFailure

# what worker 0 answers for all: the jobs (their state lives in its memory) and what reports on them
JOB_PATHS = ("/api/index", "/api/dupes", "/api/stats")
REUSE_PORT = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")  # see step 2 above
READY_TIMEOUT_S = 600.0  # a worker's start-up (model export on first use included)
STOP_TIMEOUT_S = 10.0  # after Ctrl+C / SIGTERM, before the workers still running are killed
RESTARTS, RESTART_WINDOW_S = 3, 60.0  # a worker that exited is started again, up to RESTARTS times a window
# request / response headers that belong to one connection, not to the message
_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"proxy-connection"}


def is_job_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in JOB_PATHS)


class WorkerApp:
    """ASGI wrapper of a worker's app: names the worker in every response and, given ``jobs_socket`` (the
    workers other than 0), forwards the job requests to worker 0 through it. A forwarded body is held to the
    same cap here (``max_body``) as there: a declared length over it is answered at once, not streamed, and
    under the same Host and Origin checks (guards.SameOrigin: worker 0 gets it over a Unix socket, where it
    cannot tell a loopback connection)."""

    def __init__(self, app: Any, index: int, jobs_socket: str | None = None, max_body: int = 0,
                 settings: Any = None) -> None:
        from lookalike.server.guards import BodyLimit, SameOrigin

        self.app = app
        self.tag = str(index).encode()
        self.jobs_socket = jobs_socket
        self._forward_capped = SameOrigin(BodyLimit(self._forward, max_bytes=max_body),
                                          allowed_origins=getattr(settings, "cors_origins", ()),
                                          allowed_hosts=getattr(settings, "allowed_hosts", ()))
        self._client: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:  # type: ignore[type-arg]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.jobs_socket is not None and is_job_path(scope["path"]):
            await self._forward_capped(scope, receive, send)
            return

        async def tagged(msg: dict) -> None:  # type: ignore[type-arg]
            if msg["type"] == "http.response.start":
                msg["headers"] = [*msg.get("headers", ()), (b"x-lookalike-worker", self.tag)]
            await send(msg)

        await self.app(scope, receive, tagged)

    def _http(self) -> Any:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=self.jobs_socket),
                                             base_url="http://lookalike-jobs", timeout=httpx.Timeout(300.0, connect=5.0))
        return self._client

    async def _forward(self, scope: dict, receive: Any, send: Any) -> None:  # type: ignore[type-arg]
        import httpx

        from lookalike.server.guards import _send_json

        async def body():  # type: ignore[no-untyped-def]
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    return
                if msg.get("body"):
                    yield msg["body"]
                if not msg.get("more_body"):
                    return

        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in _HOP]
        has_body = any(k.lower() in (b"content-length", b"transfer-encoding") for k, _ in scope["headers"])
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        client = self._http()
        request = client.build_request(scope["method"], target.decode("latin-1"), headers=headers,
                                       content=body() if has_body else None)
        try:
            response = await client.send(request, stream=True)
        except httpx.HTTPError:
            await _send_json(send, 503, "the server's job process (worker 0) is not answering; try again, or "
                                        "restart lookalike serve")
            return
        try:
            out = [(k, v) for k, v in response.headers.raw if k.lower() not in _HOP]
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": [*out, (b"x-lookalike-forwarded-by", self.tag)]})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


def serve_workers(args: argparse.Namespace, lib: Any, workers: int) -> int:
    """Run ``workers`` server processes on ``args.host``:``args.port`` (see the module docstring)."""
    from lookalike.server.command import announce, bind, warn_if_public

    spread = REUSE_PORT
    tcp = bind(args.host, args.port, reuse_port=spread)  # held, and listened on when not spread
    if not spread:
        tcp.listen(2048)
    port = tcp.getsockname()[1]
    warn_if_public(args, lib)
    private = None
    try:
        private = tempfile.mkdtemp(prefix="lookalike-serve-")  # mode 0700: only this user reaches the job socket
        jobs_path = os.path.join(private, "jobs.sock")
        jobs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        jobs.bind(jobs_path)
        jobs.listen(256)
    except OSError as err:
        tcp.close()
        if private:
            shutil.rmtree(private, ignore_errors=True)
        raise RuntimeFailure(f"cannot make the workers' job socket in {tempfile.gettempdir()}: "
                             f"{err.strerror or err} (set TMPDIR to a short, writable folder)") from None
    lib.close()  # the workers open their own
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Queue()
    options = {k: v for k, v in vars(args).items() if _plain(v)}

    def start(i: int):  # type: ignore[no-untyped-def]
        proc = ctx.Process(target=_worker, name=f"lookalike-serve-{i}", daemon=False,
                           args=(options, i, (args.host, port) if spread else tcp, jobs if i == 0 else None,
                                 None if i == 0 else jobs_path, ready))
        proc.start()
        return proc

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    procs: list = []  # type: ignore[type-arg]
    try:
        procs += [start(i) for i in range(workers)]
        _wait_ready(procs, ready)
        announce(args, lib, port=port, workers=workers)
        _supervise(procs, start, ready)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        _stop(procs)
        tcp.close()
        jobs.close()
        shutil.rmtree(private, ignore_errors=True)


def _plain(v: object) -> bool:
    """Whether an option's value can be handed to a spawned worker (the parser's values can; a callable
    set as a default may not)."""
    try:
        pickle.dumps(v)
    except Exception:  # noqa: BLE001 - any value that does not pickle stays behind
        return False
    return True


def _wait_ready(procs: list, ready: Any) -> None:  # type: ignore[type-arg]
    """Until every worker has reported; a worker's failure is raised as one line."""
    waiting = set(range(len(procs)))
    deadline = time.monotonic() + READY_TIMEOUT_S
    while waiting:
        try:
            index, error = ready.get(timeout=0.5)
        except queue.Empty:
            for i in list(waiting):
                if not procs[i].is_alive():
                    raise RuntimeFailure(f"server worker {i} exited while starting (status {procs[i].exitcode})")
            if time.monotonic() > deadline:
                raise RuntimeFailure(f"server workers {sorted(waiting)} did not start within {READY_TIMEOUT_S:.0f} s")
            continue
        if error:
            raise RuntimeFailure(f"server worker {index} could not start: {error}")
        waiting.discard(index)


def _supervise(procs: list, start, ready: Any) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Run until interrupted, starting a worker again when it exits (a crash, the out-of-memory killer; worker
    0's running jobs are lost with it, as in a restarted server); more than ``RESTARTS`` restarts within
    ``RESTART_WINDOW_S`` is a crash loop: one line, exit 1."""
    restarts: list[float] = []
    while True:
        sentinels = {p.sentinel: i for i, p in enumerate(procs)}
        for sentinel in multiprocessing.connection.wait(list(sentinels)):
            i = sentinels[sentinel]  # type: ignore[index]
            procs[i].join()
            status = f"status {procs[i].exitcode}{_last_error(ready, i)}"
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(restarts) > RESTARTS:
                raise RuntimeFailure(f"server worker {i} exited ({status}), the {len(restarts)}th time "
                                     f"within {RESTART_WINDOW_S:.0f} s; the others were stopped")
            print(f"lookalike: server worker {i} exited ({status}); starting it again", file=sys.stderr,
                  flush=True)
            procs[i] = start(i)


def _last_error(ready: Any, index: int) -> str:
    """The start-up error worker ``index`` reported, if any (": ..."); the restarted workers' "ready" reports
    are read and dropped here too."""
    found = ""
    while True:
        try:
            i, error = ready.get_nowait()
        except queue.Empty:
            return found
        if i == index and error:
            found = f": {error}"


def _stop(procs: list) -> None:  # type: ignore[type-arg]
    """Ask the running workers to stop (SIGTERM: uvicorn finishes the requests it has; after a Ctrl+C in a
    terminal they have the SIGINT already, and a second SIGINT would make uvicorn drop them), then kill the
    ones still running after STOP_TIMEOUT_S."""
    for p in procs:
        if p.is_alive() and p.pid:
            try:
                os.kill(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in procs:
        if p.pid is None:
            continue
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()


def _die_with_parent(index: int) -> None:
    """Linux: this process gets SIGTERM when the supervisor dies (even by SIGKILL), so no worker is left
    serving the port on its own; and it is named ``lookalike-w<index>`` (``ps``, ``top``, ``/proc/PID/comm``:
    which pid is which worker, whatever order the pids came in)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        libc.prctl(15, f"lookalike-w{index}"[:15].encode())  # PR_SET_NAME = 15 (15 bytes at most)
    except (OSError, AttributeError):
        return
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the line above
        sys.exit(0)


def _worker(options: dict, index: int, tcp: socket.socket | tuple[str, int],  # type: ignore[type-arg]
            jobs: socket.socket | None, jobs_path: str | None, ready: Any) -> None:
    """One worker process: open the library, load the models, serve the port (``tcp``: the supervisor's
    listening socket, or the address to listen on with SO_REUSEPORT) and, worker 0, the job socket."""
    _die_with_parent(index)
    from lookalike.cli import library_from, setup_logging
    from lookalike.server.app import body_cap
    from lookalike.server.command import bind, configure, create, start_watching

    args = argparse.Namespace(**options)
    watcher = None
    try:
        if isinstance(tcp, tuple):
            tcp = bind(*tcp, reuse_port=True)
            tcp.listen(2048)
        setup_logging(args)
        lib = library_from(args, create=True)
        configure(args, lib)
        lib.warm_up()
        app = WorkerApp(create(lib), index, jobs_path, body_cap(lib.settings), lib.settings)
        if index == 0:
            watcher = start_watching(args, lib)
    except KeyboardInterrupt:
        return
    except Exception as err:  # noqa: BLE001 - reported to the supervisor as one line
        ready.put((index, str(err) if str(err) else type(err).__name__))
        sys.exit(1)
    import uvicorn

    ready.put((index, None))
    from lookalike.server.protocol import JsonErrorsH11Protocol

    config = uvicorn.Config(app, log_level=args.log_level, access_log=args.log_level in ("info", "debug"),
                            http=JsonErrorsH11Protocol)
    try:
        uvicorn.Server(config).run(sockets=[tcp] + ([jobs] if jobs is not None else []))
    finally:
        if watcher is not None:
            watcher.stop()
