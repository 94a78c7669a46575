"""The transport-independent image request, built once at the edge and trusted inside."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.image_inputs import (
    InputImage,
    Operation,
    check_edit_inputs,
    check_input_bytes,
    check_markup,
    check_variation_input,
)
from imagegateway_server.domain.input_limits import DEFAULT_INPUT_LIMITS, InputLimits
from imagegateway_server.domain.openai_parameters import EDGE_CHECKED, check_value, openai_extras


class ResponseFormat(enum.Enum):
    """How the caller wants images: raw bytes (gRPC), base64 (REST b64_json) or URLs (REST url).

    ``MODEL_DEFAULT`` is a REST caller that sent no ``response_format`` and named no model: the
    answer takes the shape the primary target's model answers in on OpenAI (``b64_json`` for the
    gpt-image models, ``url`` for dall-e), whichever target serves. Adapters treat it as bytes.
    """

    BYTES = "bytes"
    B64_JSON = "b64_json"
    URL = "url"
    MODEL_DEFAULT = "model_default"


# Parameters a config's override_params may set, with the type each must have.
_STR_PARAMS = (
    "prompt",
    "model",
    "size",
    "quality",
    "style",
    "user",
    "negative_prompt",
    "style_preset",
    "background",
    "output_format",
    "moderation",
    "aspect_ratio",
    "safety_identifier",
    "input_fidelity",
)
_INT_PARAMS = ("n", "seed", "output_compression")
_FLOAT_PARAMS = ("cfg_scale",)
KNOWN_PARAMS = frozenset((*_STR_PARAMS, *_INT_PARAMS, *_FLOAT_PARAMS, "response_format"))

EMPTY_EXTRA: Mapping[str, Any] = MappingProxyType({})
# Fields of ImageRequest that are not parameters an adapter must honour by name (``set_fields``
# leaves them out).
_NOT_PARAMETERS = frozenset(
    {"extra", "response_format", "prompt", "strict", "operation", "images", "mask", "stream", "partial_images"}
)
MAX_PARTIAL_IMAGES = 3
# Known parameters that always hold a value (no None): a null sent for one leaves it as it was.
_ALWAYS_SET = frozenset({"prompt", "n", "response_format"})


@dataclasses.dataclass(frozen=True, slots=True)
class ImageRequest:
    """One OpenAI-shaped image generation request.

    ``extra`` holds provider-specific parameters the gateway does not model; adapters pass on the
    ones their API takes and refuse the rest with an error naming them. ``strict`` is the caller's
    wish to have parameters refused rather than translated; it is not sent to any provider (the
    router hands the effective value to adapters as ``UpstreamTarget.strict``).
    """

    prompt: str
    model: str | None = None
    n: int = 1
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    negative_prompt: str | None = None
    seed: int | None = None
    cfg_scale: float | None = None
    style_preset: str | None = None
    background: str | None = None
    output_format: str | None = None
    output_compression: int | None = None
    moderation: str | None = None
    aspect_ratio: str | None = None
    # OpenAI's end-user id for abuse monitoring, which supersedes ``user`` (both are sent as given).
    safety_identifier: str | None = None
    # How closely an edit keeps the input images' features (``high``/``low``): an edit parameter,
    # which generations refuse as OpenAI does.
    input_fidelity: str | None = None
    response_format: ResponseFormat = ResponseFormat.BYTES
    strict: bool = False
    # What is asked: a generation, an edit of ``images`` (under ``mask``), or a variation of ``images[0]``.
    operation: Operation = Operation.GENERATE
    images: tuple[InputImage, ...] = ()
    mask: InputImage | None = None
    # OpenAI's ``markup`` edit parameter: a transparent PNG the size of the first image with arrows,
    # circles or notes drawn on it, showing where the edit applies (not with ``mask``). A parameter
    # adapters must honour by name (``set_fields``): those that cannot send it refuse it.
    markup: InputImage | None = None
    # OpenAI's streamed generation or edit: the answer comes as events, with up to ``partial_images`` (0-3)
    # partial images before the final one. Not a parameter an adapter must honour (``set_fields``):
    # the router decides per target whether it streams (docs/streaming.md).
    stream: bool = False
    partial_images: int | None = None
    # A mappingproxy is unhashable, so dataclasses refuse it as a plain default.
    extra: Mapping[str, Any] = dataclasses.field(default_factory=lambda: EMPTY_EXTRA)

    def with_overrides(self, params: Mapping[str, Any], *, path: str = "override_params") -> ImageRequest:
        """Returns a copy with ``params`` applied, known fields replaced and the rest in ``extra``."""
        if not params:
            return self
        changes: dict[str, Any] = {}
        extra = dict(self.extra)
        for name, value in params.items():
            if name in KNOWN_PARAMS:
                coerced = coerce_param(name, value, path=f"{path}.{name}")
                if coerced is None and name in _ALWAYS_SET:
                    continue  # a null is "not set": the request keeps its own (a null n was a 500)
                changes[name] = coerced
            else:
                extra[name] = value
        if extra != self.extra:
            changes["extra"] = MappingProxyType(extra)
        return dataclasses.replace(self, **changes)

    def without_input_bytes(self) -> ImageRequest:
        """This request with its input images and mask described but their bytes let go."""
        if not self.images and self.mask is None and self.markup is None:
            return self
        return dataclasses.replace(
            self,
            images=tuple(image.without_bytes() for image in self.images),
            mask=self.mask.without_bytes() if self.mask is not None else None,
            markup=self.markup.without_bytes() if self.markup is not None else None,
        )

    def set_fields(self) -> dict[str, Any]:
        """The parameters the caller (or a config) set, by name; what an adapter must honour."""
        out: dict[str, Any] = {}
        for name in _PARAMETER_NAMES:
            value = getattr(self, name)
            if value is not None and not (name == "n" and value == 1):
                out[name] = value
        out.update(self.extra)
        return out


# The fields ``set_fields`` reports, in declaration order: asked for by every adapter's body builder, so
# not filtered out of ``dataclasses.fields`` on each call.
_PARAMETER_NAMES = tuple(f.name for f in dataclasses.fields(ImageRequest) if f.name not in _NOT_PARAMETERS)


def coerce_param(name: str, value: Any, *, path: str) -> Any:
    """Checks one known parameter's type; JSON numbers may arrive as floats from protobuf Structs."""
    if value is None:
        return None
    if name == "response_format":
        try:
            if value == ResponseFormat.MODEL_DEFAULT.value:  # the gateway's own marker, not a caller's value
                raise ValueError(value)
            return ResponseFormat(value)
        except ValueError:
            raise InvalidArgument("must be one of 'url', 'b64_json'", param=path) from None
    if name in _STR_PARAMS:
        if not isinstance(value, str):
            raise InvalidArgument("must be a string", param=path, code="invalid_type")
        return value
    if name in _INT_PARAMS:
        # JSON text may carry NaN or Infinity, which int() cannot take.
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not math.isfinite(value))
            or int(value) != value
        ):
            raise InvalidArgument("must be an integer", param=path, code="invalid_type")
        return int(value)
    if name in _FLOAT_PARAMS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidArgument("must be a finite number", param=path, code="invalid_type")
        return float(value)
    raise InvalidArgument("is not a known parameter", param=path, code="unknown_parameter")


