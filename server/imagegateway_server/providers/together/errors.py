"""How Together's error answers are read: OpenAI's ``{"error": {...}}`` envelope, and its safety checker.

The status decides the kind (``kit.status``). A 4xx is CONTENT_POLICY when the envelope says so as
OpenAI's does, or when its message or code names Together's NSFW safety checker (which refuses a
flagged image rather than serving a black one). Together documents 503 as "overloaded", which the
ladder already makes UNAVAILABLE.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.openai_images import read_openai_failure
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.together import PROVIDER

_SAFETY_WORDS = ("nsfw", "safety checker", "content policy", "unsafe content")


def read_failure(response: UpstreamResponse) -> FailureBody:
    """OpenAI's reading of the envelope, plus Together's safety-checker refusals."""
    failure = read_openai_failure(response)
    if failure.content_policy_code is None and _names_the_safety_checker(failure):
        return dataclasses.replace(failure, content_policy_code=failure.code or "content_policy_violation")
    return failure


def _names_the_safety_checker(failure: FailureBody) -> bool:
    text = f"{failure.code or ''} {failure.detail}".lower()
    return any(word in text for word in _SAFETY_WORDS)


LADDER = StatusLadder(PROVIDER, read_failure)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx Together answer from its status and error envelope."""
    return LADDER.classify(response, secret=secret)
