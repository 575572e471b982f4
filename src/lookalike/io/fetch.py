"""Fetch a query image from an http(s) URL: one total deadline, a size cap, and only global addresses.

- **Deadline**: ``timeout`` bounds the whole fetch (resolving, connecting, TLS, headers, body, every redirect),
  not each read: a timer shuts the socket down when it passes, so a server that drips one byte a second
  cannot keep a request open past it.
- **Addresses**: every address the host resolves to must be globally routable (``ip.is_global``), checked
  also through the forms that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, NAT64
  ``64:ff9b::/96``, 6to4 ``2002::/16``, IPv4-compatible ``::a.b.c.d``), unless private addresses are
  allowed (``allow_private``, or the networks in ``allow``). Shared address space (100.64.0.0/10), loopback,
  private, link-local, multicast, reserved and documentation ranges are all refused.
- **No second lookup**: the connection goes to the address that was checked (the host is resolved once per
  request, by ``resolver``), with the URL's host in ``Host`` and in TLS SNI / certificate checks, so DNS
  rebinding cannot swap the address between the check and the connect. Every redirect is checked the same way.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence

from lookalike.errors import Forbidden, LookalikeError, TooLarge
from lookalike.io.urls import is_url  # noqa: F401 - re-exported

USER_AGENT = "lookalike/0.1 (+image search)"
MAX_REDIRECTS = 5
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> IP addresses as text

NAT64 = ipaddress.ip_network("64:ff9b::/96")
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
# Not globally reachable (IANA special-purpose registries) but missed by ``is_global`` in older Pythons.
NOT_GLOBAL = tuple(ipaddress.ip_network(n) for n in (
    "192.0.0.0/24", "64:ff9b:1::/48", "100::/64", "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16"))


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


def embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, IPv4-compatible), if any."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr.ipv4_mapped:
        return addr.ipv4_mapped
    if addr.sixtofour:
        return addr.sixtofour
    if addr in NAT64 or (addr in IPV4_COMPATIBLE and int(addr) > 1):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def is_public(addr: Address) -> bool:
    """Globally routable, and so is any IPv4 address it embeds."""
    inner = embedded_ipv4(addr)
    if inner is not None and not is_public(inner):
        return False
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified or addr.is_loopback or addr.is_link_local:
        return False
    if any(addr in net for net in NOT_GLOBAL if net.version == addr.version):
        return False
    return addr.is_global and not addr.is_private


def _split(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-with-query), or a one-line error."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise LookalikeError(f"not a valid URL: {err}") from None
    if parts.scheme not in ("http", "https"):
        raise LookalikeError(f"only http and https URLs can be fetched, not {parts.scheme or 'this'!r}")
    host = parts.hostname
    if not host:
        raise LookalikeError("URL has no host")
    if parts.username is not None or parts.password is not None:
        raise LookalikeError("URLs with a user name or password are not fetched")
    path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80), path


def checked_addresses(url: str, allow_private: bool, *, allow: Sequence[Network] = (),
                      resolver: Resolver = system_resolver) -> list[Address]:
    """The addresses to connect to for ``url``: resolved once; every one checked (one refused refuses all)."""
    _, host, port, _ = _split(url)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        try:
            found = [ipaddress.ip_address(a) for a in resolver(host, port)]
        except (OSError, UnicodeError, ValueError):
            raise LookalikeError(f"cannot resolve host {host!r}") from None
        if not found:
            raise LookalikeError(f"cannot resolve host {host!r}")
    if not allow_private:
        for addr in found:
            if not is_public(addr) and not any(addr in net for net in allow):
                raise Forbidden(f"refusing to fetch {host} ({addr}): not a public internet address (loopback, "
                                "private, shared, link-local or reserved; allow with --allow-private-urls)")
    return found


def check_address(url: str, allow_private: bool) -> None:
    """Refuse ``url`` unless it is http(s) to public addresses (or private ones are allowed)."""
    checked_addresses(url, allow_private)


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand (the URL's host still goes in Host)."""

    def __init__(self, host: str, port: int, addr: Address, deadline: "_Deadline") -> None:
        super().__init__(host, port, timeout=deadline.left())
        self.addr, self.deadline = addr, deadline

    def connect(self) -> None:
        self.sock = socket.create_connection((str(self.addr), self.port), timeout=self.deadline.left())
        self.deadline.watch(self.sock)


