"""Gemini's image output through ``:generateContent``, shared by Vertex AI and the Gemini API.

Body (one image per call; ``n`` fans out)::

    {"contents": [{"role": "user", "parts": [{"text": "<prompt>"}]}],
     "generationConfig": {"responseModalities": ["IMAGE"],
                          "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
                          "seed": 7}}

| ImageRequest | field |
|---|---|
| n | n calls, one image each (a seed steps by one per call, as n samples would differ) |
| size | ``imageConfig.aspectRatio`` (nearest of ten ratios) + ``imageSize`` where the model has tiers |
| aspect_ratio | ``imageConfig.aspectRatio`` |
| seed | ``generationConfig.seed`` |
| output_format, output_compression | ``imageConfig.imageOutputOptions``: Vertex only (not the Gemini API) |
| extra person_generation | ``imageConfig.personGeneration``: Vertex only |
| quality (other than auto), style, negative_prompt, background, moderation, user, ... | refused |
| images (an edit) | an ``inlineData {mimeType, data}`` part per image after the prompt's text part |
| mask (an edit) | refused: Gemini edits by the prompt, without a mask |

Answer: ``candidates[0].content.parts[]``, the image in a part's ``inlineData {mimeType, data}``
(text parts are skipped). A blocked prompt (``promptFeedback.blockReason``) or a candidate stopped
by a safety finish reason (``IMAGE_SAFETY``, ``SAFETY``, ``IMAGE_PROHIBITED_CONTENT``, ...) is a
CONTENT_POLICY failure, never an image served; a candidate without an image for another reason
is an UPSTREAM_BUG.
"""

from __future__ import annotations

from typing import Any

import pybase64

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.kit.base64_json import DecodedBase64
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object
from imagegateway_server.providers.kit.errors import Secrets, provider_error, refuse_parameter, upstream_bug
from imagegateway_server.providers.kit.google_errors import CONTENT_POLICY_CODE
from imagegateway_server.providers.kit.google_imagen import output_options
from imagegateway_server.providers.kit.images import check_image, decode_image_b64
from imagegateway_server.providers.kit.sizes import AspectRatios
from imagegateway_server.providers.kit.transport import UpstreamResponse

GEMINI_RATIOS = AspectRatios(("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"))
MAX_SEED = 2**31 - 1
PERSON_GENERATION = frozenset({"ALLOW_ALL", "ALLOW_ADULT", "ALLOW_NONE"})
SAFETY_FINISH_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",
        "IMAGE_RECITATION",
    }
)
_IMAGE_KEYS = frozenset({"data"})
_ACCEPTED = frozenset({"model", "n", "size", "aspect_ratio", "seed", "image_size"})
_VERTEX_ONLY = frozenset({"output_format", "output_compression", "person_generation"})


def content_bodies(
    request: ImageRequest, image_size: str | None, *, provider: str, model_name: str, vertex: bool
) -> list[dict[str, Any]]:
    """One ``:generateContent`` body per image asked for; BAD_REQUEST naming any parameter the model lacks.

    ``vertex`` says the call goes to Vertex AI, whose ``imageConfig`` also takes output options and
    ``personGeneration``.
    """
    accepted = _ACCEPTED | (_VERTEX_ONLY if vertex else frozenset())
    for name in request.set_fields():
        if name not in accepted:
            where = " on the Gemini API" if name in _VERTEX_ONLY else ""
            raise refuse_parameter(
                provider,
                name,
                f"is not supported by {model_name!r}{where}, which has no equivalent",
                "unknown_parameter",
            )
    image_config: dict[str, Any] = {}
    if request.aspect_ratio is not None:
        if not GEMINI_RATIOS.allows(request.aspect_ratio):
            raise refuse_parameter(provider, "aspect_ratio", f"must be {GEMINI_RATIOS.describe}")
        image_config["aspectRatio"] = request.aspect_ratio
    if image_size is not None:
        image_config["imageSize"] = image_size
    if vertex:
        person = request.extra.get("person_generation")
        if person is not None:
            if not isinstance(person, str) or person.upper() not in PERSON_GENERATION:
                allowed = ", ".join(sorted(PERSON_GENERATION))
                raise refuse_parameter(provider, "person_generation", f"must be one of {allowed}")
            image_config["personGeneration"] = person.upper()
        output = output_options(request, provider=provider)
        if output:
            image_config["imageOutputOptions"] = output
    parts = _parts(request, provider=provider)
    bodies = []
    for index in range(request.n):
        config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
        if image_config:
            config["imageConfig"] = image_config
        if request.seed is not None:
            # The same seed n times would give n identical images.
            config["seed"] = (request.seed + index) % (MAX_SEED + 1)
        bodies.append({"contents": [{"role": "user", "parts": parts}], "generationConfig": config})
    return bodies


def _parts(request: ImageRequest, *, provider: str) -> list[dict[str, Any]]:
    """The prompt's text part, then an edit's input images as inline data (base64, as JSON carries bytes)."""
    if request.mask is not None:
        raise refuse_parameter(provider, "mask", "is not taken by Gemini, which edits by the prompt alone")
    parts: list[dict[str, Any]] = [{"text": request.prompt}]
    for image in request.images:
        encoded = pybase64.b64encode(image.data).decode("ascii")
        parts.append({"inlineData": {"mimeType": image.mime_type, "data": encoded}})
    return parts


def read_content_image(response: UpstreamResponse, *, provider: str, secret: Secrets) -> GeneratedImage:
    """The image of a 2xx ``:generateContent`` answer; CONTENT_POLICY when Google's safety filters stopped it."""
    payload = json_object(response.body, image_keys=_IMAGE_KEYS)
    if payload is None:
        what = describe_bad_body(response.body)
        raise upstream_bug(
            provider, f"{provider}: upstream returned HTTP {response.status_code} with {what}", secret=secret
        )
    feedback = payload.get("promptFeedback")
    block = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if isinstance(block, str) and block:
        raise _refused(provider, f"the prompt was blocked (blockReason {block})", secret)
    candidates = payload.get("candidates")
    if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
        raise upstream_bug(provider, f"{provider}: upstream answered without candidates", secret=secret)
    candidate = candidates[0]
    finish = candidate.get("finishReason")
    if isinstance(finish, str) and finish in SAFETY_FINISH_REASONS:
        # Never served, even when the candidate carries an image next to the verdict.
        raise _refused(provider, f"the safety filter stopped the image (finishReason {finish})", secret)
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    for part in parts if isinstance(parts, list) else ():
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if isinstance(inline, dict) and str(inline.get("mimeType", "")).startswith("image/"):
            return _image(inline.get("data"), provider=provider, secret=secret)
    raise upstream_bug(
        provider, f"{provider}: upstream answered without an image (finishReason {finish or 'none'})", secret=secret
    )


def _image(encoded: object, *, provider: str, secret: Secrets) -> GeneratedImage:
    data = (
        encoded.data
        if isinstance(encoded, DecodedBase64)
        else decode_image_b64(encoded, provider=provider, secret=secret)
    )
    mime, width, height = check_image(data, provider=provider, secret=secret)
    return GeneratedImage(data=data, mime_type=mime, width=width, height=height)


def _refused(provider: str, why: str, secret: Secrets) -> Exception:
    return provider_error(
        provider,
        ErrorKind.CONTENT_POLICY,
        f"{provider}: {why}",
        secret=secret,
        status_code=400,
        code=CONTENT_POLICY_CODE,
    )
