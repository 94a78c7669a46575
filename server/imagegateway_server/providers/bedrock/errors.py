"""How Bedrock's error answers are read: AWS's ``x-amzn-ErrorType`` header and ``{"message": ...}`` body.

The error type (the header, else ``__type`` or ``code`` in the body; anything after ``:`` or ``#``
is dropped as AWS's SDKs do) decides the kind where it says more than the status:

| error type | HTTP | kind |
|---|---|---|
| ThrottlingException, ModelNotReadyException | 429 | RATE_LIMITED |
| ServiceQuotaExceededException | 400 | RATE_LIMITED (429) |
| ServiceUnavailableException, InternalServerException | 503, 500 | UNAVAILABLE |
| ModelErrorException | 424 | UNAVAILABLE (502) |
| ModelTimeoutException | 408 | TIMEOUT |
| AccessDeniedException | 403 | PERMISSION_DENIED |
| ResourceNotFoundException | 404 | NOT_FOUND |
| ValidationException | 400 | BAD_REQUEST, or CONTENT_POLICY when it says the content filters blocked the request |
| ``AUTH_FAILURES`` (ExpiredTokenException, InvalidSignatureException, ...) | 403 | AUTHENTICATION (401) |

Anything else falls to the kit's status ladder. Bedrock sends no Retry-After; a 429 waits what the
router's policy says.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.bedrock import PROVIDER
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse

AUTH_FAILURES = frozenset(
    {
        "ExpiredTokenException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class _Kind:
    kind: ErrorKind
    status: int | None = None  # the status reported instead of AWS's, where AWS's misleads a caller


_BY_TYPE: dict[str, _Kind] = {
    "ThrottlingException": _Kind(ErrorKind.RATE_LIMITED),
    "ModelNotReadyException": _Kind(ErrorKind.RATE_LIMITED),
    "ServiceQuotaExceededException": _Kind(ErrorKind.RATE_LIMITED, 429),
    "ServiceUnavailableException": _Kind(ErrorKind.UNAVAILABLE),
    "InternalServerException": _Kind(ErrorKind.UNAVAILABLE),
    "ModelErrorException": _Kind(ErrorKind.UNAVAILABLE, 502),
    "ModelTimeoutException": _Kind(ErrorKind.TIMEOUT),
    "AccessDeniedException": _Kind(ErrorKind.PERMISSION_DENIED),
    "ResourceNotFoundException": _Kind(ErrorKind.NOT_FOUND),
    **{name: _Kind(ErrorKind.AUTHENTICATION, 401) for name in AUTH_FAILURES},
}
_BLOCKED = "blocked by our content filters"
VALIDATION = "ValidationException"


def error_type(response: UpstreamResponse) -> str | None:
    """The AWS error type of an answer: the header, else the body's ``__type`` or ``code``."""
    raw = response.headers.get("x-amzn-errortype")
    if not raw:
        payload = json_object(response.body) or {}
        found = payload.get("__type", payload.get("code"))
        raw = found if isinstance(found, str) else None
    if not raw:
        return None
    # "ValidationException:http://internal.amazon.com/..." and "com.amazon.coral#ValidationException".
    return raw.split(":", 1)[0].rpartition("#")[2].strip() or None


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The message and error type of a Bedrock error answer, and whether the content filter refused."""
    payload = json_object(response.body) or {}
    message = payload.get("message", payload.get("Message"))
    detail = message if isinstance(message, str) and message else error_body_excerpt(response.body)
    name = error_type(response)
    blocked = name in (VALIDATION, None) and _BLOCKED in detail
    return FailureBody(
        detail=f"{name}: {detail}" if name else detail,
        code=name,
        content_policy_code="content_policy_violation" if blocked else None,
    )


LADDER = StatusLadder(PROVIDER, read_failure)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx Bedrock answer by its error type, else by its status."""
    error = LADDER.classify(response, secret=secret)
    known = _BY_TYPE.get(error.code or "")
    if known is None or error.kind is ErrorKind.CONTENT_POLICY:
        return error
    return provider_error(
        PROVIDER,
        known.kind,
        error.message,
        secret=secret,
        status_code=known.status or response.status_code,
        code=error.code,
        retry_after=error.retry_after,
    )
