"""The upstream HTTP plumbing every adapter shares: its client, body reading, failure classes.

Each adapter owns one long-lived ``UpstreamClient``: an aiohttp session (opened on first use, since
a session belongs to the loop it was made on) that never retries and never follows redirects (the
router owns retries, design.md §8), keeps no cookies (one provider's cookie must never be replayed
for another tenant's key), ignores proxy environment variables (a proxy would connect past the SSRF
check) and gives every request explicit timeouts from ``attempt_timeout``. Bodies are read under a
size cap, after decompression, so one misbehaving upstream cannot exhaust memory.
``upstream_errors`` turns whatever the network does (timeouts, resets, DNS failures, truncated
bodies) into a classified ``ProviderError`` whose message never contains the API key.
``decode_image_b64`` and ``check_image`` vet the image a body carries.
"""

from __future__ import annotations

import asyncio
import binascii
import dataclasses
import email.utils
import errno
import functools
import json
import math
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
import orjson
import pybase64
from aiohttp.abc import AbstractResolver
from aiohttp.http_exceptions import ContentEncodingError
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.image_info import sniff_image
from imagegateway_server.providers import base64_json
from imagegateway_server.providers.model_aliases import NO_ALIASES, ModelAliases

CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_ATTEMPT_TIMEOUT_SECONDS = 120.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# Image calls take 5-60 s each, so thousands can be in flight at once: a small pool would queue them
# inside the gateway (and time them out) while the provider could take them all.
MAX_CONNECTIONS = 4096
KEEPALIVE_SECONDS = 30.0
# Short, so a provider moving its addresses is followed; pooled connections skip the lookup anyway.
DNS_CACHE_SECONDS = 10

_SNIPPET_CHARS = 200
_SCHEMES = frozenset({"http", "https"})

UrlCheck = Callable[[URL], None]


