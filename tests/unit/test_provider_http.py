"""The shared upstream HTTP plumbing: client settings, capped reads, failure classes, redaction."""

from __future__ import annotations

import asyncio
import email.utils
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.http import (
    attempt_timeout,
    classify_http_error,
    create_client,
    parse_retry_after,
    redact,
    send,
    upstream_errors,
)

SECRET = "sk-unit-secret-0123456789abcdef"


def test_client_never_follows_redirects_and_has_explicit_timeouts() -> None:
    client = create_client()
    assert client.follow_redirects is False
    assert client.timeout.connect == 5.0
    assert client.timeout.read == 120.0


def test_default_transport_does_not_retry() -> None:
    client = create_client()
    transport = client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert transport._pool._retries == 0


def test_attempt_timeout_uses_the_target_timeout_and_caps_connect() -> None:
    assert attempt_timeout(30.0) == httpx.Timeout(30.0, connect=5.0)
    assert attempt_timeout(2.0) == httpx.Timeout(2.0, connect=2.0)
    assert attempt_timeout(None).read == 120.0


class _Chunks(httpx.AsyncByteStream):
    def __init__(self, *chunks: bytes, then_raise: Exception | None = None) -> None:
        self._chunks = chunks
        self._error = then_raise

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._error is not None:
            raise self._error


async def test_body_over_the_cap_is_an_upstream_bug() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, stream=_Chunks(b"x" * 600, b"y" * 600)))
    async with create_client(transport) as client:
        with pytest.raises(ProviderError) as info:
            await send(client, "GET", "http://up/", provider="p", attempt_seconds=None, max_body_bytes=1000)
    assert info.value.kind is ErrorKind.UPSTREAM_BUG
    assert info.value.status_code == 502


async def test_declared_length_over_the_cap_is_refused_before_reading() -> None:
    transport = httpx.MockTransport(
        lambda r: httpx.Response(200, headers={"content-length": "5000"}, stream=_Chunks(b""))
    )
    async with create_client(transport) as client:
        with pytest.raises(ProviderError) as info:
            await send(client, "GET", "http://up/", provider="p", attempt_seconds=None, max_body_bytes=1000)
    assert info.value.kind is ErrorKind.UPSTREAM_BUG


async def test_body_under_the_cap_is_returned_whole() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(201, stream=_Chunks(b"ab", b"cd")))
    async with create_client(transport) as client:
        response = await send(
            client, "GET", "http://up/", provider="p", attempt_seconds=None, max_body_bytes=4
        )
    assert (response.status_code, response.body) == (201, b"abcd")


async def test_truncated_body_is_unavailable_502() -> None:
    stream = _Chunks(b'{"data": [', then_raise=httpx.RemoteProtocolError("peer closed connection"))
    transport = httpx.MockTransport(lambda r: httpx.Response(200, stream=stream))
    async with create_client(transport) as client:
        with pytest.raises(ProviderError) as info:
            async with upstream_errors("p", secret=SECRET, attempt_seconds=None):
                await send(client, "GET", "http://up/", provider="p", attempt_seconds=None)
    assert info.value.kind is ErrorKind.UNAVAILABLE
    assert info.value.status_code == 502
    assert "truncated" in info.value.message


async def test_attempt_that_outlives_its_timeout_is_a_408() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200)

    async with create_client(httpx.MockTransport(slow)) as client:
        with pytest.raises(ProviderError) as info:
            async with upstream_errors("p", secret=SECRET, attempt_seconds=0.05):
                await send(client, "GET", "http://up/", provider="p", attempt_seconds=0.05)
    assert info.value.kind is ErrorKind.TIMEOUT
    assert info.value.status_code == 408


def _reset() -> httpx.ReadError:
    try:
        raise httpx.ReadError("[Errno 104] Connection reset by peer") from ConnectionResetError(104, "reset")
    except httpx.ReadError as exc:
        return exc


def _dns() -> httpx.ConnectError:
    try:
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(-2, "x")
    except httpx.ConnectError as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "kind", "status", "words"),
    [
        (httpx.ReadTimeout("timed out"), ErrorKind.TIMEOUT, 408, "timed out"),
        (httpx.ConnectTimeout("timed out"), ErrorKind.TIMEOUT, 408, "connecting"),
        (httpx.WriteTimeout("timed out"), ErrorKind.TIMEOUT, 408, "sending"),
        (httpx.PoolTimeout("timed out"), ErrorKind.TIMEOUT, 408, "free connection"),
        (_dns(), ErrorKind.UNAVAILABLE, 502, "DNS lookup"),
        (httpx.ConnectError("[Errno 111] Connection refused"), ErrorKind.UNAVAILABLE, 502, "refused"),
        (_reset(), ErrorKind.UNAVAILABLE, 502, "connection reset by upstream"),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            ErrorKind.UNAVAILABLE,
            502,
            "truncated",
        ),
        (httpx.UnsupportedProtocol("Request URL is missing a scheme"), ErrorKind.UNAVAILABLE, 502, "URL"),
        (httpx.DecodingError("bad gzip"), ErrorKind.UPSTREAM_BUG, 502, "decoded"),
    ],
)
def test_httpx_failures_are_classified(
    exc: httpx.HTTPError, kind: ErrorKind, status: int, words: str
) -> None:
    error = classify_http_error(exc, provider="openai", secret=SECRET)
    assert (error.kind, error.status_code) == (kind, status)
    assert words in error.message
    assert error.message.startswith("openai")


def test_transport_error_text_never_carries_the_key() -> None:
    error = classify_http_error(
        httpx.ConnectError(f"failed for Bearer {SECRET}"), provider="p", secret=SECRET
    )
    assert SECRET not in error.message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "9"}, 9.0),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers) == expected


def test_retry_after_http_date() -> None:
    now = 1_700_000_000.0
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"retry-after": header}, now=now) == pytest.approx(30.0)
    past = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}, now=now) == 0.0


@given(prefix=st.text(max_size=40), suffix=st.text(max_size=40), key=st.text(min_size=8, max_size=60))
def test_redact_removes_the_key_wherever_it_appears(prefix: str, suffix: str, key: str) -> None:
    assert key not in redact(prefix + key + suffix, key)


def test_redact_hides_partially_masked_keys_too() -> None:
    message = "Incorrect API key provided: sk-proj-****abcd. You can find your API key at ..."
    assert "abcd" not in redact(message, "other-secret")
