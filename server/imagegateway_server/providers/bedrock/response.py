"""Reads the images out of a Bedrock answer, and refuses those its content filter blocked.

Nova Canvas and Titan answer ``{"images": [<base64 PNG>, ...], "error": <string or null>}``. When
the filter blocks generated images the answer is still a 200: ``error`` says "All of the generated
images have been blocked by our content filters." (no image: a CONTENT_POLICY failure) or "Some
of the generated images ..." (the ones left are served, and the shortfall logged).

Stability's models answer ``{"images": [...], "finish_reasons": [...], "seeds": [...]}``; a
``finish_reasons`` entry that is not null ("Filter reason: prompt", "Filter reason: output image")
is a CONTENT_POLICY failure and its image is never served; "Inference error" is an upstream failure.
"""

from __future__ import annotations

import logging
from typing import Any

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.bedrock import PROVIDER
from imagegateway_server.providers.kit.base64_json import DecodedBase64
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.images import checked_image, decode_image_b64
from imagegateway_server.providers.kit.transport import UpstreamResponse

_log = logging.getLogger(__name__)

# Long base64 strings under these keys arrive decoded by the parse that checks them.
IMAGE_KEYS = frozenset({"images"})
_FILTER_PREFIX = "Filter reason"
_BLOCKED = "blocked by our content filters"


def parse_amazon(response: UpstreamResponse, *, asked: int, secret: Secrets) -> tuple[GeneratedImage, ...]:
    """The images of a Nova Canvas or Titan answer; all of them blocked is CONTENT_POLICY."""
    payload = _success_json(response, secret=secret)
    images = _image_list(payload, response, secret=secret)
    error = payload.get("error")
    if not images:
        if isinstance(error, str) and _BLOCKED in error:
            raise _content_policy(f"{PROVIDER}: the content filter blocked every generated image", secret)
        raise upstream_bug(PROVIDER, f"{PROVIDER}: upstream returned HTTP 200 without images", secret=secret)
    if isinstance(error, str) and error:
        # "Some of the generated images have been blocked": the rest were not, and are served.
        _log.warning(
            "%s: %d of %d images came back (x-amzn-RequestId %s): %s",
            PROVIDER,
            len(images),
            asked,
            response.headers.get("x-amzn-requestid", "-"),
            error[:200],
        )
    return tuple(_image(item, None, secret=secret) for item in images)


def parse_stability(response: UpstreamResponse, *, secret: Secrets) -> GeneratedImage:
    """The one image of a Stability-on-Bedrock answer; a filtered one is CONTENT_POLICY."""
    payload = _success_json(response, secret=secret)
    reasons = payload.get("finish_reasons")
    if isinstance(reasons, list):
        for reason in reasons:
            if reason is None:
                continue
            if isinstance(reason, str) and reason.startswith(_FILTER_PREFIX):
                raise _content_policy(f"{PROVIDER}: the content filter refused the image ({reason})", secret)
            raise provider_error(
                PROVIDER,
                ErrorKind.UNAVAILABLE,
                f"{PROVIDER}: the model failed to make the image (finish reason {reason!r})",
                secret=secret,
                status_code=502,
                code="model_error",
            )
    images = _image_list(payload, response, secret=secret)
    if not images:
        raise upstream_bug(PROVIDER, f"{PROVIDER}: upstream returned HTTP 200 without images", secret=secret)
    seeds = payload.get("seeds")
    seed = seeds[0] if isinstance(seeds, list) and seeds else None
    return _image(images[0], seed, secret=secret)


def _image_list(payload: dict[str, Any], response: UpstreamResponse, *, secret: Secrets) -> list[Any]:
    images = payload.get("images", [])
    if not isinstance(images, list):
        raise upstream_bug(PROVIDER, f"{PROVIDER}: 'images' in the answer is not a list", secret=secret)
    return [image for image in images if image is not None]


def _image(item: Any, seed: object, *, secret: Secrets) -> GeneratedImage:
    data = item.data if isinstance(item, DecodedBase64) else decode_image_b64(item, provider=PROVIDER, secret=secret)
    return checked_image(data, provider=PROVIDER, secret=secret, seed=seed)


def _content_policy(message: str, secret: Secrets) -> Exception:
    return provider_error(
        PROVIDER, ErrorKind.CONTENT_POLICY, message, secret=secret, status_code=400, code="content_policy_violation"
    )


def _success_json(response: UpstreamResponse, *, secret: Secrets) -> dict[str, Any]:
    payload = json_object(response.body, image_keys=IMAGE_KEYS)
    if payload is None:
        what = describe_bad_body(response.body)
        raise upstream_bug(
            PROVIDER, f"{PROVIDER}: upstream returned HTTP {response.status_code} with {what}", secret=secret
        )
    return payload
