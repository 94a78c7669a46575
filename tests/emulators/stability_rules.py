"""Stability AI request validation: v1 JSON text-to-image and v2beta multipart
Stable Image generate, each turned into a typed request or a `StabilityError`."""

from __future__ import annotations

import io
import json
import math
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from .forms import FormFile
from .images import ImageFormat

STYLE_PRESETS = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)
SAMPLERS = (
    "DDIM",
    "DDPM",
    "K_DPMPP_2M",
    "K_DPMPP_2S_ANCESTRAL",
    "K_DPM_2",
    "K_DPM_2_ANCESTRAL",
    "K_EULER",
    "K_EULER_ANCESTRAL",
    "K_HEUN",
    "K_LMS",
)
CLIP_GUIDANCE_PRESETS = ("FAST_BLUE", "FAST_GREEN", "NONE", "SIMPLE", "SLOW", "SLOWER", "SLOWEST")
SDXL = "stable-diffusion-xl-1024-v1-0"
SD16 = "stable-diffusion-v1-6"
SDXL_SIZES = (
    (1024, 1024),
    (1152, 896),
    (1216, 832),
    (1344, 768),
    (1536, 640),
    (640, 1536),
    (768, 1344),
    (832, 1216),
    (896, 1152),
)
V1_FIELDS = frozenset(
    {
        "text_prompts",
        "height",
        "width",
        "cfg_scale",
        "clip_guidance_preset",
        "sampler",
        "samples",
        "seed",
        "steps",
        "style_preset",
        "extras",
    }
)
V1_MAX_SEED = 4294967295

# Output size per aspect ratio, about one megapixel (the SDXL training resolutions).
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1344, 768),
    "9:16": (768, 1344),
    "21:9": (1536, 640),
    "9:21": (640, 1536),
    "3:2": (1216, 832),
    "2:3": (832, 1216),
    "5:4": (1152, 896),
    "4:5": (896, 1152),
}
V2_ENDPOINTS = ("ultra", "core", "sd3")
SD3_MODELS = (
    "sd3.5-large",
    "sd3.5-large-turbo",
    "sd3.5-medium",
    "sd3.5-flash",
    "sd3-large",
    "sd3-large-turbo",
    "sd3-medium",
)
V2_MAX_SEED = 4294967294
_V2_COMMON = frozenset({"prompt", "negative_prompt", "aspect_ratio", "seed", "output_format", "style_preset"})
V2_FIELDS: dict[str, frozenset[str]] = {
    "ultra": _V2_COMMON | {"image", "strength"},
    "core": _V2_COMMON,
    "sd3": _V2_COMMON | {"image", "strength", "mode", "model", "cfg_scale"},
}
_PROMPT_MAX = 10000


class StabilityError(Exception):
    """An error answer; rendered as v1 `{id, name, message}` or v2beta `{id, name, errors}`."""

    def __init__(self, status: int, name: str, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.name = name
        self.messages = list(messages)

    def v1_body(self) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "name": self.name, "message": "; ".join(self.messages)}

    def v2_body(self) -> dict[str, Any]:
        error_id = "rate_limit_exceeded" if self.name == "rate_limit_exceeded" else secrets.token_hex(16)
        return {"id": error_id, "name": self.name, "errors": self.messages}


def _bad(message: str, name: str = "bad_request") -> StabilityError:
    return StabilityError(400, name, message)


# -- v1 -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V1Generation:
    """A validated v1 text-to-image request."""

    engine: str
    width: int
    height: int
    samples: int
    seed: int
    png_accept: bool


def v1_accepts_png(accept: str | None) -> bool:
    """True for `Accept: image/png`, False for JSON (the default); raises for anything else."""
    value = (accept or "application/json").lower()
    if "image/png" in value:
        return True
    if "application/json" in value or "*/*" in value:
        return False
    raise _bad("accept: must be either application/json or image/png")


