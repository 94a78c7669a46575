"""The kinds of failure the gateway knows, independent of transport, and the HTTP status each
answers with by default. A module of its own so that results and errors both read it without
importing each other."""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    """What went wrong, independent of transport. Values match the proto's ErrorKind names."""

    BAD_REQUEST = "BAD_REQUEST"
    AUTHENTICATION = "AUTHENTICATION"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    CONTENT_POLICY = "CONTENT_POLICY"
    RATE_LIMITED = "RATE_LIMITED"
    TIMEOUT = "TIMEOUT"
    UNAVAILABLE = "UNAVAILABLE"
    UPSTREAM_BUG = "UPSTREAM_BUG"
    INTERNAL = "INTERNAL"
    # Local-only kinds (never produced by an adapter).
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"


# The HTTP status a kind answers with when no upstream status is known.
DEFAULT_HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.AUTHENTICATION: 401,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONTENT_POLICY: 400,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.TIMEOUT: 408,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.UPSTREAM_BUG: 502,
    ErrorKind.INTERNAL: 500,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.FAILED_PRECONDITION: 400,
    ErrorKind.DEADLINE_EXCEEDED: 504,
}
