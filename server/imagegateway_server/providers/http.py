"""The upstream HTTP plumbing every adapter shares: its client, body reading, failure classes.

Each adapter owns one long-lived ``httpx.AsyncClient`` made by ``create_client``. The client never
retries and never follows redirects (the router owns retries, design.md §8); every request gets
explicit timeouts from ``attempt_timeout``; bodies are read with ``send`` under a size cap so one
misbehaving upstream cannot exhaust memory. ``upstream_errors`` turns whatever the network does
(timeouts, resets, DNS failures, truncated bodies) into a classified ``ProviderError`` whose message
never contains the API key. ``decode_image_b64`` and ``check_image`` vet the image a body carries.
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import email.utils
import errno
import json
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
import pybase64

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.image_info import sniff_image
from imagegateway_server.providers.model_aliases import NO_ALIASES, ModelAliases

CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_ATTEMPT_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# Image calls take 5-60 s each, so thousands can be in flight at once: a small pool would queue them
# inside the gateway (and time them out) while the provider could take them all.
DEFAULT_LIMITS = httpx.Limits(max_connections=4096, max_keepalive_connections=256, keepalive_expiry=30.0)

_SNIPPET_CHARS = 200


def create_client(
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncClient:
    """Makes an adapter's client; ``transport`` is for tests (e.g. ``httpx.MockTransport``)."""
    if transport is None:
        # retries=0: a failed connect is reported, not silently repeated (one layer retries).
        transport = httpx.AsyncHTTPTransport(retries=0, limits=limits)
    return httpx.AsyncClient(
        transport=transport,
        timeout=attempt_timeout(None),
        follow_redirects=False,
    )


