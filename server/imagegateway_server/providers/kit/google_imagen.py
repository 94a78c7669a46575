"""Imagen's ``:predict`` call, shared by Vertex AI and the Gemini API: the body, and the images in the answer.

Body (one instance; the parameters a model lacks are refused by name before any call)::

    {"instances": [{"prompt": "..."}],
     "parameters": {"sampleCount": n, "aspectRatio": "16:9", "sampleImageSize": "2K",
                    "negativePrompt": "...", "seed": 7, "addWatermark": false,
                    "personGeneration": "allow_adult", "safetySetting": "block_medium_and_above",
                    "outputOptions": {"mimeType": "image/jpeg", "compressionQuality": 80},
                    "includeRaiReason": true}}

| ImageRequest | parameter |
|---|---|
| n (1-4) | ``sampleCount`` |
| size | ``aspectRatio`` (nearest of 1:1, 3:4, 4:3, 9:16, 16:9) + ``sampleImageSize`` (``kit.google_sizes``) |
| aspect_ratio | ``aspectRatio`` |
| negative_prompt | ``negativePrompt``, on the models that still take it |
| seed | ``seed`` with ``addWatermark: false`` (Vertex honours a seed only without the watermark) |
| output_format png / jpeg, output_compression | ``outputOptions.mimeType`` / ``compressionQuality`` (jpeg only) |
| extra person_generation, safety_setting | ``personGeneration``, ``safetySetting`` (Google's values, any case) |
| quality (other than auto), style, background, moderation, user, ... | refused |

Answer: ``predictions[]`` with ``bytesBase64Encoded`` and ``mimeType`` per image. Imagen drops images
its safety filter catches: with ``includeRaiReason`` each becomes an entry with only
``raiFilteredReason``; entries without image (a prompt's safety attributes) are skipped. Fewer images
than asked keeps those that came (``ImagenImages.filtered`` says how many were dropped); none at all
is a CONTENT_POLICY failure, which moves a fallback chain on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.kit.base64_json import DecodedBase64
from imagegateway_server.providers.kit.bodies import describe_bad_body, json_object, snippet
from imagegateway_server.providers.kit.errors import Secrets, provider_error, refuse_parameter, upstream_bug
from imagegateway_server.providers.kit.google_errors import CONTENT_POLICY_CODE
from imagegateway_server.providers.kit.images import check_image, decode_image_b64
from imagegateway_server.providers.kit.sizes import AspectRatios
from imagegateway_server.providers.kit.transport import UpstreamResponse

IMAGEN_RATIOS = AspectRatios(("1:1", "3:4", "4:3", "9:16", "16:9"))
MAX_SAMPLES = 4
IMAGE_KEY = "bytesBase64Encoded"

PERSON_GENERATION = frozenset({"dont_allow", "allow_adult", "allow_all"})
SAFETY_SETTINGS = frozenset({"block_low_and_above", "block_medium_and_above", "block_only_high", "block_none"})
OUTPUT_MIME_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
_IMAGE_KEYS = frozenset({IMAGE_KEY})
# Always taken: the rest of a model's parameters depend on ImagenModel.
_ACCEPTED = frozenset(
    {
        "model",
        "n",
        "size",
        "aspect_ratio",
        "output_format",
        "output_compression",
        "person_generation",
        "safety_setting",
        "image_size",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class ImagenModel:
    """What one Imagen model takes on one API: its size tiers, and whether it has a negative prompt and a seed."""

    image_sizes: tuple[str, ...] = ()
    negative_prompt: bool = False
    seed: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ImagenImages:
    """The images of an answer, how many asked-for images the safety filter dropped, and its reasons."""

    images: tuple[GeneratedImage, ...]
    filtered: int
    reasons: tuple[str, ...] = ()


def predict_body(
    request: ImageRequest, model: ImagenModel, image_size: str | None, *, provider: str, model_name: str
) -> dict[str, Any]:
    """The ``:predict`` body for a translated ``request``; BAD_REQUEST naming any parameter the model lacks."""
    accepted = (
        _ACCEPTED | ({"negative_prompt"} if model.negative_prompt else set()) | ({"seed"} if model.seed else set())
    )
    for name in request.set_fields():
        if name not in accepted:
            raise refuse_parameter(
                provider, name, f"is not supported by {model_name!r}, which has no equivalent", "unknown_parameter"
            )
    if not 1 <= request.n <= MAX_SAMPLES:
        raise refuse_parameter(provider, "n", f"must be between 1 and {MAX_SAMPLES} for {model_name!r}")
    parameters: dict[str, Any] = {"sampleCount": request.n}
    if request.aspect_ratio is not None:
        if not IMAGEN_RATIOS.allows(request.aspect_ratio):
            raise refuse_parameter(provider, "aspect_ratio", f"must be {IMAGEN_RATIOS.describe}")
        parameters["aspectRatio"] = request.aspect_ratio
    if image_size is not None:
        parameters["sampleImageSize"] = image_size
    if request.negative_prompt:
        parameters["negativePrompt"] = request.negative_prompt
    if request.seed is not None:
        parameters["seed"] = request.seed
        parameters["addWatermark"] = False  # Vertex ignores a seed while the SynthID watermark is on
    for extra, field, allowed in (
        ("person_generation", "personGeneration", PERSON_GENERATION),
        ("safety_setting", "safetySetting", SAFETY_SETTINGS),
    ):
        value = request.extra.get(extra)
        if value is not None:
            if not isinstance(value, str) or value.lower() not in allowed:
                raise refuse_parameter(provider, extra, f"must be one of {', '.join(sorted(allowed))}")
            parameters[field] = value.lower()
    output = output_options(request, provider=provider)
    if output:
        parameters["outputOptions"] = output
    parameters["includeRaiReason"] = True  # a dropped image then says why, instead of vanishing
    return {"instances": [{"prompt": request.prompt}], "parameters": parameters}


def output_options(request: ImageRequest, *, provider: str) -> dict[str, Any]:
    """``{"mimeType", "compressionQuality"}`` from ``output_format`` and ``output_compression`` (empty: neither)."""
    options: dict[str, Any] = {}
    if request.output_format is not None:
        mime = OUTPUT_MIME_TYPES.get(request.output_format.lower())
        if mime is None:
            raise refuse_parameter(provider, "output_format", "must be png or jpeg on Google's image models")
        options["mimeType"] = mime
    if request.output_compression is not None:
        if options.get("mimeType") != "image/jpeg":
            raise refuse_parameter(provider, "output_compression", "applies only with output_format jpeg")
        if not 0 <= request.output_compression <= 100:
            raise refuse_parameter(provider, "output_compression", "must be between 0 and 100")
        options["compressionQuality"] = request.output_compression
    return options


def read_predictions(response: UpstreamResponse, *, provider: str, asked: int, secret: Secrets) -> ImagenImages:
    """The images of a 2xx ``:predict`` answer; CONTENT_POLICY when the safety filter dropped every one."""
    payload = json_object(response.body, image_keys=_IMAGE_KEYS)
    if payload is None:
        what = describe_bad_body(response.body)
        raise upstream_bug(
            provider, f"{provider}: upstream returned HTTP {response.status_code} with {what}", secret=secret
        )
    predictions = payload.get("predictions", [])
    if not isinstance(predictions, list):
        raise upstream_bug(provider, f"{provider}: 'predictions' is not a list", secret=secret)
    images: list[GeneratedImage] = []
    reasons: list[str] = []
    for prediction in predictions:
        if not isinstance(prediction, dict):
            raise upstream_bug(provider, f"{provider}: an item of 'predictions' is not an object", secret=secret)
        if IMAGE_KEY in prediction:
            images.append(_image(prediction, provider=provider, secret=secret))
        elif isinstance(prediction.get("raiFilteredReason"), str):
            reasons.append(prediction["raiFilteredReason"])
        # Anything else (the prompt's safety attributes) carries no image and is not one.
    if not images:
        why = f": {snippet(reasons[0].encode())}" if reasons else ""
        raise provider_error(
            provider,
            ErrorKind.CONTENT_POLICY,
            f"{provider}: the safety filter removed every generated image{why}",
            secret=secret,
            status_code=400,
            code=CONTENT_POLICY_CODE,
        )
    return ImagenImages(tuple(images), max(0, asked - len(images)), tuple(reasons))


def _image(prediction: dict[str, Any], *, provider: str, secret: Secrets) -> GeneratedImage:
    encoded = prediction[IMAGE_KEY]
    if isinstance(encoded, DecodedBase64):
        data = encoded.data
    else:
        data = decode_image_b64(encoded, provider=provider, secret=secret)
    mime, width, height = check_image(data, provider=provider, secret=secret)
    enhanced = prediction.get("prompt")
    return GeneratedImage(
        data=data,
        mime_type=mime,
        width=width,
        height=height,
        revised_prompt=enhanced if isinstance(enhanced, str) and enhanced else None,
    )
