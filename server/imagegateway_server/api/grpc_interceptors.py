"""One interceptor for every ImageGateway RPC: authentication and scope, error mapping, metrics.

Health and reflection pass through untouched (load balancers probe them without a key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from imagegateway_server.api.auth import GRPC_METHOD_SCOPES, Authenticator, bearer_token, current_caller
from imagegateway_server.api.grpc_errors import GRPC_CODES, abort_with
from imagegateway_server.api.grpc_image_responses import SerializedMessage
from imagegateway_server.domain.errors import GatewayError, InvalidArgument, ProviderError, RequestFailed
from imagegateway_server.observability.metrics import GrpcMethodSeries, Metrics

log = logging.getLogger(__name__)

SERVICE_NAME = "imagegateway.v1.ImageGateway"
_DomainError = (GatewayError, ProviderError, RequestFailed)


def api_key_from_metadata(metadata: Any) -> str | None:
    """The gateway key from ``authorization: Bearer`` or ``x-api-key`` metadata."""
    values = {key.lower(): value for key, value in (metadata or ()) if isinstance(value, str)}
    return bearer_token(values.get("authorization")) or values.get("x-api-key") or None


class _Undecodable:
    """Stands in for a request message protobuf could not parse, until the caller is authenticated."""

    def __init__(self, error: DecodeError) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """Wraps a request deserializer so a bad message becomes INVALID_ARGUMENT, not grpc's UNKNOWN."""
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:  # malformed bytes, or messages nested past protobuf's depth limit
            return _Undecodable(exc)

    return deserialize


def _passing_serialized(serializer: Callable[[Any], bytes] | None) -> Callable[[Any], bytes] | None:
    """Wraps a response serializer so a message the servicer serialized itself goes out as it is."""
    if serializer is None:
        return None

    def serialize(message: Any) -> bytes:
        return message.data if isinstance(message, SerializedMessage) else serializer(message)

    return serialize


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise InvalidArgument(f"the request message cannot be decoded ({request.error})", param="request")
    return request


async def _each_decoded(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        yield _decoded(request)


class GatewayInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method handler of the ImageGateway service."""

    def __init__(self, authenticator: Authenticator, metrics: Metrics) -> None:
        self._auth = authenticator
        self._metrics = metrics
        # Method path -> (the service's handler, its wrapped form). grpc asks on every call, and the
        # service hands back the same handler each time, so it is wrapped once, not per call.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler[Any, Any], grpc.RpcMethodHandler[Any, Any]]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        path = handler_call_details.method
        known = self._wrapped.get(path)
        if known is not None and known[0] is handler:
            return known[1]
        service, _, method = path.lstrip("/").partition("/")
        if handler is None or service != SERVICE_NAME:
            return handler
        wrapped = self._wrap(handler, method)
        if wrapped is not handler:
            self._wrapped[path] = (handler, wrapped)
        return wrapped

    def _wrap(self, handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=_passing_serialized(handler.response_serializer),
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=_passing_serialized(handler.response_serializer),
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._wrap_client_stream(handler.stream_unary, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=_passing_serialized(handler.response_serializer),
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._wrap_bidi_stream(handler.stream_stream, method),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=_passing_serialized(handler.response_serializer),
            )
        return handler

    async def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any], method: str) -> None:
        # The scope is read per call, not when the handler is wrapped: the table is the one place access is decided.
        caller = await self._auth.authenticate(
            api_key_from_metadata(context.invocation_metadata()), GRPC_METHOD_SCOPES.get(method), operation=method
        )
        current_caller.set(caller)

    @contextlib.asynccontextmanager
    async def _handled(
        self, context: grpc.aio.ServicerContext[Any, Any], series: GrpcMethodSeries, method: str
    ) -> AsyncIterator[None]:
        """Authenticates, maps domain errors to statuses and records the gRPC metrics of one call."""
        started = time.perf_counter()
        series.started.inc()
        code = grpc.StatusCode.OK
        try:
            await self._authenticate(context, method)
            yield
        except _DomainError as exc:
            code = GRPC_CODES[(exc.error if isinstance(exc, RequestFailed) else exc).kind]
            await abort_with(context, exc)
        except grpc.aio.AbortError:
            # An abort reaches us as AbortError; the status it set is on the context.
            code = context.code() or grpc.StatusCode.UNKNOWN
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            log.exception("unexpected error in %s", method)
            code = grpc.StatusCode.INTERNAL
            await context.abort(grpc.StatusCode.INTERNAL, "internal gateway error")
        finally:
            series.handled[code].inc()
            series.seconds.observe(time.perf_counter() - started)

    def _wrap_unary(self, behavior: Any, method: str) -> Any:
        series = self._metrics.grpc_method("unary", SERVICE_NAME, method)

        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._handled(context, series, method):
                return await behavior(_decoded(request), context)

        return unary

    def _wrap_client_stream(self, behavior: Any, method: str) -> Any:
        series = self._metrics.grpc_method("client_stream", SERVICE_NAME, method)

        async def client_stream(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._handled(context, series, method):
                return await behavior(_each_decoded(requests), context)

        return client_stream

    def _wrap_stream(self, behavior: Any, method: str) -> Any:
        series = self._metrics.grpc_method("server_stream", SERVICE_NAME, method)

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._handled(context, series, method):
                async for item in behavior(_decoded(request), context):
                    yield item

        return stream

    def _wrap_bidi_stream(self, behavior: Any, method: str) -> Any:
        series = self._metrics.grpc_method("bidi_stream", SERVICE_NAME, method)

        async def bidi_stream(
            requests: AsyncIterator[Any], context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[Any]:
            async with self._handled(context, series, method):
                async for item in behavior(_each_decoded(requests), context):
                    yield item

        return bidi_stream