def parse_v1(engine: str, raw: bytes, accept: str | None, sd16_max_pixels: int | None) -> V1Generation:
    if engine not in (SDXL, SD16):
        raise StabilityError(404, "not_found", f"The specified engine (ID {engine}) was not found.")
    png_accept = v1_accepts_png(accept)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _bad("body: must be a valid JSON object") from None
    if not isinstance(body, dict):
        raise _bad("body: must be a valid JSON object")
    for key in body:
        if key not in V1_FIELDS:
            raise _bad(f"{key}: is not a recognised parameter")
    _text_prompts(body.get("text_prompts"))
    default_side = 1024 if engine == SDXL else 512
    width = _int(body, "width", 128, 100_000, default_side)
    height = _int(body, "height", 128, 100_000, default_side)
    _dimensions(engine, width, height, sd16_max_pixels)
    samples = _int(body, "samples", 1, 10, 1)
    if png_accept and samples > 1:
        raise _bad("samples: must be 1 when the Accept header is image/png", "invalid_samples")
    _number(body, "cfg_scale", 0, 35)
    _int(body, "steps", 10, 50, 30)
    seed = _int(body, "seed", 0, V1_MAX_SEED, 0)
    _one_of(body, "style_preset", STYLE_PRESETS)
    _one_of(body, "sampler", SAMPLERS)
    _one_of(body, "clip_guidance_preset", CLIP_GUIDANCE_PRESETS)
    if "extras" in body and not isinstance(body["extras"], dict):
        raise _bad("extras: must be an object")
    return V1Generation(engine, width, height, samples, seed, png_accept)


def _text_prompts(value: Any) -> None:
    if value is None:
        raise _bad("text_prompts: is required")
    if not isinstance(value, list) or not value:
        raise _bad("text_prompts: must be a non-empty array of {text, weight}", "invalid_prompts")
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("text"), str) or not item["text"].strip():
            raise _bad(f"text_prompts[{index}].text: is required", "invalid_prompts")
        weight = item.get("weight")
        if weight is not None and (isinstance(weight, bool) or not isinstance(weight, int | float)):
            raise _bad(f"text_prompts[{index}].weight: must be a number", "invalid_prompts")


def _dimensions(engine: str, width: int, height: int, sd16_max_pixels: int | None) -> None:
    if engine == SDXL:
        if (width, height) not in SDXL_SIZES:
            allowed = ", ".join(f"{w}x{h}" for w, h in SDXL_SIZES)
            raise _bad(
                f"for {SDXL} engine, width and height must be one of: {allowed}; got {width}x{height}",
                "invalid_height_or_width",
            )
        return
    for name, side in (("width", width), ("height", height)):
        if side % 64 or not 320 <= side <= 1536:
            raise _bad(f"{name}: must be a multiple of 64 between 320 and 1536, got {side}", "invalid_height_or_width")
    if sd16_max_pixels is not None and width * height > sd16_max_pixels:
        raise _bad(
            f"width * height must be at most {sd16_max_pixels} pixels, got {width * height}", "invalid_pixel_count"
        )


def _int(body: dict[str, Any], key: str, low: int, high: int, default: int) -> int:
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{key}: must be an integer")
    if not low <= value <= high:
        raise _bad(f"{key}: must be between {low} and {high}, got {value}")
    return value


def _number(body: dict[str, Any], key: str, low: float, high: float) -> None:
    value = body.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise _bad(f"{key}: must be a number between {low:g} and {high:g}")


def _one_of(body: dict[str, Any], key: str, allowed: tuple[str, ...]) -> None:
    value = body.get(key)
    if value is not None and value not in allowed:
        raise _bad(f"{key}: must be one of {', '.join(allowed)}")


# -- v2beta ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class V2Generation:
    """A validated v2beta Stable Image generate request."""

    endpoint: str
    width: int
    height: int
    seed: int
    output_format: ImageFormat
    json_accept: bool


def v2_accepts_json(accept: str | None) -> bool:
    """False for `image/*` (the default when absent), True for `application/json`; else 400."""
    value = (accept or "image/*").strip().lower()
    if value.startswith("image/"):
        return False
    if value.startswith("application/json"):
        return True
    raise _bad(f"accept: must be either image/* or application/json, got {accept}")


def parse_v2(endpoint: str, fields: dict[str, str], files: dict[str, FormFile], accept: str | None) -> V2Generation:
    json_accept = v2_accepts_json(accept)
    allowed = V2_FIELDS[endpoint]
    for key in fields:
        if key not in allowed and key != "none":
            raise _bad(f"{key}: is not a recognised parameter for this endpoint")
    if "image" in files and "image" not in allowed:
        raise _bad("image: is not a recognised parameter for this endpoint")
    prompt = fields.get("prompt", "")
    if not prompt.strip():
        raise _bad("prompt: is required")
    for key in ("prompt", "negative_prompt"):
        if len(fields.get(key, "")) > _PROMPT_MAX:
            raise _bad(f"{key}: must be at most {_PROMPT_MAX} characters")
    aspect_ratio = fields.get("aspect_ratio", "1:1")
    if aspect_ratio not in ASPECT_RATIOS:
        raise _bad(f"aspect_ratio: must be one of {', '.join(ASPECT_RATIOS)}")
    seed = _form_number(fields, "seed", 0, V2_MAX_SEED)
    if seed is not None and not float(seed).is_integer():
        raise _bad(f"seed: must be an integer between 0 and {V2_MAX_SEED}")
    output_format = fields.get("output_format", "png")
    if output_format not in ("jpeg", "png", "webp"):
        raise _bad("output_format: must be one of jpeg, png, webp")
    style_preset = fields.get("style_preset")
    if style_preset is not None and style_preset not in STYLE_PRESETS:
        raise _bad(f"style_preset: must be one of {', '.join(STYLE_PRESETS)}")
    if endpoint == "sd3":
        _sd3_fields(fields, files)
    elif "image" in files and fields.get("strength") is None:
        raise _bad("strength: is required when image is provided")
    _form_number(fields, "strength", 0, 1)
    width, height = ASPECT_RATIOS[aspect_ratio]
    fmt: ImageFormat = "jpeg" if output_format == "jpeg" else "webp" if output_format == "webp" else "png"
    return V2Generation(endpoint, width, height, int(seed or 0), fmt, json_accept)


