"""uvicorn's HTTP/1.1 protocol on httptools (a C parser), with a cap on the size of a request head.

httptools parses a request in a fraction of h11's time, but unlike h11 it sets no bound on the
request line and headers: a client could stream headers until the process runs out of memory. A
head past ``MAX_HEAD_BYTES`` is answered 431 in OpenAI's error envelope and the connection closed.
Everything else malformed is uvicorn's plain 400 ("Invalid HTTP request received.") and a close.
"""

from __future__ import annotations

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from imagegateway_server.api import rest_json
from imagegateway_server.api.rest_errors import error_envelope

# Request line + header names and values. Roomy for an inline x-portkey-config of many targets.
MAX_HEAD_BYTES = 64 * 1024


class _HeadTooLarge(Exception):
    """Raised inside a parser callback; httptools turns it into the parse error that ends the connection."""


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` that refuses a request head larger than ``MAX_HEAD_BYTES`` with a 431."""

    _head_bytes = 0
    _head_too_large = False

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