def attempt_timeout(seconds: float | None) -> httpx.Timeout:
    """Timeouts for one attempt: connect 5 s (or less), read/write/pool ``seconds`` (default 120)."""
    total = DEFAULT_ATTEMPT_TIMEOUT_SECONDS if seconds is None else seconds
    return httpx.Timeout(total, connect=min(CONNECT_TIMEOUT_SECONDS, total))


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A fully read upstream answer."""

    status_code: int
    headers: httpx.Headers
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        value: str = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    provider: str,
    attempt_seconds: float | None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    **kwargs: Any,
) -> UpstreamResponse:
    """Sends one request and reads its (decoded) body under ``max_body_bytes``.

    A body over the cap is an UPSTREAM_BUG (502); httpx exceptions propagate for
    ``upstream_errors`` to classify.
    """
    async with client.stream(method, url, timeout=attempt_timeout(attempt_seconds), **kwargs) as response:
        body = await read_capped(response, max_bytes=max_body_bytes, provider=provider)
        return UpstreamResponse(response.status_code, response.headers, body)


async def read_capped(response: httpx.Response, *, max_bytes: int, provider: str) -> bytes:
    """Reads a streamed response body, refusing to hold more than ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(provider, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(provider, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(provider: str, max_bytes: int) -> ProviderError:
    return ProviderError(
        ErrorKind.UPSTREAM_BUG,
        f"{provider}: upstream response body is larger than {max_bytes} bytes",
        provider=provider,
        status_code=502,
        code="response_too_large",
    )


@asynccontextmanager
async def upstream_errors(
    provider: str, *, secret: str, attempt_seconds: float | None
) -> AsyncIterator[None]:
    """Bounds one attempt by ``attempt_seconds`` (default 120) and classifies what escapes it.

    httpx's read timeout is per read; the overall bound catches an upstream that trickles bytes.
    """
    total = DEFAULT_ATTEMPT_TIMEOUT_SECONDS if attempt_seconds is None else attempt_seconds
    try:
        async with asyncio.timeout(total):
            yield
    except TimeoutError:
        raise ProviderError(
            ErrorKind.TIMEOUT,
            f"{provider}: upstream did not answer within {total:g} s",
            provider=provider,
            status_code=408,
            code="timeout",
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise classify_http_error(exc, provider=provider, secret=secret) from None


def classify_http_error(
    exc: httpx.HTTPError | httpx.InvalidURL, *, provider: str, secret: str
) -> ProviderError:
    """Turns an httpx exception into a classified ProviderError (TIMEOUT 408, else 502)."""
    detail = redact(str(exc), secret)
    if isinstance(exc, httpx.TimeoutException):
        phase = {
            httpx.ConnectTimeout: "connecting",
            httpx.ReadTimeout: "waiting for the response",
            httpx.WriteTimeout: "sending the request",
            httpx.PoolTimeout: "waiting for a free connection",
        }.get(type(exc), "talking to upstream")
        return ProviderError(
            ErrorKind.TIMEOUT,
            f"{provider}: upstream timed out while {phase}",
            provider=provider,
            status_code=408,
            code="timeout",
        )
    if isinstance(exc, httpx.RemoteProtocolError):
        what = "upstream closed the connection before the response was complete (truncated body)"
        code = "truncated_response"
    elif isinstance(exc, httpx.ConnectError):
        what, code = _connect_failure(exc)
    elif isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.CloseError):
        if _is_reset(exc):
            what, code = "connection reset by upstream", "connection_reset"
        else:
            what, code = "network error while talking to upstream", "network_error"
    elif isinstance(exc, httpx.DecodingError):
        return ProviderError(
            ErrorKind.UPSTREAM_BUG,
            f"{provider}: upstream body could not be decoded ({detail})",
            provider=provider,
            status_code=502,
            code="malformed_response",
        )
    elif isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        what, code = "the upstream URL is invalid", "invalid_upstream_url"
    elif isinstance(exc, httpx.ProxyError):
        what, code = "the proxy to upstream failed", "proxy_error"
    else:
        what, code = "upstream request failed", "network_error"
    message = f"{provider}: {what}" + (f" ({detail})" if detail else "")
    return ProviderError(ErrorKind.UNAVAILABLE, message, provider=provider, status_code=502, code=code)


_DNS_HINTS = (
    "name or service not known",
    "nodename nor servname",
    "temporary failure in name resolution",
    "no address associated",
    "getaddrinfo failed",
    "name resolution",
)


def _connect_failure(exc: httpx.ConnectError) -> tuple[str, str]:
    text = str(exc).lower()
    causes = list(_causes(exc))
    if any(isinstance(c, socket.gaierror) for c in causes) or any(h in text for h in _DNS_HINTS):
        return "DNS lookup of the upstream host failed", "dns_failure"
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "refused" in text:
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
    text = str(exc).lower()
    return "reset" in text or "broken pipe" in text


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen



def parse_retry_after(
    headers: Mapping[str, str] | httpx.Headers, *, now: float | None = None
) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (milliseconds) or ``retry-after`` (seconds or HTTP-date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _positive_float(raw_ms)
        if seconds is not None:
            return seconds / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _positive_float(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _positive_float(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


_KEY_LIKE = re.compile(r"\b(?:sk|pk|rk|sess)-[A-Za-z0-9_\-\*\.]{4,}")
_MIN_REDACTED_SECRET = 4
_MASK = "***"  # shorter than any redacted secret


def redact(text: str, secret: str) -> str:
    """Removes the API key, and anything shaped like an API key, from an upstream message."""
    text = _KEY_LIKE.sub(_MASK, text)
    if len(secret) >= _MIN_REDACTED_SECRET:
        # Repeat: a replacement could complete another occurrence; each pass shortens the text.
        while secret in text:
            text = text.replace(secret, _MASK)
    return text


_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


def header_value_ok(value: str) -> bool:
    """Whether ``value`` can travel in an HTTP/1.1 header (visible ASCII, spaces and tabs)."""
    return all(" " <= c <= "~" or c == "\t" for c in value)


def request_headers(
    provider: str, forwarded: Mapping[str, str], own: Mapping[str, str]
) -> httpx.Headers:
    """``forwarded`` headers overlaid by the adapter's ``own`` (auth wins); unsendable ones refused.

    A bad ``authorization`` value is an AUTHENTICATION error whose message never shows the key.
    """
    headers = httpx.Headers()
    for name, value in (*forwarded.items(), *own.items()):
        if _TOKEN.match(name) and header_value_ok(value):
            headers[name] = value
        elif name.lower() == "authorization":
            raise ProviderError(
                ErrorKind.AUTHENTICATION,
                f"{provider}: the API key contains characters that cannot be sent in an HTTP header",
                provider=provider, status_code=401, code="invalid_api_key",
            )
        else:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{provider}: header {name!r} cannot be sent: only visible ASCII is allowed",
                provider=provider, status_code=400, code="invalid_value", param=name,
            )
    return headers


def provider_error(
    provider: str,
    kind: ErrorKind,
    message: str,
    *,
    secret: str,
    status_code: int | None = None,
    code: str | None = None,
    param: str | None = None,
    retry_after: float | None = None,
) -> ProviderError:
    """Builds a ProviderError whose message has been scrubbed of the API key."""
    return ProviderError(
        kind,
        redact(message, secret),
        provider=provider,
        status_code=status_code,
        code=code,
        param=param,
        retry_after=retry_after,
    )


def decode_image_b64(value: object, *, provider: str, secret: str) -> bytes:
    """Decodes a base64 image field; a missing field or invalid base64 is UPSTREAM_BUG."""
    if not isinstance(value, str) or not value:
        raise provider_error(
            provider, ErrorKind.UPSTREAM_BUG, f"{provider}: upstream image field is empty or not a string",
            secret=secret, status_code=502, code="malformed_response",
        )
    text = value.split(",", 1)[1] if value.startswith("data:") and "," in value else value
    try:
        # pybase64's SIMD decoder: ~0.1 ms per MiB where the standard library takes ~4 ms on the loop.
        # Only base64 with line breaks (valid, but rare) takes the stripping path.
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    try:
        data = data or pybase64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise provider_error(
            provider, ErrorKind.UPSTREAM_BUG, f"{provider}: upstream image is not valid base64",
            secret=secret, status_code=502, code="malformed_response",
        ) from None
    return data


def check_image(data: bytes, *, provider: str, secret: str) -> tuple[str, int, int]:
    """Returns (mime, width, height) of image bytes; bytes that are no known image are UPSTREAM_BUG."""
    mime, width, height = sniff_image(data)
    if mime == "application/octet-stream":
        raise provider_error(
            provider, ErrorKind.UPSTREAM_BUG, f"{provider}: upstream returned bytes that are not an image",
            secret=secret, status_code=502, code="malformed_response",
        )
    return mime, width, height


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body parsed as a JSON object, or None when it is empty, not JSON, or not an object."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def describe_bad_body(body: bytes) -> str:
    """Says what is wrong with a body that should have been JSON, for an error message."""
    return "an empty body" if not body.strip() else f"a non-JSON body: {snippet(body)}"


def snippet(body: bytes) -> str:
    """A short printable excerpt of a body for an error message."""
    text = body[:_SNIPPET_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


_T = TypeVar("_T")


async def all_or_nothing(calls: list[Awaitable[_T]]) -> list[_T]:
    """Runs calls concurrently; on the first failure cancels the rest and raises that failure."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class HttpAdapterBase:
    """What every HTTP adapter shares: its own pooled client, base URL, body cap and model aliases.

    Subclasses set ``name``, ``default_base_url`` and ``default_model_name`` and implement ``generate``.
    """

    name: str
    default_base_url: str
    default_model_name: str

    def __init__(
        self,
        *,
        base_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        aliases: ModelAliases = NO_ALIASES,
    ) -> None:
        self._base_url = (base_url or self.default_base_url).rstrip("/")
        self._client = create_client(transport)
        self._max_body_bytes = max_body_bytes
        self._aliases = aliases

    def default_model(self) -> str:
        return self.default_model_name

    async def aclose(self) -> None:
        await self._client.aclose()