class _PinnedTLS(_Pinned):
    default_port = 443

    def __init__(self, host: str, port: int, addr: Address, deadline: "_Deadline", context: ssl.SSLContext) -> None:
        super().__init__(host, port, addr, deadline)
        self.context = context

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)  # SNI + certificate: the host
        self.deadline.watch(self.sock)


class _Deadline:
    """One deadline for a whole fetch; sockets registered with :meth:`watch` are shut down when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            self.expired = True
            raise TimeoutError
        return left

    def watch(self, sock: socket.socket) -> None:
        self._socks.append(sock)
        sock.settimeout(self.left())

    def _expire(self) -> None:
        self.expired = True
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cancel(self) -> None:
        self._timer.cancel()


def fetch_url(url: str, *, allow_private: bool = False, timeout: float = 10.0, max_bytes: int = 20_000_000,
              allow: Sequence[Network] = (), resolver: Resolver = system_resolver,
              ssl_context: ssl.SSLContext | None = None) -> bytes:
    """The body at ``url`` (following up to 5 redirects), within ``timeout`` seconds in all."""
    deadline = _Deadline(timeout)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = _get(url, allow_private, allow, resolver, ssl_context, deadline, max_bytes)
            if location is None:
                if status >= 400:
                    raise LookalikeError(f"fetching {url} failed: HTTP {status} {http.client.responses.get(status, '')}".rstrip())
                return body
            url = urllib.parse.urljoin(url, location)
        raise LookalikeError(f"fetching stopped after {MAX_REDIRECTS} redirects")
    except (TimeoutError, socket.timeout):
        raise LookalikeError(f"fetching {url} timed out after {timeout:g} s") from None
    except (OSError, http.client.HTTPException) as err:
        if deadline.expired:
            raise LookalikeError(f"fetching {url} timed out after {timeout:g} s") from None
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise LookalikeError(f"fetching {url} failed: {reason}") from None
    finally:
        deadline.cancel()


def _get(url: str, allow_private: bool, allow: Sequence[Network], resolver: Resolver,  # noqa: PLR0913
         context: ssl.SSLContext | None, deadline: _Deadline, max_bytes: int) -> tuple[int, str | None, bytes]:
    scheme, host, port, path = _split(url)
    addrs = checked_addresses(url, allow_private, allow=allow, resolver=resolver)
    last: OSError | None = None
    for addr in addrs:
        if scheme == "https":
            conn: _Pinned = _PinnedTLS(host, port, addr, deadline, context or ssl.create_default_context())
        else:
            conn = _Pinned(host, port, addr, deadline)
        try:
            conn.connect()
        except (ConnectionError, socket.timeout, TimeoutError, OSError) as err:
            conn.close()
            last = err
            if deadline.expired or isinstance(err, ssl.SSLError):
                raise
            continue
        try:
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "image/*",
                                               "Accept-Encoding": "identity", "Connection": "close"})
            resp = conn.getresponse()
            if resp.status in (301, 302, 303, 307, 308) and resp.getheader("Location"):
                return resp.status, resp.getheader("Location"), b""
            if resp.status >= 400:
                return resp.status, None, b""
            return resp.status, None, _body(resp, deadline, max_bytes)
        finally:
            conn.close()
    assert last is not None
    raise last


def _body(resp: http.client.HTTPResponse, deadline: _Deadline, max_bytes: int) -> bytes:
    length = resp.getheader("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise TooLarge(f"URL content too large ({int(length) // 1_000_000} MB > {max_bytes // 1_000_000} MB limit)")
    chunks, total = [], 0
    while True:
        deadline.left()  # raises once the deadline has passed
        chunk = resp.read1(65536)  # returns what one read gave: a slow server cannot stretch a read
        if not chunk:
            break
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(f"URL content larger than the {max_bytes // 1_000_000} MB limit")
        chunks.append(chunk)
    if deadline.expired:  # the socket was shut down under a slow read: what came is not the whole body
        raise TimeoutError
    return b"".join(chunks)
