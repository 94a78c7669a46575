"""What Google's image APIs accept and answer, shared by the Vertex AI and Gemini API emulators.

Imagen ``:predict`` (``instances[0].prompt``, ``parameters``) and Gemini ``:generateContent``
(``contents``, ``generationConfig.imageConfig``) bodies are validated the way the real APIs do:
unknown members, values outside the enums, parameters a model or an API does not have (the Gemini
API has no Imagen seed or negative prompt; Vertex honours a seed only with ``addWatermark: false``)
are 400 INVALID_ARGUMENT in Google's envelope. Answers carry PNGs of the size the ratio and tier
make on the real models; safety outcomes are the real shapes (``raiFilteredReason`` entries,
``finishReason: IMAGE_SAFETY``, ``promptFeedback.blockReason``).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .images import solid_image
from .server import Response

RAI_REASON = (
    "Your current safety filter threshold filtered out 1 generated images. You will not be charged for blocked "
    "images. Try rephrasing the prompt. Support codes: 56562880"
)
BLOCKED_PROMPT = (
    "Image generation failed with the following error: The prompt could not be submitted. This prompt contains "
    "sensitive words that violate Google's Responsible AI practices. Try rephrasing the prompt. If you think this "
    "was an error, send feedback. Support codes: 42876398"
)

_IMAGEN_1K = {"1:1": (1024, 1024), "3:4": (896, 1280), "4:3": (1280, 896), "9:16": (768, 1408), "16:9": (1408, 768)}
_GEMINI_1K = {
    "1:1": (1024, 1024),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
_TIER_SCALE = {"1K": 1, "2K": 2, "4K": 4}


@dataclass(frozen=True)
class ImagenRules:
    """One Imagen model on one API: its size tiers, and whether it takes a negative prompt and a seed."""

    tiers: tuple[str, ...] = ("1K",)
    negative_prompt: bool = False
    seed: bool = True


@dataclass(frozen=True)
class GeminiRules:
    """One Gemini image model: its size tiers."""

    tiers: tuple[str, ...] = ("1K",)


class GoogleError(Exception):
    """An error answer in Google's envelope."""

    def __init__(self, code: int, status: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.reason = code, status, message, reason

    def response(self) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.reason is not None:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": self.reason, "domain": "googleapis.com"}
            ]
        return Response.json(self.code, {"error": error}, content_type="application/json; charset=UTF-8")


def invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


def status_error(code: int) -> GoogleError:
    """The envelope Google sends for a bare HTTP status."""
    named = {
        400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
        401: (
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
            "valid authentication credential.",
        ),
        403: ("PERMISSION_DENIED", "The caller does not have permission"),
        404: ("NOT_FOUND", "Requested entity was not found."),
        429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        500: ("INTERNAL", "Internal error encountered."),
        503: ("UNAVAILABLE", "The service is currently unavailable."),
        504: ("DEADLINE_EXCEEDED", "Deadline exceeded."),
    }
    status, message = named.get(code, ("UNKNOWN", f"HTTP {code}"))
    return GoogleError(code, status, message)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(f"Invalid JSON payload received. {where} must be an object.")
    return value


