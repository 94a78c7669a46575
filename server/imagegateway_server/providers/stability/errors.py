"""How Stability's error answers are read: v1 ``{"name", "message"}`` and v2beta ``{"name", "errors": [...]}``.

The status decides the kind (``kit.status``), except that 402 (out of credits) is PERMISSION_DENIED;
a 4xx named ``content_moderation`` (403), ``invalid_prompts`` (400) or ``public_figure`` (422) is
CONTENT_POLICY; and a 429 without Retry-After waits 60 s, Stability's lock-out.
"""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.stability import PROVIDER

# Stability documents no Retry-After; a tripped rate limit locks the key out for 60 s.
RATE_LIMIT_LOCKOUT_SECONDS = 60.0
_CONTENT_POLICY_NAMES = frozenset({"content_moderation", "invalid_prompts", "public_figure"})


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The name and messages of a Stability error answer, and whether its moderation refused."""
    payload = json_object(response.body) or {}
    name = payload.get("name") if isinstance(payload.get("name"), str) else None
    details: list[str] = []
    if isinstance(payload.get("message"), str):
        details.append(payload["message"])
    errors = payload.get("errors")
    if isinstance(errors, list):
        details.extend(str(e) for e in errors)
    detail = "; ".join(details) or error_body_excerpt(response.body)
    return FailureBody(
        detail=f"{name}: {detail}" if name else detail,
        code=name,
        content_policy_code="content_policy_violation" if name in _CONTENT_POLICY_NAMES else None,
    )


LADDER = StatusLadder(
    PROVIDER,
    read_failure,
    exceptions=MappingProxyType({402: ErrorKind.PERMISSION_DENIED}),
    rate_limit_wait=RATE_LIMIT_LOCKOUT_SECONDS,
)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx Stability answer (v1 ``message`` or v2beta ``errors[]`` bodies)."""
    return LADDER.classify(response, secret=secret)
