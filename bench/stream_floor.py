"""What the gateway's own stack adds to a streamed answer with no gateway work at all: the floor under
the time-to-first-partial-image target.

A pass-through server built from the same parts as `imagegw serve` (uvicorn with httptools on uvloop
for REST, grpc.aio with the gateway's server options for gRPC, aiohttp for the upstream call) that
forwards a generation's JSON body to the emulator and passes the answer's bytes back as they arrive:
REST as a chunked body, gRPC as one raw message per chunk read. No key, no routing, no parsing, no
checks, no log. The stream phase (bench/stream_first_image.py) times it in the same interleaved rounds
as the gateway, so the report shows how much of the gateway's added time the stack alone takes on
the machine at hand.

    python bench/stream_floor.py --upstream http://127.0.0.1:PORT
    (prints "floor rest http://127.0.0.1:N grpc 127.0.0.1:M")
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import uvicorn
import uvloop

GRPC_METHOD = "/imagegw.bench.StreamFloor/Stream"
GENERATIONS_PATH = "/v1/images/generations"
_SERVICE, _METHOD = GRPC_METHOD.strip("/").split("/")


class PassThrough:
    """The upstream call both servers make: POST the body, yield the answer's chunks as they come."""

    def __init__(self, upstream: str) -> None:
        self._url = upstream.rstrip("/") + GENERATIONS_PATH
        self._session: aiohttp.ClientSession | None = None

    async def chunks(self, body: bytes, authorization: str) -> AsyncIterator[bytes]:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        headers = {"authorization": authorization, "content-type": "application/json", "accept": "text/event-stream"}
        async with self._session.post(self._url, data=body, headers=headers) as response:
            async for chunk in response.content.iter_any():
                yield chunk


def rest_app(upstream: PassThrough) -> Any:
    """A bare ASGI app: read the body, stream the upstream's answer back."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        async for chunk in upstream.chunks(body, authorization):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def grpc_server(upstream: PassThrough) -> grpc.aio.Server:
    """A server-streaming method of raw bytes (the JSON body in, the upstream's chunks out), on the
    options `imagegw serve` uses (bdp probe off, 1 MiB lookahead, 64 MiB messages)."""

    async def stream(body: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        authorization = dict(context.invocation_metadata() or ()).get("authorization", "")
        async for chunk in upstream.chunks(body, str(authorization)):
            yield chunk

    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", 1024 * 1024),
        ]
    )
    handler = grpc.unary_stream_rpc_method_handler(stream)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, {_METHOD: handler}),))
    return server


async def serve(upstream_origin: str) -> None:
    upstream = PassThrough(upstream_origin)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # calls made before uvicorn accepts wait in the backlog
    rest = uvicorn.Server(
        uvicorn.Config(
            rest_app(upstream), loop="none", http="httptools", lifespan="off", log_level="warning", access_log=False
        )
    )
    grpc_port_server = grpc_server(upstream)
    grpc_port = grpc_port_server.add_insecure_port("127.0.0.1:0")
    await grpc_port_server.start()
    print(f"floor rest http://127.0.0.1:{listener.getsockname()[1]} grpc 127.0.0.1:{grpc_port}", flush=True)
    await rest.serve(sockets=[listener])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="the emulator's origin, http://host:port")
    uvloop.run(serve(parser.parse_args().upstream))


if __name__ == "__main__":
    main()
