"""How Recraft's error answers are read: JSON ``{"code", "message"}`` or OpenAI's envelope, or plain text.

The status decides the kind (``kit.status``): a 401 is Recraft's plain-text ``Unauthorized``, read as
an excerpt. A 4xx whose code or message says moderation refused the prompt (Recraft's NSFW and
inappropriate-content refusals) is CONTENT_POLICY.
"""

from __future__ import annotations

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.openai_images import openai_error_envelope
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.recraft import PROVIDER

_MODERATION_WORDS = ("nsfw", "inappropriate", "moderation", "content policy", "prohibited")


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The explanation and code of a Recraft error answer, and whether moderation refused."""
    payload = json_object(response.body) or {}
    message, code = payload.get("message"), payload.get("code")
    if isinstance(message, str) and message:
        detail = message
        code = code if isinstance(code, str) and code else None
        param = None
    else:
        envelope = openai_error_envelope(response.body)
        detail = envelope.get("message") or error_body_excerpt(response.body)
        code, param = envelope.get("code"), envelope.get("param")
    text = f"{code or ''} {detail}".lower()
    moderated = any(word in text for word in _MODERATION_WORDS)
    return FailureBody(
        detail=detail,
        code=code,
        param=param,
        content_policy_code=(code or "content_policy_violation") if moderated else None,
    )


LADDER = StatusLadder(PROVIDER, read_failure)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx Recraft answer from its status and body."""
    return LADDER.classify(response, secret=secret)
