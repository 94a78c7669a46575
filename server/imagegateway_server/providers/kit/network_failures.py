"""Classifies what the network does to one upstream attempt into a ProviderError.

``upstream_errors`` wraps an attempt: it bounds it in time and turns timeouts, resets, refused
connections, DNS failures, truncated or undecodable bodies and non-HTTP answers into a classified
``ProviderError`` (TIMEOUT 408, UPSTREAM_BUG or UNAVAILABLE 502) whose message never contains the
API key. An answer that did arrive is classified by its status instead (``status``).
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp.http_exceptions import ContentEncodingError

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import SNIPPET_CHARS
from imagegateway_server.providers.kit.errors import Secrets, redact
from imagegateway_server.providers.kit.transport import DEFAULT_ATTEMPT_TIMEOUT_SECONDS, UpstreamRefused


@asynccontextmanager
async def upstream_errors(provider: str, *, secret: Secrets, attempt_seconds: float | None) -> AsyncIterator[None]:
    """Bounds one attempt by ``attempt_seconds`` (default 120) and classifies what escapes it.

    aiohttp's read timeout is per read; the overall bound catches an upstream that trickles bytes.
    """
    total = DEFAULT_ATTEMPT_TIMEOUT_SECONDS if attempt_seconds is None else attempt_seconds
    try:
        async with asyncio.timeout(total):
            yield
    except aiohttp.ClientError as exc:  # before TimeoutError: aiohttp's own timeouts subclass it
        raise classify_client_error(exc, provider=provider, secret=secret) from None
    except TimeoutError:
        raise ProviderError(
            ErrorKind.TIMEOUT,
            f"{provider}: upstream did not answer within {total:g} s",
            provider=provider,
            status_code=408,
            code="timeout",
        ) from None


def classify_client_error(exc: aiohttp.ClientError, *, provider: str, secret: Secrets) -> ProviderError:
    """Turns an aiohttp exception into a classified ProviderError (TIMEOUT 408, else 502)."""
    detail = _detail(exc, secret)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            phase = "connecting"  # aiohttp's connect timeout also covers waiting for a pooled connection
        elif isinstance(exc, aiohttp.SocketTimeoutError):
            phase = "waiting for the response"
        else:
            phase = "talking to upstream"
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"{provider}: upstream timed out while {phase}",
            provider=provider,
            status_code=408,
            code="timeout",
        )
    if isinstance(exc, aiohttp.ClientPayloadError) and _caused_by(exc, ContentEncodingError):
        return _malformed(provider, f"upstream body could not be decoded ({detail})")
    if isinstance(exc, aiohttp.ClientResponseError) and not isinstance(exc, aiohttp.ClientHttpProxyError):
        # Without raise_for_status or redirects, aiohttp raises this only for a response that is not HTTP.
        return _malformed(provider, f"upstream sent a response that is not valid HTTP ({detail})")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        what = "upstream closed the connection before the response was complete (truncated body)"
        code = "truncated_response"
    elif isinstance(exc, aiohttp.ClientConnectorDNSError):
        what, code = "DNS lookup of the upstream host failed", "dns_failure"
    elif isinstance(exc, aiohttp.ClientProxyConnectionError | aiohttp.ClientHttpProxyError):
        what, code = "the proxy to upstream failed", "proxy_error"
    elif isinstance(exc, aiohttp.ClientConnectorError | UpstreamRefused):
        what, code = _connect_failure(exc)
    elif isinstance(exc, aiohttp.ClientConnectionResetError) or _is_reset(exc):
        what, code = "connection reset by upstream", "connection_reset"
    elif isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        what, code = "the upstream URL is invalid", "invalid_upstream_url"
    else:
        what, code = "network error while talking to upstream", "network_error"
    message = f"{provider}: {what}" + (f" ({detail})" if detail else "")
    return ProviderError(ErrorKind.UNAVAILABLE, message, provider=provider, status_code=502, code=code)


def _malformed(provider: str, what: str) -> ProviderError:
    # ``what`` carries only the already redacted detail, so the message is not scrubbed again.
    return ProviderError(
        ErrorKind.UPSTREAM_BUG, f"{provider}: {what}", provider=provider, status_code=502, code="malformed_response"
    )


def _detail(exc: BaseException, secret: Secrets) -> str:
    """The exception's text for a message: the key removed, whitespace folded, at most a snippet long."""
    text = " ".join(redact(str(exc), secret).split())
    return text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS] + "..."


def _connect_failure(exc: aiohttp.ClientConnectionError) -> tuple[str, str]:
    if any(isinstance(c, ConnectionRefusedError) for c in _causes(exc)):
        return "connection refused by upstream", "connection_refused"
    if _is_reset(exc):
        return "connection reset by upstream", "connection_reset"
    return "could not connect to upstream", "connect_error"


def _is_reset(exc: BaseException) -> bool:
    for cause in _causes(exc):
        if isinstance(cause, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return True
        if isinstance(cause, OSError) and cause.errno in (errno.ECONNRESET, errno.EPIPE):
            return True
    return False


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(cause, kind) for cause in _causes(exc))


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen
