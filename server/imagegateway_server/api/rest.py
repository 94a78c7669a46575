"""The OpenAI-compatible REST shim: POST /v1/images/generations, /edits and /variations driven by Portkey's headers.

Bodies and errors are exactly OpenAI's, so the official SDK works with only base_url changed.
``stream: true`` (generations; ``stream=true`` in an edit's form) answers with OpenAI's server-sent
events (``rest_sse``: ``image_generation.*``, ``image_edit.*``), passed on as they arrive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import pybase64
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from imagegateway_server.api import rest_json, rest_mapping
from imagegateway_server.api.auth import Authenticator
from imagegateway_server.api.dashboard import KEEP_IMAGE_HEADER, Dashboard, keep_image_task
from imagegateway_server.api.rest_direct_route import DirectRoute
from imagegateway_server.api.rest_errors import error_envelope, to_http_error
from imagegateway_server.api.rest_event_stream import EventStreamResponse
from imagegateway_server.api.rest_image_shape import answer_format, response_fields
from imagegateway_server.api.rest_metrics import HttpMetricsMiddleware
from imagegateway_server.api.rest_multipart import BodyTooLarge, Upload, read_upload
from imagegateway_server.api.rest_sse import (
    EDIT_EVENTS,
    GENERATION_EVENTS,
    STREAM_HEADERS,
    completed_event,
    error_event,
    partial_image_event,
)
from imagegateway_server.api.rest_sse import MEDIA_TYPE as SSE_MEDIA_TYPE
from imagegateway_server.api.rest_upload_mapping import edit_request, variation_request
from imagegateway_server.api.upload_budget import UploadBudget
from imagegateway_server.core.gateway import Gateway
from imagegateway_server.core.limits import RATE_LIMITED, LimitExceeded
from imagegateway_server.core.pricing import format_usd
from imagegateway_server.core.streaming import StreamItem, stream_generation
from imagegateway_server.domain.calls import Caller, GenerationCall, GenerationOutcome
from imagegateway_server.domain.errors import (
    GatewayError,
    InvalidArgument,
    ProviderError,
    RequestFailed,
    ShuttingDown,
)
from imagegateway_server.domain.input_limits import DEFAULT_INPUT_LIMITS, InputLimits
from imagegateway_server.domain.progress import PartialImage, ProgressEvent
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.domain.scopes import Scope
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.tracing import TraceContext, bind_trace_id, resolve_trace
from imagegateway_server.state.kept_images import KeptImages

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_HEADER = "x-portkey-request-timeout"
MAX_REQUEST_TIMEOUT_MS = 24 * 60 * 60 * 1000
GENERATIONS_ROUTE = "/v1/images/generations"
EDITS_ROUTE = "/v1/images/edits"
VARIATIONS_ROUTE = "/v1/images/variations"
STRICT_HEADER = "x-imagegw-strict"
# Says a retired model was served by its successor: "dall-e-3->gpt-image-2" (docs/retired-models.md).
MODEL_SUBSTITUTED_HEADER = "x-imagegw-model-substituted"


def _error_response(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    # The gateway owns retries: tell the OpenAI SDK not to multiply attempts (docs/architecture.md).
    return Response(
        rest_json.dumps(body),
        status_code=status,
        media_type="application/json",
        headers={"x-should-retry": "false", **(headers or {})},
    )


def _image_item(image: GeneratedImage, response_format: ResponseFormat) -> list[bytes]:
    """One ``data`` item as pieces of JSON. Base64 needs no JSON escaping, so the (large) image is spliced
    in as bytes instead of going through json.dumps, which would scan and copy it again."""
    if response_format is ResponseFormat.URL and image.url:
        parts = [b'{"url":', rest_json.dumps(image.url)]
    elif response_format is ResponseFormat.URL:
        # The provider gave bytes: answer with a data URL rather than drop the request.
        prefix = rest_json.dumps(f"data:{image.mime_type};base64,")[:-1]  # the string, still open
        parts = [b'{"url":', prefix, pybase64.b64encode(image.data or b""), b'"']
    else:
        parts = [b'{"b64_json":"', pybase64.b64encode(image.data or b""), b'"']
    if image.revised_prompt:
        parts += (b',"revised_prompt":', rest_json.dumps(image.revised_prompt))
    parts.append(b"}")
    return parts


def images_body(
    created: int,
    images: Sequence[GeneratedImage],
    response_format: ResponseFormat,
    fields: Mapping[str, Any] | None = None,
) -> bytes:
    """OpenAI's ImagesResponse body: ``{"created": ..., <fields>, "data": [...]}``, joined once (images
    are large, and every concatenation would copy them again). ``fields`` are the response-level
    fields (``usage``, ``size``, ... from ``rest_image_shape.response_fields``)."""
    parts = [b'{"created":', str(created).encode()]
    for name, value in (fields or {}).items():
        parts += (b',"', name.encode(), b'":', rest_json.dumps(value))
    parts.append(b',"data":[')
    for index, image in enumerate(images):
        if index:
            parts.append(b",")
        parts += _image_item(image, response_format)
    parts.append(b"]}")
    return b"".join(parts)


def request_deadline(value: str | None, arrived: float) -> float | None:
    """The loop-time deadline x-portkey-request-timeout (ms) sets for the whole chain, counted from arrival.

    Portkey applies the header to each attempt; here it bounds the request, as a gRPC deadline does.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 9 and 0 < int(text) <= MAX_REQUEST_TIMEOUT_MS):
        raise InvalidArgument(
            f"must be a whole number of milliseconds from 1 to {MAX_REQUEST_TIMEOUT_MS}", param=REQUEST_TIMEOUT_HEADER
        )
    return arrived + int(text) / 1000.0


