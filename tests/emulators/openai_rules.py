"""OpenAI `POST /images/generations` validation: JSON body -> `Generation`, or an `OpenAIError`.

Rules and messages follow the real Images API (its wording where it is known).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from .images import ImageFormat

_DALLE2_SIZES = ("256x256", "512x512", "1024x1024")
_DALLE3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
_GPT_SIZES = ("1024x1024", "1024x1536", "1536x1024", "auto")
_GPT_QUALITIES = ("low", "medium", "high", "auto")
# gpt-image-2.5 adds two tiers above high (2026-09-08); gpt-image-2 and older stop at high.
_GPT25_QUALITIES = ("low", "medium", "high", "xhigh", "max", "auto")
_COMMON_FIELDS = frozenset({"prompt", "model", "n", "size", "quality", "user", "safety_identifier"})
_DALLE_FIELDS = frozenset({"response_format"})
_GPT_FIELDS = frozenset({"background", "output_format", "output_compression", "moderation", "stream", "partial_images"})
# The gpt-image-2.6 models (2026-11-04) add planning effort and animated (GIF) and vector (SVG) output.
_GPT26_FIELDS = frozenset({"complexity", "frame_count", "frame_duration_ms", "svg"})
_STILL_FORMATS = ("png", "jpeg", "webp")
_GPT26_FORMATS = (*_STILL_FORMATS, "gif", "svg")
_SVG_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SIZE_PATTERN = re.compile(r"^(\d{1,5})x(\d{1,5})$")
_GPT2_MAX_LONG_SIDE, _GPT2_MAX_SHORT_SIDE = 3840, 2160


@dataclass(frozen=True)
class ModelRules:
    """What one model accepts."""

    prompt_max: int
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    gpt: bool
    custom_sizes: bool = False
    fields: frozenset[str] = _COMMON_FIELDS
    output_formats: tuple[str, ...] = _STILL_FORMATS


_DALLE2 = ModelRules(1000, _DALLE2_SIZES, ("standard",), gpt=False, fields=_COMMON_FIELDS | _DALLE_FIELDS)
_DALLE3 = ModelRules(
    4000, _DALLE3_SIZES, ("standard", "hd"), gpt=False, fields=_COMMON_FIELDS | _DALLE_FIELDS | {"style"}
)
_GPT = ModelRules(32000, _GPT_SIZES, _GPT_QUALITIES, gpt=True, fields=_COMMON_FIELDS | _GPT_FIELDS)
_GPT2 = ModelRules(32000, _GPT_SIZES, _GPT_QUALITIES, gpt=True, custom_sizes=True, fields=_COMMON_FIELDS | _GPT_FIELDS)
_GPT25 = ModelRules(
    32000, _GPT_SIZES, _GPT25_QUALITIES, gpt=True, custom_sizes=True, fields=_COMMON_FIELDS | _GPT_FIELDS
)
_GPT26 = ModelRules(
    32000,
    _GPT_SIZES,
    _GPT25_QUALITIES,
    gpt=True,
    custom_sizes=True,
    fields=_COMMON_FIELDS | _GPT_FIELDS | _GPT26_FIELDS,
    output_formats=_GPT26_FORMATS,
)

MODELS: dict[str, ModelRules] = {
    "dall-e-2": _DALLE2,
    "dall-e-3": _DALLE3,
    "gpt-image-1": _GPT,
    "gpt-image-1-mini": _GPT,
    "gpt-image-1.5": _GPT,
    "gpt-image-2": _GPT2,
    "gpt-image-2-2026-04-21": _GPT2,
    "chatgpt-image-latest": _GPT,
    "gpt-image-2.5-flare": _GPT25,
    "gpt-image-2.5-flare-2026-09-08": _GPT25,
    "gpt-image-2.5-sunburst": _GPT25,
    "gpt-image-2.5-sunburst-2026-09-08": _GPT25,
    "gpt-image-2.6-flare": _GPT26,
    "gpt-image-2.6-sunburst": _GPT26,
}
# The models OpenAI has shut down (2026-05-12: dall-e-2, dall-e-3; 2026-10-23: gpt-image-1); an
# emulator told to retire them answers 404 model_not_found for them, as OpenAI does now.
RETIRED_MODELS = frozenset({"dall-e-2", "dall-e-3", "gpt-image-1"})
DEFAULT_MODEL = "dall-e-2"


class OpenAIError(Exception):
    """An error answer in OpenAI's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.param = param
        self.code = code

    def envelope(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Generation:
    """A validated generation request with defaults applied."""

    model: str
    rules: ModelRules
    prompt: str
    n: int
    width: int
    height: int
    size: str
    quality: str
    response_format: Literal["url", "b64_json"]
    style: str | None
    background: str
    output_format: ImageFormat
    stream: bool
    partial_images: int
    # The effective end-user id OpenAI echoes: a non-empty safety_identifier, else user.
    safety_identifier: str | None = None
    frame_count: int = 1
    frame_duration_ms: int = 200
    svg_model: str | None = None


def model_not_found(model: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        None,
        "model_not_found",
    )


def _bad(message: str, param: str | None, code: str | None) -> OpenAIError:
    return OpenAIError(400, message, "invalid_request_error", param, code)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _type_error(param: str, expected: str, value: Any) -> OpenAIError:
    return _bad(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.", param, "invalid_type"
    )


def _quoted_list(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def _choice(body: dict[str, Any], param: str, allowed: tuple[str, ...], default: str) -> str:
    value = body.get(param)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _type_error(param, "a string", value)
    if value not in allowed:
        raise _bad(f"Invalid value: '{value}'. Supported values are: {_quoted_list(allowed)}.", param, "invalid_value")
    return value


def _integer(body: dict[str, Any], param: str, low: int, high: int, default: int) -> int:
    value = body.get(param)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _type_error(param, "an integer", value)
    if value < low:
        raise _bad(
            f"Invalid '{param}': integer below minimum value. Expected a value >= {low}, but got {value} instead.",
            param,
            "integer_below_min_value",
        )
    if value > high:
        raise _bad(
            f"Invalid '{param}': integer above maximum value. Expected a value <= {high}, but got {value} instead.",
            param,
            "integer_above_max_value",
        )
    return value


def parse_generation(raw: bytes, retired: frozenset[str] = frozenset()) -> Generation:
    """Validates a generation body the way the API does; raises OpenAIError on the first problem.

    A model in ``retired`` answers 404 model_not_found, as OpenAI answers a model it has shut down.
    """
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
            "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
            "sent was not valid JSON.)",
            None,
            None,
        ) from None
    if not isinstance(body, dict):
        raise _bad(
            f"Invalid type for body: expected an object, but got {_json_type(body)} instead.", None, "invalid_type"
        )
    model = body.get("model")
    if model is None:
        model = DEFAULT_MODEL
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    rules = MODELS.get(model)
    if rules is None or model in retired:
        raise model_not_found(model)
    for key in body:
        if key not in rules.fields:
            raise _bad(f"Unknown parameter: '{key}'.", key, "unknown_parameter")
    prompt = _prompt(body, rules)
    for name in ("user", "safety_identifier"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise _type_error(name, "a string", body[name])
    n = _integer(body, "n", 1, 10, 1)
    if model == "dall-e-3" and n != 1:
        raise _bad("You must provide n=1 for this model.", None, None)
    width, height, size = _size(body, model, rules)
    if rules.gpt:
        generation = _gpt_generation(body, model, rules, prompt, n, width, height, size)
        return replace(generation, safety_identifier=body.get("safety_identifier") or body.get("user") or None)
    response_format = _choice(body, "response_format", ("url", "b64_json"), "url")
    return Generation(
        model=model,
        rules=rules,
        prompt=prompt,
        n=n,
        width=width,
        height=height,
        size=size,
        quality=_choice(body, "quality", rules.qualities, "standard"),
        response_format="url" if response_format == "url" else "b64_json",
        style=_choice(body, "style", ("vivid", "natural"), "vivid") if "style" in rules.fields else None,
        background="opaque",
        output_format="png",
        stream=False,
        partial_images=0,
    )


def _prompt(body: dict[str, Any], rules: ModelRules) -> str:
    if "prompt" not in body:
        raise _bad("Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter")
    prompt = body["prompt"]
    if not isinstance(prompt, str):
        raise _type_error("prompt", "a string", prompt)
    if prompt == "":
        raise _bad(
            "Invalid 'prompt': empty string. Expected a string with minimum length 1, but got an empty string instead.",
            "prompt",
            "empty_string",
        )
    if len(prompt) > rules.prompt_max:
        raise _bad(
            f"Invalid 'prompt': string too long. Expected a string with maximum length "
            f"{rules.prompt_max}, but got a string with length {len(prompt)} instead.",
            "prompt",
            "string_above_max_length",
        )
    return prompt


def _size(body: dict[str, Any], model: str, rules: ModelRules) -> tuple[int, int, str]:
    size = body.get("size")
    if size is None:
        size = "auto" if rules.gpt else "1024x1024"
    if not isinstance(size, str):
        raise _type_error("size", "a string", size)
    if size == "auto" and rules.gpt:
        return 1024, 1024, "1024x1024"
    match = _SIZE_PATTERN.match(size)
    if size in rules.sizes and match:
        return int(match[1]), int(match[2]), size
    if rules.custom_sizes and match:
        width, height = int(match[1]), int(match[2])
        _check_custom_size(size, width, height)
        return width, height, size
    if not rules.gpt:
        raise _bad(f"'{size}' is not one of {list(rules.sizes)} - 'size'", "size", "invalid_value")
    raise _bad(f"Invalid value: '{size}'. Supported values are: {_quoted_list(rules.sizes)}.", "size", "invalid_value")


def _check_custom_size(size: str, width: int, height: int) -> None:
    def fail(reason: str) -> OpenAIError:
        return OpenAIError(
            400, f"Invalid size '{size}'. {reason}", "image_generation_user_error", "size", "invalid_value"
        )

    if width <= 0 or height <= 0 or width % 16 or height % 16:
        raise fail("Width and height must both be divisible by 16.")
    if max(width, height) > 3 * min(width, height):
        raise fail("Aspect ratio must be between 1:3 and 3:1.")
    if max(width, height) > _GPT2_MAX_LONG_SIDE or min(width, height) > _GPT2_MAX_SHORT_SIDE:
        raise fail(f"Maximum size is {_GPT2_MAX_LONG_SIDE}x{_GPT2_MAX_SHORT_SIDE}.")


def _gpt_generation(
    body: dict[str, Any], model: str, rules: ModelRules, prompt: str, n: int, width: int, height: int, size: str
) -> Generation:
    quality = _choice(body, "quality", rules.qualities, "auto")
    output_format = _choice(body, "output_format", rules.output_formats, "png")
    background = _choice(body, "background", ("transparent", "opaque", "auto"), "auto")
    if background == "transparent" and output_format == "jpeg":
        raise _bad(
            "Invalid value: 'transparent'. Transparent background requires output_format 'png' or 'webp'.",
            "background",
            "invalid_value",
        )
    compression = _integer(body, "output_compression", 0, 100, 100)
    if output_format == "png" and compression < 100:
        raise _bad(
            "Compression less than 100 is not supported for PNG output format.",
            "output_compression",
            "invalid_png_output_compression",
        )
    _choice(body, "moderation", ("low", "auto"), "auto")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean", stream)
    partial_images = _integer(body, "partial_images", 0, 3, 0)
    _choice(body, "complexity", ("low", "medium", "high"), "medium")
    frames = _frames(body, output_format)
    svg_model = _svg(body, output_format, n)
    if output_format not in _STILL_FORMATS:
        for param, value in (("stream", stream), ("partial_images", body.get("partial_images"))):
            if value:
                raise _bad(f"'{param}' is not supported with output_format '{output_format}'.", param, "invalid_value")
        if body.get("output_compression") is not None:
            raise _bad(
                f"'output_compression' is not supported with output_format '{output_format}'.",
                "output_compression",
                "invalid_value",
            )
    return Generation(
        model=model,
        rules=rules,
        prompt=prompt,
        n=n,
        width=width,
        height=height,
        size=size,
        quality="high" if quality == "auto" else quality,
        response_format="b64_json",
        style=None,
        background="transparent" if background == "transparent" else "opaque",
        output_format=_format(output_format),
        stream=bool(stream),
        partial_images=partial_images,
        frame_count=frames[0],
        frame_duration_ms=frames[1],
        svg_model=svg_model,
    )


def _format(name: str) -> ImageFormat:
    formats: dict[str, ImageFormat] = {"jpeg": "jpeg", "webp": "webp", "gif": "gif", "svg": "svg"}
    return formats.get(name, "png")


def _frames(body: dict[str, Any], output_format: str) -> tuple[int, int]:
    """GIF output's frame count (2-16, default 9) and delay per frame (default 200 ms)."""
    for param in ("frame_count", "frame_duration_ms"):
        if body.get(param) is not None and output_format != "gif":
            raise _bad(f"'{param}' is only supported with output_format 'gif'.", param, "invalid_value")
    if output_format != "gif":
        return 1, 200
    return _integer(body, "frame_count", 2, 16, 9), _integer(body, "frame_duration_ms", 0, 655350, 200)


def _svg(body: dict[str, Any], output_format: str, n: int) -> str | None:
    """SVG output: n=1 and an optional ``svg`` object (``model``, ``reasoning.effort``)."""
    svg = body.get("svg")
    if svg is not None and output_format != "svg":
        raise _bad("'svg' is only supported with output_format 'svg'.", "svg", "invalid_value")
    if output_format != "svg":
        return None
    if n != 1:
        raise _bad("SVG output requires n=1.", "n", "invalid_value")
    if svg is None:
        return None
    if not isinstance(svg, dict):
        raise _type_error("svg", "an object", svg)
    for key in svg:
        if key not in ("model", "reasoning"):
            raise _bad(f"Unknown parameter: 'svg.{key}'.", f"svg.{key}", "unknown_parameter")
    reasoning = svg.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise _type_error("svg.reasoning", "an object", reasoning)
        effort = reasoning.get("effort")
        if effort is not None and effort not in _SVG_EFFORTS:
            raise _bad(
                f"Invalid value: '{effort}'. Supported values are: {_quoted_list(_SVG_EFFORTS)}.",
                "svg.reasoning.effort",
                "invalid_value",
            )
    model = svg.get("model")
    if model is not None and not isinstance(model, str):
        raise _type_error("svg.model", "a string", model)
    return model
