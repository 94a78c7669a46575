"""How OpenAI's error answers are read: its ``{"error": {...}}`` envelope and its content-policy signs.

The status decides the kind (``kit.status``), except that a 409 means OpenAI is busy (UNAVAILABLE),
and a 4xx whose code is ``content_policy_violation`` or ``moderation_blocked``, or whose message
starts as OpenAI's safety-system rejections do, is CONTENT_POLICY.
"""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets, upstream_bug
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.openai import PROVIDER

_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
_SAFETY_MESSAGE_PREFIXES = (
    "your request was rejected as a result of our safety system",
    "your request was rejected by the safety system",
)


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The message, code and param of an OpenAI error answer, and whether its safety system refused."""
    envelope = _envelope(response.body)
    message = envelope.get("message") or error_body_excerpt(response.body)
    code = envelope.get("code")
    safety = code in _CONTENT_POLICY_CODES or message.lower().startswith(_SAFETY_MESSAGE_PREFIXES)
    return FailureBody(
        detail=message,
        code=code,
        param=envelope.get("param"),
        content_policy_code=(code or "content_policy_violation") if safety else None,
    )


LADDER = StatusLadder(PROVIDER, read_failure, exceptions=MappingProxyType({409: ErrorKind.UNAVAILABLE}))


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx OpenAI answer from its status and error envelope."""
    return LADDER.classify(response, secret=secret)


def _envelope(body: bytes) -> dict[str, str]:
    """``message``/``type``/``code``/``param`` of an OpenAI error body, whichever are strings."""
    payload = json_object(body)
    if payload is None:
        return {}
    error = payload.get("error", payload)
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return {}
    return {k: v for k in ("message", "type", "code", "param") if isinstance(v := error.get(k), str) and v}


def bug(message: str, secret: Secrets) -> ProviderError:
    """UPSTREAM_BUG 502 for an OpenAI answer that is not what OpenAI documents."""
    return upstream_bug(PROVIDER, message, secret=secret)
