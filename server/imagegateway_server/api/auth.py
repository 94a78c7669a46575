"""Who may call what: one table of operation -> required scope, checked in one place per front end.

Every refusal is counted in ``imagegateway_auth_failures_total{transport, reason}`` and logged
with its transport, reason and operation; never with the key or any part of it.
"""

from __future__ import annotations

import contextvars
import logging

from imagegateway_server.domain.calls import Caller
from imagegateway_server.domain.errors import PermissionDenied, Unauthenticated
from imagegateway_server.domain.scopes import Scope
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.security.api_keys import ApiKeyService, is_well_formed

log = logging.getLogger(__name__)

# gRPC method name (without the service) -> scope. A method missing here is refused.
GRPC_METHOD_SCOPES: dict[str, str] = {
    "GenerateImage": Scope.GENERATE,
    "StreamGenerateImage": Scope.GENERATE,
    "EditImage": Scope.GENERATE,
    "EditImageUpload": Scope.GENERATE,
    "StreamEditImage": Scope.GENERATE,
    "CreateImageVariation": Scope.GENERATE,
    "StreamEditImageUpload": Scope.GENERATE,
    "CreateImageVariationUpload": Scope.GENERATE,
    "ValidateConfig": Scope.GENERATE,
    "ListLogs": Scope.GENERATE,
    "GetLog": Scope.GENERATE,
    "GetAnalytics": Scope.GENERATE,
    "CreateConfig": Scope.ADMIN,
    "GetConfig": Scope.ADMIN,
    "ListConfigs": Scope.ADMIN,
    "UpdateConfig": Scope.ADMIN,
    "DeleteConfig": Scope.ADMIN,
    "CreateVirtualKey": Scope.ADMIN,
    "GetVirtualKey": Scope.ADMIN,
    "ListVirtualKeys": Scope.ADMIN,
    "RotateVirtualKey": Scope.ADMIN,
    "DeleteVirtualKey": Scope.ADMIN,
    "CreateApiKey": Scope.ADMIN,
    "ListApiKeys": Scope.ADMIN,
    "RevokeApiKey": Scope.ADMIN,
    "RotateApiKey": Scope.ADMIN,
    "DeleteApiKey": Scope.ADMIN,
    "ListTargetHealth": Scope.ADMIN,
}

# REST route -> who may call it: a scope (the key in a header), PUBLIC (no key: probes, the
# dashboard page and its login door) or SESSION (a dashboard session cookie of a live key of
# either scope). A route missing here fails the access-matrix test, so a new route cannot ship
# without deciding who may call it.
PUBLIC = "public"
SESSION = "session"
REST_ROUTE_SCOPES: dict[str, str] = {
    "/v1/images/generations": Scope.GENERATE,
    "/v1/images/edits": Scope.GENERATE,
    "/v1/images/variations": Scope.GENERATE,
    "/health": PUBLIC,
    "/dashboard": PUBLIC,
    "/dashboard/api/login": PUBLIC,
    "/dashboard/api/logout": PUBLIC,
    "/dashboard/api/session": SESSION,
    "/dashboard/api/logs": SESSION,
    "/dashboard/api/logs/{log_id}": SESSION,
    "/dashboard/api/logs/{log_id}/image": SESSION,
    "/dashboard/api/health": SESSION,
    "/dashboard/api/analytics": SESSION,
    "/dashboard/api/analytics/view": SESSION,
    "/dashboard/api/analytics.csv": SESSION,
    # The page's vendored chart library and its stylesheet: static, the same for everyone.
    "/dashboard/assets/{name}": PUBLIC,
}

# Why a key was refused: the ``reason`` label of imagegateway_auth_failures_total.
AUTH_FAILURE_REASONS = ("missing_key", "malformed_key", "invalid_key", "insufficient_scope", "unknown_method")

# The caller of the RPC or HTTP request being served.
current_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("current_caller")


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    """Checks gateway API keys and scopes for one transport, counting and logging refusals."""

    def __init__(self, api_keys: ApiKeyService, *, transport: str = "grpc", metrics: Metrics | None = None) -> None:
        self._api_keys = api_keys
        self._transport = transport
        self._failures = metrics.auth_failures if metrics is not None else None
        if self._failures is not None:
            for reason in AUTH_FAILURE_REASONS:  # pre-created at zero, so rate() works from the start
                self._failures.labels(transport, reason)

    def _refused(self, reason: str, operation: str) -> None:
        if self._failures is not None:
            self._failures.labels(self._transport, reason).inc()
        log.warning(
            "gateway API key refused", extra={"transport": self._transport, "reason": reason, "operation": operation}
        )

    async def authenticate(self, key: str | None, required_scope: str | None, *, operation: str = "") -> Caller:
        """Returns the caller, or raises Unauthenticated / PermissionDenied (never echoing the key).

        ``required_scope`` None means no key may call the operation (an RPC missing from the table).
        """
        if required_scope is None:
            self._refused("unknown_method", operation)
            raise PermissionDenied("this method is not open to any key")
        if not key:
            self._refused("missing_key", operation)
            raise Unauthenticated("a gateway API key is required")
        try:
            record = await self._api_keys.authenticate(key)
        except Unauthenticated:
            self._refused("invalid_key" if is_well_formed(key) else "malformed_key", operation)
            raise
        if required_scope == Scope.ADMIN and record.scope != Scope.ADMIN:
            self._refused("insufficient_scope", operation)
            raise PermissionDenied("this operation needs an admin key")
        return Caller(key_id=record.id, scope=record.scope, limits=record.limits)


def visible_caller_key_id(caller: Caller, requested: str | None) -> str | None:
    """Whose request logs ``caller`` may list when it asks for ``requested`` (None: every key's).

    An admin key sees any key's; a generate key only its own, whatever it asks for, and asking for
    another key's is refused with PERMISSION_DENIED naming ``caller_key_id`` (gRPC and dashboard alike).
    """
    if caller.scope == Scope.ADMIN:
        return requested
    if requested not in (None, caller.key_id):
        raise PermissionDenied("only an admin key may list other keys' requests", param="caller_key_id")
    return caller.key_id
