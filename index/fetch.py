"""A document's URL → its bytes: http(s) only, never a private, loopback or link-local address (checked on
every redirect), with a size cap and time-outs. Refusals are BadDocument / DocumentTooLarge with the reason.

Each hop's host is resolved once, every address checked, and the connection made to a checked address (the
request URL names the address; the Host header and the TLS server name stay the host's), so a name that
answers a public address to the check and a loopback one to the connection (DNS rebinding) cannot reach
the inside."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any
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


@dataclass(frozen=True)
class Target:
    """Where a URL's request goes: the checked `addresses` to connect to, in the resolver's order of
    preference (empty for an allowed host: the system resolves it), and the `host` / `port` it names."""

    host: str
    port: int
    addresses: tuple[str, ...]


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses in the system's order of preference (getaddrinfo's), without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise BadDocument(f"cannot resolve host {host!r}: {exc}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str, *, allow: Collection[str] = (), resolver: Resolver = resolve) -> Target:
    """BadDocument unless `url` is http(s) to a host whose every address is public; where to connect.
    `allow` lists `host:port` pairs that may be private all the same (an intranet source; the tests'
    loopback server)."""
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
        return Target(host, port, ())
    addresses = [address.split("%", 1)[0] for address in resolver(host, port)]
    if not addresses:
        raise BadDocument(f"cannot resolve host {host!r}: no address")
    for address in addresses:
        ip = ipaddress.ip_address(address)
        if not ip.is_global or ip.is_multicast:
            raise BadDocument(f"refused: {host} resolves to a private or local address ({ip})")
    return Target(host, port, tuple(addresses))


def _requests(client: httpx.Client, url: str, target: Target) -> list[httpx.Request]:
    """The GET of `url`, once per checked address (tried in turn while the connection fails)."""
    if not target.addresses:
        return [client.build_request("GET", url)]
    request_url = httpx.URL(url)
    default_port = 443 if request_url.scheme == "https" else 80
    name = f"[{target.host}]" if ":" in target.host else target.host
    host_header = name if target.port == default_port else f"{name}:{target.port}"
    extensions: dict[str, Any] = {"sni_hostname": target.host} if request_url.scheme == "https" else {}
    return [
        client.build_request(
            "GET", request_url.copy_with(host=address), headers={"Host": host_header}, extensions=extensions
        )
        for address in target.addresses
    ]


def _send(client: httpx.Client, requests: list[httpx.Request]) -> httpx.Response:
    for request in requests[:-1]:
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError:
            continue
    return client.send(requests[-1], stream=True)


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
    # trust_env=False: a proxy taken from the environment would resolve the host itself, past the check
    with httpx.Client(
        timeout=timeouts, follow_redirects=False, transport=transport, headers=headers, trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            target = check_url(url, allow=allow, resolver=resolver)
            try:
                response = _send(client, _requests(client, url, target))
                try:
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
                    return Fetched(url, bytes(body), response.headers.get("content-type", ""))
                finally:
                    response.close()
            except httpx.TimeoutException:
                raise BadDocument(f"{url} did not answer within {timeout:g} s") from None
            except httpx.HTTPError as exc:
                raise BadDocument(f"cannot fetch {url}: {exc.__class__.__name__}: {exc}") from None
    raise BadDocument(f"more than {MAX_REDIRECTS} redirects")
