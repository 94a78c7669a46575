"""The OpenAI Images wire format, which several providers speak (OpenAI, Azure OpenAI): body and error envelope.

``build_body`` maps an ImageRequest to the JSON body of ``POST .../images/generations``, and
``build_form`` an edit or a variation to the multipart form of ``POST .../images/edits`` or
``.../images/variations`` (images and mask as file parts), each refusing what OpenAI's models won't
take; ``read_openai_failure`` reads the ``{"error": {...}}`` envelope. A streamed edit (``ImageRequest.stream``,
set by the router only for a model that streams) adds the form fields ``stream=true`` and ``partial_images``.

Field mapping:

| ImageRequest | dall-e-2 | dall-e-3 | gpt-image-*, chatgpt-image-latest |
|---|---|---|---|
| prompt, model, n, size, quality, user, safety_identifier | sent | sent | sent |
| style | refused | sent | refused (OpenAI: unknown_parameter) |
| background, output_format, output_compression, moderation | refused | refused | sent |
| complexity, frame_count, frame_duration_ms, svg (in ``extra``) | refused | refused | sent |
| response_format | ``b64_json``, or ``url`` when the caller wants URLs | same | never sent (always base64) |
| negative_prompt, seed, cfg_scale, style_preset, aspect_ratio | refused | refused | refused |
| input_fidelity (an edit parameter) | refused | refused | refused |

Edits (``build_form``) also send ``input_fidelity`` to gpt-image models, and ``markup`` (a file part:
a transparent PNG overlay whose marks show where the edit applies, checked at the edge by
``domain.image_inputs.check_markup``) to the models with markup-guided editing, gpt-image-2.5 and
later (``takes_markup``); every other model refuses ``markup`` naming it.

Values are sent as the caller gave them (after translation). For the gpt-image models,
``background`` and ``output_format`` are checked against OpenAI's values
(``domain.openai_parameters``, kept equal to the installed SDK's by a test) and the rules its
reference states for GIF and SVG output (``frame_count``/``frame_duration_ms`` only with ``gif``,
``svg`` only with ``svg``, which takes ``n=1``; neither streams nor takes ``output_compression``),
so a request OpenAI would refuse is refused naming the field before any call; a model outside the
known families gets them unchecked. ``safety_identifier`` (OpenAI's successor of ``user``) and
``user`` are both passed on; ``svg`` goes into a form as ``svg[model]`` and
``svg[reasoning][effort]``, as the SDK sends it.

Refused parameters raise ``ProviderError(BAD_REQUEST, code="unknown_parameter")`` naming them before
any HTTP call. The request arrives already translated to the model's own values (``models``,
``kit.translation``). A streamed request (``ImageRequest.stream``, set by the router only for a
model that streams) sends ``stream: true`` and its ``partial_images``; of the ``extra`` keys only
OpenAI's ``stream`` is accepted, and only as ``false``. A model outside the known families gets every OpenAI
parameter forwarded and is left to OpenAI to validate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from imagegateway_server.domain.image_inputs import InputImage, Operation
from imagegateway_server.domain.openai_parameters import (
    OPENAI_EXTRA_PARAMS,
    OPENAI_VALUES,
    STILL_RASTER_FORMATS,
    allowed_values,
)
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.bodies import json_object
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.openai_image_models import ModelFamily, model_family
from imagegateway_server.providers.kit.status import FailureBody, error_body_excerpt
from imagegateway_server.providers.kit.transport import FilePart, UpstreamResponse

_COMMON = frozenset({"model", "n", "size", "quality", "user", "safety_identifier"})
_GPT_ONLY = (
    frozenset({"background", "output_format", "output_compression", "moderation", "stream"}) | OPENAI_EXTRA_PARAMS
)
ACCEPTED_PARAMS: Mapping[ModelFamily, frozenset[str]] = {
    ModelFamily.DALL_E_2: _COMMON,
    ModelFamily.DALL_E_3: _COMMON | {"style"},
    ModelFamily.GPT_IMAGE: _COMMON | _GPT_ONLY,
    ModelFamily.OTHER: _COMMON | _GPT_ONLY | {"style"},
}


# Edits (``POST .../images/edits``) and variations (``POST .../images/variations``) by model family,
# as OpenAI's API reference lists them: dall-e-2 edits one square PNG and makes variations; dall-e-3
# does neither; gpt-image edits up to 16 images; a model outside the tables (a compatible server) is
# offered everything and judges for itself.
OPERATIONS: Mapping[ModelFamily, frozenset[Operation]] = {
    ModelFamily.DALL_E_2: frozenset(Operation),
    ModelFamily.DALL_E_3: frozenset({Operation.GENERATE}),
    ModelFamily.GPT_IMAGE: frozenset({Operation.GENERATE, Operation.EDIT}),
    ModelFamily.OTHER: frozenset(Operation),
}
PATHS: Mapping[Operation, str] = {
    Operation.GENERATE: "images/generations",
    Operation.EDIT: "images/edits",
    Operation.VARIATION: "images/variations",
}
_GPT_EDIT = (
    frozenset({"background", "output_format", "output_compression", "input_fidelity", "markup", "stream"})
    | OPENAI_EXTRA_PARAMS
)
EDIT_PARAMS: Mapping[ModelFamily, frozenset[str]] = {
    ModelFamily.DALL_E_2: _COMMON,
    ModelFamily.DALL_E_3: frozenset(),
    ModelFamily.GPT_IMAGE: _COMMON | _GPT_EDIT,
    ModelFamily.OTHER: _COMMON | _GPT_EDIT | {"moderation"},
}
_VARIATION = frozenset({"model", "n", "size", "user"})
VARIATION_PARAMS: Mapping[ModelFamily, frozenset[str]] = {
    ModelFamily.DALL_E_2: _VARIATION,
    ModelFamily.DALL_E_3: frozenset(),
    ModelFamily.GPT_IMAGE: frozenset(),
    ModelFamily.OTHER: _VARIATION,
}
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


# gpt-image-<major>.<minor>...: markup-guided editing came with the 2.5 models.
# output_compression is a percentage (OpenAI: 0-100, default 100).
MIN_COMPRESSION, MAX_COMPRESSION = 0, 100
_GPT_IMAGE_VERSION = re.compile(r"^gpt-image-(\d+)(?:\.(\d+))?(?:-|$)")
_FIRST_MARKUP_VERSION = (2, 5)


def takes_markup(model: str) -> bool:
    """Whether an OpenAI model takes ``markup``: gpt-image-2.5 and later, and any model outside the
    known families (a compatible server judges for itself)."""
    family = model_family(model)
    if family is ModelFamily.OTHER:
        return True
    version = _GPT_IMAGE_VERSION.match(model.lower())
    return version is not None and (int(version[1]), int(version[2] or 0)) >= _FIRST_MARKUP_VERSION


def _check_gpt_values(request: ImageRequest, model: str, provider: str) -> None:
    """BAD_REQUEST naming the field for a value or combination OpenAI's reference refuses for gpt-image."""
    for name in ("background", "output_format"):
        value = getattr(request, name)
        if value is not None and value not in OPENAI_VALUES[name]:
            raise refuse_parameter(provider, name, f"must be one of {allowed_values(name)}, got {value[:40]!r}")
    compression = request.output_compression
    if compression is not None and not MIN_COMPRESSION <= compression <= MAX_COMPRESSION:
        raise refuse_parameter(
            provider, "output_compression", f"must be from {MIN_COMPRESSION} to {MAX_COMPRESSION}, got {compression}"
        )
    output_format = request.output_format or "png"
    extra = request.extra
    for name in ("frame_count", "frame_duration_ms"):
        if name in extra and output_format != "gif":
            raise refuse_parameter(provider, name, "is only supported with output_format 'gif'", "invalid_value")
    if "svg" in extra and output_format != "svg":
        raise refuse_parameter(provider, "svg", "is only supported with output_format 'svg'", "invalid_value")
    if output_format in STILL_RASTER_FORMATS:
        return
    if output_format == "gif" and request.mask is not None:
        raise refuse_parameter(provider, "mask", "is not supported with output_format 'gif'")
    if request.stream:
        raise refuse_parameter(provider, "stream", f"is not supported with output_format {output_format!r}")
    if request.output_compression is not None:
        raise refuse_parameter(provider, "output_compression", f"is not supported with output_format {output_format!r}")
    if output_format == "svg" and request.n != 1:
        raise refuse_parameter(provider, "n", f"must be 1 with output_format 'svg' (model {model!r})")


