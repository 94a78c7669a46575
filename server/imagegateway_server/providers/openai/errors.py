"""How OpenAI's error answers are read: its ``{"error": {...}}`` envelope and its content-policy signs.

The status decides the kind (``kit.status``), except that a 409 means OpenAI is busy (UNAVAILABLE),
and a 4xx whose code is ``content_policy_violation`` or ``moderation_blocked``, or whose message
starts as OpenAI's safety-system rejections do, is CONTENT_POLICY (``kit.openai_images``).
"""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.openai_images import read_openai_failure
from imagegateway_server.providers.kit.status import StatusLadder
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.openai import PROVIDER

LADDER = StatusLadder(PROVIDER, read_openai_failure, exceptions=MappingProxyType({409: ErrorKind.UNAVAILABLE}))


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx OpenAI answer from its status and error envelope."""
    return LADDER.classify(response, secret=secret)
