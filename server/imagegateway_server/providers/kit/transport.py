"""The upstream HTTP transport: one pooled client per adapter, and the answer it reads.

Each adapter owns one long-lived ``UpstreamClient``: an aiohttp session (opened on first use, since
a session belongs to the loop it was made on) that never retries and never follows redirects (the
router owns retries, and only one layer may retry or attempts and cost multiply), keeps no cookies
(one provider's cookie must never be replayed for another tenant's key), ignores proxy environment
variables (a proxy would connect past the SSRF check) and gives every request explicit timeouts from
``attempt_timeout``. Bodies are read under a size cap, after decompression (``bodies.read_capped``),
so one misbehaving upstream cannot exhaust memory. aiohttp exceptions escape ``send`` for
``network_failures.upstream_errors`` to classify.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ssl
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from imagegateway_server.providers.kit.bodies import DEFAULT_MAX_BODY_BYTES, body_too_large, json_bytes, read_capped

CONNECT_TIMEOUT_SECONDS = 5.0
DEFAULT_ATTEMPT_TIMEOUT_SECONDS = 120.0
# Image calls take 5-60 s each, so thousands can be in flight at once: a small pool would queue them
# inside the gateway (and time them out) while the provider could take them all.
MAX_CONNECTIONS = 4096
KEEPALIVE_SECONDS = 30.0
# Short, so a provider moving its addresses is followed; pooled connections skip the lookup anyway.
DNS_CACHE_SECONDS = 10

_SCHEMES = frozenset({"http", "https"})

UrlCheck = Callable[[URL], None]
UrlPredicate = Callable[[URL], bool]


class UpstreamRefused(aiohttp.ClientConnectionError):
    """The URL, or the addresses its host resolves to, may not be connected to (the SSRF policy)."""


@dataclasses.dataclass(frozen=True, slots=True)
class FilePart:
    """A file part of a multipart/form-data request (an input image or a mask)."""

    name: str
    filename: str
    data: bytes = dataclasses.field(repr=False)
    content_type: str = "application/octet-stream"


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


class UpstreamStream:
    """An upstream answer whose body is still arriving: read it whole (``read``) or in parts (``chunks``),
    either way under the body cap."""

    __slots__ = ("_max_body_bytes", "_provider", "_response")

    def __init__(self, response: aiohttp.ClientResponse, *, provider: str, max_body_bytes: int) -> None:
        self._response = response
        self._provider = provider
        self._max_body_bytes = max_body_bytes

    @property
    def status_code(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._response.headers

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased ("" when absent)."""
        value: str = self._response.headers.get("content-type", "")
        return value.split(";", 1)[0].strip().lower()

    async def read(self) -> UpstreamResponse:
        """The whole answer, read under the cap."""
        body = await read_capped(self._response, max_bytes=self._max_body_bytes, provider=self._provider)
        return UpstreamResponse(self._response.status, self._response.headers, body)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; UPSTREAM_BUG (502) once their total passes the cap."""
        size = 0
        async for chunk in self._response.content.iter_any():
            size += len(chunk)
            if size > self._max_body_bytes:
                raise body_too_large(self._provider, self._max_body_bytes)
            yield chunk


@functools.lru_cache(maxsize=64)
def attempt_timeout(seconds: float | None) -> aiohttp.ClientTimeout:
    """Timeouts for one attempt: establishing a connection 5 s (or less), each read ``seconds``
    (default 120).

    No total: ``upstream_errors`` bounds the whole attempt. A second timer of the same length, armed
    a moment later, can fire first on uvloop's millisecond timers and turn the router's deadline
    (504) into this attempt's timeout (408). The 5 s bound is ``sock_connect``, not aiohttp's
    ``connect``, which also counts the wait for a free pooled connection: with thousands of calls in
    flight (more than MAX_CONNECTIONS to one slow provider) that wait is queueing, bounded by the
    attempt's own deadline, not a provider that cannot be reached.
    """
    total = DEFAULT_ATTEMPT_TIMEOUT_SECONDS if seconds is None else seconds
    return aiohttp.ClientTimeout(total=None, sock_connect=min(CONNECT_TIMEOUT_SECONDS, total), sock_read=total)


class UpstreamClient:
    """One adapter's pooled HTTP client; ``url_check`` and ``resolver`` are the SSRF guard's hooks.

    ``url_check`` sees every request's URL before anything is sent (IP literals never reach a
    resolver); ``resolver`` resolves each new connection's host. ``allow_listed`` says whether a
    URL's host is on the operator's upstream allow list (asynchronous providers accept job URLs
    there besides their own hosts; without it, none is). ``ssl_context`` replaces the default
    certificate verification (tests pass one trusting their own CA).
    """

    def __init__(
        self,
        *,
        url_check: UrlCheck | None = None,
        resolver: AbstractResolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
        allow_listed: UrlPredicate | None = None,
    ) -> None:
        self._url_check = url_check
        self._allow_listed = allow_listed
        self._resolver = resolver
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def is_allow_listed(self, url: URL) -> bool:
        """Whether ``url``'s host (and port) is on the operator's upstream allow list."""
        return self._allow_listed is not None and self._allow_listed(url)

    def _start(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("the upstream client is closed")
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ttl_dns_cache=DNS_CACHE_SECONDS,
            resolver=self._resolver,
            ssl=self._ssl,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=True,
            timeout=attempt_timeout(None),
        )
        # aiohttp sends an idempotent request (the image download) again when a pooled connection
        # turns out dead; only the router retries. aiohttp's own test client switches it off the same way.
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
        content: bytes | None = None,
        url_encoded: bool = False,
        files: Sequence[FilePart] = (),
    ) -> UpstreamResponse:
        """Sends one request and reads its (decoded) body under ``max_body_bytes``.

        ``json_body`` is sent as application/json, ``form`` (name, value pairs) and ``files`` as
        multipart/form-data, ``content`` as these exact bytes (a signed body; the caller's headers say
        its type). ``url_encoded`` sends ``url`` exactly as written, its percent-escapes kept (a signed
        path: yarl would otherwise turn ``%3A`` back into ``:``). A body over the cap is an UPSTREAM_BUG
        (502); aiohttp exceptions propagate for ``upstream_errors`` to classify.
        """
        async with self.stream(
            method,
            url,
            provider=provider,
            attempt_seconds=attempt_seconds,
            max_body_bytes=max_body_bytes,
            headers=headers,
            json_body=json_body,
            form=form,
            content=content,
            url_encoded=url_encoded,
            files=files,
        ) as response:
            return await response.read()

    @contextlib.asynccontextmanager
    async def stream(
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
        content: bytes | None = None,
        url_encoded: bool = False,
        files: Sequence[FilePart] = (),
    ) -> AsyncIterator[UpstreamStream]:
        """Sends one request as ``send`` does and yields the answer before its body is read, for a
        body that arrives in parts (server-sent events); the connection is released on exit."""
        try:
            target = URL(url, encoded=url_encoded)
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
        elif form is not None or files:
            # A part per value: multipart/form-data even without an upload (Stability v2beta).
            data = aiohttp.FormData(default_to_multipart=True)
            for name, value in form or ():
                data.add_field(name, value)
            for part in files:
                data.add_field(part.name, part.data, filename=part.filename, content_type=part.content_type)
            outgoing.popall("Content-Type", None)  # the form writes its own, with the boundary
        elif content is not None:
            data = content
        async with session.request(
            method,
            target,
            headers=outgoing,
            data=data,
            timeout=attempt_timeout(attempt_seconds),
            allow_redirects=False,
        ) as response:
            yield UpstreamStream(response, provider=provider, max_body_bytes=max_body_bytes)

    async def aclose(self) -> None:
        """Closes the pooled connections; sending afterwards raises RuntimeError."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
