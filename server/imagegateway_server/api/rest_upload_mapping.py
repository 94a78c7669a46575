"""Turns OpenAI's edits and variations forms (multipart) into an ``ImageRequest``.

The fields are OpenAI's (``image`` or ``image[]``, ``mask``, ``markup``, ``prompt``, ``model``, ``n``, ``size``,
``quality``, ``background``, ``input_fidelity``, ``output_format``, ``output_compression``,
``response_format``, ``user``, ...); form values are text, so numbers are read from it here. A
field the gateway does not model goes on to the adapter as an extra, which refuses it by name.
``stream=true`` (with ``partial_images`` 0-3) asks for OpenAI's streamed edit: the answer is the
``image_edit.*`` server-sent events, so its images are base64 (``response_format=url`` is refused).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from imagegateway_server.api.rest_image_shape import native_format
from imagegateway_server.api.rest_multipart import Upload, UploadedFile
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.image_inputs import InputImage, Operation, input_image
from imagegateway_server.domain.input_limits import InputLimits
from imagegateway_server.domain.request import KNOWN_PARAMS, ImageRequest, ResponseFormat, coerce_param

IMAGE_FIELDS = ("image", "image[]")
MASK_FIELD = "mask"
MARKUP_FIELD = "markup"
_FILE_FIELDS = (*IMAGE_FIELDS, MASK_FIELD, MARKUP_FIELD)
_INT_FIELDS = frozenset({"n", "output_compression", "seed"})
_FLOAT_FIELDS = frozenset({"cfg_scale"})
# The fields of a variation (OpenAI's create_variation); anything else is refused naming it.
VARIATION_FIELDS = frozenset({"model", "n", "size", "response_format", "user"})
MAX_PARTIAL_IMAGES = 3


def _number(name: str, text: str) -> Any:
    try:
        return int(text) if name in _INT_FIELDS else float(text)
    except ValueError:
        kind = "an integer" if name in _INT_FIELDS else "a number"
        raise InvalidArgument(f"must be {kind}, got {text[:40]!r}", param=name, code="invalid_type") from None


def _flag(name: str, text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0", ""):
        return False
    raise InvalidArgument("must be true or false", param=name, code="invalid_type")


def _images(files: list[UploadedFile], limits: InputLimits) -> tuple[list[InputImage], dict[str, InputImage]]:
    """The input images in order, and the one-of-a-kind files (``mask``, ``markup``) by name."""
    images: list[InputImage] = []
    singles: dict[str, InputImage] = {}
    for part in files:
        if part.name in IMAGE_FIELDS:
            images.append(
                input_image(
                    part.data,
                    param="image",
                    filename=part.filename,
                    max_bytes=limits.max_input_image_bytes,
                    sha256=part.sha256 or None,
                )
            )
        elif part.name in (MASK_FIELD, MARKUP_FIELD):
            if part.name in singles:
                raise InvalidArgument(f"send one {part.name}", param=part.name)
            singles[part.name] = input_image(
                part.data,
                param=part.name,
                filename=part.filename,
                max_bytes=limits.max_input_image_bytes,
                sha256=part.sha256 or None,
            )
        else:
            raise InvalidArgument("is not a file this endpoint takes", param=part.name, code="unknown_parameter")
    return images, singles


def _parameters(fields: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    known: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, text in fields.items():
        if name in _FILE_FIELDS:
            raise InvalidArgument("must be sent as a file", param=name, code="invalid_type")
        if name in KNOWN_PARAMS:
            value: Any = _number(name, text) if name in _INT_FIELDS | _FLOAT_FIELDS else text
            known[name] = coerce_param(name, value, path=name)
        else:
            extra[name] = text
    return known, extra


def _response_format(known: dict[str, Any]) -> ResponseFormat:
    chosen = known.pop("response_format", None)
    if isinstance(chosen, ResponseFormat):
        return chosen
    model = known.get("model")
    return native_format(model) if model else ResponseFormat.MODEL_DEFAULT


def edit_request(upload: Upload, limits: InputLimits) -> ImageRequest:
    """An edit: one or more images, an optional mask, a prompt; checked as OpenAI checks them."""
    fields = dict(upload.fields)
    if not fields.get("prompt"):
        raise InvalidArgument("you must provide a prompt", param="prompt", code="missing_required_parameter")
    stream = _flag("stream", fields.pop("stream", ""))
    partial = fields.pop("partial_images", None)
    if partial is not None and not (
        partial.strip().isascii() and partial.strip().isdigit() and int(partial) <= MAX_PARTIAL_IMAGES
    ):
        raise InvalidArgument(f"must be an integer from 0 to {MAX_PARTIAL_IMAGES}", param="partial_images")
    images, singles = _images(upload.files, limits)
    known, extra = _parameters(fields)
    if stream:
        # The events carry base64 images, as OpenAI's do.
        if known.pop("response_format", None) is ResponseFormat.URL:
            raise InvalidArgument("must be 'b64_json' when stream is true", param="response_format")
        response_format = ResponseFormat.B64_JSON
    else:
        response_format = _response_format(known)
    return ImageRequest(
        **known,
        response_format=response_format,
        extra=MappingProxyType(extra),
        operation=Operation.EDIT,
        images=tuple(images),
        mask=singles.get(MASK_FIELD),
        markup=singles.get(MARKUP_FIELD),
        stream=stream,
        partial_images=int(partial) if partial is not None else None,
    )


def variation_request(upload: Upload, limits: InputLimits) -> ImageRequest:
    """A variation: exactly one image, no prompt. OpenAI's parameters other than the variation form's are
    refused by name; other fields are a provider's own (Bedrock's ``similarity_strength``) and travel as
    extras, which a target that has no use for them refuses by name as it does on generations."""
    fields = dict(upload.fields)
    for name in fields:
        if name in KNOWN_PARAMS and name not in VARIATION_FIELDS:
            raise InvalidArgument("is not a parameter of image variations", param=name, code="unknown_parameter")
    images, singles = _images(upload.files, limits)
    for name in singles:
        raise InvalidArgument("is not a parameter of image variations", param=name, code="unknown_parameter")
    known, extra = _parameters(fields)
    response_format = _response_format(known)
    return ImageRequest(
        prompt="",
        **known,
        response_format=response_format,
        operation=Operation.VARIATION,
        images=tuple(images),
        extra=MappingProxyType(extra),
    )
