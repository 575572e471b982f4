"""Fetch a query image from an http(s) URL, with a timeout, a size cap and an address check.

Loopback, private, link-local, multicast and reserved addresses are refused unless allowed, for the first
request and for every redirect.
"""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request

from lookalike.errors import Forbidden, LookalikeError, TooLarge

USER_AGENT = "lookalike/0.1 (+image search)"


def is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def check_address(url: str, allow_private: bool) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise LookalikeError(f"only http and https URLs can be fetched, not {parts.scheme or 'this'!r}")
    host = parts.hostname
    if not host:
        raise LookalikeError("URL has no host")
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        raise LookalikeError(f"cannot resolve host {host!r}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%")[0])
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        if (addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_multicast
                or addr.is_reserved or addr.is_unspecified):
            raise Forbidden(
                f"refusing to fetch {host} ({addr}): private, loopback or link-local address "
                "(allow with --allow-private-urls)"
            )


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_address(newurl, self.allow_private)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_url(url: str, *, allow_private: bool = False, timeout: float = 10.0, max_bytes: int = 20_000_000) -> bytes:
    check_address(url, allow_private)
    opener = urllib.request.build_opener(_CheckedRedirects(allow_private))
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT, "Accept": "image/*"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise TooLarge(f"URL content too large ({int(length) // 1_000_000} MB > {max_bytes // 1_000_000} MB limit)")
            chunks, total = [], 0
            while chunk := resp.read(65536):
                total += len(chunk)
                if total > max_bytes:
                    raise TooLarge(f"URL content larger than the {max_bytes // 1_000_000} MB limit")
                chunks.append(chunk)
            return b"".join(chunks)
    except urllib.error.HTTPError as err:
        raise LookalikeError(f"fetching {url} failed: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise LookalikeError(f"fetching {url} failed: {err.reason}") from None
    except (TimeoutError, socket.timeout):
        raise LookalikeError(f"fetching {url} timed out after {timeout:g} s") from None
