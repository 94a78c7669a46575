"""Errors raised by the ImageGateway client: one exception per gRPC status, rich details decoded.

Every ``grpc.RpcError`` a client call raises is turned into an ``ImageGatewayError`` subclass
chosen by status code. When the server attached a ``google.rpc.Status`` (grpcio-status), its
details are unpacked: ``ErrorInfo`` (a stable ``reason``), ``BadRequest`` (field violations) and
our ``GenerateImageFailure`` (every upstream attempt of a failed image request).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar, cast

import grpc
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from imagegateway.v1 import images_pb2

_M = TypeVar("_M", bound=Message)

# Detail types the client knows how to unpack; anything else is kept as the packed Any.
_DETAIL_TYPES: tuple[type[Message], ...] = (
    error_details_pb2.ErrorInfo,
    error_details_pb2.BadRequest,
    error_details_pb2.RetryInfo,
    error_details_pb2.QuotaFailure,
    error_details_pb2.PreconditionFailure,
    error_details_pb2.ResourceInfo,
    error_details_pb2.RequestInfo,
    error_details_pb2.DebugInfo,
    error_details_pb2.Help,
    error_details_pb2.LocalizedMessage,
    images_pb2.GenerateImageFailure,
)


class ImageGatewayError(Exception):
    """A failed call: the gRPC status code, its message and the decoded rich-status details."""

    def __init__(self, code: grpc.StatusCode, message: str, details: Sequence[Message] = ()) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.details: tuple[Message, ...] = tuple(details)

    def detail(self, kind: type[_M]) -> _M | None:
        """The first detail of the given message type, if the server sent one."""
        for item in self.details:
            if isinstance(item, kind):
                return item
        return None

    @property
    def error_info(self) -> error_details_pb2.ErrorInfo | None:
        return self.detail(error_details_pb2.ErrorInfo)

    @property
    def reason(self) -> str:
        """The stable machine-readable cause (``ErrorInfo.reason``), or ``""``."""
        info = self.error_info
        return info.reason if info is not None else ""

    @property
    def failure(self) -> images_pb2.GenerateImageFailure | None:
        """What a failed image request tried (trace id, log id, attempts), if known."""
        return self.detail(images_pb2.GenerateImageFailure)

    @property
    def attempts(self) -> tuple[images_pb2.Attempt, ...]:
        failure = self.failure
        return tuple(failure.attempts) if failure is not None else ()


class InvalidArgumentError(ImageGatewayError):
    """INVALID_ARGUMENT: the request or config is malformed."""


class NotFoundError(ImageGatewayError):
    """NOT_FOUND: the config, key, log or model does not exist."""


class AlreadyExistsError(ImageGatewayError):
    """ALREADY_EXISTS: an id chosen by the caller is taken."""


class UnauthenticatedError(ImageGatewayError):
    """UNAUTHENTICATED: no gateway API key, or an unknown or revoked one."""


class PermissionDeniedError(ImageGatewayError):
    """PERMISSION_DENIED: the key's scope (or the provider) refuses the call."""


class FailedPreconditionError(ImageGatewayError):
    """FAILED_PRECONDITION: the system is not in a state that allows the call."""


class ResourceExhaustedError(ImageGatewayError):
    """RESOURCE_EXHAUSTED: a rate limit or quota was hit."""


class DeadlineExceededError(ImageGatewayError):
    """DEADLINE_EXCEEDED: the call's deadline ran out."""


class UnavailableError(ImageGatewayError):
    """UNAVAILABLE: the gateway or every upstream was unreachable."""


class InternalError(ImageGatewayError):
    """INTERNAL: a fault of the gateway itself."""


_BY_CODE: dict[grpc.StatusCode, type[ImageGatewayError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.INTERNAL: InternalError,
}


_BY_TYPE_NAME = {kind.DESCRIPTOR.full_name: kind for kind in _DETAIL_TYPES}


def _unpack(packed: any_pb2.Any) -> Message:
    kind = _BY_TYPE_NAME.get(packed.TypeName())
    if kind is None:
        return packed
    item = kind()
    packed.Unpack(item)
    return item


def from_rpc_error(err: grpc.RpcError) -> ImageGatewayError:
    """Maps a sync or asyncio ``RpcError`` to the matching ``ImageGatewayError`` subclass."""
    code = err.code() if callable(getattr(err, "code", None)) else grpc.StatusCode.UNKNOWN
    text = (err.details() if callable(getattr(err, "details", None)) else None) or str(err)
    details: list[Message] = []
    try:
        # from_call only reads code(), details() and trailing_metadata(), which asyncio errors have too.
        status: status_pb2.Status | None = rpc_status.from_call(cast(grpc.Call, err))
    except (ValueError, AttributeError, TypeError):
        status = None  # a detail that contradicts the status is ignored, not trusted
    if status is not None:
        details = [_unpack(item) for item in status.details]
    return _BY_CODE.get(code, ImageGatewayError)(code, text, details)
