"""Reads a FLUX task's poll answers: still running, ready with its signed result URL, or failed.

``GET polling_url`` answers ``{"id", "status", "result", "progress", "details"}`` (some answers say
``state`` instead of ``status``). ``Ready`` carries ``result.sample``, the signed URL of the image
(valid about ten minutes). ``Request Moderated`` (the prompt) and ``Content Moderated`` (the image)
are CONTENT_POLICY, which moves a fallback chain on; ``Error`` and ``Failed`` are the task failing
upstream (UNAVAILABLE); ``Task not found`` is a task BFL lost or never kept (UNAVAILABLE). Any other
status (``Pending``, and names BFL may add such as ``Queued``) is a task still running, polled again
within the attempt's deadline.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.providers.black_forest_labs import PROVIDER
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.polling import Done, Pending
from imagegateway_server.providers.kit.transport import UpstreamResponse

READY = "Ready"
_MODERATED = frozenset({"Request Moderated", "Content Moderated"})
_FAILED = frozenset({"Error", "Failed"})
_LOST = "Task not found"


def read_poll(response: UpstreamResponse, *, secret: Secrets) -> Pending | Done[object]:
    """A 200 poll answer: Pending, Done with the ``result.sample`` value, or a classified failure."""
    payload = json_object(response.body)
    if payload is None:
        what = describe_bad_body(response.body)
        raise upstream_bug(
            PROVIDER, f"{PROVIDER}: a poll returned HTTP {response.status_code} with {what}", secret=secret
        )
    status = payload.get("status", payload.get("state"))
    if not isinstance(status, str) or not status:
        raise upstream_bug(PROVIDER, f"{PROVIDER}: a poll answer has no 'status'", secret=secret)
    if status == READY:
        result = payload.get("result")
        sample = result.get("sample") if isinstance(result, dict) else None
        return Done(status, _first_url(sample))
    if status in _MODERATED:
        what = "the prompt" if status.startswith("Request") else "the generated image"
        raise provider_error(
            PROVIDER,
            ErrorKind.CONTENT_POLICY,
            f"{PROVIDER}: the task was refused by moderation ({status}: {what}){_details(payload)}",
            secret=secret,
            status_code=400,
            code="content_policy_violation",
        )
    if status in _FAILED or status == _LOST:
        code = "task_not_found" if status == _LOST else "task_failed"
        raise provider_error(
            PROVIDER,
            ErrorKind.UNAVAILABLE,
            f"{PROVIDER}: the task ended with status {status!r}{_details(payload)}",
            secret=secret,
            status_code=502,
            code=code,
        )
    return Pending(status)


def _first_url(sample: Any) -> object:
    # Ultra with several images answers a list of URLs (or of {"url": ...}); one task is one image.
    if isinstance(sample, list) and sample:
        sample = sample[0]
    if isinstance(sample, dict):
        sample = sample.get("url")
    return sample


def _details(payload: dict[str, Any]) -> str:
    details = payload.get("details")
    if isinstance(details, dict | str) and details:
        return f": {str(details)[:200]}"
    return ""