class UpstreamRefused(aiohttp.ClientConnectionError):
    """The URL, or the addresses its host resolves to, may not be connected to (the SSRF policy)."""


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A fully read upstream answer."""

    status_code: int
    headers: CIMultiDictProxy[str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        value: str = self.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()


@functools.lru_cache(maxsize=64)
def attempt_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    """Timeouts for one attempt: connect 5 s (or less), each read ``seconds`` (default 120).

    No total: ``upstream_errors`` bounds the whole attempt. A second timer of the same length, armed
    a moment later, can fire first on uvloop's millisecond timers and turn the router's deadline
    (504) into this attempt's timeout (408).
    """
    total = DEFAULT_ATTEMPT_TIMEOUT_SECONDS if seconds is None else seconds
    return aiohttp.ClientTimeout(total=None, connect=min(CONNECT_TIMEOUT_SECONDS, total), sock_read=total)


class UpstreamClient:
    """One adapter's pooled HTTP client; ``url_check`` and ``resolver`` are the SSRF guard's hooks.

    ``url_check`` sees every request's URL before anything is sent (IP literals never reach a
    resolver); ``resolver`` resolves each new connection's host. ``ssl_context`` replaces the
    default certificate verification (tests pass one trusting their own CA).
    """

    def __init__(
        self,
        *,
        url_check: UrlCheck | None = None,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self._url_check = url_check
        self._resolver = resolver
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def _start(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the upstream client is closed")
        connector = aiohttp.TCPConnector(
            limit=self._max_connections, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS,
            ttl_dns_cache=DNS_CACHE_SECONDS, resolver=self._resolver, ssl=self._ssl,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
            timeout=attempt_timeout(None),
        )
        # aiohttp sends an idempotent request (the image download) again when a pooled connection
        # turns out dead; one layer retries (design.md §8). Its own test client switches it off the same way.
        if not hasattr(session, "_retry_connection"):
            raise RuntimeError("this aiohttp version has no _retry_connection; the client would retry")
        session._retry_connection = False
        self._session = session
        return session

    async def send(
        self,
        method: str,
        url: str,
        *,
        provider: str,
        attempt_seconds: float | None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        form: Sequence[tuple[str, str]] | None = None,
    ) -> UpstreamResponse:
        """Sends one request and reads its (decoded) body under ``max_body_bytes``.

        ``json_body`` is sent as application/json, ``form`` (name, value pairs) as
        multipart/form-data. A body over the cap is an UPSTREAM_BUG (502); aiohttp exceptions
        propagate for ``upstream_errors`` to classify.
        """
        try:
            target = URL(url)
        except ValueError as exc:
            raise aiohttp.InvalidUrlClientError(url) from exc
        if target.scheme not in _SCHEMES:
            raise aiohttp.NonHttpUrlClientError(url)
        if self._url_check is not None:
            self._url_check(target)
        session = self._session if self._session is not None else self._start()
        outgoing: CIMultiDict[str] = CIMultiDict(headers or {})
        data: Any = None
        if json_body is not None:
            data = json_bytes(json_body)
            outgoing["Content-Type"] = "application/json"
        elif form is not None:
            # A part per value, none a file: multipart/form-data even without an upload (Stability v2beta).
            data = aiohttp.FormData(default_to_multipart=True)
            for name, value in form:
                data.add_field(name, value)
            outgoing.popall("Content-Type", None)  # the form writes its own, with the boundary
        async with session.request(
            method, target, headers=outgoing, data=data, timeout=attempt_timeout(attempt_seconds),
            allow_redirects=False,
        ) as response:
            body = await read_capped(response, max_bytes=max_body_bytes, provider=provider)
            return UpstreamResponse(response.status, response.headers, body)

    async def aclose(self) -> None:
        """Closes the pooled connections; sending afterwards raises RuntimeError."""
        self._closed = True
        if self._session is not None:
            await self._session.close()


async def read_capped(response: aiohttp.ClientResponse, *, max_bytes: int, provider: str) -> bytes:
    """Reads a response body (decompressed), refusing to hold more than ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(provider, max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(provider, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def json_bytes(payload: Any) -> bytes:
    """``payload`` as compact JSON; orjson, or the standard library for what orjson refuses."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits in a forwarded parameter
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


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


def classify_client_error(exc: aiohttp.ClientError, *, provider: str, secret: str) -> ProviderError:
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
    return ProviderError(
        ErrorKind.UPSTREAM_BUG, f"{provider}: {what}", provider=provider, status_code=502, code="malformed_response"
    )


def _detail(exc: BaseException, secret: str) -> str:
    """The exception's text for a message: the key removed, whitespace folded, at most a snippet long."""
    text = " ".join(redact(str(exc), secret).split())
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


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


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
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
) -> CIMultiDict[str]:
    """``forwarded`` headers overlaid by the adapter's ``own`` (auth wins); unsendable ones refused.

    Names compare case-insensitively, so a forwarded ``authorization`` cannot ride along with ours.
    A bad ``authorization`` value is an AUTHENTICATION error whose message never shows the key.
    """
    headers: CIMultiDict[str] = CIMultiDict()
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
    """The body parsed as a JSON object, or None when it is empty, not JSON, or not an object.

    orjson also refuses NaN/Infinity and lone surrogates, which no provider sends in a valid body.
    Image strings are not scanned character by character (``base64_json``).
    """
    try:
        payload = base64_json.loads(body)
    except ValueError:  # orjson.JSONDecodeError, including nesting too deep
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
        client: UpstreamClient | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        aliases: ModelAliases = NO_ALIASES,
    ) -> None:
        self._base_url = (base_url or self.default_base_url).rstrip("/")
        self._client = client if client is not None else UpstreamClient()
        self._max_body_bytes = max_body_bytes
        self._aliases = aliases

    def default_model(self) -> str:
        return self.default_model_name

    async def aclose(self) -> None:
        await self._client.aclose()
