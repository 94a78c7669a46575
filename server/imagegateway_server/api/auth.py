"""Who may call what: one table of operation -> required scope, checked in one place per front end."""

from __future__ import annotations

import contextvars

from imagegateway_server.domain.errors import PermissionDenied, Unauthenticated
from imagegateway_server.gateway import Caller
from imagegateway_server.security.api_keys import ApiKeyService

ADMIN = "admin"
GENERATE = "generate"

# gRPC method name (without the service) -> scope. A method missing here is refused.
GRPC_METHOD_SCOPES: dict[str, str] = {
    "GenerateImage": GENERATE,
    "StreamGenerateImage": GENERATE,
    "ValidateConfig": GENERATE,
    "ListLogs": GENERATE,
    "GetLog": GENERATE,
    "CreateConfig": ADMIN,
    "GetConfig": ADMIN,
    "ListConfigs": ADMIN,
    "UpdateConfig": ADMIN,
    "DeleteConfig": ADMIN,
    "CreateVirtualKey": ADMIN,
    "GetVirtualKey": ADMIN,
    "ListVirtualKeys": ADMIN,
    "RotateVirtualKey": ADMIN,
    "DeleteVirtualKey": ADMIN,
    "CreateApiKey": ADMIN,
    "ListApiKeys": ADMIN,
    "RevokeApiKey": ADMIN,
    "ListTargetHealth": ADMIN,
}

# The caller of the RPC or HTTP request being served.
current_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("current_caller")


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class Authenticator:
    """Checks gateway API keys and scopes."""

    def __init__(self, api_keys: ApiKeyService) -> None:
        self._api_keys = api_keys

    async def authenticate(self, key: str | None, required_scope: str) -> Caller:
        """Returns the caller, or raises Unauthenticated / PermissionDenied (never echoing the key)."""
        if not key:
            raise Unauthenticated("a gateway API key is required")
        record = await self._api_keys.authenticate(key)
        if required_scope == ADMIN and record.scope != ADMIN:
            raise PermissionDenied("this operation needs an admin key")
        return Caller(key_id=record.id, scope=record.scope)