MAX_SIZE_DIGITS = 6


def validate_request(request: ImageRequest, limits: InputLimits = DEFAULT_INPUT_LIMITS) -> ImageRequest:
    """Checks the provider-independent rules; raises InvalidArgument naming the field."""
    # A variation has no prompt; generations and edits need one.
    needs_prompt = request.operation is not Operation.VARIATION
    if needs_prompt and (not request.prompt or not request.prompt.strip()):
        raise InvalidArgument("is required and must not be empty", param="prompt", code="empty_string")
    if len(request.prompt) > limits.max_prompt_chars:
        raise InvalidArgument(
            f"is longer than {limits.max_prompt_chars} characters", param="prompt", code="string_above_max_length"
        )
    if not 1 <= request.n <= limits.max_images:
        raise InvalidArgument(
            f"must be between 1 and {limits.max_images}, got {request.n}", param="n", code="invalid_value"
        )
    if request.size is not None and request.size != "auto":
        parse_size(request.size, param="size")
    if request.operation is Operation.EDIT:
        check_edit_inputs(request.images, request.mask, max_images=limits.max_input_images)
        check_markup(request.images, request.mask, request.markup, max_bytes=limits.max_input_image_bytes)
    elif request.operation is Operation.VARIATION:
        check_variation_input(request.images)
    check_input_bytes(request.images, request.mask, max_bytes=limits.max_input_image_bytes)
    if request.partial_images is not None and not 0 <= request.partial_images <= MAX_PARTIAL_IMAGES:
        raise InvalidArgument(
            f"must be between 0 and {MAX_PARTIAL_IMAGES}, got {request.partial_images}",
            param="partial_images",
            code="invalid_value",
        )
    for name in EDGE_CHECKED:
        check_value(name, getattr(request, name))
    extra = openai_extras(request.extra)
    return request if extra is request.extra else dataclasses.replace(request, extra=extra)


def parse_size(size: str, *, param: str = "size") -> tuple[int, int]:
    """Parses WIDTHxHEIGHT into integers."""
    width, sep, height = size.lower().partition("x")
    # The length cap keeps int() away from huge digit strings (it refuses over 4300 digits with a ValueError).
    if (
        not sep
        or not (width.isascii() and width.isdigit())  # str.isdigit() also takes "²", which int() refuses
        or not (height.isascii() and height.isdigit())
        or len(width) > MAX_SIZE_DIGITS
        or len(height) > MAX_SIZE_DIGITS
        or int(width) <= 0
        or int(height) <= 0
    ):
        raise InvalidArgument(f"must look like 1024x1024, got {size[:40]!r}", param=param)
    return int(width), int(height)
