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


# -- hardening (issue 12): one deadline, public addresses only, no second lookup, redirects re-checked -------
import ipaddress  # noqa: E402
import time  # noqa: E402

LOOPBACK = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture(scope="module")
def tricky() -> Iterator[tuple[str, list[str]]]:
    """A local server that drips, redirects to a private name, and records the Host headers it got."""
    hosts: list[str] = []
    photo = Path(sample_photos()["chelsea"]).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            hosts.append(self.headers.get("Host", ""))
            if self.path == "/drip":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    try:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                    except OSError:
                        return
                    time.sleep(0.2)
                return
            if self.path == "/to-internal":
                self.send_response(302)
                self.send_header("Location", "http://internal.test/secret")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(photo)))
            self.end_headers()
            self.wfile.write(photo)

        def log_message(self, *a: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}", hosts
    httpd.shutdown()


def test_one_total_deadline_against_a_dripping_server(tricky: tuple[str, list[str]]) -> None:
    where, _ = tricky
    t = time.monotonic()
    with pytest.raises(LookalikeError, match="timed out after 1.5 s"):
        fetch_url(f"http://{where}/drip", allow_private=True, timeout=1.5)
    assert time.monotonic() - t < 3.0


@pytest.mark.parametrize("host", ["100.64.0.1", "100.127.255.254", "[2002:7f00:1::]", "[2002:a00:1::]",
                                  "[::ffff:127.0.0.1]", "[::ffff:10.0.0.1]", "[64:ff9b::a00:1]", "[64:ff9b::7f00:1]",
                                  "[::127.0.0.1]", "198.18.0.1", "192.0.0.8", "192.0.2.1", "240.0.0.1",
                                  "255.255.255.255", "224.0.0.1", "[fc00::1]", "[fe80::1]", "[ff02::1]", "[::]",
                                  "[2001:db8::1]", "0.0.0.0", "127.1"])
def test_every_non_global_address_refused(host: str) -> None:
    with pytest.raises(Forbidden, match="not a public internet address"):
        check_address(f"http://{host}/a.jpg", allow_private=False)


def test_every_resolved_address_is_checked_without_connecting() -> None:
    from lookalike.io.fetch import checked_addresses

    public = lambda host, port: ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]  # noqa: E731
    assert [str(a) for a in checked_addresses("https://photos.example/a.jpg", False, resolver=public)] == [
        "93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]
    mixed = lambda host, port: ["93.184.216.34", "10.0.0.7"]  # noqa: E731
    with pytest.raises(Forbidden, match="10.0.0.7"):
        checked_addresses("http://rebind.example/a.jpg", False, resolver=mixed)
    with pytest.raises(LookalikeError, match="only http"):
        checked_addresses("ftp://x/a.jpg", True)


def test_connects_to_the_checked_address_with_the_right_host(tricky: tuple[str, list[str]]) -> None:
    where, hosts = tricky
    port = int(where.split(":")[1])
    calls: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    data = fetch_url(f"http://photos.test:{port}/cat.png", allow=LOOPBACK, resolver=resolver)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert calls == ["photos.test"]  # resolved once; no second lookup by the HTTP client (photos.test is not in DNS)
    assert hosts[-1] == f"photos.test:{port}"


def test_redirects_are_rechecked(tricky: tuple[str, list[str]]) -> None:
    where, hosts = tricky
    port = int(where.split(":")[1])
    names = {"photos.test": ["127.0.0.1"], "internal.test": ["10.1.2.3"]}
    before = len(hosts)
    with pytest.raises(Forbidden, match="internal.test"):
        fetch_url(f"http://photos.test:{port}/to-internal", allow=LOOPBACK, resolver=lambda h, p: names[h])
    assert len(hosts) == before + 1  # the redirect was refused before any connection to it


@pytest.fixture(scope="module")
def tls() -> Iterator[tuple[int, object, list[str | None]]]:
    """An HTTPS server on 127.0.0.1 with a certificate for ``photos.test`` from a throwaway CA (trustme)."""
    import ssl

    trustme = pytest.importorskip("trustme", reason="trustme (a dev extra) makes the test certificates")
    ca = trustme.CA()
    photo = Path(sample_photos()["chelsea"]).read_bytes()
    sni: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(photo)))
            self.end_headers()
            self.wfile.write(photo)

        def log_message(self, *a: object) -> None:
            pass

    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("photos.test").configure_cert(server_ctx)
    server_ctx.sni_callback = lambda sock, name, ctx: sni.append(name)  # type: ignore[assignment,misc,return-value]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = server_ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    yield httpd.server_address[1], client_ctx, sni
    httpd.shutdown()


def test_https_goes_to_the_checked_address_with_the_hosts_name_and_certificate(tls) -> None:  # type: ignore[no-untyped-def]
    """HTTPS through the pinned address: SNI and the certificate check use the URL's host, not the address."""
    port, ctx, sni = tls
    calls: list[str] = []

    def resolver(host: str, p: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"]

    data = fetch_url(f"https://photos.test:{port}/cat.jpg", allow=LOOPBACK, resolver=resolver, ssl_context=ctx)
    assert data == Path(sample_photos()["chelsea"]).read_bytes()
    assert calls == ["photos.test"] and sni[-1] == "photos.test"
    # a host the certificate is not for: refused by the certificate check, in one line
    with pytest.raises(LookalikeError, match="certificate") as err:
        fetch_url(f"https://other.test:{port}/cat.jpg", allow=LOOPBACK, resolver=resolver, ssl_context=ctx)
    assert "\n" not in str(err.value) and sni[-1] == "other.test"
    # and a certificate from a CA the client does not trust (the default context): refused too
    with pytest.raises(LookalikeError, match="certificate"):
        fetch_url(f"https://photos.test:{port}/cat.jpg", allow=LOOPBACK, resolver=resolver, timeout=5)
