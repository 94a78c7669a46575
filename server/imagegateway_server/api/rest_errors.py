"""Maps domain errors onto OpenAI's error envelope and HTTP statuses (the one place this happens)."""

from __future__ import annotations

from typing import Any

from imagegateway.v1 import images_pb2
from imagegateway_server.api.log_mapping import error_kind_proto
from imagegateway_server.core.limits import BUDGET_EXCEEDED, LimitExceeded
from imagegateway_server.domain.errors import ErrorKind, GatewayError, ProviderError, RequestFailed

_TYPES: dict[ErrorKind, str] = {
    ErrorKind.BAD_REQUEST: "invalid_request_error",
    ErrorKind.AUTHENTICATION: "authentication_error",
    ErrorKind.PERMISSION_DENIED: "permission_error",
    ErrorKind.NOT_FOUND: "invalid_request_error",
    ErrorKind.CONTENT_POLICY: "invalid_request_error",
    ErrorKind.RATE_LIMITED: "rate_limit_error",
    ErrorKind.TIMEOUT: "timeout_error",
    ErrorKind.UNAVAILABLE: "service_unavailable_error",
    ErrorKind.UPSTREAM_BUG: "upstream_error",
    ErrorKind.INTERNAL: "server_error",
    ErrorKind.ALREADY_EXISTS: "invalid_request_error",
    ErrorKind.FAILED_PRECONDITION: "invalid_request_error",
    ErrorKind.DEADLINE_EXCEEDED: "timeout_error",
}

_DEFAULT_CODES: dict[ErrorKind, str] = {
    ErrorKind.AUTHENTICATION: "invalid_api_key",
    ErrorKind.CONTENT_POLICY: "content_policy_violation",
    ErrorKind.RATE_LIMITED: "rate_limit_exceeded",
    ErrorKind.DEADLINE_EXCEEDED: "deadline_exceeded",
    ErrorKind.TIMEOUT: "timeout",
}


def error_envelope(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """OpenAI's envelope; all four keys are always present."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def to_http_error(exc: GatewayError | ProviderError | RequestFailed) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body for a failure; a failed request adds its attempt list."""
    error = exc.error if isinstance(exc, RequestFailed) else exc
    status = error.status_code if 400 <= error.status_code <= 599 else 502
    type_ = _TYPES[error.kind]
    if isinstance(error, LimitExceeded) and error.reason == BUDGET_EXCEEDED:
        type_ = "insufficient_quota"  # OpenAI's type for a spent quota (429 with code budget_exceeded)
    body = error_envelope(
        status,
        error.message,
        type_=type_,
        param=error.param,
        code=error.code or _DEFAULT_CODES.get(error.kind),
    )
    if isinstance(exc, RequestFailed):
        body["error"]["attempts"] = [
            {
                "target": a.target,
                "provider": a.provider,
                "model": a.model,
                "status_code": a.status_code,
                "error_kind": images_pb2.ErrorKind.Name(error_kind_proto(a.error_kind)).removeprefix("ERROR_KIND_")
                if a.error_kind
                else None,
                "error": a.error or None,
                "latency_ms": a.latency_ms,
                "retry_index": a.retry_index,
                "circuit_open": a.circuit_open,
                # Asynchronous providers: the job's polls and its wait (absent for a synchronous call).
                **({"poll_count": a.poll_count, "poll_wait_ms": round(a.poll_seconds * 1000)} if a.poll_count else {}),
                **({"stream_events": a.stream_events} if a.stream_events else {}),
            }
            for a in exc.attempts
        ]
    return status, body