def _form_extras(extra: Mapping[str, Any]) -> list[tuple[str, str]]:
    """OpenAI's extra gpt-image parameters as form fields (``svg`` as ``svg[model]``, ``svg[reasoning][effort]``)."""
    fields = [(name, str(extra[name])) for name in ("complexity", "frame_count", "frame_duration_ms") if name in extra]
    svg = extra.get("svg")
    if isinstance(svg, Mapping):
        if svg.get("model") is not None:
            fields.append(("svg[model]", str(svg["model"])))
        reasoning = svg.get("reasoning")
        if isinstance(reasoning, Mapping) and reasoning.get("effort") is not None:
            fields.append(("svg[reasoning][effort]", str(reasoning["effort"])))
    return fields


def _file(name: str, image: InputImage, index: int) -> FilePart:
    filename = image.filename or f"{name.rstrip('[]')}-{index}.{_EXTENSIONS.get(image.mime_type, 'png')}"
    return FilePart(name, filename, image.data, image.mime_type)


def build_form(request: ImageRequest, model: str, *, provider: str) -> tuple[list[tuple[str, str]], list[FilePart]]:
    """The multipart form of an edit or a variation: text fields and file parts, as OpenAI's SDK sends them
    (one image as ``image``, several as ``image[]``); BAD_REQUEST naming a parameter the model won't take."""
    family = model_family(model)
    edit = request.operation is Operation.EDIT
    accepted = (EDIT_PARAMS if edit else VARIATION_PARAMS)[family]
    for name, value in request.set_fields().items():
        if name not in accepted:
            what = "edits" if edit else "variations"
            raise refuse_parameter(
                provider, name, f"is not supported in {what} by model {model!r}", "unknown_parameter"
            )
        if name == "stream" and value is not False:
            raise refuse_parameter(
                provider, "stream", "must be false; streamed image edits are not supported", "unsupported_value"
            )
    if request.markup is not None and not takes_markup(model):
        raise refuse_parameter(
            provider, "markup", f"is not supported by model {model!r} (gpt-image-2.5 and later)", "unknown_parameter"
        )
    if family is ModelFamily.DALL_E_2 and len(request.images) > 1:
        raise refuse_parameter(provider, "image", f"model {model!r} edits one image, got {len(request.images)}")
    if family is ModelFamily.GPT_IMAGE:
        _check_gpt_values(request, model, provider)
    fields: list[tuple[str, str]] = [("model", model), ("n", str(request.n))]
    if edit:
        fields.append(("prompt", request.prompt))
    optional: dict[str, Any] = {
        "size": request.size,
        "quality": request.quality,
        "user": request.user,
        "background": request.background,
        "output_format": request.output_format,
        "output_compression": request.output_compression,
        "input_fidelity": request.input_fidelity,
        "moderation": request.moderation,
        "safety_identifier": request.safety_identifier,
    }
    fields += [(name, str(value)) for name, value in optional.items() if value is not None and name in accepted]
    if OPENAI_EXTRA_PARAMS <= accepted:
        fields += _form_extras(request.extra)
    if edit and request.stream:
        # A streamed edit, as the OpenAI SDK sends one: form fields ``stream=true`` and ``partial_images``.
        fields.append(("stream", "true"))
        if request.partial_images is not None:
            fields.append(("partial_images", str(request.partial_images)))
    wants_url = request.response_format is ResponseFormat.URL
    if family is ModelFamily.DALL_E_2:
        fields.append(("response_format", "url" if wants_url else "b64_json"))
    elif family is ModelFamily.OTHER and wants_url:
        fields.append(("response_format", "url"))
    name = "image[]" if len(request.images) > 1 else "image"
    files = [_file(name, image, index) for index, image in enumerate(request.images)]
    if edit and request.mask is not None:
        files.append(_file("mask", request.mask, 0))
    if edit and request.markup is not None:
        files.append(_file("markup", request.markup, 0))
    return fields, files


