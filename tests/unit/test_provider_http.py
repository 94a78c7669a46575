"""The shared upstream HTTP plumbing over real loopback sockets: client settings, capped reads,
failure classes, redaction, JSON parsing.

``RawUpstream`` (tests/raw_http.py) writes the exact bytes each case needs (chunked bodies, bad
gzip, a dropped connection); the provider emulators cover the provider-shaped faults.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import json_bytes, json_object
from imagegateway_server.providers.kit.errors import redact
from imagegateway_server.providers.kit.headers import request_headers
from imagegateway_server.providers.kit.network_failures import classify_client_error, upstream_errors
from imagegateway_server.providers.kit.status import parse_retry_after
from imagegateway_server.providers.kit.transport import UpstreamClient, UpstreamRefused, attempt_timeout
from tests.conftest import Emulators
from tests.emulators import Fault, OpenAIEmulator
from tests.raw_http import CLOSE, HANG, FailingResolver, Outcome, RawRequest, RawUpstream, http_response

SECRET = "sk-unit-secret-0123456789abcdef"
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream_client = UpstreamClient()
    yield upstream_client
    await upstream_client.aclose()


@pytest.fixture
def emulator(emulators: Emulators) -> OpenAIEmulator:
    return emulators.openai


async def get(
    client: UpstreamClient, url: str, *, max_body_bytes: int = 1_000_000, attempt_seconds: float | None = 10.0
) -> tuple[int, bytes]:
    response = await client.send(
        "GET", url, provider="p", attempt_seconds=attempt_seconds, max_body_bytes=max_body_bytes
    )
    return response.status_code, response.body


async def failure(call: object, attempt_seconds: float | None = 10.0) -> ProviderError:
    """The ProviderError ``upstream_errors`` makes of what ``call`` raises."""
    with pytest.raises(ProviderError) as info:
        async with upstream_errors("openai", secret=SECRET, attempt_seconds=attempt_seconds):
            await call  # type: ignore[misc]
    return info.value


def chunked(*chunks: bytes, complete: bool = True) -> bytes:
    """A chunked 200; an incomplete one announces the close that cuts it short."""
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + (b"0\r\n\r\n" if complete else b"")
    close = b"" if complete else b"connection: close\r\n"
    return b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n" + close + b"\r\n" + body


# -- client settings -------------------------------------------------------------------------------


def test_attempt_timeout_uses_the_target_timeout_and_caps_connect() -> None:
    assert attempt_timeout(30.0) == aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=30.0)
    assert attempt_timeout(2.0) == aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=2.0)
    assert attempt_timeout(None).sock_read == 120.0  # the whole attempt is bounded by upstream_errors


async def test_waiting_for_a_pooled_connection_is_queueing_not_a_connect_timeout() -> None:
    # One connection, four calls answered after 0.4 s each: the last waits 1.2 s for the connection,
    # longer than the 1 s connect bound, yet none of them failed to connect (thousands of calls in
    # flight to one slow provider look like this).
    async def slow(_request: RawRequest) -> bytes:
        await asyncio.sleep(0.4)
        return http_response(200, b"ok")

    pooled = UpstreamClient(max_connections=1)
    try:
        async with RawUpstream(slow) as upstream:
            answers = await asyncio.gather(*(get(pooled, upstream.url("/x"), attempt_seconds=1.0) for _ in range(4)))
    finally:
        await pooled.aclose()
    assert answers == [(200, b"ok")] * 4
    assert upstream.connections == 1


async def test_sequential_calls_reuse_one_pooled_connection(client: UpstreamClient) -> None:
    async with RawUpstream() as upstream:
        for _ in range(20):
            assert await get(client, upstream.url("/x")) == (200, b"ok")
    assert upstream.connections == 1


async def test_a_redirect_is_returned_not_followed(client: UpstreamClient) -> None:
    async with RawUpstream() as target:

        def redirect(request: RawRequest) -> bytes:
            return http_response(302, headers={"location": target.url("/elsewhere")})

        async with RawUpstream(redirect) as redirecting:
            assert (await get(client, redirecting.url()))[0] == 302
    assert target.connections == 0


async def test_no_cookie_an_upstream_sets_is_ever_sent_back(client: UpstreamClient) -> None:
    def set_cookie(request: RawRequest) -> bytes:
        return http_response(200, b"ok", {"set-cookie": "session=tenant-a; Path=/; Max-Age=3600"})

    async with RawUpstream(set_cookie) as upstream:
        for _ in range(3):
            await get(client, upstream.url("/v1/images/generations"))
    assert len(upstream.requests) == 3
    assert all("cookie" not in request.headers for request in upstream.requests)


async def test_proxy_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would connect wherever it likes, past the SSRF guard's connect-time check.
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))  # bound, never listening: a proxy there would refuse the call
        proxy = f"http://127.0.0.1:{dead.getsockname()[1]}"
        for name in PROXY_VARIABLES:
            monkeypatch.setenv(name, proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        direct = UpstreamClient()
        try:
            async with RawUpstream() as upstream:
                assert await get(direct, upstream.url("/direct")) == (200, b"ok")
        finally:
            await direct.aclose()
    assert upstream.requests[0].target == "/direct"  # origin form: not a request for a proxy


async def test_a_dead_pooled_connection_is_not_retried(client: UpstreamClient) -> None:
    # The second request on a kept-alive connection finds it closed: that attempt fails, and the
    # client does not send it again on a new connection (the router owns retries).
    def once_per_connection(request: RawRequest) -> Outcome:
        return http_response(200, b"ok") if len(upstream.requests) == 1 else CLOSE

    async with RawUpstream(once_per_connection) as upstream:
        assert await get(client, upstream.url()) == (200, b"ok")
        with pytest.raises(ProviderError) as info:
            async with upstream_errors("p", secret=SECRET, attempt_seconds=10):
                await get(client, upstream.url())
    assert info.value.code in ("truncated_response", "connection_reset")
    assert len(upstream.requests) == 2


async def test_sending_after_close_is_refused() -> None:
    closed = UpstreamClient()
    await closed.aclose()
    with pytest.raises(RuntimeError):
        await get(closed, "http://127.0.0.1:9/")


def test_request_headers_let_the_adapter_replace_a_forwarded_header_in_any_case() -> None:
    headers = request_headers("p", {"authorization": "Bearer theirs", "x-trace": "t"}, {"Authorization": "Bearer ours"})
    assert isinstance(headers, CIMultiDict)
    assert headers.getall("AUTHORIZATION") == ["Bearer ours"]
    assert headers["x-trace"] == "t"


# -- bodies ----------------------------------------------------------------------------------------


async def test_body_over_the_cap_is_an_upstream_bug(client: UpstreamClient) -> None:
    async with RawUpstream(lambda r: chunked(b"x" * 600, b"y" * 600)) as upstream:
        error = await failure(get(client, upstream.url(), max_body_bytes=1000))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UPSTREAM_BUG, 502, "response_too_large")


async def test_declared_length_over_the_cap_is_refused_before_reading(client: UpstreamClient) -> None:
    # The body never comes: reading it would wait out the attempt; the cap refuses it at once.
    head = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"
    async with RawUpstream(lambda r: head) as upstream:
        error = await failure(get(client, upstream.url(), max_body_bytes=1000, attempt_seconds=60))
    assert (error.kind, error.code) == (ErrorKind.UPSTREAM_BUG, "response_too_large")


async def test_body_under_the_cap_is_returned_whole(client: UpstreamClient) -> None:
    async with RawUpstream(lambda r: chunked(b"ab", b"cd").replace(b"200 OK", b"201 Created")) as upstream:
        assert await get(client, upstream.url(), max_body_bytes=4) == (201, b"abcd")


async def test_a_compressed_body_is_decoded_and_capped_at_its_decoded_size(client: UpstreamClient) -> None:
    packed = gzip.compress(b"\0" * 10_000)
    answer = http_response(200, packed, {"content-encoding": "gzip", "content-type": "application/json"})
    async with RawUpstream(lambda r: answer) as upstream:
        assert len(packed) < 1000
        assert await get(client, upstream.url(), max_body_bytes=10_000) == (200, b"\0" * 10_000)
        error = await failure(get(client, upstream.url(), max_body_bytes=1000))
    assert error.code == "response_too_large"


async def test_a_body_that_is_not_what_its_encoding_says_is_malformed(client: UpstreamClient) -> None:
    answer = http_response(200, b"this is not gzip", {"content-encoding": "gzip"})
    async with RawUpstream(lambda r: answer) as upstream:
        error = await failure(get(client, upstream.url()))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UPSTREAM_BUG, 502, "malformed_response")
    assert "decoded" in error.message


async def test_an_answer_that_is_not_http_is_malformed(client: UpstreamClient) -> None:
    async with RawUpstream(lambda r: b"SSH-2.0-OpenSSH_9.6\r\n\r\n") as upstream:
        error = await failure(get(client, upstream.url()))
    assert (error.kind, error.code) == (ErrorKind.UPSTREAM_BUG, "malformed_response")


async def test_json_bodies_are_sent_compact_with_their_content_type(client: UpstreamClient) -> None:
    async with RawUpstream() as upstream:
        await client.send(
            "POST",
            upstream.url(),
            provider="p",
            attempt_seconds=10,
            headers={"content-type": "text/plain"},
            json_body={"prompt": "caf\u00e9", "n": 1},
        )
    (sent,) = upstream.requests
    assert sent.headers["content-type"] == "application/json"
    assert sent.body == '{"prompt":"café","n":1}'.encode()


def test_json_bytes_falls_back_for_integers_orjson_cannot_write() -> None:
    assert json_bytes({"steps": 2**70}) == b'{"steps":1180591620717411303424}'


@pytest.mark.parametrize(
    ("body", "parsed"),
    [
        (b'{"a": [1, {"b": null}]}', {"a": [1, {"b": None}]}),
        (b"", None),
        (b"   ", None),
        (b"<html>", None),
        (b"[1, 2]", None),
        (b'"text"', None),
        (b'{"a": NaN}', None),
        (b"[" * 5000 + b"]" * 5000, None),
        (b'{"a": 1', None),
    ],
)
def test_json_object_is_an_object_or_none(body: bytes, parsed: object) -> None:
    assert json_object(body) == parsed


# -- failures over the wire ------------------------------------------------------------------------


async def test_truncated_body_is_unavailable_502(client: UpstreamClient, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.truncated())
    error = await failure(
        client.send(
            "POST",
            f"{emulator.base_url}/images/generations",
            provider="p",
            attempt_seconds=10,
            json_body={"prompt": "x"},
        )
    )
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, "truncated_response")
    assert "truncated" in error.message


async def test_a_chunked_body_cut_short_is_truncated(client: UpstreamClient) -> None:
    answer = chunked(b'{"data": [', complete=False)
    async with RawUpstream(lambda r: answer) as upstream:
        error = await failure(get(client, upstream.url()))
    assert error.code == "truncated_response"


async def test_a_connection_closed_before_any_answer_is_truncated(client: UpstreamClient) -> None:
    async with RawUpstream(lambda r: CLOSE) as upstream:
        error = await failure(get(client, upstream.url()))
    assert (error.kind, error.code) == (ErrorKind.UNAVAILABLE, "truncated_response")


async def test_a_reset_connection_is_classified(client: UpstreamClient, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.reset())
    error = await failure(
        client.send(
            "POST",
            f"{emulator.base_url}/images/generations",
            provider="p",
            attempt_seconds=10,
            json_body={"prompt": "x"},
        )
    )
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, "connection_reset")
    assert "connection reset by upstream" in error.message


async def test_a_refused_connection_is_classified(client: UpstreamClient) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connecting is refused
        error = await failure(get(client, f"http://127.0.0.1:{closed.getsockname()[1]}/"))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, "connection_refused")
    assert "refused" in error.message


async def test_a_dns_failure_is_classified_without_the_key() -> None:
    resolving = UpstreamClient(resolver=FailingResolver(f"Name or service not known (asked with {SECRET})"))
    try:
        error = await failure(get(resolving, "https://api.provider.example/v1"))
    finally:
        await resolving.aclose()
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, "dns_failure")
    assert "DNS lookup" in error.message and SECRET not in error.message


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http:///x", "http://[::1/x", "//no-scheme/x"])
async def test_an_invalid_url_is_classified(client: UpstreamClient, url: str) -> None:
    error = await failure(get(client, url))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, "invalid_upstream_url")


async def test_attempt_that_outlives_its_timeout_is_a_408(client: UpstreamClient) -> None:
    async with RawUpstream(lambda r: HANG) as upstream:
        error = await failure(get(client, upstream.url(), attempt_seconds=0.05), attempt_seconds=0.05)
    assert (error.kind, error.status_code, error.code) == (ErrorKind.TIMEOUT, 408, "timeout")


async def test_the_attempt_bound_covers_the_whole_exchange(client: UpstreamClient) -> None:
    # The client's own timeouts are generous here; the attempt's overall bound still ends it.
    stalled = b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{"
    async with RawUpstream(lambda r: stalled) as upstream:
        error = await failure(get(client, upstream.url(), attempt_seconds=30), attempt_seconds=0.2)
    assert (error.kind, error.status_code) == (ErrorKind.TIMEOUT, 408)
    assert "within 0.2 s" in error.message


# -- classification of every aiohttp failure -------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "kind", "status", "code", "words"),
    [
        (
            aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
            ErrorKind.TIMEOUT,
            408,
            "timeout",
            "waiting for the response",
        ),
        (aiohttp.ConnectionTimeoutError("Connection timeout to host"), ErrorKind.TIMEOUT, 408, "timeout", "connecting"),
        (aiohttp.ServerTimeoutError("timed out"), ErrorKind.TIMEOUT, 408, "timeout", "talking to upstream"),
        (aiohttp.ServerDisconnectedError(), ErrorKind.UNAVAILABLE, 502, "truncated_response", "truncated"),
        (
            aiohttp.ClientPayloadError("Response payload is not completed"),
            ErrorKind.UNAVAILABLE,
            502,
            "truncated_response",
            "truncated",
        ),
        (
            aiohttp.ClientOSError(104, "Connection reset by peer"),
            ErrorKind.UNAVAILABLE,
            502,
            "connection_reset",
            "reset",
        ),
        (
            aiohttp.ClientConnectionResetError("Cannot write to closing transport"),
            ErrorKind.UNAVAILABLE,
            502,
            "connection_reset",
            "reset",
        ),
        (aiohttp.ClientOSError(5, "Input/output error"), ErrorKind.UNAVAILABLE, 502, "network_error", "network"),
        (aiohttp.InvalidUrlClientError("http:///x"), ErrorKind.UNAVAILABLE, 502, "invalid_upstream_url", "URL"),
        (aiohttp.NonHttpUrlClientError("ftp://x"), ErrorKind.UNAVAILABLE, 502, "invalid_upstream_url", "URL"),
        (
            UpstreamRefused("upstream URL is not allowed: host '10.0.0.1' is a local or private address"),
            ErrorKind.UNAVAILABLE,
            502,
            "connect_error",
            "not allowed",
        ),
        (aiohttp.ClientConnectionError("something else"), ErrorKind.UNAVAILABLE, 502, "network_error", "network"),
    ],
)
def test_aiohttp_failures_are_classified(
    exc: aiohttp.ClientError, kind: ErrorKind, status: int, code: str, words: str
) -> None:
    error = classify_client_error(exc, provider="openai", secret=SECRET)
    assert (error.kind, error.status_code, error.code) == (kind, status, code)
    assert words in error.message
    assert error.message.startswith("openai")


def test_transport_error_text_never_carries_the_key() -> None:
    error = classify_client_error(
        aiohttp.ClientConnectionError(f"failed for Bearer {SECRET}"), provider="p", secret=SECRET
    )
    assert SECRET not in error.message


def test_a_long_transport_error_is_shortened() -> None:
    error = classify_client_error(aiohttp.ClientConnectionError("x" * 10_000), provider="p", secret=SECRET)
    assert len(error.message) < 400


# -- Retry-After and redaction ---------------------------------------------------------------------


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


def test_retry_after_is_read_from_response_headers_in_any_case() -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After-Ms": "1500", "RETRY-AFTER": "9"}))
    assert parse_retry_after(headers) == 1.5


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


async def test_many_concurrent_calls_share_the_pool(client: UpstreamClient) -> None:
    arrived = 0
    all_here = asyncio.Event()

    async def wait_for_all(request: RawRequest) -> bytes:
        nonlocal arrived
        arrived += 1
        if arrived == 8:
            all_here.set()
        await all_here.wait()
        return http_response(200, b"ok")

    async with RawUpstream(wait_for_all) as upstream:
        async with asyncio.timeout(30):
            answers = await asyncio.gather(*(get(client, upstream.url()) for _ in range(8)))
            assert answers == [(200, b"ok")] * 8
            await asyncio.gather(*(get(client, upstream.url()) for _ in range(8)))
    assert upstream.connections == 8  # eight at once, then the same eight again from the pool