def _success_headers(outcome: GenerationOutcome) -> dict[str, str]:
    routed = outcome.routed
    headers = {
        "x-portkey-trace-id": outcome.trace_id,
        "x-portkey-provider": routed.provider,
        "x-portkey-retry-attempt-count": str(routed.retry_count),
        "x-portkey-cache-status": outcome.cache_status,
        "x-imagegw-log-id": outcome.log_id,
        "x-imagegw-model": routed.result.model,
        "x-imagegw-cost-usd": format_usd(outcome.cost_usd),
    }
    if routed.leaf.path:
        headers["x-portkey-last-used-option-index"] = routed.leaf.path
    # The body stays OpenAI's; what produced the images and what was translated travel as headers.
    sizes = ", ".join(dict.fromkeys(image.size for image in routed.result.images if image.size))
    if sizes:
        headers["x-imagegw-size"] = sizes
    if routed.result.translations:
        headers["x-imagegw-translated"] = ", ".join(routed.result.translations)
    if routed.substitution is not None:
        headers[MODEL_SUBSTITUTED_HEADER] = routed.substitution.describe()
    return headers


def _request_failed_response(exc: RequestFailed) -> Response:
    """The answer to a request the core served and logged without images."""
    status, body = to_http_error(exc)
    extra = {
        "x-portkey-trace-id": exc.trace_id,
        "x-imagegw-log-id": exc.log_id,
        "x-portkey-retry-attempt-count": str(exc.retry_count),
    }
    error = exc.error
    if error.retry_after:
        extra["retry-after"] = str(max(1, round(error.retry_after)))
    if isinstance(error, LimitExceeded) and error.reason == RATE_LIMITED:
        # The one error a client may retry on its own (docs/architecture.md): our rate limit, whose wait
        # is at most a minute; a spent budget that resets hours away stays "false".
        extra["x-should-retry"] = "true"
    return _error_response(status, body, extra)


def _strict(headers: Mapping[str, str], image_request: ImageRequest) -> ImageRequest:
    """Applies ``x-imagegw-strict``; ``strict`` is not an OpenAI body field, so the body may not carry it."""
    if "strict" in image_request.extra:
        raise InvalidArgument(
            f"is not an OpenAI parameter; send the header {STRICT_HEADER}: true instead",
            param="strict",
            code="unknown_parameter",
        )
    strict = rest_mapping.flag_header(headers, STRICT_HEADER)
    return dataclasses.replace(image_request, strict=True) if strict else image_request


