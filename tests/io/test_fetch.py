"""URL queries: a size cap, a timeout, and no loopback/private addresses unless allowed."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.errors import Forbidden, LookalikeError, TooLarge
from lookalike.io.fetch import check_address, fetch_url
from lookalike.samples import sample_photos


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    photo = Path(sample_photos()["chelsea"]).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:1/x.png")
                self.end_headers()
                return
            body = photo if self.path == "/cat.png" else b"nope"
            self.send_response(200 if self.path == "/cat.png" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("url", ["http://127.0.0.1/x.jpg", "http://localhost/x.jpg", "http://10.1.2.3/a.png",
                                 "http://192.168.0.1/a.png", "http://169.254.169.254/latest", "http://[::1]/a.png",
                                 "http://0.0.0.0/a.png"])
def test_private_addresses_refused(url: str) -> None:
    with pytest.raises(Forbidden, match="allow-private-urls"):
        check_address(url, allow_private=False)


def test_bad_scheme() -> None:
    with pytest.raises(LookalikeError, match="only http"):
        check_address("file:///etc/passwd", allow_private=True)


def test_fetch_loopback_refused_then_allowed(server: str) -> None:
    with pytest.raises(Forbidden):
        fetch_url(f"{server}/cat.png")
    data = fetch_url(f"{server}/cat.png", allow_private=True)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"


def test_size_cap_and_http_errors(server: str) -> None:
    with pytest.raises(TooLarge):
        fetch_url(f"{server}/cat.png", allow_private=True, max_bytes=1000)
    with pytest.raises(LookalikeError, match="HTTP 404"):
        fetch_url(f"{server}/missing", allow_private=True)
