"""Classifies a provider's non-2xx answer by its HTTP status: the one status-to-ErrorKind ladder.

Every provider shares the ladder: 401 AUTHENTICATION, 403 PERMISSION_DENIED, 404 NOT_FOUND,
408 TIMEOUT, 429 RATE_LIMITED, any other 4xx BAD_REQUEST, 5xx UNAVAILABLE, and anything else
(a 1xx or 3xx: redirects are never followed) UPSTREAM_BUG 502 ``unexpected_status``. What differs
between providers is declared on its ``StatusLadder``: how to read its error body (``read_body``:
the explanation, code, parameter, and whether the body says its content filter refused, which on
a 4xx makes the failure CONTENT_POLICY), statuses it uses differently (``exceptions``, e.g. a 409
that means "busy"), and how long a 429 without Retry-After waits (``rate_limit_wait``). Every
message is scrubbed of the API key; the status and Retry-After travel with the error.
"""

from __future__ import annotations

import dataclasses
import email.utils
import math
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import snippet
from imagegateway_server.providers.kit.errors import Secrets, provider_error
from imagegateway_server.providers.kit.transport import UpstreamResponse

_BY_STATUS: Mapping[int, ErrorKind] = MappingProxyType(
    {
        401: ErrorKind.AUTHENTICATION,
        403: ErrorKind.PERMISSION_DENIED,
        404: ErrorKind.NOT_FOUND,
        408: ErrorKind.TIMEOUT,
        429: ErrorKind.RATE_LIMITED,
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class FailureBody:
    """What a provider's error body says, as its ``read_body`` hook read it.

    ``detail`` is the upstream explanation (``error_body_excerpt`` when the body has none);
    ``content_policy_code`` is set when the body says the provider's content filter refused the
    request, and is the code reported for that refusal.
    """

    detail: str
    code: str | None = None
    param: str | None = None
    content_policy_code: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StatusLadder:
    """One provider's use of the shared ladder: its name, its body reader and its exceptions."""

    provider: str
    read_body: Callable[[UpstreamResponse], FailureBody]
    exceptions: Mapping[int, ErrorKind] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    rate_limit_wait: float | None = None

    def kind(self, status: int) -> ErrorKind | None:
        """The error kind of a status, before looking at the body; None for a status no error has."""
        kind = self.exceptions.get(status) or _BY_STATUS.get(status)
        if kind is not None:
            return kind
        if status >= 500:
            return ErrorKind.UNAVAILABLE
        if 400 <= status < 500:
            return ErrorKind.BAD_REQUEST
        return None

    def classify(self, response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
        """The classified error for a non-2xx answer, its message scrubbed of ``secret``."""
        status = response.status_code
        failure = self.read_body(response)
        kind = self.kind(status)
        code = failure.code
        if 400 <= status < 500 and failure.content_policy_code is not None:
            kind, code = ErrorKind.CONTENT_POLICY, failure.content_policy_code
        if kind is None:
            return provider_error(
                self.provider,
                ErrorKind.UPSTREAM_BUG,
                f"{self.provider} returned unexpected HTTP {status}",
                secret=secret,
                status_code=502,
                code="unexpected_status",
            )
        retry_after = parse_retry_after(response.headers)
        if kind is ErrorKind.RATE_LIMITED and retry_after is None:
            retry_after = self.rate_limit_wait
        return provider_error(
            self.provider,
            kind,
            f"{self.provider} returned HTTP {status}: {failure.detail}",
            secret=secret,
            status_code=status,
            code=code,
            param=failure.param,
            retry_after=retry_after,
        )


def error_body_excerpt(body: bytes) -> str:
    """The explanation of an error body that carries none a provider documents: an excerpt, or that it is empty."""
    return snippet(body) if body.strip() else "no error body"


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (milliseconds) or ``retry-after`` (seconds or HTTP-date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        seconds = _positive_float(raw_ms)
        if seconds is not None:
            return seconds / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = _positive_float(raw)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _positive_float(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
