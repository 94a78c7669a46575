"""The SSRF policy enforced on every upstream request and every upstream connection.

Checking a URL when it is saved is not enough: a public name may resolve to 127.0.0.1 or
169.254.169.254 a minute later (DNS rebinding), and a provider may hand back an image URL that
points inside the network. So the adapters' clients are made by ``guarded_client``:

* each request's scheme, host and port pass ``UpstreamHostPolicy.refusal_for_url`` before anything
  is sent (plain http only to listed hosts, no private address in any spelling). aiohttp connects
  to an IP literal without asking a resolver, so this is the check literals get;
* each new connection's host name is resolved by ``GuardedResolver``, which looks the name up once,
  checks every address DNS returned and hands aiohttp only those checked addresses: the address
  checked is the address connected to, and there is no second lookup to rebind.

TLS is untouched: aiohttp runs the handshake with the URL's host name for SNI and certificate
verification; only the TCP endpoint is pinned. Redirects are never followed and proxies from the
environment are ignored (``providers.kit.transport.UpstreamClient``), so neither can route around the check.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from imagegateway_server.providers.kit.transport import UpstreamClient, UpstreamRefused
from imagegateway_server.security.upstream_hosts import IPAddress, UpstreamHostPolicy, parse_address

log = logging.getLogger(__name__)

Lookup = Callable[[str, int], Awaitable[list[IPAddress]]]


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    literal = parse_address(host)
    if literal is not None:  # an IP literal needs no resolver round trip through a thread
        return [literal]
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = parse_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


def check_url(policy: UpstreamHostPolicy, url: URL) -> None:
    """Raises UpstreamRefused when the policy refuses ``url``'s scheme, host and port."""
    refusal = policy.refusal_for_url(url.scheme, url.raw_host or "", url.port or 0)
    if refusal is not None:
        raise UpstreamRefused(f"upstream URL is not allowed: {refusal}")


def is_allow_listed(policy: UpstreamHostPolicy, url: URL) -> bool:
    """Whether ``url``'s host and port are on IMAGEGW_ALLOWED_UPSTREAM_HOSTS (not merely public)."""
    scheme_port = {"http": 80, "https": 443}.get(url.scheme, 0)
    return policy.listed(url.raw_host or "", url.port or scheme_port)


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that returns only the addresses the policy lets a connection go to."""

    def __init__(self, policy: UpstreamHostPolicy, *, lookup: Lookup = resolve_host) -> None:
        self._policy = policy
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        # An OSError here reaches the caller as aiohttp's DNS failure, with this text.
        addresses = await self._lookup(host, port)
        if family != socket.AF_UNSPEC:
            addresses = [a for a in addresses if _family(a) == family]
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, f"DNS lookup of {host!r} returned no address")
        refused = self._policy.refused_addresses(host, port, addresses)
        if refused:
            # The caller learns that the host is not allowed, not which internal address it hit.
            log.warning(
                "upstream connection blocked by the SSRF guard",
                extra={"upstream_host": host, "upstream_port": port, "blocked_addresses": [str(a) for a in refused]},
            )
            raise UpstreamRefused(
                f"upstream host {host!r} is not allowed: it resolves to a local or private address "
                "not on IMAGEGW_ALLOWED_UPSTREAM_HOSTS"
            )
        # hostname stays the name: aiohttp verifies the certificate and sends SNI for it.
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=_family(address),
                proto=0,
                flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


def _family(address: IPAddress) -> socket.AddressFamily:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def guarded_client(
    policy: UpstreamHostPolicy, *, lookup: Lookup = resolve_host, ssl_context: ssl.SSLContext | None = None
) -> UpstreamClient:
    """An upstream client that sends only where ``policy`` allows; ``lookup`` and ``ssl_context`` are for tests."""
    return UpstreamClient(
        url_check=functools.partial(check_url, policy),
        resolver=GuardedResolver(policy, lookup=lookup),
        ssl_context=ssl_context,
        allow_listed=functools.partial(is_allow_listed, policy),
    )


def guarded_client_factory(policy: UpstreamHostPolicy) -> Callable[[], UpstreamClient]:
    """Makes one guarded client per adapter (each provider keeps its own connection pool)."""
    return lambda: guarded_client(policy)
