"""Maps domain errors onto gRPC statuses with google.rpc details (the one place this happens)."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from imagegateway.v1 import images_pb2
from imagegateway_server.api.log_mapping import attempt_proto, error_kind_proto
from imagegateway_server.api.upload_budget import UploadMemoryExhausted
from imagegateway_server.core.limits import LimitExceeded
from imagegateway_server.domain.errors import ErrorKind, GatewayError, ProviderError, RequestFailed

ERROR_DOMAIN = "imagegateway.v1"

GRPC_CODES: dict[ErrorKind, grpc.StatusCode] = {
    ErrorKind.BAD_REQUEST: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.AUTHENTICATION: grpc.StatusCode.UNAUTHENTICATED,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.CONTENT_POLICY: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.RATE_LIMITED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.TIMEOUT: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.UPSTREAM_BUG: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_grpc_status(exc: GatewayError | ProviderError | RequestFailed) -> grpc.Status:
    """A grpc.Status carrying ErrorInfo (stable reason) and, for requests, the attempt list."""
    error = exc.error if isinstance(exc, RequestFailed) else exc
    code = GRPC_CODES[error.kind]
    metadata = {"http_status": str(error.status_code)}
    if error.param:
        metadata["param"] = error.param
    if error.code:
        metadata["code"] = error.code
    if isinstance(error, ProviderError):
        metadata["provider"] = error.provider
    reason = error.kind.value
    if isinstance(error, ProviderError) and error.kind is ErrorKind.AUTHENTICATION:
        reason = "UPSTREAM_AUTHENTICATION"  # the provider refused its key, not ours
    if isinstance(error, LimitExceeded):  # our own limiter: RATE_LIMITED or BUDGET_EXCEEDED, and which limit
        reason = error.reason
        metadata.update(limit=error.limit, key_kind=error.key_kind, key_id=error.key_id)
    if isinstance(error, UploadMemoryExhausted):  # the process's upload memory, not a key's limit
        reason = "UPLOAD_MEMORY_EXHAUSTED"
        metadata["setting"] = error.setting
    details = [_pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata))]
    if isinstance(exc, RequestFailed):
        failure = images_pb2.GenerateImageFailure(
            trace_id=exc.trace_id,
            log_id=exc.log_id,
            error_kind=error_kind_proto(error.kind),
            http_status=error.status_code,
            retry_attempt_count=exc.retry_count,
        )
        failure.attempts.extend(attempt_proto(a) for a in exc.attempts)
        details.append(_pack(failure))
    if error.retry_after:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(int(error.retry_after * 1000))
        details.append(_pack(retry))
    status = status_pb2.Status(code=code.value[0], message=error.message, details=details)
    return rpc_status.to_status(status)


async def abort_with(
    context: grpc.aio.ServicerContext[object, object], exc: GatewayError | ProviderError | RequestFailed
) -> None:
    """Ends the RPC with the mapped status (raises AbortError, as grpc.aio does)."""
    status = to_grpc_status(exc)
    await context.abort(status.code, status.details, status.trailing_metadata)
