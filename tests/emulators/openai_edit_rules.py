"""OpenAI `POST /images/edits` and `/images/variations` validation: multipart form -> `Upload`, or an `OpenAIError`.

The form's text fields are typed as the API reads them and then checked by the generation rules;
the files are checked as the API checks them: dall-e-2 takes one square PNG under 4 MB (edits and
variations), gpt-image up to 16 PNG, WebP or JPEG images under 50 MB each; a mask must be a PNG
with an alpha channel and the size of the (first) image. ``markup`` (gpt-image-2.5 and later) is a
PNG overlay with an alpha channel, the size of the first image, never sent with a mask. Variations
exist only for dall-e-2.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from .forms import FormFile
from .openai_rules import DEFAULT_MODEL, MODELS, Generation, OpenAIError, model_not_found, parse_generation

_DALLE2_MAX_BYTES = 4 * 1024 * 1024
_GPT_MAX_BYTES = 50 * 1024 * 1024
MAX_GPT_IMAGES = 16
_INT_FIELDS = ("n", "output_compression", "partial_images", "frame_count", "frame_duration_ms")
# The gpt-image-2.6 models' form fields (``svg`` as the SDK spells an object in a form).
_GPT26_EDIT_FIELDS = frozenset(
    {"complexity", "frame_count", "frame_duration_ms", "svg[model]", "svg[reasoning][effort]"}
)
_GPT_EDIT_FIELDS = frozenset(
    {
        "prompt",
        "model",
        "n",
        "size",
        "quality",
        "user",
        "safety_identifier",
        "background",
        "output_format",
        "output_compression",
        "input_fidelity",
        "stream",
        "partial_images",
    }
)
_DALLE2_EDIT_FIELDS = frozenset({"prompt", "model", "n", "size", "quality", "user", "response_format"})
_VARIATION_FIELDS = frozenset({"model", "n", "size", "user", "response_format"})
_GPT_FORMATS = ("PNG", "WEBP", "JPEG")
# The models with markup-guided editing.
_MARKUP_MODELS = ("gpt-image-2.5-", "gpt-image-2.6-")


@dataclass(frozen=True)
class Upload:
    """A validated edit or variation: the generation it amounts to, and what was uploaded."""

    generation: Generation
    images: list[bytes]
    mask: bytes | None
    input_fidelity: str | None
    markup: bytes | None = None


def _bad(message: str, param: str | None, code: str | None = "invalid_value") -> OpenAIError:
    return OpenAIError(400, message, "invalid_request_error", param, code)


def _typed(fields: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name, text in fields.items():
        if name in _INT_FIELDS:
            try:
                body[name] = int(text)
            except ValueError:
                raise _bad(
                    f"Invalid type for '{name}': expected an integer, but got a string instead.", name, "invalid_type"
                ) from None
        elif name == "stream":
            body[name] = text.lower() == "true"
        else:
            body[name] = text
    return body


def _open(data: bytes, param: str) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError):
        raise _bad(
            f"Invalid {param} file: the file could not be read as an image.", param, "invalid_image_file"
        ) from None
    return image


def _check_markup(data: bytes, first: Image.Image, *, with_mask: bool) -> None:
    if with_mask:
        raise _bad("markup cannot be combined with mask.", "markup", "invalid_value")
    markup = _open(data, "markup")
    if markup.format != "PNG" or not _has_alpha(markup):
        raise _bad(
            "Invalid markup image - markup must be a PNG with an alpha channel.", "markup", "invalid_image_format"
        )
    lowest, _ = markup.convert("RGBA").getchannel("A").getextrema()
    if lowest == 255:
        raise _bad("Invalid markup image - markup must contain transparent pixels.", "markup", "invalid_image_format")
    if markup.size != first.size:
        raise _bad("The markup and the first image must have the same dimensions.", "markup", "invalid_image_size")


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info


def _model(body: dict[str, Any], retired: frozenset[str]) -> str:
    model = body.get("model") or DEFAULT_MODEL
    if model not in MODELS or model in retired:
        raise model_not_found(model)
    return str(model)


def _check_dalle2_image(data: bytes, param: str) -> Image.Image:
    if len(data) >= _DALLE2_MAX_BYTES:
        raise _bad(f"Invalid {param}: the image must be less than 4 MB.", param, "image_too_large")
    image = _open(data, param)
    if image.format != "PNG":
        raise _bad(f"Invalid {param}: uploaded image must be a PNG.", param, "invalid_image_format")
    if image.width != image.height:
        raise _bad(
            f"Invalid {param}: uploaded image must be square, got {image.width}x{image.height}.",
            param,
            "invalid_image_size",
        )
    return image


def _check_mask(data: bytes, first: Image.Image) -> None:
    mask = _open(data, "mask")
    if mask.format != "PNG":
        raise _bad("Invalid mask image format - mask must be a PNG.", "mask", "invalid_image_format")
    if not _has_alpha(mask):
        raise _bad("Invalid mask image format - mask image missing alpha channel", "mask", "invalid_image_format")
    if mask.size != first.size:
        raise _bad("The mask and image must have the same dimensions.", "mask", "invalid_image_size")


def parse_edit(fields: dict[str, str], files: list[tuple[str, FormFile]], retired: frozenset[str]) -> Upload:
    """Validates an edit the way the API does; raises OpenAIError on the first problem."""
    body = _typed(fields)
    model = _model(body, retired)
    rules = MODELS[model]
    if model == "dall-e-3":
        raise _bad("Invalid model dall-e-3. The model must be one of dall-e-2 or a gpt-image model.", "model")
    allowed = _GPT_EDIT_FIELDS if rules.gpt else _DALLE2_EDIT_FIELDS
    if "svg" in rules.output_formats:
        allowed = allowed | _GPT26_EDIT_FIELDS
    for name in body:
        if name not in allowed:
            raise _bad(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    images = [part.data for name, part in files if name in ("image", "image[]")]
    masks = [part.data for name, part in files if name == "mask"]
    file_fields = (
        ("image", "image[]", "mask", "markup") if model.startswith(_MARKUP_MODELS) else ("image", "image[]", "mask")
    )
    markups = [part.data for name, part in files if name == "markup" and "markup" in file_fields]
    others = [name for name, _ in files if name not in file_fields]
    if others:
        raise _bad(f"Unknown parameter: '{others[0]}'.", others[0], "unknown_parameter")
    if not images:
        raise _bad("Missing required parameter: 'image'.", "image", "missing_required_parameter")
    if rules.gpt:
        if len(images) > MAX_GPT_IMAGES:
            raise _bad(
                f"Too many images: at most {MAX_GPT_IMAGES} may be sent, got {len(images)}.", "image", "too_many_images"
            )
        opened = []
        for data in images:
            if len(data) >= _GPT_MAX_BYTES:
                raise _bad("Invalid image: each image must be less than 50 MB.", "image", "image_too_large")
            image = _open(data, "image")
            if image.format not in _GPT_FORMATS:
                raise _bad("Invalid image: images must be PNG, WebP or JPEG.", "image", "invalid_image_format")
            opened.append(image)
        first = opened[0]
    else:
        if len(images) != 1:
            raise _bad("dall-e-2 edits take exactly one image.", "image", "invalid_value")
        first = _check_dalle2_image(images[0], "image")
    if masks:
        _check_mask(masks[0], first)
    if markups:
        _check_markup(markups[0], first, with_mask=bool(masks))
    if masks and body.get("output_format") == "gif":
        raise _bad("GIF output does not support masks.", "mask", "invalid_value")
    _svg_object(body)
    fidelity = body.pop("input_fidelity", None)
    if fidelity is not None and fidelity not in ("high", "low"):
        raise _bad(f"Invalid value: '{fidelity}'. Supported values are: 'high' and 'low'.", "input_fidelity")
    generation = parse_generation(json.dumps(body).encode(), retired)
    return Upload(generation, images, masks[0] if masks else None, fidelity, markups[0] if markups else None)


def _svg_object(body: dict[str, Any]) -> None:
    """``svg[model]`` and ``svg[reasoning][effort]`` read into the ``svg`` object of the JSON API."""
    model = body.pop("svg[model]", None)
    effort = body.pop("svg[reasoning][effort]", None)
    if model is None and effort is None:
        return
    svg: dict[str, Any] = {"model": model} if model is not None else {}
    if effort is not None:
        svg["reasoning"] = {"effort": effort}
    body["svg"] = svg


def parse_variation(fields: dict[str, str], files: list[tuple[str, FormFile]], retired: frozenset[str]) -> Upload:
    """Validates a variation the way the API does: dall-e-2 only, one square PNG under 4 MB."""
    body = _typed(fields)
    model = _model(body, retired)
    if model != "dall-e-2":
        raise _bad(f"Invalid model {model}. Image variations are only supported by dall-e-2.", "model")
    for name in body:
        if name not in _VARIATION_FIELDS:
            raise _bad(f"Unknown parameter: '{name}'.", name, "unknown_parameter")
    images = [part.data for name, part in files if name == "image"]
    if len(images) != 1 or len(files) != 1:
        raise _bad("Send exactly one file, as 'image'.", "image", "missing_required_parameter")
    _check_dalle2_image(images[0], "image")
    # A variation has no prompt; the generation rules need one, so a stand-in is checked with the rest.
    generation = parse_generation(json.dumps({**body, "prompt": "variation"}).encode(), retired)
    return Upload(generation, images, None, None)
