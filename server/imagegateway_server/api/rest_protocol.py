"""uvicorn's HTTP/1.1 protocol on httptools (a C parser), with a cap on the size of a request head.

httptools parses a request in a fraction of h11's time, but unlike h11 it sets no bound on the
request line and headers: a client could stream headers until the process runs out of memory. A
head past ``MAX_HEAD_BYTES`` is answered 431 in OpenAI's error envelope and the connection closed.
Everything else malformed is uvicorn's plain 400 ("Invalid HTTP request received.") and a close.

uvicorn writes a response's head and its body to the socket separately: two sends, and on the
client two wake-ups, for every answer. Here the head waits for the body written in the same turn of
the event loop (a whole response, as every non-streamed answer is) and both leave in one write; a
head whose body does not follow in that turn (a stream) goes out on its own at the turn's end.

A streamed answer's large chunks (a partial image: hundreds of KiB) leave as their chunk-size line,
the body and its CRLF in one ``writelines``, rather than through uvicorn, which joins the three into
one new bytes object: one copy less of every event on its way from the upstream to the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from imagegateway_server.api import rest_json
from imagegateway_server.api.rest_errors import error_envelope

# Request line + header names and values. Roomy for an inline x-portkey-config of many targets.
MAX_HEAD_BYTES = 64 * 1024
# A streamed chunk at least this large is written without being joined to its chunk framing.
UNJOINED_CHUNK_BYTES = 16 * 1024


class _HeadTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into the parse error that ends the connection."""


class _HeadWithBody:
    """The transport as one response cycle writes to it: the response head is held until the first body
    bytes (or the end of the turn), then written with them in one ``writelines``."""

    __slots__ = ("_cycle", "_head", "_head_seen", "_transport")

    def __init__(self, transport: Any, cycle: RequestResponseCycle) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        head = self._head
        if head is not None:
            self._head = None
            self._transport.writelines((head, data))
        elif not self._head_seen and self._cycle.response_started:
            # The head (a "100 Continue" is written before the response starts, and passes through).
            self._head_seen = True
            self._head = data
            asyncio.get_running_loop().call_soon(self._flush)
        else:
            self._transport.write(data)

    def _flush(self) -> None:
        head = self._head
        if head is not None:
            self._head = None
            if not self._transport.is_closing():
                self._transport.write(head)

    def writelines(self, pieces: tuple[bytes, ...]) -> None:
        head = self._head
        if head is not None:
            self._head = None
            pieces = (head, *pieces)
        self._transport.writelines(pieces)

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _unjoined_chunks(cycle: RequestResponseCycle) -> Callable[[ASGISendEvent], Coroutine[Any, Any, None]]:
    """``cycle.send`` that writes a large chunk of a chunked body (not the last) in three pieces; every
    other message, and a chunk meeting a paused or gone caller, goes through uvicorn's own ``send``."""
    send = cycle.send

    async def send_unjoined(message: ASGISendEvent) -> None:
        if (
            message["type"] == "http.response.body"
            and message.get("more_body", False)
            and len(body := message.get("body", b"")) >= UNJOINED_CHUNK_BYTES
            and cycle.chunked_encoding
            and cycle.response_started
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
            and cycle.scope["method"] != "HEAD"
        ):
            cycle.transport.writelines((b"%x\r\n" % len(body), body, b"\r\n"))
            return
        await send(message)

    return send_unjoined


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request head larger than ``MAX_HEAD_BYTES`` with a 431, and
    writes each response's head with its body."""

    _head_bytes = 0
    _head_too_large = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        # The cycle's task was created but has not run: it writes through the wrapper from its start.
        cycle = self.cycle
        if not isinstance(cycle.transport, _HeadWithBody):
            cycle.transport = _HeadWithBody(cycle.transport, cycle)  # type: ignore[assignment]
            cycle.send = _unjoined_chunks(cycle)  # type: ignore[method-assign,assignment]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._head_bytes += len(url)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()
        HttpToolsProtocol.on_url(self, url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # Called for every header of every request: kept to an addition and a comparison.
        self._head_bytes += len(name) + len(value)
        if self._head_bytes > MAX_HEAD_BYTES:
            self._refuse_head()
        HttpToolsProtocol.on_header(self, name, value)

    def _refuse_head(self) -> None:
        self._head_too_large = True
        raise _HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        # uvicorn answers every parse error here, ours included: tell the oversized head apart.
        if not self._head_too_large:
            super().send_400_response(msg)
            return
        body = rest_json.dumps(
            error_envelope(
                431,
                f"the request line and headers are larger than {MAX_HEAD_BYTES} bytes",
                code="request_header_fields_too_large",
            )
        )
        head = (
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nx-should-retry: false\r\nconnection: close\r\n\r\n" % len(body)
        )
        self.transport.write(head + body)
        self.transport.close()
