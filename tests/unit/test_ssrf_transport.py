"""The SSRF-guarded upstream client over real loopback sockets.

A lookup function stands in for DNS (so ``rebind.example`` can "resolve" to 127.0.0.1 without a DNS
server); everything else is real: TCP connects, TLS handshakes with certificates made at test
time, and a small HTTP server that counts the connections it accepted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.providers.kit.network_failures import upstream_errors
from imagegateway_server.providers.kit.transport import UpstreamClient, UpstreamRefused
from imagegateway_server.security.ssrf_transport import GuardedResolver, guarded_client, resolve_host
from imagegateway_server.security.upstream_hosts import IPAddress, UpstreamHostPolicy
from tests.certificates import TestCA
from tests.raw_http import RawRequest, RawUpstream, http_response

LOOPBACK = ipaddress.ip_address("127.0.0.1")
SECOND_LOOPBACK = ipaddress.ip_address("127.0.0.2")
PUBLIC = ipaddress.ip_address("93.184.216.34")

Lookup = Callable[[str, int], Awaitable[list[IPAddress]]]


def lookup_for(table: dict[str, list[IPAddress]]) -> tuple[list[str], Lookup]:
    """A fake DNS lookup over ``table``, and the list of names it was asked for."""
    asked: list[str] = []

    async def lookup(host: str, port: int) -> list[IPAddress]:
        asked.append(host)
        if host in table:
            return table[host]
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    return asked, lookup


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


async def get(client: UpstreamClient, url: str) -> tuple[int, bytes]:
    try:
        response = await client.send("GET", url, provider="p", attempt_seconds=10)
    finally:
        await client.aclose()
    return response.status_code, response.body


async def test_a_public_name_that_resolves_to_loopback_is_never_connected(
    ca: TestCA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The save-time check passes (a public-looking name over https); DNS then answers 127.0.0.1.
    policy = UpstreamHostPolicy()
    async with RawUpstream(ssl_context=server_context(ca, "rebind.example")) as server:
        url = server.url("/v1/images/generations", host="rebind.example")
        assert policy.check(url, param="custom_host") == url
        _, lookup = lookup_for({"rebind.example": [LOOPBACK]})
        client = guarded_client(policy, lookup=lookup, ssl_context=client_context(ca))
        with caplog.at_level(logging.WARNING), pytest.raises(UpstreamRefused, match=r"not allowed.*local") as refused:
            await get(client, url)
        assert "127.0.0.1" not in str(refused.value)  # the caller does not learn the internal address
        assert server.connections == 0
    blocked = [r for r in caplog.records if r.getMessage() == "upstream connection blocked by the SSRF guard"]
    assert blocked and blocked[0].blocked_addresses == ["127.0.0.1"]  # type: ignore[attr-defined]


async def test_one_private_answer_among_public_ones_blocks_the_host() -> None:
    _, lookup = lookup_for({"mixed.example": [PUBLIC, LOOPBACK]})
    async with RawUpstream() as server:
        with pytest.raises(UpstreamRefused, match="not allowed"):
            await get(guarded_client(UpstreamHostPolicy(), lookup=lookup), f"https://mixed.example:{server.port}/")
    assert server.connections == 0


async def test_the_checked_address_is_the_connected_address(ca: TestCA) -> None:
    # The name resolves (once, through our lookup) to 127.0.0.2, where the only server listens: the
    # connection arriving there was made to the address the policy checked, not to a second lookup.
    asked, lookup = lookup_for({"upstream.internal": [SECOND_LOOPBACK]})
    async with RawUpstream(host="127.0.0.2", ssl_context=server_context(ca, "upstream.internal")) as server:
        client = guarded_client(UpstreamHostPolicy(["127.0.0.2"]), lookup=lookup, ssl_context=client_context(ca))
        assert await get(client, server.url(host="upstream.internal")) == (200, b"ok")
        assert server.requests[0].headers["host"] == f"upstream.internal:{server.port}"
    assert asked == ["upstream.internal"]
    assert server.connections == 1


async def test_the_resolver_hands_aiohttp_only_checked_addresses_under_the_name() -> None:
    _, lookup = lookup_for({"two.internal": [LOOPBACK, SECOND_LOOPBACK]})
    resolver = GuardedResolver(UpstreamHostPolicy(["127.0.0.0/8"]), lookup=lookup)
    results = await resolver.resolve("two.internal", 443, family=socket.AF_UNSPEC)
    assert [(r["hostname"], r["host"], r["port"], r["family"]) for r in results] == [
        ("two.internal", "127.0.0.1", 443, socket.AF_INET),
        ("two.internal", "127.0.0.2", 443, socket.AF_INET),
    ]
    with pytest.raises(OSError, match="returned no address"):  # aiohttp asked for IPv6 only
        await resolver.resolve("two.internal", 443, family=socket.AF_INET6)


async def test_https_to_a_listed_address_keeps_sni_and_hostname_verification(ca: TestCA) -> None:
    _, lookup = lookup_for({"upstream.test": [LOOPBACK], "impostor.test": [LOOPBACK]})
    policy = UpstreamHostPolicy(["127.0.0.0/8"])
    async with RawUpstream(ssl_context=server_context(ca, "upstream.test")) as server:
        client = guarded_client(policy, lookup=lookup, ssl_context=client_context(ca))
        assert await get(client, server.url(host="upstream.test")) == (200, b"ok")
        # The same socket address under a name the certificate does not carry fails verification:
        # the handshake checked the URL's name, not the pinned IP.
        client = guarded_client(policy, lookup=lookup, ssl_context=client_context(ca))
        with pytest.raises(
            aiohttp.ClientConnectorCertificateError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"
        ):
            await get(client, server.url(host="impostor.test"))


async def test_plain_http_to_an_unlisted_address_is_refused_before_any_connect() -> None:
    asked, lookup = lookup_for({})
    async with RawUpstream() as server:
        for host in ("127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]", "localhost"):
            with pytest.raises(UpstreamRefused, match="not allowed"):
                await get(guarded_client(UpstreamHostPolicy(), lookup=lookup), server.url(host=host))
    assert asked == [] and server.connections == 0


async def test_https_to_a_private_literal_is_refused_without_a_lookup() -> None:
    # aiohttp connects to IP literals without asking the resolver: the per-request check covers them.
    asked, lookup = lookup_for({})
    for host in ("127.0.0.1", "[::1]", "169.254.169.254", "[fd00::1]", "10.0.0.1"):
        with pytest.raises(UpstreamRefused, match="not allowed"):
            await get(guarded_client(UpstreamHostPolicy(), lookup=lookup), f"https://{host}/v1")
    assert asked == []


async def test_a_listed_address_is_reached_in_the_spellings_aiohttp_connects_to() -> None:
    async with RawUpstream() as server:
        for host in ("127.0.0.1", "0x7f.1", "[::ffff:127.0.0.1]"):
            assert await get(guarded_client(UpstreamHostPolicy(["127.0.0.1"])), server.url(host=host)) == (200, b"ok")
        # aiohttp itself refuses the legacy all-numeric spellings, listed or not: they fail closed.
        with pytest.raises(aiohttp.InvalidUrlClientError):
            await get(guarded_client(UpstreamHostPolicy(["127.0.0.1"])), server.url(host="2130706433"))
    assert server.connections == 3


async def test_a_listed_name_is_trusted_wherever_it_resolves() -> None:
    _, lookup = lookup_for({"emulator.internal": [LOOPBACK]})
    async with RawUpstream() as server:
        client = guarded_client(UpstreamHostPolicy(["emulator.internal"]), lookup=lookup)
        assert await get(client, server.url(host="emulator.internal")) == (200, b"ok")


async def test_a_redirect_is_returned_not_followed() -> None:
    async with RawUpstream() as target:

        def redirect(request: RawRequest) -> bytes:
            return http_response(302, headers={"location": target.url()})

        async with RawUpstream(redirect) as redirecting:
            client = guarded_client(UpstreamHostPolicy(["127.0.0.1"]))
            assert (await get(client, redirecting.url()))[0] == 302
        assert target.connections == 0


async def test_dns_failure_is_a_dns_error_with_the_cause_kept() -> None:
    _, lookup = lookup_for({})
    with pytest.raises(aiohttp.ClientConnectorDNSError, match="Name or service not known"):
        await get(guarded_client(UpstreamHostPolicy(), lookup=lookup), "https://nowhere.invalid/")
    with pytest.raises(ProviderError) as info:
        async with upstream_errors("openai", secret="sk-secret-value", attempt_seconds=10):
            await get(guarded_client(UpstreamHostPolicy(), lookup=lookup), "https://nowhere.invalid/")
    assert info.value.code == "dns_failure"


async def test_a_name_that_resolves_to_nothing_is_a_dns_failure() -> None:
    _, lookup = lookup_for({"empty.example": []})
    with pytest.raises(aiohttp.ClientConnectorDNSError, match="returned no address"):
        await get(guarded_client(UpstreamHostPolicy(), lookup=lookup), "https://empty.example/")


async def test_the_real_resolver_answers_are_checked_at_connect_time() -> None:
    # The system resolver: "localhost" resolves to loopback, which is refused unless listed.
    async with RawUpstream() as server:
        assert LOOPBACK in await resolve_host("localhost", server.port)
        with pytest.raises(UpstreamRefused, match="not allowed"):
            await GuardedResolver(UpstreamHostPolicy()).resolve("localhost", server.port, family=socket.AF_UNSPEC)
        allowed = GuardedResolver(UpstreamHostPolicy(["127.0.0.1", "::1"]))
        assert "127.0.0.1" in [
            r["host"] for r in await allowed.resolve("localhost", server.port, family=socket.AF_UNSPEC)
        ]
        # Through the client, with the name listed (plain http needs that): resolved, checked, connected.
        listed = guarded_client(UpstreamHostPolicy(["localhost"]))
        assert await get(listed, server.url(host="localhost")) == (200, b"ok")
    assert server.connections == 1


async def test_an_unlisted_name_may_resolve_to_a_listed_address(ca: TestCA) -> None:
    _, lookup = lookup_for({"loopback.example": [LOOPBACK]})
    async with RawUpstream(ssl_context=server_context(ca, "loopback.example")) as server:
        url = server.url(host="loopback.example")
        with pytest.raises(UpstreamRefused):
            await get(guarded_client(UpstreamHostPolicy(), lookup=lookup, ssl_context=client_context(ca)), url)
        listed = guarded_client(UpstreamHostPolicy(["127.0.0.1"]), lookup=lookup, ssl_context=client_context(ca))
        assert await get(listed, url) == (200, b"ok")
    assert server.connections == 1
