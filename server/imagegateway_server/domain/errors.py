"""The gateway's error taxonomy: every failure, upstream or local, is one of these kinds.

Adapters classify provider failures once into a ``ProviderError``; request and admin validation
raise ``GatewayError`` subclasses that name the offending field. Each front end maps kinds to its
own status codes in exactly one place.
"""

from __future__ import annotations

from collections.abc import Sequence

from imagegateway_server.domain.error_kinds import DEFAULT_HTTP_STATUS as DEFAULT_HTTP_STATUS
from imagegateway_server.domain.error_kinds import ErrorKind as ErrorKind
from imagegateway_server.domain.result import AttemptRecord


class ProviderError(Exception):
    """A classified failure of one upstream call.

    ``status_code`` is the upstream HTTP status when there was one, else a synthetic one:
    408 for a per-attempt timeout, 502 for a network failure or a broken body.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.provider = provider
        self.status_code = status_code if status_code is not None else DEFAULT_HTTP_STATUS[kind]
        self.code = code
        self.param = param
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether trying the same target again could help."""
        return self.kind in (ErrorKind.RATE_LIMITED, ErrorKind.TIMEOUT, ErrorKind.UNAVAILABLE) or (
            self.kind is ErrorKind.UPSTREAM_BUG
        )

    def __repr__(self) -> str:
        return f"ProviderError({self.kind.name}, {self.status_code}, {self.provider}: {self.message!r})"


class GatewayError(Exception):
    """A failure decided by the gateway itself (bad input, unknown id, missing auth...)."""

    kind: ErrorKind = ErrorKind.INTERNAL
    # Seconds after which the same request could succeed (the gateway's own rate limits set it).
    retry_after: float | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status_code = status_code if status_code is not None else DEFAULT_HTTP_STATUS[self.kind]


class InvalidArgument(GatewayError):
    """The request or a config is malformed; ``param`` names the field path."""

    kind = ErrorKind.BAD_REQUEST

    def __init__(self, message: str, *, param: str | None = None, code: str | None = "invalid_value") -> None:
        full = f"{param}: {message}" if param and not message.startswith(param) else message
        super().__init__(full, param=param, code=code)


class Unauthenticated(GatewayError):
    """No gateway API key, or one that is unknown or revoked."""

    kind = ErrorKind.AUTHENTICATION


class PermissionDenied(GatewayError):
    """The key's scope does not allow the call."""

    kind = ErrorKind.PERMISSION_DENIED


class NotFound(GatewayError):
    """A config, virtual key, API key or log id does not exist."""

    kind = ErrorKind.NOT_FOUND


class AlreadyExists(GatewayError):
    """An id or a name chosen by the caller is taken."""

    kind = ErrorKind.ALREADY_EXISTS


class FailedPrecondition(GatewayError):
    """The request is well formed but the resource is in a state that refuses it (a revoked key)."""

    kind = ErrorKind.FAILED_PRECONDITION


class DeadlineExceeded(GatewayError):
    """The caller's overall deadline ran out before any target served."""

    kind = ErrorKind.DEADLINE_EXCEEDED


class CallerCancelled(GatewayError):
    """The caller cancelled or disconnected before the request finished (logged as 499)."""

    kind = ErrorKind.TIMEOUT

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=499, code="cancelled")


class ShuttingDown(GatewayError):
    """The gateway stopped the request because its shutdown grace period ran out (logged as 503)."""

    kind = ErrorKind.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__(
            "the gateway is shutting down and the request did not finish within its grace period; send it again",
            code="shutting_down",
        )


class StoreUnavailable(GatewayError):
    """The database cannot be reached just now; the message names it (never its password).

    Admin calls that need the database answer UNAVAILABLE (503) with it; the hot path serves from
    what it cached instead (saved configs, keys), and the request log keeps records until it returns.
    """

    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str) -> None:
        super().__init__(message, code="database_unavailable")


class AllTargetsFailed(Exception):
    """Every target of a routing plan failed; carries the last failure and every attempt."""

    def __init__(
        self, last: ProviderError | GatewayError, attempts: Sequence[AttemptRecord], *, retry_count: int = 0
    ) -> None:
        super().__init__(last.message)
        self.last = last
        self.attempts = tuple(attempts)
        self.retry_count = retry_count

    @property
    def kind(self) -> ErrorKind:
        return self.last.kind

    @property
    def status_code(self) -> int:
        return self.last.status_code


class RequestFailed(Exception):
    """A generation request that ended without images, as both front ends report it."""

    def __init__(
        self,
        error: ProviderError | GatewayError,
        *,
        attempts: Sequence[AttemptRecord] = (),
        trace_id: str = "",
        log_id: str = "",
        retry_count: int = 0,
    ) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = tuple(attempts)
        # Retries on the last target; -1 when its configured retries were exhausted.
        self.retry_count = retry_count
        self.trace_id = trace_id
        self.log_id = log_id
