"""Shared fixtures for the server tests: a real library of sample photos (indexed once per session), apps over it,
a live uvicorn server on a loopback port, and a local HTTP server that hands out a photo (URL queries)."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed (pip install 'lookalike[server]')")

from fastapi.testclient import TestClient  # noqa: E402

from lookalike.config import Settings  # noqa: E402
from lookalike.library import Library  # noqa: E402
from lookalike.samples import copy_samples  # noqa: E402
from lookalike.server.app import create_app  # noqa: E402

PETS = ["chelsea", "black_cat", "puppy", "gold_fish"]
THINGS = ["guitar", "coffee", "rocket", "tent", "motorcycle_left", "flower", "astronaut"]
EXTRA = ["sunrise", "fighter_fish", "china"]  # not in the session library: for indexing jobs


@pytest.fixture(scope="session")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="session")
def photos(root: Path) -> Path:
    """<root>/photos/pets/*.jpg and <root>/photos/things/*.jpg, real photos from installed packages."""
    copy_samples(root / "photos" / "pets", PETS)
    copy_samples(root / "photos" / "things", THINGS)
    return root / "photos"


@pytest.fixture(scope="session")
def extra_photos(root: Path) -> Path:
    """Photos outside the session library, for URL queries and indexing jobs."""
    copy_samples(root / "extra", EXTRA)
    return root / "extra"


def make_settings(library: Path, **overrides: object) -> Settings:
    return replace(Settings.from_env({}, library=library), **overrides)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings(root: Path) -> Settings:
    return make_settings(root / "library", index_roots=(str(root),))


@pytest.fixture(scope="session")
def library(settings: Settings, photos: Path) -> Iterator[Library]:
    lib = Library(settings=settings)
    summary = lib.index([photos])
    assert summary.indexed == len(PETS) + len(THINGS), summary.skipped
    yield lib
    lib.close()


@pytest.fixture(scope="session")
def client(library: Library) -> TestClient:
    return TestClient(create_app(library))


@pytest.fixture(scope="session")
def ids(library: Library, photos: Path) -> dict[str, int]:
    """Sample name -> image id in the session library."""
    out = {}
    for path in sorted(photos.rglob("*.jpg")):
        info = library.store.get_by_path(str(path))
        assert info is not None
        out[path.stem] = info.id
    return out


@pytest.fixture
def fresh_library(tmp_path: Path) -> Iterator[Callable[..., Library]]:
    """A factory of new, empty libraries under tmp_path (for tests that change a library)."""
    made: list[Library] = []

    def make(**overrides: object) -> Library:
        lib = Library(settings=make_settings(tmp_path / f"library{len(made)}",
                                             index_roots=(str(tmp_path),), **overrides))
        made.append(lib)
        return lib

    yield make
    for lib in made:
        lib.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def photo_server(extra_photos: Path, photos: Path) -> Iterator[str]:
    """http://127.0.0.1:PORT/ serving the photos folder and the extra folder (a real local HTTP server)."""
    serve_root = photos.parent
    handler = functools.partial(_QuietHandler, directory=str(serve_root))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    """The tests' photo server: a client that stops reading on purpose (a size cap, a deadline) is no error."""

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


class LiveServer:
    """The real app under uvicorn on a loopback port, in a thread."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        from lookalike.server.protocol import JsonErrorsH11Protocol

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    http=JsonErrorsH11Protocol))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        end = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > end or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def live_server(library: Library) -> Iterator[LiveServer]:
    with LiveServer(create_app(library)) as server:
        yield server


@pytest.fixture
def start_server() -> Iterator[Callable[..., LiveServer]]:
    """start_server(app) -> a running LiveServer, stopped after the test."""
    running: list[LiveServer] = []

    def start(app) -> LiveServer:  # type: ignore[no-untyped-def]
        server = LiveServer(app).__enter__()
        running.append(server)
        return server

    yield start
    for server in running:
        server.__exit__()


@pytest.fixture
def client_with(library: Library, settings: Settings) -> Callable[..., TestClient]:
    """client_with(**settings overrides) -> a TestClient of an app over the session library with other settings."""

    def make(**overrides: object) -> TestClient:
        return TestClient(create_app(library, replace(settings, **overrides)))  # type: ignore[arg-type]

    return make
