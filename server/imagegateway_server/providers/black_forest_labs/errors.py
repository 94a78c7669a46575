"""How Black Forest Labs' error answers are read: ``{"detail": "..."}`` or FastAPI's ``{"detail": [{loc, msg, type}]}``.

The status decides the kind (``kit.status``), except that 402 (out of credits) is
PERMISSION_DENIED. A 429 on submit means the key has as many active tasks as BFL allows (about
24): RATE_LIMITED, so a fallback chain moves on or a retry waits.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The explanation (and the first invalid field, for a 422) of a BFL error answer."""
    payload = json_object(response.body) or {}
    detail = payload.get("detail")
    param = None
    if isinstance(detail, list):
        messages = [_item(entry) for entry in detail if isinstance(entry, dict)]
        fields = [_field(entry) for entry in detail if isinstance(entry, dict)]
        param = next((f for f in fields if f), None)
        text = "; ".join(m for m in messages if m)
    elif isinstance(detail, str):
        text = detail
    else:
        message = payload.get("message")
        text = message if isinstance(message, str) else ""
    return FailureBody(detail=text or error_body_excerpt(response.body), param=param)


def _item(entry: dict[str, Any]) -> str:
    message = entry.get("msg")
    field = _field(entry)
    if not isinstance(message, str):
        return ""
    return f"{field}: {message}" if field else message


def _field(entry: dict[str, Any]) -> str | None:
    loc = entry.get("loc")
    if isinstance(loc, list):
        names = [str(part) for part in loc if part != "body"]
        return ".".join(names) or None
    return None


LADDER = StatusLadder(PROVIDER, read_failure, exceptions=MappingProxyType({402: ErrorKind.PERMISSION_DENIED}))


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx BFL answer (submit or poll)."""
    return LADDER.classify(response, secret=secret)
