"""URL fetching against DNS rebinding: the address checked is the address connected to. A fake network
(httpx.MockTransport) resolves a name the way a real transport would, through the same fake resolver that
answers a public address first and a loopback one after; no internet."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import httpx
import pytest

from index.errors import BadDocument
from index.fetch import fetch

PUBLIC = "93.184.215.14"
ARTICLE = "Kết luận số 999-KL/TW: bản công khai.".encode()
SECRET = b"instance metadata: the inside of the network"


class Rebinding:
    """A resolver that answers each name with `answers[0]` the first time, then `answers[1]` forever."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers: Iterator[list[str]] = iter(answers)
        self.last: list[str] = []
        self.calls = 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        self.last = next(self.answers, self.last)
        return self.last


class Network:
    """The transport's side: a request whose URL names a host (not an address) is resolved here, at connect
    time, as the system would; loopback holds a secret, the public address an article."""

    def __init__(self, resolver: Rebinding, down: frozenset[str] = frozenset()) -> None:
        self.resolver = resolver
        self.down = down
        self.connected: list[str] = []
        self.requests: list[httpx.Request] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            address = self.resolver(host, request.url.port or 80)[0]
        if address in self.down:
            raise httpx.ConnectError("connection refused", request=request)
        self.connected.append(address)
        self.requests.append(request)
        body = SECRET if ipaddress.ip_address(address).is_loopback else ARTICLE
        return httpx.Response(200, content=body, headers={"Content-Type": "text/plain; charset=utf-8"})


def test_a_name_rebound_to_loopback_after_the_check_is_not_reached() -> None:
    resolver = Rebinding([PUBLIC], ["127.0.0.1"])
    network = Network(resolver)
    fetched = fetch(
        "http://kl.example/kl-999.txt", max_bytes=10_000, resolver=resolver,
        transport=httpx.MockTransport(network.handle),
    )  # fmt: skip
    assert network.connected == [PUBLIC]
    assert fetched.data == ARTICLE and fetched.url == "http://kl.example/kl-999.txt"
    assert resolver.calls == 1  # resolved once: the check and the connection share the answer


def test_a_name_with_one_private_address_among_public_ones_is_refused_before_connecting() -> None:
    resolver = Rebinding([PUBLIC, "127.0.0.1"])
    network = Network(resolver)
    with pytest.raises(BadDocument, match="private or local address"):
        fetch("http://kl.example/", max_bytes=10_000, resolver=resolver,
              transport=httpx.MockTransport(network.handle))  # fmt: skip
    assert network.connected == []


@pytest.mark.parametrize(
    ("url", "host_header"),
    [
        ("https://kl.example/a.pdf", "kl.example"),
        ("https://kl.example:8443/a.pdf", "kl.example:8443"),
        ("http://kl.example:8080/a.pdf", "kl.example:8080"),
    ],
)
def test_the_pinned_request_keeps_the_host_header_and_the_tls_server_name(url: str, host_header: str) -> None:
    resolver = Rebinding([PUBLIC], ["127.0.0.1"])
    network = Network(resolver)
    fetch(url, max_bytes=10_000, resolver=resolver, transport=httpx.MockTransport(network.handle))
    (request,) = network.requests
    assert request.url.host == PUBLIC and request.headers["host"] == host_header
    expected_sni = "kl.example" if url.startswith("https") else None
    assert request.extensions.get("sni_hostname") == expected_sni


def test_a_checked_address_that_refuses_the_connection_gives_way_to_the_next_checked_one() -> None:
    resolver = Rebinding(["2606:2800:220:1:248:1893:25c8:1946", PUBLIC], ["127.0.0.1"])
    network = Network(resolver, down=frozenset({"2606:2800:220:1:248:1893:25c8:1946"}))
    fetched = fetch("http://kl.example/", max_bytes=10_000, resolver=resolver,
                    transport=httpx.MockTransport(network.handle))  # fmt: skip
    assert network.connected == [PUBLIC] and fetched.data == ARTICLE


def test_a_redirect_to_a_rebinding_name_is_pinned_too() -> None:
    first = {"kl.example": [[PUBLIC]], "cdn.example": [["93.184.215.15"], ["10.0.0.7"]]}
    calls: dict[str, int] = {}

    def resolver(host: str, port: int) -> list[str]:
        calls[host] = calls.get(host, 0) + 1
        answers = first[host]
        return answers[min(calls[host], len(answers)) - 1]

    connected: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            address = str(ipaddress.ip_address(host))
        except ValueError:
            address = resolver(host, 80)[0]
        connected.append(address)
        if request.url.path == "/moved":
            return httpx.Response(302, headers={"Location": "http://cdn.example/kl.txt"})
        body = SECRET if ipaddress.ip_address(address).is_private else ARTICLE
        return httpx.Response(200, content=body)

    fetched = fetch("http://kl.example/moved", max_bytes=10_000, resolver=resolver,
                    transport=httpx.MockTransport(handle))  # fmt: skip
    assert connected == [PUBLIC, "93.184.215.15"]
    assert fetched.data == ARTICLE and fetched.url == "http://cdn.example/kl.txt"
