"""Request guards for the REST API: a request body cap, the optional API token, folders that may be indexed."""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Sequence
from pathlib import Path

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.errors import Forbidden, LookalikeError

TOKEN_COOKIE = "lookalike_token"


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.0f} MB" if n >= 1_000_000 else f"{n} bytes"


class BodyLimit:
    """ASGI middleware: a request body larger than ``max_bytes`` gets a 413 before it is read whole.

    A declared Content-Length over the cap is refused at once; a body without one (chunked) is counted as it
    streams in and cut off as soon as it passes the cap, so neither memory nor the multipart spool on disk
    ever holds more than the cap."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        message = f"request body too large: the limit is {_mb(self.max_bytes)} (server option --max-upload-mb)"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await _send_json(send, 413, message)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            msg = await receive()
            if msg["type"] == "http.request":
                received += len(msg.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, message)  # FastAPI passes HTTPExceptions through body parsing
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except HTTPException as err:
            if started or err.status_code != 413:
                raise
            await _send_json(send, 413, message)


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

        raise NotFound(f"no such folder: {folder}")
    return real


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives
        return False
