"""The SSRF-guarded upstream transport over real loopback sockets.

A resolver stands in for DNS (so ``rebind.example`` can "resolve" to 127.0.0.1 without a DNS
server); everything else is real: TCP connects, TLS handshakes with certificates made at test
time, and a small HTTP server that counts the connections it accepted.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import httpcore
import httpx
import pytest

from imagegateway_server.providers.http import DEFAULT_LIMITS, create_client
from imagegateway_server.security.ssrf_transport import GuardedNetworkBackend, GuardedTransport, resolve_host
from imagegateway_server.security.upstream_hosts import IPAddress, UpstreamHostPolicy
from tests.certificates import TestCA

LOOPBACK = ipaddress.ip_address("127.0.0.1")
PUBLIC = ipaddress.ip_address("93.184.216.34")


class CountingServer:
    """Answers every request with 200 "ok" (or a redirect) and counts accepted connections."""

    def __init__(self, ssl_context: ssl.SSLContext | None = None, *, redirect_to: str | None = None) -> None:
        self.connections = 0
        self._ssl = ssl_context
        self._redirect_to = redirect_to
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> CountingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await reader.readuntil(b"\r\n\r\n")
            if self._redirect_to:
                head = f"HTTP/1.1 302 Found\r\nLocation: {self._redirect_to}\r\nContent-Length: 0\r\n"
                writer.write(head.encode() + b"Connection: close\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def resolver_for(table: dict[str, list[IPAddress]]) -> tuple[list[str], object]:
    """A fake DNS resolver over ``table``, and the list of names it was asked for."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        if host in table:
            return table[host]
        address = ipaddress.ip_address(host)  # IP literals "resolve" to themselves
        return [address]

    return asked, resolve


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Wraps the real backend and records the hosts it was asked to connect to."""

    def __init__(self) -> None:
        self.hosts: list[str] = []
        self._real = httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.hosts.append(host)
        return await self._real.connect_tcp(host, port, timeout=timeout, local_address=local_address,
                                            socket_options=socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ssrf-ca"))


def server_context(ca: TestCA, *names: str) -> ssl.SSLContext:
    issued = ca.issue(f"upstream-{'-'.join(names)}", dns=names)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(issued.cert_file, issued.key_file)
    return context


def client_context(ca: TestCA) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca.cert_file))


@pytest.fixture
async def plain_server() -> AsyncIterator[CountingServer]:
    async with CountingServer() as server:
        yield server


def guarded_client(policy: UpstreamHostPolicy, resolve: object, verify: ssl.SSLContext | bool = True
                   ) -> httpx.AsyncClient:
    return create_client(GuardedTransport(policy, limits=DEFAULT_LIMITS, verify=verify, resolver=resolve))  # type: ignore[arg-type]


async def test_a_public_name_that_resolves_to_loopback_is_never_connected(
    ca: TestCA, tmp_path: Path
) -> None:
    # The save-time check passes (a public-looking name over https); DNS then answers 127.0.0.1.
    policy = UpstreamHostPolicy()
    async with CountingServer(server_context(ca, "rebind.example")) as server:
        url = f"https://rebind.example:{server.port}/v1/images/generations"
        assert policy.check(url, param="custom_host") == url
        _, resolve = resolver_for({"rebind.example": [LOOPBACK]})
        async with guarded_client(policy, resolve, client_context(ca)) as client:
            with pytest.raises(httpx.ConnectError, match=r"not allowed.*local or private") as refused:
                await client.get(url)
        assert "127.0.0.1" not in str(refused.value)  # the caller does not learn the internal address
        assert server.connections == 0


async def test_one_private_answer_among_public_ones_blocks_the_host(plain_server: CountingServer) -> None:
    _, resolve = resolver_for({"mixed.example": [PUBLIC, LOOPBACK]})
    async with guarded_client(UpstreamHostPolicy(), resolve) as client:
        with pytest.raises(httpx.ConnectError, match="not allowed"):
            await client.get(f"https://mixed.example:{plain_server.port}/")
    assert plain_server.connections == 0


async def test_the_checked_address_is_the_connected_address(plain_server: CountingServer) -> None:
    asked, resolve = resolver_for({"upstream.internal": [LOOPBACK]})
    recording = RecordingBackend()
    backend = GuardedNetworkBackend(UpstreamHostPolicy(["127.0.0.1"]), resolver=resolve,  # type: ignore[arg-type]
                                    delegate=recording)
    stream = await backend.connect_tcp("upstream.internal", plain_server.port, timeout=5)
    await stream.aclose()
    # One lookup, by us; the real backend was handed the checked IP literal, never the name.
    assert asked == ["upstream.internal"]
    assert recording.hosts == ["127.0.0.1"]


async def test_https_to_a_listed_address_keeps_sni_and_hostname_verification(ca: TestCA) -> None:
    _, resolve = resolver_for({"upstream.test": [LOOPBACK], "impostor.test": [LOOPBACK]})
    policy = UpstreamHostPolicy(["127.0.0.0/8"])
    async with CountingServer(server_context(ca, "upstream.test")) as server:
        async with guarded_client(policy, resolve, client_context(ca)) as client:
            response = await client.get(f"https://upstream.test:{server.port}/")
            assert (response.status_code, response.text) == (200, "ok")
            # The same socket address under a name the certificate does not carry fails verification:
            # the handshake checked the URL's name, not the pinned IP.
            with pytest.raises(httpx.ConnectError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
                await client.get(f"https://impostor.test:{server.port}/")


async def test_plain_http_to_an_unlisted_address_is_refused_before_any_connect(plain_server: CountingServer) -> None:
    asked, resolve = resolver_for({})
    async with guarded_client(UpstreamHostPolicy(), resolve) as client:
        for host in ("127.0.0.1", "2130706433", "0x7f.1", "[::ffff:127.0.0.1]"):
            with pytest.raises(httpx.ConnectError, match="not allowed"):
                await client.get(f"http://{host}:{plain_server.port}/")
    assert asked == [] and plain_server.connections == 0


async def test_a_listed_address_is_reached_in_any_spelling(plain_server: CountingServer) -> None:
    async with create_client(GuardedTransport(UpstreamHostPolicy(["127.0.0.1"]), limits=DEFAULT_LIMITS)) as client:
        for host in ("127.0.0.1", "2130706433", "0x7f.1"):
            response = await client.get(f"http://{host}:{plain_server.port}/")
            assert response.text == "ok"
    assert plain_server.connections == 3


async def test_a_listed_name_is_trusted_wherever_it_resolves(plain_server: CountingServer) -> None:
    _, resolve = resolver_for({"emulator.internal": [LOOPBACK]})
    async with guarded_client(UpstreamHostPolicy(["emulator.internal"]), resolve) as client:
        response = await client.get(f"http://emulator.internal:{plain_server.port}/")
    assert response.text == "ok"


async def test_a_redirect_is_returned_not_followed() -> None:
    async with CountingServer() as target:
        async with CountingServer(redirect_to=f"http://127.0.0.1:{target.port}/") as redirecting:
            policy = UpstreamHostPolicy(["127.0.0.1"])
            async with create_client(GuardedTransport(policy, limits=DEFAULT_LIMITS)) as client:
                response = await client.get(f"http://127.0.0.1:{redirecting.port}/")
            assert response.status_code == 302
        assert target.connections == 0


async def test_dns_failure_is_a_connect_error_with_the_cause_kept() -> None:
    async def failing(host: str, port: int) -> list[IPAddress]:
        raise socket.gaierror(-2, "Name or service not known")

    async with guarded_client(UpstreamHostPolicy(), failing) as client:
        with pytest.raises(httpx.ConnectError, match="Name or service not known"):
            await client.get("https://nowhere.invalid/")


async def test_the_real_resolver_answers_are_checked_at_connect_time(plain_server: CountingServer) -> None:
    # The system resolver, below the URL check: "localhost" resolves to loopback, which is not listed.
    assert LOOPBACK in await resolve_host("localhost", plain_server.port)
    backend = GuardedNetworkBackend(UpstreamHostPolicy())
    with pytest.raises(httpcore.ConnectError, match="not allowed"):
        await backend.connect_tcp("localhost", plain_server.port, timeout=5)
    allowed = GuardedNetworkBackend(UpstreamHostPolicy(["127.0.0.1", "::1"]))
    stream = await allowed.connect_tcp("localhost", plain_server.port, timeout=5)
    await stream.aclose()
    assert plain_server.connections == 1
