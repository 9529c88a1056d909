"""A document's URL → its bytes: http(s) only, never a private, loopback or link-local address (checked on
every redirect), with a size cap and time-outs. Refusals are BadDocument / DocumentTooLarge with the reason."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from index.errors import BadDocument, DocumentTooLarge

MAX_REDIRECTS = 5
Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class Fetched:
    url: str  # after redirects
    data: bytes
    content_type: str


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadDocument(f"cannot resolve host {host!r}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, *, allow: Collection[str] = (), resolver: Resolver = resolve) -> None:
    """BadDocument unless `url` is http(s) to a host whose every address is public. `allow` lists
    `host:port` pairs that may be private all the same (an intranet source; the tests' loopback server)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BadDocument(f"only http and https URLs can be fetched, not {parts.scheme or 'a bare path'!r}")
    host = parts.hostname
    if not host:
        raise BadDocument("the URL names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BadDocument("the URL has an invalid port") from None
    if f"{host}:{port}" in allow:
        return
    for address in resolver(host, port):
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast:
            raise BadDocument(f"refused: {host} resolves to a private or local address ({ip})")


def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float = 20.0,
    allow: Collection[str] = (),
    resolver: Resolver = resolve,
    transport: httpx.BaseTransport | None = None,
) -> Fetched:
    """GET `url`, following at most MAX_REDIRECTS redirects, each target checked like the first; the whole
    download must finish within `timeout` seconds and stay under `max_bytes`."""
    deadline = time.monotonic() + timeout
    timeouts = httpx.Timeout(timeout, connect=min(timeout, 5.0))
    headers = {"User-Agent": "ketluan-ingest/1.0", "Accept": "text/html,application/pdf,*/*;q=0.5"}
    with httpx.Client(
        timeout=timeouts, follow_redirects=False, transport=transport, headers=headers
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, allow=allow, resolver=resolver)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect:
                        location = response.headers.get("location", "")
                        if not location:
                            raise BadDocument(f"{url} redirects without a Location")
                        url = urljoin(url, location)
                        continue
                    if response.status_code >= 400:
                        raise BadDocument(f"{url} answered HTTP {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise DocumentTooLarge(f"{url} is {declared} bytes, larger than {max_bytes}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > max_bytes:
                            raise DocumentTooLarge(f"{url} is larger than {max_bytes} bytes")
                        if time.monotonic() > deadline:
                            raise BadDocument(f"{url} took longer than {timeout:g} s to download")
                    return Fetched(str(response.url), bytes(body), response.headers.get("content-type", ""))
            except httpx.TimeoutException:
                raise BadDocument(f"{url} did not answer within {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise BadDocument(f"cannot fetch {url}: {exc.__class__.__name__}: {exc}") from None
    raise BadDocument(f"more than {MAX_REDIRECTS} redirects")
