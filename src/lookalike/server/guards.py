"""Request guards for the REST API: a request body cap, the optional API token, folders that may be indexed."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from collections.abc import Sequence
from pathlib import Path

from fastapi import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.errors import Forbidden, LookalikeError

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
        raise Forbidden(f"{folder} is outside the folders this server may index ({', '.join(allowed)}); "
                        "start it with --index-root to allow another")
    if not os.path.isdir(real):
        from lookalike.errors import NotFound

        if os.path.exists(real):  # a photo's path, say: the server indexes folders
            raise LookalikeError(f"{folder} is a file, not a folder: give the folder that holds it")
        raise NotFound(f"no such folder: {folder}")
    return real


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False