def _sd3_fields(fields: dict[str, str], files: dict[str, FormFile]) -> None:
    model = fields.get("model", "sd3.5-large")
    if model not in SD3_MODELS:
        raise _bad(f"model: must be one of {', '.join(SD3_MODELS)}")
    _form_number(fields, "cfg_scale", 1, 10)
    mode = fields.get("mode", "text-to-image")
    if mode not in ("text-to-image", "image-to-image"):
        raise _bad("mode: must be one of text-to-image, image-to-image")
    if mode == "image-to-image":
        if "image" not in files:
            raise _bad("image: is required when mode is image-to-image")
        if fields.get("strength") is None:
            raise _bad("strength: is required when mode is image-to-image")


def _form_number(fields: dict[str, str], key: str, low: float, high: float) -> float | None:
    text = fields.get(key)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise _bad(f"{key}: must be a number between {low:g} and {high:g}") from None
    if math.isnan(value) or not low <= value <= high:
        raise _bad(f"{key}: must be a number between {low:g} and {high:g}")
    return value


# -- v2beta edit: inpaint ---------------------------------------------------------------------------

INPAINT_FIELDS = frozenset({"prompt", "negative_prompt", "seed", "output_format", "style_preset", "grow_mask"})
_EDIT_MIN_SIDE = 64
_EDIT_MIN_PIXELS, _EDIT_MAX_PIXELS = 4096, 9_437_184


@dataclass(frozen=True)
class V2Inpaint:
    """A validated inpaint request; the answer has the input image's size."""

    width: int
    height: int
    seed: int
    output_format: ImageFormat
    json_accept: bool


def _edit_image(part: FormFile, name: str) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError  # Pillow only where edits are emulated

    try:
        with Image.open(io.BytesIO(part.data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        raise _bad(f"{name}: could not be read as an image") from None
    if min(width, height) < _EDIT_MIN_SIDE or not _EDIT_MIN_PIXELS <= width * height <= _EDIT_MAX_PIXELS:
        raise _bad(
            f"{name}: must be at least {_EDIT_MIN_SIDE} pixels per side and {_EDIT_MIN_PIXELS} to "
            f"{_EDIT_MAX_PIXELS} pixels in total"
        )
    return width, height


def parse_inpaint(fields: dict[str, str], files: dict[str, FormFile], accept: str | None) -> V2Inpaint:
    """Validates `POST /v2beta/stable-image/edit/inpaint` as the API does: image required, mask optional
    (read by luminance: white repaints; without one the image's alpha channel is used), prompt required."""
    json_accept = v2_accepts_json(accept)
    for key in fields:
        if key not in INPAINT_FIELDS:
            raise _bad(f"{key}: is not a recognised parameter for this endpoint")
    for key in files:
        if key not in ("image", "mask"):
            raise _bad(f"{key}: is not a recognised parameter for this endpoint")
    if "image" not in files:
        raise _bad("image: is required")
    width, height = _edit_image(files["image"], "image")
    if "mask" in files:
        _edit_image(files["mask"], "mask")
    if not fields.get("prompt", "").strip():
        raise _bad("prompt: is required")
    seed = _form_number(fields, "seed", 0, V2_MAX_SEED)
    _form_number(fields, "grow_mask", 0, 100)
    output_format = fields.get("output_format", "png")
    if output_format not in ("jpeg", "png", "webp"):
        raise _bad("output_format: must be one of jpeg, png, webp")
    fmt: ImageFormat = "jpeg" if output_format == "jpeg" else "webp" if output_format == "webp" else "png"
    return V2Inpaint(width, height, int(seed or 0), fmt, json_accept)
