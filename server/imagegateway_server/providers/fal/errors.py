"""How fal's error answers are read: ``{"detail": "..."}`` or a list of ``{loc, msg, type}`` (422).

The status decides the kind (``kit.status``); a 4xx whose detail has the type
``content_policy_violation`` (fal's safety checker refusing the prompt or the image) is
CONTENT_POLICY. fal marks whether a failure may be retried with ``X-Fal-Retryable``; the router
decides on the kind, so the header is only quoted in the message.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.errors import ProviderError
from imagegateway_server.providers.fal import PROVIDER
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse

CONTENT_POLICY_TYPE = "content_policy_violation"


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The explanation, first invalid field and error type of a fal error answer."""
    payload = json_object(response.body) or {}
    detail = payload.get("detail")
    entries = [entry for entry in detail if isinstance(entry, dict)] if isinstance(detail, list) else []
    types = {entry.get("type") for entry in entries}
    if entries:
        text = "; ".join(_item(entry) for entry in entries)
        param = next((field for field in map(_field, entries) if field), None)
    else:
        text = detail if isinstance(detail, str) else _string(payload.get("error")) or _string(payload.get("message"))
        param = None
        types.add(payload.get("error_type"))
    return FailureBody(
        detail=text or error_body_excerpt(response.body),
        code=next((t for t in types if isinstance(t, str)), None),
        param=param,
        content_policy_code=CONTENT_POLICY_TYPE if CONTENT_POLICY_TYPE in types else None,
    )


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _item(entry: dict[str, Any]) -> str:
    field, message = _field(entry), _string(entry.get("msg"))
    return f"{field}: {message}" if field else message


def _field(entry: dict[str, Any]) -> str | None:
    loc = entry.get("loc")
    if isinstance(loc, list):
        return ".".join(str(part) for part in loc if part != "body") or None
    return None


LADDER = StatusLadder(PROVIDER, read_failure)


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx fal answer (submit, status, result)."""
    return LADDER.classify(response, secret=secret)