def build_body(request: ImageRequest, model: str, *, provider: str) -> dict[str, Any]:
    """The JSON body for ``request``; raises BAD_REQUEST (from ``provider``) naming a parameter the model won't take."""
    family = model_family(model)
    accepted = ACCEPTED_PARAMS[family]
    for name, value in request.set_fields().items():
        if name not in accepted:
            raise refuse_parameter(provider, name, f"is not supported by model {model!r}", "unknown_parameter")
        if name == "stream" and value is not False:
            raise refuse_parameter(
                provider, "stream", "must be false; streamed image generation is not supported", "unsupported_value"
            )
    if family is ModelFamily.GPT_IMAGE:
        _check_gpt_values(request, model, provider)
    body: dict[str, Any] = {"prompt": request.prompt, "model": model, "n": request.n}
    optional: dict[str, Any] = {
        "size": request.size,
        "quality": request.quality,
        "style": request.style,
        "user": request.user,
        "background": request.background,
        "output_format": request.output_format,
        "output_compression": request.output_compression,
        "moderation": request.moderation,
        "safety_identifier": request.safety_identifier,
        "stream": True if request.stream else request.extra.get("stream"),
        "partial_images": request.partial_images if request.stream else None,
        **{name: request.extra.get(name) for name in OPENAI_EXTRA_PARAMS},
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    wants_url = request.response_format is ResponseFormat.URL
    if family in (ModelFamily.DALL_E_2, ModelFamily.DALL_E_3):
        body["response_format"] = "url" if wants_url else "b64_json"
    elif family is ModelFamily.OTHER and wants_url:
        body["response_format"] = "url"
    return body


_CONTENT_POLICY_CODES = frozenset({"content_policy_violation", "moderation_blocked"})
_SAFETY_MESSAGE_PREFIXES = (
    "your request was rejected as a result of our safety system",
    "your request was rejected by the safety system",
)


def read_openai_failure(response: UpstreamResponse) -> FailureBody:
    """The message, code and param of an OpenAI-style error answer, and whether its safety system refused.

    A code of ``content_policy_violation`` or ``moderation_blocked``, or a message that starts as
    OpenAI's safety-system rejections do, is a content-policy refusal.
    """
    envelope = openai_error_envelope(response.body)
    message = envelope.get("message") or error_body_excerpt(response.body)
    code = envelope.get("code")
    safety = code in _CONTENT_POLICY_CODES or message.lower().startswith(_SAFETY_MESSAGE_PREFIXES)
    return FailureBody(
        detail=message,
        code=code,
        param=envelope.get("param"),
        content_policy_code=(code or "content_policy_violation") if safety else None,
    )


def openai_error_envelope(body: bytes) -> dict[str, str]:
    """``message``/``type``/``code``/``param`` of an OpenAI error body, whichever are strings."""
    payload = json_object(body)
    if payload is None:
        return {}
    error = payload.get("error", payload)
    if isinstance(error, str):
        return {"message": error}
    if not isinstance(error, dict):
        return {}
    return {k: v for k in ("message", "type", "code", "param") if isinstance(v := error.get(k), str) and v}
