"""Reads the images out of a Stability answer, and refuses one its content filter blurred.

An answer is either the raw image (``Accept: image/*``, or an upstream that ignores ``Accept``, with
its finish reason and seed in headers) or JSON: v1 ``artifacts[]`` with ``base64``, ``seed`` and
``finishReason``; v2beta one ``image`` with ``seed`` and ``finish_reason``.

A content-filtered answer (v1 ``finishReason`` CONTENT_FILTERED or ERROR, v2beta ``finish_reason``
CONTENT_FILTERED) is a CONTENT_POLICY failure: Stability returns a blurred image with HTTP 200 and that
image is never handed back.
"""

from __future__ import annotations

from typing import Any

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.images import check_image, decode_image_b64
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.stability import PROVIDER

_FILTERED_FINISH = frozenset({"CONTENT_FILTERED", "ERROR"})


def parse_v1(response: UpstreamResponse, *, secret: Secrets) -> tuple[GeneratedImage, ...]:
    """The images of a successful v1 text-to-image answer."""
    if response.content_type.startswith("image/"):
        return (_raw_image(response, secret=secret),)
    payload = _success_json(response, secret=secret)
    artifacts = payload.get("artifacts")
    if not isinstance(artifacts, list) or not artifacts or not all(isinstance(a, dict) for a in artifacts):
        raise upstream_bug(
            PROVIDER,
            f"{PROVIDER}: upstream returned HTTP {response.status_code} without images in 'artifacts'",
            secret=secret,
        )
    for artifact in artifacts:
        _check_finish(artifact.get("finishReason"), secret=secret)
    images = []
    for artifact in artifacts:
        data = decode_image_b64(artifact.get("base64"), provider=PROVIDER, secret=secret)
        images.append(_image(data, artifact.get("seed"), secret=secret))
    return tuple(images)


def parse_v2(response: UpstreamResponse, *, secret: Secrets) -> GeneratedImage:
    """The image of a successful v2beta answer."""
    if response.content_type.startswith("image/"):
        return _raw_image(response, secret=secret)
    payload = _success_json(response, secret=secret)
    _check_finish(payload.get("finish_reason"), secret=secret)
    data = decode_image_b64(payload.get("image"), provider=PROVIDER, secret=secret)
    return _image(data, payload.get("seed"), secret=secret)


def _raw_image(response: UpstreamResponse, *, secret: Secrets) -> GeneratedImage:
    _check_finish(response.headers.get("finish-reason"), secret=secret)
    seed = response.headers.get("seed", "")
    return _image(response.body, int(seed) if seed.isdigit() else None, secret=secret)


def _image(data: bytes, seed: object, *, secret: Secrets) -> GeneratedImage:
    mime, width, height = check_image(data, provider=PROVIDER, secret=secret)
    return GeneratedImage(
        data=data,
        mime_type=mime,
        width=width,
        height=height,
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
    )


def _check_finish(reason: object, *, secret: Secrets) -> None:
    if reason is None or reason == "SUCCESS":
        return
    if reason in _FILTERED_FINISH:
        raise provider_error(
            PROVIDER,
            ErrorKind.CONTENT_POLICY,
            f"{PROVIDER}: the upstream content filter rejected the image (finish reason {reason})",
            secret=secret,
            status_code=400,
            code="content_policy_violation",
        )
    raise upstream_bug(PROVIDER, f"{PROVIDER}: upstream returned an unknown finish reason {reason!r}", secret=secret)


def _success_json(response: UpstreamResponse, *, secret: Secrets) -> dict[str, Any]:
    payload = json_object(response.body)
    if payload is None:
        what = describe_bad_body(response.body)
        raise upstream_bug(
            PROVIDER, f"{PROVIDER}: upstream returned HTTP {response.status_code} with {what}", secret=secret
        )
    return payload