class RestShim:
    """Builds the Starlette app around the gateway core."""

    def __init__(
        self,
        gateway: Gateway,
        authenticator: Authenticator,
        metrics: Metrics,
        dashboard: Dashboard | None = None,
        image_keeper: KeptImages | None = None,
        input_limits: InputLimits = DEFAULT_INPUT_LIMITS,
        health_details: Callable[[], Mapping[str, object]] | None = None,
        upload_budget: UploadBudget | None = None,
    ) -> None:
        self._health_details = health_details
        self._input_limits = input_limits
        self._gateway = gateway
        self._auth = authenticator
        self._metrics = metrics
        self._dashboard = dashboard
        self._image_keeper = image_keeper
        # The process's one budget, shared with the gRPC servicer (app.py); a shim built alone has its own.
        self._upload_budget = upload_budget or UploadBudget(input_limits.upload_memory_bytes)

    def app(self) -> DirectRoute:
        async def not_found(request: Request, exc: Exception) -> Response:
            return _error_response(
                404,
                error_envelope(404, f"Unknown request URL: {request.method} {request.url.path}", code="unknown_url"),
            )

        async def method_not_allowed(request: Request, exc: Exception) -> Response:
            return _error_response(
                405,
                error_envelope(
                    405, f"{request.method} is not allowed on {request.url.path}", code="method_not_allowed"
                ),
            )

        generations = Route(GENERATIONS_ROUTE, self.generations, methods=["POST"])
        app = Starlette(
            routes=[
                generations,
                Route(EDITS_ROUTE, self.edits, methods=["POST"]),
                Route(VARIATIONS_ROUTE, self.variations, methods=["POST"]),
                Route("/health", self.health, methods=["GET"]),
                *(self._dashboard.routes() if self._dashboard is not None else ()),
            ],
            exception_handlers={404: not_found, 405: method_not_allowed},
            middleware=[Middleware(HttpMetricsMiddleware, metrics=self._metrics)],
        )
        return DirectRoute(app, generations, self.generations, metrics=self._metrics)

    async def health(self, request: Request) -> Response:
        # Serving from in-process state while Redis is away, or from cached configs while the database
        # is, is still serving: the status stays ok and the details say what is missing.
        details = dict(self._health_details()) if self._health_details is not None else {}
        return JSONResponse({"status": "ok", **details})

    async def _read_json(self, request: Request, headers: Mapping[str, str]) -> Any:
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise _HttpError(415, "the request body must be sent as application/json", "content-type")
        limit = self._input_limits.max_body_bytes
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise _HttpError(413, f"the request body is larger than {limit} bytes", "body")
        # Read from ASGI's receive() as Starlette's ``request.stream()`` does, without its async generator:
        # a small body is one message, and this runs on every request before the upstream call.
        receive = request.receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            kind = message["type"]
            if kind == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise _HttpError(413, f"the request body is larger than {limit} bytes", "body")
                if chunk:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            elif kind == "http.disconnect":
                raise ClientDisconnect()
        try:
            return rest_json.loads(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        except ValueError:  # UnicodeDecodeError is one
            raise _HttpError(400, "the request body is not valid JSON", None) from None
        except RecursionError:  # thousands of nested brackets: a bad body, not a crash
            raise _HttpError(400, "the request body is nested too deeply", None) from None

    async def generations(self, request: Request) -> Response:
        # Resolved first, so every log line of the request and every answer (errors too) carry it; a
        # trace id we refuse is replaced by a fresh one for that, and the refusal names the header.
        headers = rest_mapping.RequestHeaders(request.scope["headers"])
        refused: InvalidArgument | None = None
        try:
            explicit = rest_mapping.trace_id(headers)
        except InvalidArgument as exc:
            explicit, refused = None, exc
        trace = resolve_trace(explicit, headers)
        bind_trace_id(trace.trace_id)
        if refused is not None:
            status, body = to_http_error(refused)
            return _error_response(status, body, {"x-portkey-trace-id": trace.trace_id})
        try:
            return await self._generations(request, headers, trace)
        except asyncio.CancelledError:
            # Only the server cancels a request's task (uvicorn, when the shutdown grace period runs out; a
            # caller that disconnects does not): answer in OpenAI's shape rather than uvicorn's plain-text 500.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            status, body = to_http_error(ShuttingDown())
            return _error_response(status, body, {"x-portkey-trace-id": trace.trace_id})

    async def _generations(
        self, request: Request, headers: rest_mapping.RequestHeaders, trace: TraceContext
    ) -> Response:
        arrived = asyncio.get_running_loop().time()

        async def read() -> tuple[Caller, ImageRequest]:
            caller = await self._auth.authenticate(rest_mapping.gateway_key(headers), Scope.GENERATE)
            body = await self._read_json(request, headers)
            return caller, rest_mapping.image_request(body)

        return await self._serve(read, headers, trace, arrived, GENERATION_EVENTS)

    async def _serve(
        self,
        read: Callable[[], Awaitable[tuple[Caller, ImageRequest]]],
        headers: rest_mapping.RequestHeaders,
        trace: TraceContext,
        arrived: float,
        event_prefix: str,
    ) -> Response:
        """Serves the image request ``read`` gives (a generation's JSON or an upload's form) through the
        core: its images as OpenAI's JSON, or its events when it streams, or a failure in OpenAI's envelope."""
        trace_headers = {"x-portkey-trace-id": trace.trace_id}
        try:
            caller, read_request = await read()
            image_request = _strict(headers, read_request)
            call = GenerationCall(
                request=image_request,
                routing=rest_mapping.routing_spec(headers),
                caller=caller,
                transport="rest",
                trace_id=trace.trace_id,
                trace_parent=trace.parent,
                metadata=rest_mapping.metadata(headers, self._input_limits.max_metadata_bytes),
                deadline=request_deadline(headers.get(REQUEST_TIMEOUT_HEADER), arrived),
                headers=headers.last,
                cache_force_refresh=rest_mapping.cache_force_refresh(headers),
                stream_complete=rest_mapping.stream_fallback(headers),
            )
            # Checked before any upstream call: a bad value is the caller's mistake, not a silent "no".
            keep_image = rest_mapping.flag_header(headers, KEEP_IMAGE_HEADER)
            if image_request.stream:
                # The status line waits for the first image event: until then a failure (or a fallback
                # that moves on) still answers as a plain error with its own status.
                items = stream_generation(self._gateway, call, progress=False)  # OpenAI's events have none
                first = await _first_image_event(items)
            else:
                outcome = await self._gateway.generate(call)
        except _HttpError as exc:
            return _error_response(
                exc.status, error_envelope(exc.status, exc.message, param=exc.param, code=exc.code), trace_headers
            )
        except RequestFailed as exc:
            return _request_failed_response(exc)
        except (GatewayError, ProviderError) as exc:
            status, body = to_http_error(exc)
            return _error_response(status, body, trace_headers)
        if image_request.stream:
            return _event_stream_response(first, items, image_request, trace_headers, event_prefix)
        routed = outcome.routed
        result = routed.result
        payload = images_body(
            result.created or int(time.time()),
            result.images,
            answer_format(image_request.response_format, routed),
            response_fields(routed),
        )
        return Response(
            payload,
            media_type="application/json",
            headers=_success_headers(outcome),
            background=keep_image_task(self._image_keeper, keep_image, outcome.log_id, result.images),
        )

    # -- edits and variations: multipart uploads, served by the same core as generations -------------

    async def edits(self, request: Request) -> Response:
        return await self._upload_endpoint(request, edit_request)

    async def variations(self, request: Request) -> Response:
        return await self._upload_endpoint(request, variation_request)

    async def _upload_endpoint(self, request: Request, build: UploadBuilder) -> Response:
        headers = rest_mapping.RequestHeaders(request.scope["headers"])
        try:
            explicit = rest_mapping.trace_id(headers)
        except InvalidArgument as exc:
            trace = resolve_trace(None, headers)
            bind_trace_id(trace.trace_id)
            status, body = to_http_error(exc)
            return _error_response(status, body, {"x-portkey-trace-id": trace.trace_id})
        trace = resolve_trace(explicit, headers)
        bind_trace_id(trace.trace_id)
        trace_headers = {"x-portkey-trace-id": trace.trace_id}
        try:
            # Who asks comes first: an unauthenticated caller learns nothing about its upload.
            caller = await self._auth.authenticate(rest_mapping.gateway_key(headers), Scope.GENERATE)
            size = self._upload_size(headers)
        except _HttpError as exc:
            envelope = error_envelope(exc.status, exc.message, param=exc.param, code=exc.code)
            return _error_response(exc.status, envelope, trace_headers)
        except GatewayError as exc:
            status, body = to_http_error(exc)
            return _error_response(status, body, trace_headers)
        try:
            # The images stay in memory until the request ends (a retry or a fallback sends them again), so
            # the reservation spans it; until it is granted the body waits, unread, in the socket.
            async with self._upload_budget.reserve(size):
                return await self._upload(request, headers, trace, caller, build)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            status, body = to_http_error(ShuttingDown())
            return _error_response(status, body, {"x-portkey-trace-id": trace.trace_id})

    def _upload_size(self, headers: Mapping[str, str]) -> int:
        """The bytes an upload will hold: its declared length (the body limit when it declares none)."""
        content_type = headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "multipart/form-data":
            raise _HttpError(415, "the request body must be sent as multipart/form-data", "content-type")
        limit = self._input_limits.max_body_bytes
        declared = headers.get("content-length")
        size = int(declared) if declared and declared.isdigit() else limit
        if size > limit:
            raise _HttpError(413, f"the request body is larger than {limit} bytes", "body")
        return size

    async def _read_upload(self, request: Request, headers: Mapping[str, str], build: UploadBuilder) -> ImageRequest:
        limits = self._input_limits
        try:
            upload = await read_upload(
                headers.get("content-type", ""),
                request.stream(),
                max_body_bytes=limits.max_body_bytes,
                max_file_bytes=limits.max_input_image_bytes,
                max_files=limits.max_input_images + 1,
            )
        except BodyTooLarge:
            raise _HttpError(413, f"the request body is larger than {limits.max_body_bytes} bytes", "body") from None
        return build(upload, limits)

    async def _upload(
        self,
        request: Request,
        headers: rest_mapping.RequestHeaders,
        trace: TraceContext,
        caller: Caller,
        build: UploadBuilder,
    ) -> Response:
        arrived = asyncio.get_running_loop().time()

        async def read() -> tuple[Caller, ImageRequest]:
            return caller, await self._read_upload(request, headers, build)

        # An edit streams as image_edit.* events; a variation never streams (its form has no stream field).
        return await self._serve(read, headers, trace, arrived, EDIT_EVENTS)


UploadBuilder = Callable[[Upload, InputLimits], ImageRequest]


async def _first_image_event(items: AsyncGenerator[StreamItem, None]) -> PartialImage | GenerationOutcome:
    """The first item the caller sees: OpenAI's event stream has no progress events, so those are
    passed over here (gRPC callers get them); raises the request's failure when it came first."""
    async for item in items:
        if not isinstance(item, ProgressEvent):
            return item
    raise AssertionError("stream_generation ends with the outcome or raises")  # pragma: no cover


def _event_stream_response(
    first: PartialImage | GenerationOutcome,
    items: AsyncGenerator[StreamItem, None],
    request: ImageRequest,
    trace_headers: Mapping[str, str],
    prefix: str,
) -> EventStreamResponse:
    """The 200 of a streamed request whose first image event is ``first``: OpenAI's events named
    ``<prefix>.*`` (``image_edit`` for edits), the success headers when the outcome came first."""
    headers_out = {**trace_headers, **STREAM_HEADERS}
    if isinstance(first, GenerationOutcome):
        headers_out.update(_success_headers(first))
    return EventStreamResponse(
        _sse_events(first, items, request, prefix=prefix), media_type=SSE_MEDIA_TYPE, headers=headers_out
    )


async def _sse_events(
    first: PartialImage | GenerationOutcome,
    items: AsyncGenerator[StreamItem, None],
    request: ImageRequest,
    *,
    prefix: str = GENERATION_EVENTS,
) -> AsyncGenerator[bytes, None]:
    """The event stream from its first image event on: partial images as they come, then one
    completed event per image, or the error event if the request fails after all."""
    try:
        item: StreamItem = first
        while True:
            if isinstance(item, PartialImage):
                yield partial_image_event(item, request, prefix)
            elif isinstance(item, GenerationOutcome):
                routed = item.routed
                created = routed.result.created or int(time.time())
                fields = response_fields(routed)
                for image in routed.result.images:
                    yield completed_event(image, request, created, fields, prefix)
                return
            item = await anext(items)
    except (RequestFailed, GatewayError, ProviderError) as exc:
        # The caller has its 200 and some events: the failure travels as OpenAI's error event.
        yield error_event(to_http_error(exc)[1])
    finally:
        await items.aclose()


class _HttpError(Exception):
    """A transport-level refusal (content type, size, JSON) answered before the core runs."""

    def __init__(self, status: int, message: str, param: str | None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code or {415: "unsupported_media_type", 413: "payload_too_large"}.get(status, "invalid_json")
