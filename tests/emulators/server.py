"""A small HTTP/1.1 server on asyncio streams and h11, with control over the socket.

The emulators need to misbehave in ways a framework hides: abort a connection with a TCP RST, promise
more body than they send, or never answer. A handler therefore returns an *outcome*: a normal
`Response`, or `Reset`, `Hang` or `Truncated`. A `Response` with `parts` is streamed (chunked), each
part after its delay, and may end in a reset or a stall instead of its last chunk. Keep-alive is
supported and accepted sockets get TCP_NODELAY so that small sequential requests on one connection
do not stall on delayed ACKs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

import h11

log = logging.getLogger(__name__)

# Room for an OpenAI edit of 16 images of a few MiB each (the edits benchmark sends 32 MiB).
MAX_BODY_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpRequest:
    """One request as read from the wire; header names are lower-case, repeated headers joined."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class StreamPart:
    """One piece of a streamed body, sent `delay_ms` after the one before it."""

    data: bytes
    delay_ms: float = 0.0


StreamEnd = Literal["complete", "reset", "stall"]


@dataclass(frozen=True)
class Response:
    """A complete response; Content-Length is added when sent.

    With `parts`, the body is those parts sent one by one with chunked encoding (`body` unused), and
    `end` says how the stream stops: its last chunk, a TCP RST, or no more bytes until the client leaves.
    """

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    parts: tuple[StreamPart, ...] | None = None
    end: StreamEnd = "complete"

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Iterable[tuple[str, str]] = (), content_type: str = "application/json"
    ) -> Response:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, (("content-type", content_type), *headers), body)

    def with_headers(self, extra: Iterable[tuple[str, str]]) -> Response:
        """Returns a copy with `extra` headers replacing any of the same name."""
        extra = tuple(extra)
        names = {name.lower() for name, _ in extra}
        kept = tuple((n, v) for n, v in self.headers if n.lower() not in names)
        return replace(self, headers=kept + extra)


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST (SO_LINGER 0) instead of answering."""


@dataclass(frozen=True)
class Hang:
    """Never answer; keep the connection open until the client goes away."""


@dataclass(frozen=True)
class Truncated:
    """Send `response` with a Content-Length larger than its body, then close the connection."""

    response: Response
    missing_bytes: int = 1024


Outcome = Response | Reset | Hang | Truncated
Handler = Callable[[HttpRequest], Awaitable[Outcome]]


class _PeerGone(Exception):
    """The client closed the connection."""


@dataclass
class HttpServer:
    """Serves `handler` on host:port (port 0 = any free port) until `stop()`."""

    handler: Handler
    host: str = "127.0.0.1"
    port: int = 0
    _server: asyncio.Server | None = field(default=None, init=False)
    _connections: set[asyncio.Task[None]] = field(default_factory=set, init=False)

    async def start(self) -> int:
        """Binds and starts accepting; returns the bound port."""
        self._server = await asyncio.start_server(self._serve, self.host, self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        """Stops accepting and drops every open connection, including hanging ones."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._serve_connection(reader, writer)
        except (_PeerGone, ConnectionError, OSError, h11.ProtocolError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("emulator connection failed")
        finally:
            self._connections.discard(task)
            if not writer.transport.is_closing():
                writer.transport.abort()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = h11.Connection(h11.SERVER)
        while True:
            try:
                request = await _read_request(conn, reader, writer)
            except (h11.RemoteProtocolError, _BodyTooLarge) as exc:
                status = 413 if isinstance(exc, _BodyTooLarge) else 400
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    await _send(conn, writer, Response.json(status, {"error": str(exc) or "bad request"}))
                writer.close()
                return
            if request is None:
                writer.close()
                return
            outcome = await self.handler(request)
            if isinstance(outcome, Reset):
                _abort_with_rst(writer)
                return
            if isinstance(outcome, Hang):
                await _wait_for_disconnect(reader)
                return
            if isinstance(outcome, Truncated):
                await _send_truncated(writer, outcome)
                return
            if outcome.parts is not None:
                if not await _send_streamed(conn, reader, writer, outcome):
                    return
            else:
                await _send(conn, writer, outcome)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                writer.close()
                return
            conn.start_next_cycle()


class _BodyTooLarge(Exception):
    def __str__(self) -> str:
        return f"body: payloads cannot be larger than {MAX_BODY_BYTES} bytes"


async def _next_event(conn: h11.Connection, reader: asyncio.StreamReader) -> Any:
    while True:
        event = conn.next_event()
        if event is not h11.NEED_DATA:
            return event
        data = await reader.read(_READ_CHUNK)
        conn.receive_data(data)


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> HttpRequest | None:
    """Reads one full request; None when the client closed the connection between requests."""
    event = await _next_event(conn, reader)
    if isinstance(event, h11.ConnectionClosed):
        return None
    if not isinstance(event, h11.Request):
        raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")
    if conn.they_are_waiting_for_100_continue:
        # curl waits a second for this before sending a large body.
        writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
    headers: dict[str, str] = {}
    for name, value in event.headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    chunks: list[bytes] = []
    size = 0
    while True:
        part = await _next_event(conn, reader)
        if isinstance(part, h11.Data):
            size += len(part.data)
            if size > MAX_BODY_BYTES:
                raise _BodyTooLarge()
            chunks.append(bytes(part.data))
        elif isinstance(part, h11.EndOfMessage):
            break
        else:
            raise _PeerGone()
    target = urlsplit(event.target.decode("latin-1"))
    return HttpRequest(
        method=event.method.decode("ascii").upper(),
        path=target.path,
        query=dict(parse_qsl(target.query)),
        headers=headers,
        body=b"".join(chunks),
    )


async def _send(conn: h11.Connection, writer: asyncio.StreamWriter, response: Response) -> None:
    headers = [(n, v) for n, v in response.headers if n.lower() != "content-length"]
    headers.append(("content-length", str(len(response.body))))
    event = h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))
    data = conn.send(event)
    data += conn.send(h11.Data(data=response.body)) if response.body else b""
    data += conn.send(h11.EndOfMessage())
    writer.write(data)
    await writer.drain()


async def _send_streamed(
    conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, response: Response
) -> bool:
    """Streams `response.parts`; False when the stream ended in a reset or stall (the connection is done)."""
    headers = [(n, v) for n, v in response.headers if n.lower() not in ("content-length", "transfer-encoding")]
    event = h11.Response(status_code=response.status, headers=headers, reason=_reason(response.status))
    writer.write(conn.send(event))
    await writer.drain()
    for part in response.parts or ():
        if part.delay_ms:
            await asyncio.sleep(part.delay_ms / 1000)
        writer.write(conn.send(h11.Data(data=part.data)))
        await writer.drain()
    if response.end == "reset":
        _abort_with_rst(writer)
        return False
    if response.end == "stall":
        await _wait_for_disconnect(reader)
        return False
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()
    return True


async def _send_truncated(writer: asyncio.StreamWriter, outcome: Truncated) -> None:
    response = outcome.response
    body = response.body[: len(response.body) // 2]
    promised = len(response.body) + outcome.missing_bytes
    lines = [f"HTTP/1.1 {response.status} {_reason(response.status)}"]
    lines += [f"{n}: {v}" for n, v in response.headers if n.lower() not in ("content-length", "connection")]
    lines += [f"content-length: {promised}", "connection: keep-alive"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    writer.close()


def _reason(status: int) -> str:
    with contextlib.suppress(ValueError):
        return HTTPStatus(status).phrase
    return ""


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _wait_for_disconnect(reader: asyncio.StreamReader) -> None:
    while await reader.read(_READ_CHUNK):
        pass