def _only(members: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for name in members:
        if name not in allowed:
            raise invalid(f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field.")


@dataclass(frozen=True)
class PredictCall:
    """A validated ``:predict`` request."""

    prompt: str
    count: int
    size: tuple[int, int]
    mime_type: str


_PREDICT_PARAMETERS = frozenset(
    {
        "sampleCount",
        "aspectRatio",
        "sampleImageSize",
        "negativePrompt",
        "seed",
        "addWatermark",
        "enhancePrompt",
        "personGeneration",
        "safetySetting",
        "includeRaiReason",
        "includeSafetyAttributes",
        "language",
        "outputOptions",
        "guidanceScale",
        "storageUri",
    }
)
_GEMINI_API_ONLY_MISSING = frozenset({"negativePrompt", "seed", "addWatermark", "enhancePrompt", "storageUri"})


def parse_predict(body: Any, rules: ImagenRules, *, vertex: bool) -> PredictCall:
    """Validates an Imagen ``:predict`` body as the real API does."""
    body = _object(body, "The body")
    _only(body, frozenset({"instances", "parameters"}), "")
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1:
        raise invalid("instances must hold exactly one instance.")
    instance = _object(instances[0], "instances[0]")
    prompt = instance.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("The prompt is empty.")
    parameters = _object(body.get("parameters", {}), "parameters")
    _only(parameters, _PREDICT_PARAMETERS if vertex else _PREDICT_PARAMETERS - _GEMINI_API_ONLY_MISSING, "parameters")
    count = parameters.get("sampleCount", 4 if not vertex else 1)
    if not isinstance(count, int) or not 1 <= count <= 4:
        raise invalid("sampleCount must be between 1 and 4.")
    ratio = parameters.get("aspectRatio", "1:1")
    if ratio not in _IMAGEN_1K:
        raise invalid(f"Unsupported aspect ratio: {ratio}.")
    tier = parameters.get("sampleImageSize")
    if tier is not None:
        if not isinstance(tier, str) or tier.upper() not in rules.tiers or len(rules.tiers) == 1:
            raise invalid("sampleImageSize is not supported for this model or has an unsupported value.")
        tier = tier.upper()
    if "negativePrompt" in parameters and not rules.negative_prompt:
        raise invalid("Negative prompts are not supported by this model.")
    if "seed" in parameters:
        if not isinstance(parameters["seed"], int):
            raise invalid("seed must be an integer.")
        if parameters.get("addWatermark", True) is not False:
            raise invalid("Seed is not supported when watermark is enabled.")
    person = parameters.get("personGeneration")
    if person is not None and str(person).lower() not in ("dont_allow", "allow_adult", "allow_all"):
        raise invalid(f"Unsupported personGeneration: {person}.")
    safety = parameters.get("safetySetting")
    if safety is not None and str(safety).lower() not in (
        "block_low_and_above",
        "block_medium_and_above",
        "block_only_high",
        "block_none",
    ):
        raise invalid(f"Unsupported safetySetting: {safety}.")
    output = _object(parameters.get("outputOptions", {}), "outputOptions")
    _only(output, frozenset({"mimeType", "compressionQuality"}), "parameters.outputOptions")
    mime = output.get("mimeType", "image/png")
    if mime not in ("image/png", "image/jpeg"):
        raise invalid(f"Unsupported mimeType: {mime}.")
    if "compressionQuality" in output and mime != "image/jpeg":
        raise invalid("compressionQuality is only supported for image/jpeg.")
    width, height = _IMAGEN_1K[ratio]
    scale = _TIER_SCALE[tier or "1K"]
    return PredictCall(prompt, count, (width * scale, height * scale), mime)


def predictions(call: PredictCall, *, dropped: int) -> Response:
    """A 200 with ``call.count`` images, the last ``dropped`` of them filtered (``raiFilteredReason``)."""
    fmt = "jpeg" if call.mime_type == "image/jpeg" else "png"
    encoded = base64.b64encode(solid_image(*call.size, fmt)).decode()
    items: list[dict[str, Any]] = [
        {"mimeType": call.mime_type, "bytesBase64Encoded": encoded} for _ in range(max(0, call.count - dropped))
    ]
    items += [{"raiFilteredReason": RAI_REASON} for _ in range(min(dropped, call.count))]
    return Response.json(200, {"predictions": items})


@dataclass(frozen=True)
class ContentCall:
    """A validated ``:generateContent`` request that asks for an image."""

    prompt: str
    size: tuple[int, int]


_GENERATION_CONFIG = frozenset(
    {"responseModalities", "imageConfig", "seed", "candidateCount", "temperature", "topP", "topK", "maxOutputTokens"}
)


# The input images a Gemini image model takes inline (gemini-3-pro-image: up to 14 reference images).
_INLINE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
MAX_INLINE_IMAGES = 14


def _inline_images(contents: list[Any]) -> int:
    """Checks each ``inlineData`` part (an input image to edit) as the API does; returns how many there are."""
    count = 0
    for content in contents:
        for index, part in enumerate(content.get("parts", []) if isinstance(content, dict) else []):
            inline = part.get("inlineData") if isinstance(part, dict) else None
            if inline is None:
                continue
            where = f"* GenerateContentRequest.contents[0].parts[{index}].inline_data"
            if not isinstance(inline, dict) or inline.get("mimeType") not in _INLINE_MIME_TYPES:
                raise invalid(f"{where}.mime_type: Unsupported MIME type: {inline.get('mimeType')}")
            try:
                data = base64.b64decode(str(inline.get("data", "")), validate=True)
            except ValueError:
                raise invalid(f"{where}.data: Invalid value (bytes), base64 decoding failed") from None
            if not data:
                raise invalid(f"{where}.data: inline data must not be empty")
            count += 1
    if count > MAX_INLINE_IMAGES:
        raise invalid(f"Too many input images: at most {MAX_INLINE_IMAGES}, got {count}.")
    return count


def parse_generate_content(body: Any, rules: GeminiRules, *, vertex: bool) -> ContentCall:
    """Validates a Gemini ``:generateContent`` body as the real API does, for an image answer."""
    body = _object(body, "The body")
    _only(body, frozenset({"contents", "generationConfig", "safetySettings", "systemInstruction"}), "")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified")
    texts = [
        part.get("text")
        for content in contents
        if isinstance(content, dict)
        for part in content.get("parts", [])
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    ]
    if not texts:
        raise invalid("* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.")
    _inline_images(contents)
    config = _object(body.get("generationConfig", {}), "generationConfig")
    _only(config, _GENERATION_CONFIG, "generation_config")
    modalities = config.get("responseModalities", ["TEXT"])
    if not isinstance(modalities, list) or "IMAGE" not in modalities:
        raise invalid("This model only supports image output when responseModalities include IMAGE.")
    image_config = _object(config.get("imageConfig", {}), "imageConfig")
    allowed = {"aspectRatio", "imageSize"} | ({"personGeneration", "imageOutputOptions"} if vertex else set())
    _only(image_config, frozenset(allowed), "generation_config.image_config")
    ratio = image_config.get("aspectRatio", "1:1")
    if ratio not in _GEMINI_1K:
        raise invalid(f"Unsupported aspect ratio: {ratio}.")
    tier = image_config.get("imageSize", "1K")
    if tier not in rules.tiers:
        raise invalid(f"Unsupported image size: {tier}.")
    width, height = _GEMINI_1K[ratio]
    scale = _TIER_SCALE[tier]
    return ContentCall(" ".join(str(t) for t in texts), (width * scale, height * scale))


def content_image(call: ContentCall) -> Response:
    """A 200 whose candidate carries a short text part and the image."""
    encoded = base64.b64encode(solid_image(*call.size, "png")).decode()
    parts = [{"text": "Here is the image."}, {"inlineData": {"mimeType": "image/png", "data": encoded}}]
    return Response.json(
        200,
        {
            "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1290, "totalTokenCount": 1298},
            "modelVersion": "emulator",
        },
    )


def content_filtered() -> Response:
    """The candidate stopped by the image safety filter: no image, ``finishReason: IMAGE_SAFETY``."""
    return Response.json(
        200, {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "IMAGE_SAFETY", "index": 0}]}
    )


def prompt_blocked() -> Response:
    """The prompt refused before generation: no candidates, ``promptFeedback.blockReason``."""
    return Response.json(200, {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8}})
