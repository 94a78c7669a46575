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
from imagegateway_server.domain.errors import GatewayError, InvalidArgument, ProviderError, RequestFailed
from imagegateway_server.observability.metrics import Metrics, go_code_name

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


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise InvalidArgument(f"the request message cannot be decoded ({request.error})", param="request")
    return request


class GatewayInterceptor(grpc.aio.ServerInterceptor):
    """Wraps each method handler of the ImageGateway service."""

    def __init__(self, authenticator: Authenticator, metrics: Metrics) -> None:
        self._auth = authenticator
        self._metrics = metrics

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        service, _, method = handler_call_details.method.lstrip("/").partition("/")
        if handler is None or service != SERVICE_NAME:
            return handler
        scope = GRPC_METHOD_SCOPES.get(method)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._wrap_unary(handler.unary_unary, method, scope),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._wrap_stream(handler.unary_stream, method, scope),
                request_deserializer=_tolerant(handler.request_deserializer),
                response_serializer=handler.response_serializer,
            )
        return handler

    async def _authenticate(self, context: grpc.aio.ServicerContext[Any, Any], method: str, scope: str | None) -> None:
        caller = await self._auth.authenticate(api_key_from_metadata(context.invocation_metadata()), scope,
                                               operation=method)
        current_caller.set(caller)

    @contextlib.asynccontextmanager
    async def _handled(self, context: grpc.aio.ServicerContext[Any, Any], grpc_type: str, method: str,
                       scope: str | None) -> AsyncIterator[None]:
        """Authenticates, maps domain errors to statuses and records the gRPC metrics of one call."""
        started = time.perf_counter()
        self._metrics.grpc_started.labels(grpc_type, SERVICE_NAME, method).inc()
        code = grpc.StatusCode.OK
        try:
            await self._authenticate(context, method, scope)
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
            self._metrics.grpc_handled.labels(grpc_type, SERVICE_NAME, method, go_code_name(code)).inc()
            self._metrics.grpc_seconds.labels(grpc_type, SERVICE_NAME, method).observe(
                time.perf_counter() - started)

    def _wrap_unary(self, behavior: Any, method: str, scope: str | None) -> Any:
        async def unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            async with self._handled(context, "unary", method, scope):
                return await behavior(_decoded(request), context)

        return unary

    def _wrap_stream(self, behavior: Any, method: str, scope: str | None) -> Any:
        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
            async with self._handled(context, "server_stream", method, scope):
                async for item in behavior(_decoded(request), context):
                    yield item

        return stream
