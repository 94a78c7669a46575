"""The upstream HTTP transport that enforces the SSRF policy on every request and connection.

Checking a URL when it is saved is not enough: a public name may resolve to 127.0.0.1 or
169.254.169.254 a minute later (DNS rebinding), and a provider may hand back an image URL that
points inside the network. So the adapters' httpx clients send through ``GuardedTransport``:

* each request's scheme, host and port pass ``UpstreamHostPolicy.refusal_for_url`` first (plain
  http only to listed hosts, no private address in any spelling);
* each new connection is opened by ``GuardedNetworkBackend``, which resolves the host itself,
  checks every address DNS returned, and connects to those checked addresses: the address
  checked is the address connected to, and there is no second lookup to rebind.

TLS is untouched: httpcore still runs the handshake with the URL's host name for SNI and
certificate verification; only the TCP endpoint is pinned. Redirects are never followed (the
adapters' clients are made with ``follow_redirects=False``).
"""

from __future__ import annotations

import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import anyio
import httpcore
import httpx

from imagegateway_server.security.upstream_hosts import IPAddress, UpstreamHostPolicy, parse_address

log = logging.getLogger(__name__)

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
_DEFAULT_PORTS = {"http": 80, "https": 443}


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order, without duplicates."""
    literal = parse_address(host)
    if literal is not None:  # an IP literal needs no resolver round trip through a thread
        return [literal]
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = parse_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that connects only to addresses the policy allows."""

    def __init__(
        self,
        policy: UpstreamHostPolicy,
        *,
        resolver: Resolver = resolve_host,
        delegate: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolver
        self._delegate = delegate or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"DNS lookup of {host!r} timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"DNS lookup of {host!r} failed: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"DNS lookup of {host!r} returned no address")
        refused = self._policy.refused_addresses(host, port, addresses)
        if refused:
            # The caller learns that the host is not allowed, not which internal address it hit.
            log.warning("upstream connection blocked by the SSRF guard",
                        extra={"upstream_host": host, "upstream_port": port,
                               "blocked_addresses": [str(a) for a in refused]})
            raise httpcore.ConnectError(
                f"upstream host {host!r} is not allowed: it resolves to a local or private address "
                "not on IMAGEGW_ALLOWED_UPSTREAM_HOSTS"
            )
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._delegate.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc  # try the next address, as a resolver-driven connect would
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not an upstream")

    async def sleep(self, seconds: float) -> None:
        await self._delegate.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with the policy checked per request and a guarded network backend."""

    def __init__(
        self,
        policy: UpstreamHostPolicy,
        *,
        limits: httpx.Limits,
        verify: ssl.SSLContext | bool = True,
        resolver: Resolver = resolve_host,
    ) -> None:
        super().__init__(verify=verify, limits=limits, retries=0)
        self._policy = policy
        # httpx offers no network_backend argument, so the pool it built is replaced by an
        # identical one that has ours; fail loudly if a new httpx stops using ``_pool``.
        if not isinstance(getattr(self, "_pool", None), httpcore.AsyncConnectionPool):
            raise RuntimeError("this httpx version does not keep its pool in _pool; the SSRF guard cannot attach")
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            retries=0,  # one layer retries: the router (design.md §8)
            network_backend=GuardedNetworkBackend(policy, resolver=resolver),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        refusal = self._policy.refusal_for_url(url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme, 0))
        if refusal is not None:
            raise httpx.ConnectError(f"upstream URL is not allowed: {refusal}", request=request)
        return await super().handle_async_request(request)


def guarded_transport_factory(policy: UpstreamHostPolicy, limits: httpx.Limits) -> Callable[[], GuardedTransport]:
    """Makes one GuardedTransport per adapter (each provider keeps its own connection pool)."""
    return lambda: GuardedTransport(policy, limits=limits)
