"""How Azure OpenAI's error answers are read: OpenAI's envelope with string codes, and Azure's content filter.

The status decides the kind (``kit.status``). A 4xx is CONTENT_POLICY when the envelope says so as
OpenAI's does (``content_policy_violation``, ``moderation_blocked``, a safety-system message) or
when its ``inner_error`` (images; ``innererror`` elsewhere) carries Azure's
``ResponsibleAIPolicyViolation`` code or a ``content_filter_results`` category marked ``filtered``.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.providers.azure_openai import PROVIDER
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.openai_images import read_openai_failure
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder
from imagegateway_server.providers.kit.transport import UpstreamResponse

_RESPONSIBLE_AI = "ResponsibleAIPolicyViolation"


def read_failure(response: UpstreamResponse) -> FailureBody:
    """OpenAI's reading of the envelope, plus Azure's content-filter signs in ``inner_error``."""
    failure = read_openai_failure(response)
    if failure.content_policy_code is None and _inner_error_filtered(response.body):
        return dataclasses.replace(failure, content_policy_code=failure.code or "content_policy_violation")
    return failure


def _inner_error_filtered(body: bytes) -> bool:
    payload = json_object(body)
    error = payload.get("error") if payload is not None else None
    if not isinstance(error, dict):
        return False
    inner = error.get("inner_error", error.get("innererror"))
    if not isinstance(inner, dict):
        return False
    return inner.get("code") == _RESPONSIBLE_AI or filtered(inner.get("content_filter_results"))


def filtered(results: object) -> bool:
    """Whether a ``content_filter_results`` object marks any category ``filtered``."""
    if not isinstance(results, dict):
        return False
    return any(isinstance(category, dict) and category.get("filtered") is True for category in results.values())


LADDER = StatusLadder(PROVIDER, read_failure)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx Azure OpenAI answer from its status and error envelope."""
    return LADDER.classify(response, secret=secret)
