"""Request guards for the REST API: a request body cap, the optional API token, folders that may be indexed."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import socket
from collections.abc import Sequence
from pathlib import Path

from fastapi import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.display import quote_path
from lookalike.errors import Forbidden, LookalikeError
from lookalike.server.command import is_loopback

TOKEN_COOKIE = "lookalike_token"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{n} bytes"


class BodyLimit:
    """ASGI middleware: a request body larger than its cap gets a 413 before it is read whole.

    The cap is ``max_bytes`` for a JSON body (base64 makes it 4/3 of the image it holds) and ``raw_bytes`` for
    any other (a multipart upload is the image and a few headers), so an upload over the image cap is refused
    before it is spooled. A declared Content-Length over the cap is refused at once; a body without one
    (chunked) is counted as it streams in and cut off as soon as it passes the cap, so neither memory nor the
    multipart spool on disk ever holds more than the cap, and the connection is closed with the 413 (else the
    server would go on reading, and discarding, whatever the client keeps sending)."""

    def __init__(self, app: ASGIApp, max_bytes: int, raw_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.raw_bytes = max_bytes if raw_bytes is None else min(raw_bytes, max_bytes)

    def cap(self, headers: dict[bytes, bytes]) -> int:
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        return self.max_bytes if kind == b"application/json" else self.raw_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        cap = self.cap(headers)
        message = f"request body too large: the limit is {_mb(cap)} (server option --max-upload-mb)"
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            await _send_json(send, 413, message)
            return
        received = 0
        started = over = False

        async def limited_receive() -> Message:
            nonlocal received, over
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > cap:
                    over = True
                    raise HTTPException(413, message)  # FastAPI passes HTTPExceptions through body parsing
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                if over:  # the app answered the 413 itself: the rest of the body is not to be read
                    msg = {**msg, "headers": [*[(k, v) for k, v in msg.get("headers", []) if k.lower() != b"connection"],
                                              (b"connection", b"close")]}
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as err:
            if started or err.status_code != 413:
                raise
            await _send_json(send, 413, message)


UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class SameOrigin:
    """ASGI middleware against other web sites driving the API through the user's browser.

    * **Host** (DNS rebinding): on a connection to a loopback address, the Host header must name this machine
      (localhost, a 127.x or ::1 literal, its host name) or one of ``allowed_hosts`` (``--allowed-host``: the
      name a reverse proxy on this machine passes on); a page at evil.example whose name was re-pointed to
      127.0.0.1 sends ``Host: evil.example`` and could otherwise read the photos. Connections to other
      addresses (``--host 0.0.0.0`` on purpose) are not checked: the name users reach it by is theirs.
    * **Origin** (cross-site requests): a request that writes (POST, PUT, PATCH, DELETE) with an Origin header
      whose host is not the request's Host (nor one of the CORS origins) is refused: a plain HTML form on
      another site needs no CORS preflight, and ``POST /api/people/4/unname`` has no body to be refused by
      type. Requests without an Origin (curl, scripts) are not browsers' cross-site requests and pass.
    Both answer 403 in the API's JSON."""

    def __init__(self, app: ASGIApp, allowed_origins: Sequence[str] = (), allowed_hosts: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.local_names = {n.lower() for n in (socket.gethostname(), "localhost", *allowed_hosts) if n}

    def _local_host(self, host: str) -> bool:
        name = _host_name(host)
        return name in self.local_names or name.endswith(".localhost") or is_loopback(name)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        server = scope.get("server") or ("", 0)
        if host and is_loopback(str(server[0])) and not self._local_host(host):  # browsers always send a Host
            await _send_json(send, 403, f"the Host header {host!r} does not name this machine: open the page at "
                                        f"http://127.0.0.1:{server[1]}/ (a page of another site may be trying "
                                        "to reach the server through its own name)")
            return
        origin = headers.get(b"origin")
        if scope["method"] in UNSAFE_METHODS and origin is not None:
            o = origin.decode("latin-1").rstrip("/").lower()
            # the host and port only: behind a TLS proxy the page is https:// while this hop is http
            if o.split("://", 1)[-1] != host.lower() and o not in self.allowed_origins:
                await _send_json(send, 403, f"a request from another site ({o}) may not change this library; "
                                            "start the server with --cors-origin to allow one")
                return
        await self.app(scope, receive, send)


def _host_name(host: str) -> str:
    """A Host header's name without its port: ``[::1]:8000`` -> ``::1``, ``localhost:8000`` -> ``localhost``."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return name.lower().rstrip(".")


class HeadAsGet:
    """ASGI middleware: a HEAD request is answered as the GET would be, without the body (the routes declare GET
    only, so HEAD got a 405): the same status and headers (Content-Length, ETag, Last-Modified). The body is not
    produced further than its first chunk: once that has gone out (as the empty body), the app is told that the
    client went away (a streamed original is then closed, not read to its end)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        ended = asyncio.Event()  # the (empty) body has been sent: the response is complete
        first, done = True, False

        async def head_receive() -> Message:
            nonlocal first
            if first:  # the (empty) request body
                first = False
                return await receive()
            await ended.wait()
            return {"type": "http.disconnect"}

        async def head_send(msg: Message) -> None:
            nonlocal done
            if msg["type"] == "http.response.body":
                if done:  # ASGI 2.4: a send after the client went away raises; the app stops there
                    raise OSError("HEAD: no body is sent")
                done = True
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                ended.set()
            else:
                await send(msg)

        try:
            await self.app({**scope, "method": "GET"}, head_receive, head_send)
        except (OSError, ClientDisconnect):
            if not done:
                raise


async def _send_json(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error, "status": status}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def token_ok(expected: str | None, authorization: str | None, cookie: str | None, *also: str | None) -> bool:
    """True when no token is configured, or the request carries it, or one of ``also`` (a token that grants more,
    as the write token does reading), as ``Authorization: Bearer`` or as the cookie (either may hold it: the web
    page's cookie can hold the reading token while a header brings the write token)."""
    if not expected:
        return True
    given = [authorization[7:].strip()] if authorization and authorization.lower().startswith("bearer ") else []
    given += [cookie] if cookie else []
    wanted = [t for t in (expected, *also) if t]
    return any(hmac.compare_digest(g.encode(), w.encode()) for g in given for w in wanted)


def default_index_roots() -> tuple[str, ...]:
    return (str(Path.home()),)


def resolve_index_folder(folder: str, roots: Sequence[str]) -> str:
    """The real path of ``folder`` if it is an existing folder inside one of ``roots``; else a one-line error.

    Both sides are resolved with ``realpath`` first, so ``..`` segments and symlinks cannot lead outside."""
    if not folder or not folder.strip():
        raise LookalikeError("give the folder to index")
    if "\x00" in folder:
        raise LookalikeError("folder name contains a NUL byte")
    if not os.path.isabs(os.path.expanduser(folder)):
        raise LookalikeError(f"give an absolute folder path, not {folder!r}")
    real = os.path.realpath(os.path.expanduser(folder))
    allowed = [os.path.realpath(os.path.expanduser(r)) for r in roots]
    if not any(_inside(real, root) for root in allowed):
        raise Forbidden(f"{quote_path(folder)} is outside the folders this server may index ({', '.join(allowed)}); "
                        "start it with --index-root to allow another")
    if not os.path.isdir(real):
        from lookalike.errors import NotFound

        if os.path.exists(real):  # a photo's path, say: the server indexes folders
            raise LookalikeError(f"{quote_path(folder)} is a file, not a folder: give the folder that holds it")
        raise NotFound(f"no such folder: {quote_path(folder)}")  # "photos\n" is not shown as "photos"
    return real


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False
