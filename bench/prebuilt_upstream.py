"""An OpenAI Images upstream that answers from bytes built at start, for measuring the gateway alone.

    python bench/prebuilt_upstream.py --port 0 [--sizes 1k,256k,1m]

`POST /<size>/v1/images/generations` (e.g. `/1m/v1/images/generations`) answers with the prebuilt
response for that size; `POST /v1/images/generations` with the first size. Each response is OpenAI's
`{"created": ..., "data": [{"b64_json": ...}]}` holding a real PNG of about that many bytes, built
once at start. A request is read by its Content-Length and never parsed, so the upstream's own cost
per request is a few microseconds and what a load generator measures through the gateway is the
gateway. HTTP/1.1 with keep-alive (and pipelining) on asyncio Protocols over uvloop, TCP_NODELAY on
every connection. The first line of output is `listening on http://HOST:PORT`, then one line per size.

The tests' emulator (`tests/emulators`) answers the same API with fault injection and checks every
request; it costs a millisecond or more per large image, which is why this exists.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulators.images import noise_png  # noqa: E402

GENERATIONS_PATH = "/v1/images/generations"
_MAX_HEAD_BYTES = 64 * 1024
_CREATED = 1_700_000_000
# Images of 64 KiB and more are 1024x1024 like DALL-E's (noise rows on top of a solid colour); a
# 1024x1024 PNG cannot be much smaller than ~3 KiB, so smaller ones are small squares of noise.
_FULL_SIDE = 1024
_FULL_SIDE_FROM_BYTES = 64 * 1024


def parse_size(text: str) -> int:
    """`1k` -> 1024, `256k` -> 262144, `1m` -> 1048576, `5000` -> 5000."""
    text = text.strip().lower()
    scale = {"k": 1024, "m": 1024 * 1024}.get(text[-1:], 1)
    number = text[:-1] if scale != 1 else text
    value = int(number) * scale
    if value <= 0:
        raise ValueError(f"size must be > 0 bytes: {text!r}")
    return value


def png_of_about(nbytes: int) -> bytes:
    """A real PNG whose file is about `nbytes` long (a few percent over, from PNG's framing)."""
    if nbytes >= _FULL_SIDE_FROM_BYTES:
        # The solid rows below the noise add a few KiB; ask for that much less noise.
        overshoot = len(noise_png(_FULL_SIDE, _FULL_SIDE, nbytes)) - nbytes
        return noise_png(_FULL_SIDE, _FULL_SIDE, max(1, nbytes - overshoot))
    # Random RGB bytes do not compress: side*side*3 bytes of noise make a PNG of about that size.
    # ~60 bytes of PNG framing and one filter byte per row come on top.
    side = max(1, round(math.sqrt(max(1, nbytes - 60) / 3)))
    return noise_png(side, side, nbytes)


def openai_response(png: bytes) -> bytes:
    """The full HTTP/1.1 response (head and body) carrying `png` as OpenAI's b64_json."""
    body = json.dumps(
        {"created": _CREATED, "data": [{"b64_json": base64.b64encode(png).decode()}]}, separators=(",", ":")
    ).encode()
    head = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        "connection: keep-alive\r\n\r\n"
    ).encode()
    return head + body


def _plain(status: str, text: str, close: bool = False) -> bytes:
    body = json.dumps({"error": {"message": text}}).encode()
    connection = "close" if close else "keep-alive"
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        f"connection: {connection}\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class Prebuilt:
    """The answers by request path, and what they hold (for the start-up lines)."""

    by_path: dict[str, bytes]
    png_bytes: dict[str, int]

    @classmethod
    def build(cls, sizes: list[tuple[str, int]]) -> Prebuilt:
        by_path: dict[str, bytes] = {}
        png_bytes: dict[str, int] = {}
        for index, (name, nbytes) in enumerate(sizes):
            png = png_of_about(nbytes)
            response = openai_response(png)
            by_path[f"/{name}{GENERATIONS_PATH}"] = response
            if index == 0:
                by_path[GENERATIONS_PATH] = response
            png_bytes[name] = len(png)
        return cls(by_path, png_bytes)


class _Connection(asyncio.Protocol):
    """One client connection: reads request heads and skips bodies by Content-Length, answers in order."""

    def __init__(self, prebuilt: Prebuilt) -> None:
        self._prebuilt = prebuilt
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._body_left = 0  # bytes of the current request's body still to skip
        self._answer = b""  # what to send once that body is in
        self._close_after = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, so no isinstance check here.
        self._transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._buffer += data
        while True:
            if self._answer:
                taken = min(self._body_left, len(self._buffer))
                del self._buffer[:taken]
                self._body_left -= taken
                if self._body_left:
                    return
                transport.write(self._answer)
                self._answer = b""
                if self._close_after:
                    transport.close()
                    return
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD_BYTES:
                    transport.write(_plain("431 Request Header Fields Too Large", "head too large", close=True))
                    transport.close()
                return
            head = bytes(self._buffer[:end])
            del self._buffer[: end + 4]
            self._start_request(head)

    def _start_request(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        method, path, version = [*parts, "", "", ""][:3]
        length = 0
        close = version != "HTTP/1.1"
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip()) if value.strip().isdigit() else -1
            elif name == "connection":
                close = value.strip().lower() == "close"
            elif name == "transfer-encoding":
                chunked = True
        answer = self._prebuilt.by_path.get(path.split("?", 1)[0])
        if chunked:
            answer, close = _plain("501 Not Implemented", "chunked request bodies are not read here", True), True
        elif length < 0:
            answer, close, length = _plain("400 Bad Request", "bad Content-Length", True), True, 0
        elif method != "POST":
            answer = _plain("405 Method Not Allowed", f"{method} {path}: only POST is answered")
        elif answer is None:
            answer = _plain(
                "404 Not Found", f"no prebuilt answer for {path}; paths: " + ", ".join(sorted(self._prebuilt.by_path))
            )
        self._answer, self._body_left, self._close_after = answer, length, close


async def serve(host: str, port: int, prebuilt: Prebuilt) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(prebuilt), host, port, backlog=1024)
    bound_host, bound_port = server.sockets[0].getsockname()[:2]
    print(f"listening on http://{bound_host}:{bound_port}", flush=True)
    for name, nbytes in prebuilt.png_bytes.items():
        body = len(prebuilt.by_path[f"/{name}{GENERATIONS_PATH}"])
        print(f"prebuilt {name}: PNG {nbytes} bytes, response {body} bytes, POST /{name}{GENERATIONS_PATH}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/prebuilt_upstream.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--sizes",
        default="1k,256k,1m",
        help="comma-separated image sizes (k/m suffixes); each is served under /<size>/v1 and "
        "the first also under /v1 (default: 1k,256k,1m)",
    )
    args = parser.parse_args(argv)
    try:
        sizes = [(name.strip().lower(), parse_size(name)) for name in args.sizes.split(",") if name.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if not sizes:
        parser.error("--sizes names no size")
    prebuilt = Prebuilt.build(sizes)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(args.host, args.port, prebuilt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
