"""The REST shim on the wire (uvicorn on httptools, on uvloop): bad HTTP gets a clean 4xx and a closed
connection, never a crash or a hang; an oversized head is a 431; answers are not held back by Nagle;
kept-alive connections serve one request after another.

Raw sockets, since HTTP clients will not send malformed requests. Each read waits for the server to
close (or for a whole response), with a generous timeout that only a hang would reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket

import pytest

from imagegateway_server.api.rest_protocol import MAX_HEAD_BYTES
from imagegateway_server.event_loop import loop_name
from tests.harness import GatewayThread

READ_TIMEOUT = 30.0
HOST = b"host: gateway\r\n"

MALFORMED = {
    "not http": b"\x00\x01\x02 hello\r\n\r\n",
    "a method that is not a token": b"G@T /health HTTP/1.1\r\n" + HOST + b"\r\n",
    "an unknown HTTP version": b"GET /health HTTP/9.9\r\n" + HOST + b"\r\n",
    "a header name with a space": b"GET /health HTTP/1.1\r\n" + HOST + b"bad name: x\r\n\r\n",
    "a header line without a colon": b"GET /health HTTP/1.1\r\n" + HOST + b"no-colon\r\n\r\n",
    "NUL in a header value": b"GET /health HTTP/1.1\r\n" + HOST + b"x-a: b\x00c\r\n\r\n",
    "content-length and chunked together": b"POST /v1/images/generations HTTP/1.1\r\n"
    + HOST
    + b"content-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
    "two content-lengths": b"POST /v1/images/generations HTTP/1.1\r\n"
    + HOST
    + b"content-length: 5\r\ncontent-length: 6\r\n\r\nhello!",
    "a negative content-length": b"POST /v1/images/generations HTTP/1.1\r\n" + HOST + b"content-length: -1\r\n\r\n",
    "a content-length past 64 bits": b"POST /v1/images/generations HTTP/1.1\r\n"
    + HOST
    + b"content-length: 99999999999999999999\r\n\r\n",
    "a chunk size that is not hex": b"POST /v1/images/generations HTTP/1.1\r\n"
    + HOST
    + b"content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "an unsupported transfer-encoding": b"POST /v1/images/generations HTTP/1.1\r\n"
    + HOST
    + b"transfer-encoding: gzip\r\n\r\n",
    "a raw non-ASCII path": b"GET /h\xc3\xa9alth HTTP/1.1\r\n" + HOST + b"\r\n",
}


def exchange(gateway: GatewayThread, request: bytes) -> bytes:
    """Sends ``request`` and reads until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", gateway.process.http_port), timeout=READ_TIMEOUT) as sock:
        # A server that answers and closes before reading all of ``request`` may reset the connection;
        # what it sent before the reset can still be read.
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sock.sendall(request)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def still_serving(gateway: GatewayThread) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.process.http_port, timeout=READ_TIMEOUT)
    try:
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_the_test_gateway_runs_on_uvloop_as_production_does(gateway: GatewayThread) -> None:
    assert loop_name(gateway._loop) == "uvloop"


@pytest.mark.parametrize("request_bytes", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_http_gets_a_clean_400_and_a_closed_connection(gateway: GatewayThread, request_bytes: bytes) -> None:
    response = exchange(gateway, request_bytes)
    assert status_of(response) == 400, response[:300]
    assert b"\r\nconnection: close\r\n" in response.lower()
    still_serving(gateway)


@pytest.mark.parametrize(
    "head",
    [
        b"GET /health HTTP/1.1\r\n" + HOST + b"x-big: " + b"a" * (MAX_HEAD_BYTES + 1) + b"\r\n\r\n",
        b"GET /health HTTP/1.1\r\n" + HOST + b"".join(b"x-h%05d: value\r\n" % i for i in range(MAX_HEAD_BYTES // 10)),
        b"GET /" + b"a" * (MAX_HEAD_BYTES + 1) + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    ],
    ids=["one huge header", "many headers", "a huge URL"],
)
def test_a_request_head_over_the_cap_is_a_431_in_openais_envelope(gateway: GatewayThread, head: bytes) -> None:
    response = exchange(gateway, head)
    assert status_of(response) == 431, response[:300]
    head_part, _, body = response.partition(b"\r\n\r\n")
    assert b"\r\nx-should-retry: false\r\n" in head_part and b"\r\nconnection: close" in head_part
    error = json.loads(body)["error"]
    assert error["code"] == "request_header_fields_too_large" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
    still_serving(gateway)


def test_a_large_head_under_the_cap_is_served(gateway: GatewayThread) -> None:
    response = exchange(
        gateway,
        b"GET /health HTTP/1.1\r\n"
        + HOST
        + b"connection: close\r\nx-big: "
        + b"a" * (MAX_HEAD_BYTES - 1024)
        + b"\r\n\r\n",
    )
    assert status_of(response) == 200
    assert json.loads(response.partition(b"\r\n\r\n")[2])["status"] == "ok"


def test_kept_alive_connections_serve_request_after_request_with_nodelay(gateway: GatewayThread) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", gateway.process.http_port, timeout=READ_TIMEOUT)
    try:
        for _ in range(3):
            connection.request("GET", "/health")
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["status"] == "ok"
            assert response.getheader("connection") != "close"
        assert connection.sock is not None
        client_port = connection.sock.getsockname()[1]

        async def nodelay_of_our_connection() -> int:
            # Without TCP_NODELAY a response's body waits ~40 ms for the client's delayed ACK.
            uvicorn_server = gateway.process._uvicorn
            assert uvicorn_server is not None
            (ours,) = [
                c
                for c in uvicorn_server.server_state.connections
                if c.transport.get_extra_info("peername")[1] == client_port
            ]
            sock = ours.transport.get_extra_info("socket")
            return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        nodelay = asyncio.run_coroutine_threadsafe(nodelay_of_our_connection(), gateway._loop).result(READ_TIMEOUT)
        assert nodelay != 0
    finally:
        connection.close()


def test_idle_connections_stay_open_past_common_client_idle_timeouts(gateway: GatewayThread) -> None:
    # The server must not be the first to close an idle connection (httpx drops its own after 5 s):
    # a request sent just as the server closes would be lost. Six seconds idle, then a request.
    with socket.create_connection(("127.0.0.1", gateway.process.http_port), timeout=READ_TIMEOUT) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        sock.settimeout(6.0)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing arrives, and the connection is not closed (recv would return b"")
        sock.settimeout(READ_TIMEOUT)
        sock.sendall(b"GET /health HTTP/1.1\r\n" + HOST + b"\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
