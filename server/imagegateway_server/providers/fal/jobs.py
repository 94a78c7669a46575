"""Reads fal's queue answers: a request's status while it waits or runs, and the model's result.

``GET status_url`` answers ``{"status": "IN_QUEUE", "queue_position": n}`` (HTTP 202), then
``IN_PROGRESS``, then ``COMPLETED`` (200). A request that failed is ``COMPLETED`` too: its
``response_url`` then answers the model's error (``jobs`` leave that to ``errors``), and newer
answers may already say ``error`` / ``error_type`` in the status. The result of an image model is
``{"images": [{"url", "width", "height", "content_type"}], "seed", "has_nsfw_concepts": [...]}``;
an image fal's safety checker flagged (``has_nsfw_concepts``) is blacked out by fal and is a
CONTENT_POLICY failure here, never served.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.providers.fal import PROVIDER
from imagegateway_server.providers.fal.errors import CONTENT_POLICY_TYPE
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.polling import Done, Pending
from imagegateway_server.providers.kit.transport import UpstreamResponse

COMPLETED = "COMPLETED"


@dataclasses.dataclass(frozen=True, slots=True)
class ResultImage:
    """One image of a result: where it is and what fal says it is."""

    url: object
    content_type: str
    seed: int | None


def read_status(response: UpstreamResponse, *, secret: Secrets) -> Pending | Done[None]:
    """A 200/202 status answer: Pending (with the queue position) or Done; a failed request raises."""
    payload = _payload(response, "a status poll", secret)
    status = payload.get("status")
    if not isinstance(status, str) or not status:
        raise upstream_bug(PROVIDER, f"{PROVIDER}: a status answer has no 'status'", secret=secret)
    if status != COMPLETED:
        position = payload.get("queue_position")
        return Pending(status, position if isinstance(position, int) and not isinstance(position, bool) else None)
    error = payload.get("error")
    if isinstance(error, str) and error:
        kind = ErrorKind.CONTENT_POLICY if payload.get("error_type") == CONTENT_POLICY_TYPE else ErrorKind.UNAVAILABLE
        raise provider_error(
            PROVIDER,
            kind,
            f"{PROVIDER}: the request failed: {error}",
            secret=secret,
            status_code=400 if kind is ErrorKind.CONTENT_POLICY else 502,
            code=str(payload.get("error_type") or "request_failed"),
        )
    return Done(status, None)


def read_result(response: UpstreamResponse, *, secret: Secrets) -> list[ResultImage]:
    """The images of a 200 result; a flagged image is CONTENT_POLICY."""
    payload = _payload(response, "the result", secret)
    images = payload.get("images")
    if not isinstance(images, list) or not images or not all(isinstance(image, dict) for image in images):
        raise upstream_bug(PROVIDER, f"{PROVIDER}: the result has no 'images'", secret=secret)
    flags = payload.get("has_nsfw_concepts")
    if isinstance(flags, list) and any(flag is True for flag in flags):
        raise provider_error(
            PROVIDER,
            ErrorKind.CONTENT_POLICY,
            f"{PROVIDER}: the safety checker flagged {sum(flag is True for flag in flags)} generated image(s)",
            secret=secret,
            status_code=400,
            code=CONTENT_POLICY_TYPE,
        )
    seed = payload.get("seed")
    # One seed is reported for the whole request: it is the image's own only when there is one image.
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and len(images) == 1 else None
    return [
        ResultImage(
            image.get("url"), image.get("content_type") if isinstance(image.get("content_type"), str) else "", seed
        )
        for image in images
    ]


def _payload(response: UpstreamResponse, what: str, secret: Secrets) -> dict[str, Any]:
    payload = json_object(response.body)
    if payload is None:
        bad = describe_bad_body(response.body)
        raise upstream_bug(
            PROVIDER, f"{PROVIDER}: {what} came with HTTP {response.status_code} and {bad}", secret=secret
        )
    return payload
