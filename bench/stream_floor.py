"""What the gateway's own stack adds to a streamed answer, with no gateway work and with only the work
every gateway must do: the floors under the time-to-first-partial-image target.

A server built from the same parts as `imagegw serve` (uvicorn with httptools on uvloop for REST,
grpc.aio with the gateway's server options for gRPC, aiohttp for the upstream call), in two kinds:

- *stack*: forwards a generation's JSON body to the emulator and passes the answer's bytes back as
  they arrive, REST as a chunked body, gRPC as one raw message per chunk read. No key, no routing, no
  parsing, no checks, no log.
- *essential*: what no gateway can skip, done with the gateway's own leanest parts and nothing more:
  check the caller's key (its SHA-256 against the one it holds), parse the JSON body and build the
  upstream's, split the event stream (``SseDecoder``), parse each event with its base64 checked
  (``json_object``, which decodes it), and send each partial image on with the gateway's own framing:
  REST's ``partial_image_event``, gRPC's spliced ``partial_image_response``. No routing, breakers,
  limits, cache, metrics or log.

The stream phase (bench/stream_first_image.py) times both in the same interleaved rounds as the
gateway, so the report shows how much of the gateway's added time the stack alone, and the least
work on it, take on the machine at hand.

    python bench/stream_floor.py --upstream http://127.0.0.1:PORT --upstream-key KEY --key FLOOR_KEY
    (prints "floor rest http://127.0.0.1:N grpc 127.0.0.1:M"; the essential REST path is
    /essential/v1/images/generations, its gRPC method ESSENTIAL_METHOD)
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import orjson
import uvicorn
import uvloop

from imagegateway_server.api.grpc_image_responses import partial_image_response
from imagegateway_server.api.rest_sse import partial_image_event
from imagegateway_server.domain.progress import PartialImage
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.base64_json import DecodedBase64
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.sse import SseDecoder

GRPC_METHOD = "/imagegw.bench.StreamFloor/Stream"
ESSENTIAL_METHOD = "/imagegw.bench.StreamFloor/Essential"
GENERATIONS_PATH = "/v1/images/generations"
ESSENTIAL_PATH = "/essential" + GENERATIONS_PATH
FLOOR_KEY_HEADER = "x-floor-key"
_SERVICE, _METHOD = GRPC_METHOD.strip("/").split("/")
_ESSENTIAL_METHOD = ESSENTIAL_METHOD.rsplit("/", 1)[1]
_IMAGE_KEYS = frozenset({"b64_json"})
_STREAMED = ImageRequest(prompt="", stream=True, partial_images=2)  # the events' defaults, as the gateway's
_UPSTREAM_FIELDS = ("prompt", "model", "n", "size", "quality", "stream", "partial_images")


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


class EssentialWork:
    """The work no gateway can skip on a streamed generation (see the module's docstring)."""

    def __init__(self, upstream: PassThrough, key: str, upstream_key: str) -> None:
        self._upstream = upstream
        self._key_digest = hashlib.sha256(key.encode()).digest()
        self._authorization = f"Bearer {upstream_key}"

    def upstream_body(self, key: str, body: bytes) -> bytes:
        """The upstream's body for a caller's; ValueError for a wrong key or a body that is not a request."""
        if not hmac.compare_digest(hashlib.sha256(key.encode()).digest(), self._key_digest):
            raise ValueError("wrong key")
        request = orjson.loads(body)
        if not isinstance(request, dict) or not isinstance(request.get("prompt"), str):
            raise ValueError("not a generation")
        return orjson.dumps({name: request[name] for name in _UPSTREAM_FIELDS if name in request})

    async def partial_images(self, body: bytes) -> AsyncIterator[PartialImage]:
        """The upstream's partial images, each event parsed with its image checked and decoded. Only they
        are sent on: the bench times the first, and the completed events after them only end the stream."""
        decoder = SseDecoder()
        async for chunk in self._upstream.chunks(body, self._authorization):
            for event in decoder.feed(chunk):
                payload = json_object(event.source, image_keys=_IMAGE_KEYS, start=event.start, end=event.end)
                if payload is None:
                    raise ValueError("an event that is not JSON")
                image = payload.get("b64_json")
                if event.event.endswith(".partial_image") and isinstance(image, DecodedBase64):
                    yield PartialImage(
                        index=payload.get("partial_image_index", 0),
                        b64_json=image.text,
                        provider="openai",
                        model=str(payload.get("model", "")),
                        size=str(payload.get("size", "")),
                        data=image.data,
                    )


def rest_app(upstream: PassThrough, essential: EssentialWork) -> Any:
    """A bare ASGI app: read the body, stream the upstream's answer back (the essential path: as events
    parsed, checked and framed anew)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        started = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
        if scope["path"] == ESSENTIAL_PATH:
            key = headers.get(FLOOR_KEY_HEADER.encode(), b"").decode("latin-1")
            upstream_body = essential.upstream_body(key, body)
            async for image in essential.partial_images(upstream_body):
                if started:
                    await send(started)
                    started = {}
                event = partial_image_event(image, _STREAMED)  # the gateway's own framing
                await send({"type": "http.response.body", "body": event, "more_body": True})
        else:
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            await send(started)
            async for chunk in upstream.chunks(body, authorization):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def grpc_server(upstream: PassThrough, essential: EssentialWork) -> grpc.aio.Server:
    """Two server-streaming methods of raw bytes, on the options `imagegw serve` uses (bdp probe off,
    1 MiB lookahead, 64 MiB messages): the JSON body in, and out the upstream's chunks (stack) or a
    StreamGenerateImageResponse per partial image (essential)."""

    async def stream(body: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        authorization = dict(context.invocation_metadata() or ()).get("authorization", "")
        async for chunk in upstream.chunks(body, str(authorization)):
            yield chunk

    async def essential_stream(body: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        key = dict(context.invocation_metadata() or ()).get(FLOOR_KEY_HEADER, "")
        async for image in essential.partial_images(essential.upstream_body(str(key), body)):
            yield partial_image_response(image).data  # the gateway's own spliced message

    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", 1024 * 1024),
        ]
    )
    handlers = {
        _METHOD: grpc.unary_stream_rpc_method_handler(stream),
        _ESSENTIAL_METHOD: grpc.unary_stream_rpc_method_handler(essential_stream),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(_SERVICE, handlers),))
    return server


async def serve(upstream_origin: str, upstream_key: str, key: str) -> None:
    upstream = PassThrough(upstream_origin)
    essential = EssentialWork(upstream, key, upstream_key)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # calls made before uvicorn accepts wait in the backlog
    app = rest_app(upstream, essential)
    config = uvicorn.Config(app, loop="none", http="httptools", lifespan="off", log_level="warning", access_log=False)
    rest = uvicorn.Server(config)
    grpc_port_server = grpc_server(upstream, essential)
    grpc_port = grpc_port_server.add_insecure_port("127.0.0.1:0")
    await grpc_port_server.start()
    print(f"floor rest http://127.0.0.1:{listener.getsockname()[1]} grpc 127.0.0.1:{grpc_port}", flush=True)
    await rest.serve(sockets=[listener])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upstream", required=True, help="the emulator's origin, http://host:port")
    parser.add_argument("--upstream-key", required=True, help="the emulator's key (the essential path's credential)")
    parser.add_argument("--key", required=True, help="the key callers of the essential path send")
    args = parser.parse_args()
    uvloop.run(serve(args.upstream, args.upstream_key, args.key))


if __name__ == "__main__":
    main()
