"""Google APIs' error envelope, ``{"error": {"code", "message", "status", "details"}}``, classified once.

Vertex AI and the Gemini API answer every failure in this envelope. Its ``status`` (the canonical
gRPC code name) decides the kind where it is present, since it is what Google documents; the HTTP
status decides otherwise (``kit.status``). Two refinements over the plain mapping:

* an ``ErrorInfo`` detail with reason ``API_KEY_INVALID`` is AUTHENTICATION (the Gemini API answers
  a wrong key with 400 INVALID_ARGUMENT), ``SERVICE_DISABLED`` or ``API_KEY_SERVICE_BLOCKED``
  PERMISSION_DENIED; the status passed on is then the kind's (401, 403), so callers see what it means;
* a 4xx whose message says the prompt was refused under Google's Responsible AI practices (Imagen's
  blocked prompt, 400 INVALID_ARGUMENT) is CONTENT_POLICY, which moves a fallback chain on.

Every message is scrubbed of the credential's secrets; ``Retry-After`` is honoured when sent.
"""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

from imagegateway_server.domain.error_kinds import DEFAULT_HTTP_STATUS
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt, parse_retry_after
from imagegateway_server.providers.kit.transport import UpstreamResponse

CONTENT_POLICY_CODE = "content_policy_violation"

BY_STATUS = MappingProxyType(
    {
        "INVALID_ARGUMENT": ErrorKind.BAD_REQUEST,
        "FAILED_PRECONDITION": ErrorKind.BAD_REQUEST,
        "OUT_OF_RANGE": ErrorKind.BAD_REQUEST,
        "ALREADY_EXISTS": ErrorKind.BAD_REQUEST,
        "UNIMPLEMENTED": ErrorKind.BAD_REQUEST,
        "UNAUTHENTICATED": ErrorKind.AUTHENTICATION,
        "PERMISSION_DENIED": ErrorKind.PERMISSION_DENIED,
        "NOT_FOUND": ErrorKind.NOT_FOUND,
        "RESOURCE_EXHAUSTED": ErrorKind.RATE_LIMITED,
        "DEADLINE_EXCEEDED": ErrorKind.TIMEOUT,
        "UNAVAILABLE": ErrorKind.UNAVAILABLE,
        "INTERNAL": ErrorKind.UNAVAILABLE,
        "UNKNOWN": ErrorKind.UNAVAILABLE,
        "ABORTED": ErrorKind.UNAVAILABLE,
        "CANCELLED": ErrorKind.UNAVAILABLE,
        "DATA_LOSS": ErrorKind.UNAVAILABLE,
    }
)
BY_REASON = MappingProxyType(
    {
        "API_KEY_INVALID": ErrorKind.AUTHENTICATION,
        "SERVICE_DISABLED": ErrorKind.PERMISSION_DENIED,
        "API_KEY_SERVICE_BLOCKED": ErrorKind.PERMISSION_DENIED,
    }
)
# Imagen's blocked prompt: "... This prompt contains sensitive words that violate Google's Responsible
# AI practices. ..."; the Gemini API words its refusals the same way.
_CONTENT_POLICY_PHRASES = ("responsible ai practices", "violate google's responsible ai", "safety filter")
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


@dataclasses.dataclass(frozen=True, slots=True)
class GoogleError:
    """What an error envelope says; every part None when the body is not one."""

    message: str | None = None
    status: str | None = None
    reason: str | None = None


def read_envelope(body: bytes) -> GoogleError:
    """The message, canonical status and ErrorInfo reason of an error body (all None when absent)."""
    payload = json_object(body)
    error = payload.get("error") if payload is not None else None
    if not isinstance(error, dict):
        return GoogleError()
    message = error.get("message")
    status = error.get("status")
    reason = None
    details = error.get("details")
    if isinstance(details, list):
        for detail in details:
            if (
                isinstance(detail, dict)
                and detail.get("@type") == _ERROR_INFO
                and isinstance(detail.get("reason"), str)
            ):
                reason = detail["reason"]
                break
    return GoogleError(
        message if isinstance(message, str) else None, status if isinstance(status, str) else None, reason
    )


def is_content_policy(message: str | None) -> bool:
    """Whether an error message says Google's safety filters refused the prompt."""
    text = (message or "").lower()
    return any(phrase in text for phrase in _CONTENT_POLICY_PHRASES)


def classify_google_error(provider: str, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """The classified error of a non-2xx answer from a Google API, scrubbed of ``secret``."""
    status = response.status_code
    envelope = read_envelope(response.body)
    by_reason = BY_REASON.get(envelope.reason or "")
    kind = by_reason or BY_STATUS.get(envelope.status or "")
    if kind is None:
        kind = _HTTP_LADDER.kind(status)
    code = envelope.reason or envelope.status
    if not 400 <= status < 600 or kind is None:
        return provider_error(
            provider,
            ErrorKind.UPSTREAM_BUG,
            f"{provider} returned unexpected HTTP {status}",
            secret=secret,
            status_code=502,
            code="unexpected_status",
        )
    if 400 <= status < 500 and kind is ErrorKind.BAD_REQUEST and is_content_policy(envelope.message):
        kind, code = ErrorKind.CONTENT_POLICY, CONTENT_POLICY_CODE
    detail = envelope.message or error_body_excerpt(response.body)
    said = f"{envelope.status}: {detail}" if envelope.status else detail
    return provider_error(
        provider,
        kind,
        f"{provider} returned HTTP {status}: {said}",
        secret=secret,
        status_code=DEFAULT_HTTP_STATUS[by_reason] if by_reason is not None else status,
        code=code,
        retry_after=parse_retry_after(response.headers),
    )


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The envelope as the kit's ladder reads an error body: its message, and its status as the code."""
    envelope = read_envelope(response.body)
    return FailureBody(detail=envelope.message or error_body_excerpt(response.body), code=envelope.status)


# The HTTP status's kind, for a body that is not Google's envelope (a proxy's page, an empty body).
_HTTP_LADDER = StatusLadder("google", read_failure)
