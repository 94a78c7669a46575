"""Reads the image out of a Fireworks FLUX answer, and refuses one its safety checker flagged.

With ``Accept: image/*`` the body is the image itself, its finish reason in the ``finish-reason``
header and its seed in ``seed``; an upstream that answers JSON instead sends ``{"id", "base64":
["data:image/png;base64,..."], "finishReason", "seed"}``. A finish reason of ``CONTENT_FILTERED``
(or ``ERROR``) is a CONTENT_POLICY failure: the image (black or blurred) is never served.
"""

from __future__ import annotations

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.fireworks import PROVIDER
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, upstream_bug
from imagegateway_server.providers.kit.images import checked_image, decode_image_b64
from imagegateway_server.providers.kit.transport import UpstreamResponse

_FILTERED = frozenset({"CONTENT_FILTERED", "ERROR"})
_IMAGE_KEYS = frozenset({"base64"})


def parse_image(response: UpstreamResponse, *, secret: Secrets) -> GeneratedImage:
    """The one image of a successful text_to_image answer."""
    if response.content_type.startswith("image/"):
        _check_finish(response.headers.get("finish-reason"), secret=secret)
        header_seed = response.headers.get("seed", "")
        seed = int(header_seed) if header_seed.isdigit() else None
        return checked_image(response.body, provider=PROVIDER, secret=secret, seed=seed)
    payload = json_object(response.body)
    if payload is None:
        what = describe_bad_body(response.body)
        raise upstream_bug(
            PROVIDER, f"{PROVIDER}: upstream returned HTTP {response.status_code} with {what}", secret=secret
        )
    _check_finish(payload.get("finishReason"), secret=secret)
    images = payload.get("base64")
    if not isinstance(images, list) or not images:
        raise upstream_bug(PROVIDER, f"{PROVIDER}: upstream returned JSON without images in 'base64'", secret=secret)
    data = decode_image_b64(images[0], provider=PROVIDER, secret=secret)
    return checked_image(data, provider=PROVIDER, secret=secret, seed=payload.get("seed"))


def _check_finish(reason: object, *, secret: Secrets) -> None:
    if reason is None or reason == "SUCCESS":
        return
    if reason in _FILTERED:
        raise provider_error(
            PROVIDER,
            ErrorKind.CONTENT_POLICY,
            f"{PROVIDER}: the safety checker rejected the image (finish reason {reason})",
            secret=secret,
            status_code=400,
            code="content_policy_violation",
        )
    raise upstream_bug(PROVIDER, f"{PROVIDER}: upstream returned an unknown finish reason {reason!r}", secret=secret)
