"""OpenAI `POST /images/generations` validation: JSON body -> `Generation`, or an `OpenAIError`.

Rules and messages follow the real Images API (its wording where it is known).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
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


_DALLE2 = ModelRules(1000, _DALLE2_SIZES, ("standard",), gpt=False, fields=_COMMON_FIELDS | _DALLE_FIELDS)
_DALLE3 = ModelRules(
    4000, _DALLE3_SIZES, ("standard", "hd"), gpt=False, fields=_COMMON_FIELDS | _DALLE_FIELDS | {"style"}
)
_GPT = ModelRules(32000, _GPT_SIZES, _GPT_QUALITIES, gpt=True, fields=_COMMON_FIELDS | _GPT_FIELDS)
_GPT2 = ModelRules(32000, _GPT_SIZES, _GPT_QUALITIES, gpt=True, custom_sizes=True, fields=_COMMON_FIELDS | _GPT_FIELDS)
_GPT25 = ModelRules(
    32000, _GPT_SIZES, _GPT25_QUALITIES, gpt=True, custom_sizes=True, fields=_COMMON_FIELDS | _GPT_FIELDS
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
        return _gpt_generation(body, model, rules, prompt, n, width, height, size)
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
    output_format = _choice(body, "output_format", ("png", "jpeg", "webp"), "png")
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
        output_format="jpeg" if output_format == "jpeg" else "webp" if output_format == "webp" else "png",
        stream=bool(stream),
        partial_images=partial_images,
    )
