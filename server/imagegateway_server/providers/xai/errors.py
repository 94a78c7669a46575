"""How xAI's error answers are read: ``{"code": "...", "error": "..."}``, where a wrong key is a 400.

The status decides the kind (``kit.status``), except that a 400 whose message says the API key is
wrong or missing is AUTHENTICATION (xAI answers those with 400, not 401), and a 4xx whose message
says content moderation refused the prompt or image is CONTENT_POLICY. ``code`` is xAI's gRPC-style
status text ("Client specified an invalid argument"); ``error`` is the explanation.
"""

from __future__ import annotations

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error
from imagegateway_server.providers.kit.openai_images import openai_error_envelope
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.xai import PROVIDER

_KEY_WORDS = ("incorrect api key", "no api key", "api key is missing", "invalid api key")
_MODERATION_WORDS = ("moderation", "content policy", "safety")


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The explanation and code of an xAI error body (or an OpenAI-style envelope, which xAI also relays)."""
    payload = json_object(response.body) or {}
    error, code = payload.get("error"), payload.get("code")
    if isinstance(error, str):
        detail = error
        code = code if isinstance(code, str) and code else None
        param = None
    else:
        envelope = openai_error_envelope(response.body)
        detail = envelope.get("message") or error_body_excerpt(response.body)
        code, param = envelope.get("code"), envelope.get("param")
    lowered = detail.lower()
    moderated = any(word in lowered for word in _MODERATION_WORDS) and not _is_key_error(lowered)
    return FailureBody(
        detail=detail, code=code, param=param, content_policy_code="content_policy_violation" if moderated else None
    )


def _is_key_error(lowered: str) -> bool:
    return any(word in lowered for word in _KEY_WORDS)


LADDER = StatusLadder(PROVIDER, read_failure)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx xAI answer from its status and error body."""
    error = LADDER.classify(response, secret=secret)
    if response.status_code == 400 and _is_key_error(error.message.lower()):
        # xAI answers a wrong or missing key with 400: a bad credential, not a bad request.
        return provider_error(
            PROVIDER, ErrorKind.AUTHENTICATION, error.message, secret=secret, status_code=400, code="invalid_api_key"
        )
    return error
