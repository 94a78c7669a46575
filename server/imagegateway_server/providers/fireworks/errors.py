"""How Fireworks' error answers are read, in its three shapes.

OpenAI-like ``{"error": {"message", "type", "code"}}``; the API gateway's
``{"fault": {"faultstring", "detail": {"errorcode"}}}``; FastAPI's ``{"detail": "..."}`` (a string, or
a list of ``{"loc", "msg"}`` on 422). The status decides the kind (``kit.status``), except that 402
(no credits) is PERMISSION_DENIED; a 4xx that names the safety checker or NSFW content is
CONTENT_POLICY.
"""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import Secrets
from imagegateway_server.providers.kit.openai_images import openai_error_envelope
from imagegateway_server.providers.kit.status import FailureBody, StatusLadder, error_body_excerpt
from imagegateway_server.providers.kit.transport import UpstreamResponse

_SAFETY_WORDS = ("nsfw", "safety", "content_filtered", "content filter")


def read_failure(response: UpstreamResponse) -> FailureBody:
    """The explanation and code of a Fireworks error answer in any of its shapes."""
    payload = json_object(response.body) or {}
    detail: str | None = None
    code: str | None = None
    param: str | None = None
    fault = payload.get("fault")
    if isinstance(fault, dict):
        detail = fault.get("faultstring") if isinstance(fault.get("faultstring"), str) else None
        inner = fault.get("detail")
        if isinstance(inner, dict) and isinstance(inner.get("errorcode"), str):
            code = inner["errorcode"]
    elif "detail" in payload and "error" not in payload:
        detail = _fastapi_detail(payload["detail"])
    else:
        envelope = openai_error_envelope(response.body)
        detail, code, param = envelope.get("message"), envelope.get("code"), envelope.get("param")
    detail = detail or error_body_excerpt(response.body)
    text = f"{code or ''} {detail}".lower()
    safety = any(word in text for word in _SAFETY_WORDS)
    return FailureBody(
        detail=detail, code=code, param=param, content_policy_code="content_policy_violation" if safety else None
    )


def _fastapi_detail(detail: object) -> str | None:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and isinstance(item.get("msg"), str):
                where = (
                    ".".join(str(p) for p in item.get("loc", []) if p != "body")
                    if isinstance(item.get("loc"), list)
                    else ""
                )
                parts.append(f"{where}: {item['msg']}" if where else item["msg"])
        return "; ".join(parts) or None
    return None


LADDER = StatusLadder(PROVIDER, read_failure, exceptions=MappingProxyType({402: ErrorKind.PERMISSION_DENIED}))


def classify_error(response: UpstreamResponse, *, secret: Secrets) -> ProviderError:
    """Classifies a non-2xx Fireworks answer from its status and body."""
    return LADDER.classify(response, secret=secret)
