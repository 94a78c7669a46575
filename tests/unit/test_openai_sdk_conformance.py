"""The gateway against the installed OpenAI SDK's own types: every image model, parameter, value and
answer field openai-python declares is known to the gateway.

Expectations are read from the SDK (``openai.types``: ``ImageModel``, ``image_*_params``,
``ImagesResponse``, the streaming event types), not copied from it, so an SDK upgrade that adds a
model, a parameter, a value or a field fails here until the gateway learns it. The samples below
are the only hand-written part: a parameter without one fails ``test_every_sdk_parameter_has_a_sample``.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import openai
import pytest
from openai.types import (
    ImageEditCompletedEvent,
    ImageEditPartialImageEvent,
    ImageGenCompletedEvent,
    ImageGenPartialImageEvent,
    ImageModel,
    ImagesResponse,
    image_create_variation_params,
    image_edit_params,
    image_generate_params,
)
from openai.types.image import Image as SdkImage
from openai.types.images_response import SvgUsage

from imagegateway.v1 import images_pb2
from imagegateway_server.api import grpc_mapping, rest_mapping
from imagegateway_server.api.rest import images_body
from imagegateway_server.api.rest_image_shape import response_fields
from imagegateway_server.api.rest_multipart import Upload, UploadedFile
from imagegateway_server.api.rest_sse import EDIT_EVENTS, GENERATION_EVENTS, completed_event, partial_image_event
from imagegateway_server.api.rest_upload_mapping import VARIATION_FIELDS, edit_request
from imagegateway_server.core.pricing import load_price_table
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.input_limits import DEFAULT_INPUT_LIMITS
from imagegateway_server.domain.openai_parameters import OPENAI_VALUES, SVG_REASONING_EFFORTS
from imagegateway_server.domain.progress import PartialImage
from imagegateway_server.domain.request import ImageRequest, ResponseFormat, validate_request
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit.openai_image_models import ModelFamily, model_family, model_spec
from imagegateway_server.providers.kit.openai_images import (
    ACCEPTED_PARAMS,
    EDIT_PARAMS,
    VARIATION_PARAMS,
    build_body,
    build_form,
)
from imagegateway_server.providers.kit.retired_models import load_retired_models
from imagegateway_server.providers.kit.translation import translate
from tests.emulators.images import solid_image
from tests.unit.test_costs import routed

SDK_MODELS: tuple[str, ...] = typing.get_args(ImageModel)
SDK_DIR = Path(openai.__file__).parent
# The SDK's non-streaming and streaming params share these bases; ``stream`` is their only difference.
GENERATE = typing.get_type_hints(image_generate_params.ImageGenerateParamsStreaming)
EDIT = typing.get_type_hints(image_edit_params.ImageEditParamsStreaming)
VARIATION = typing.get_type_hints(image_create_variation_params.ImageCreateVariationParams)
# Parameters whose SDK type is no closed list (a model name, a free size string, a bool, a file).
OPEN_PARAMS = frozenset({"model", "size", "stream", "image", "mask", "markup"})

# A valid value of each parameter, for a gpt-image-2.6 model (gif and svg are asked apart: each
# parameter of the one is refused with the other output format).
SAMPLES: Mapping[str, Any] = MappingProxyType(
    {
        "prompt": "a paper lantern",
        "model": "gpt-image-2.6-sunburst",
        "n": 1,
        "size": "1536x864",
        "quality": "max",
        "background": "opaque",
        "moderation": "low",
        "complexity": "high",
        "output_compression": 80,
        "output_format": "webp",
        "user": "legacy-user",
        "safety_identifier": "hashed-user-42",
        "input_fidelity": "low",
        "style": "vivid",
        "response_format": "b64_json",
        "partial_images": 2,
        "stream": True,
        "frame_count": 12,
        "frame_duration_ms": 120,
        "svg": {"model": "svg-author", "reasoning": {"effort": "high"}},
    }
)
GIF_ONLY = frozenset({"frame_count", "frame_duration_ms"})
SVG_ONLY = frozenset({"svg"})
# Parameters the gateway does not send to a gpt-image model, as OpenAI refuses them there.
NOT_FOR_GPT_IMAGE = frozenset({"style", "response_format"})
# Parameters the gateway reads at the edge rather than passing as values (files, the streaming switch).
EDGE_ONLY = frozenset({"prompt", "image", "mask", "markup", "stream", "partial_images"})


def string_literals(annotation: Any) -> set[str]:
    """Every string a ``Literal`` inside ``annotation`` (through Optional/Union/Required) allows."""
    if typing.get_origin(annotation) is typing.Literal:
        return {value for value in typing.get_args(annotation) if isinstance(value, str)}
    return set().union(*(string_literals(arg) for arg in typing.get_args(annotation)))


def retired_in_sdk() -> set[str]:
    """The models the SDK's ``ImageModel`` marks as shut down or retired ("Deprecated values")."""
    text = (SDK_DIR / "types" / "image_model.py").read_text()
    names: set[str] = set()
    for line in text.splitlines():
        if re.search(r"(shut down|retired)", line) and line.strip().startswith("- "):
            names.update(re.findall(r'"([^"]+)"', line.split(":")[0]))
    return names


# -- models ------------------------------------------------------------------------------------------


def test_the_sdk_lists_the_gpt_image_2_6_models() -> None:
    assert {"gpt-image-2.6-sunburst", "gpt-image-2.6-flare"} <= set(SDK_MODELS)


@pytest.mark.parametrize("model", SDK_MODELS)
def test_every_sdk_image_model_has_a_table_in_its_family(model: str) -> None:
    assert model_spec(model) is not None, f"{model} is missing from kit/openai_image_models.MODEL_SPECS"
    assert model_family(model) is not ModelFamily.OTHER


@pytest.mark.parametrize("model", SDK_MODELS)
def test_every_sdk_image_model_is_priced(model: str) -> None:
    table = load_price_table()
    if model_family(model) is ModelFamily.GPT_IMAGE:
        assert table.token_prices("openai", model) is not None, f"{model} has no token_prices in openai/prices.json"
        # A dated snapshot OpenAI releases later is priced as its model, as its table is its model's.
        snapshot = model if re.search(r"-\d{4}-\d{2}-\d{2}$", model) else f"{model}-2027-01-15"
        assert table.token_prices("openai", snapshot) == table.token_prices("openai", model)
        assert model_spec(snapshot) is model_spec(model)
    else:
        assert table.unit_price("openai", model, "1024x1024", None) > 0


def test_the_models_the_sdk_calls_retired_have_a_successor() -> None:
    retired = retired_in_sdk()
    assert {"dall-e-2", "dall-e-3", "gpt-image-1"} <= retired  # the parse still reads the SDK's notes
    table = load_retired_models()
    for model in retired:
        entry = table.lookup("openai", model)
        assert entry is not None, f"{model} is retired in the SDK but not in kit/retired_models.json"
        chain = [model]
        while entry is not None and len(chain) < 10:  # the table's chain, as the router follows it
            chain.append(entry.successor)
            entry = table.lookup("openai", entry.successor)
        assert chain[-1] in SDK_MODELS and chain[-1] not in retired, chain


@pytest.mark.parametrize("model", [m for m in SDK_MODELS if model_family(m) is ModelFamily.GPT_IMAGE])
def test_every_sdk_quality_and_standard_size_is_taken_by_every_gpt_image_model(model: str) -> None:
    current = string_literals(GENERATE["quality"]) - {"standard", "hd"}  # dall-e's, deprecated
    for quality in current:
        translate(ImageRequest(prompt="x", quality=quality), provider="openai", model=model, spec_of=model_spec)
    for size in string_literals(EDIT["size"]) - {"256x256", "512x512"}:  # deprecated dall-e-2 sizes
        sent = translate(ImageRequest(prompt="x", size=size), provider="openai", model=model, spec_of=model_spec)
        assert sent.request.size == size


@pytest.mark.parametrize("model", [m for m in SDK_MODELS if m.startswith(("gpt-image-2.5", "gpt-image-2.6"))])
def test_the_tiers_above_high_reach_the_models_that_have_them_unchanged(model: str) -> None:
    for quality in ("xhigh", "max"):
        sent = translate(ImageRequest(prompt="x", quality=quality), provider="openai", model=model, spec_of=model_spec)
        assert sent.request.quality == quality and not sent.notes


# -- parameters --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "params"),
    [("generate", GENERATE), ("edit", EDIT), ("create_variation", VARIATION)],
)
def test_the_sdk_methods_take_what_their_params_types_say(method: str, params: Mapping[str, Any]) -> None:
    # The types this module reads are the methods' own parameters (the signatures could outgrow them).
    transport = {"self", "extra_headers", "extra_query", "extra_body", "timeout"}
    signature = inspect.signature(getattr(openai.resources.images.Images, method))
    assert signature.parameters.keys() - transport == params.keys()


def test_every_sdk_parameter_has_a_sample() -> None:
    assert (GENERATE.keys() | EDIT.keys()) - {"image", "mask", "markup"} <= SAMPLES.keys()


def test_the_gateway_takes_exactly_the_sdk_generation_parameters() -> None:
    ours = ACCEPTED_PARAMS[ModelFamily.GPT_IMAGE] | ACCEPTED_PARAMS[ModelFamily.DALL_E_3] | EDGE_ONLY
    assert GENERATE.keys() == ours - {"image", "mask", "markup"} | {"response_format"}


def test_the_gateway_takes_exactly_the_sdk_edit_parameters() -> None:
    ours = EDIT_PARAMS[ModelFamily.GPT_IMAGE] | EDIT_PARAMS[ModelFamily.DALL_E_2] | EDGE_ONLY
    assert EDIT.keys() == ours | {"response_format"}


def test_the_gateway_takes_exactly_the_sdk_variation_parameters() -> None:
    assert VARIATION.keys() == VARIATION_FIELDS | {"image"}
    assert VARIATION.keys() == VARIATION_PARAMS[ModelFamily.DALL_E_2] | {"image", "response_format"}


def test_the_values_the_gateway_checks_are_the_sdks() -> None:
    for name, allowed in OPENAI_VALUES.items():
        sdk = string_literals(GENERATE.get(name)) | string_literals(EDIT.get(name))
        assert allowed == sdk, name
    closed = {name for name, hint in (GENERATE | EDIT).items() if string_literals(hint) and name not in OPEN_PARAMS}
    assert closed == OPENAI_VALUES.keys()


def test_the_svg_reasoning_efforts_are_the_sdks() -> None:
    for module in (image_generate_params, image_edit_params):
        assert string_literals(typing.get_type_hints(module.SvgReasoning)["effort"]) == SVG_REASONING_EFFORTS


def test_variation_sizes_are_the_sdks() -> None:
    spec = model_spec("dall-e-2")
    assert spec is not None
    for size in string_literals(VARIATION["size"]):
        request = ImageRequest(prompt="", size=size, operation=Operation.VARIATION)
        assert translate(request, provider="openai", model="dall-e-2", spec_of=model_spec).request.size == size


def _json_body(output_format: str, skip: frozenset[str]) -> dict[str, Any]:
    body = {name: SAMPLES[name] for name in GENERATE if name not in skip}
    body["output_format"] = output_format
    if output_format != "webp":
        body.pop("output_compression", None)
    return body


@pytest.mark.parametrize(
    ("output_format", "skip"),
    [
        ("webp", GIF_ONLY | SVG_ONLY),
        ("gif", SVG_ONLY | {"stream", "partial_images"}),
        ("svg", GIF_ONLY | {"stream", "partial_images"}),
    ],
)
def test_every_sdk_generation_parameter_reaches_a_gpt_image_model_unchanged(
    output_format: str, skip: frozenset[str]
) -> None:
    body = _json_body(output_format, skip | {"style", "response_format"})
    request = validate_request(rest_mapping.image_request(json.loads(json.dumps(body))))
    sent = build_body(request, str(body["model"]), provider="openai")
    expected = {name: value for name, value in body.items() if name not in NOT_FOR_GPT_IMAGE}
    assert sent == expected


def test_the_legacy_parameters_reach_dall_e_3_unchanged() -> None:
    body = {"prompt": "x", "model": "dall-e-3", "style": "natural", "response_format": "url", "user": "u"}
    request = validate_request(rest_mapping.image_request(body))
    assert build_body(request, "dall-e-3", provider="openai") == {**body, "n": 1}


def _form(fields: Mapping[str, Any]) -> dict[str, str]:
    """The SDK's multipart spelling: an object's members as ``name[member]`` fields."""
    out: dict[str, str] = {}
    for name, value in fields.items():
        if isinstance(value, Mapping):
            for member, inner in _form(value).items():
                head, _, rest = member.partition("[")
                out[f"{name}[{head}]" + (f"[{rest}" if rest else "")] = inner
        else:
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _png_file(name: str) -> UploadedFile:
    return UploadedFile(name, f"{name}.png", "image/png", solid_image(64, 64, "png", name == "mask"))


@pytest.mark.parametrize(
    ("output_format", "skip", "files"),
    [
        ("webp", GIF_ONLY | SVG_ONLY, ("image", "mask")),
        ("gif", SVG_ONLY | {"stream", "partial_images"}, ("image",)),  # GIF output takes no mask
        ("svg", GIF_ONLY | {"stream", "partial_images"}, ("image", "mask")),
    ],
)
def test_every_sdk_edit_parameter_reaches_a_gpt_image_model_unchanged(
    output_format: str, skip: frozenset[str], files: tuple[str, ...]
) -> None:
    body = {name: value for name, value in _json_body(output_format, skip).items() if name in EDIT}
    upload = Upload(_form(body), [_png_file(name) for name in files])
    request = validate_request(edit_request(upload, DEFAULT_INPUT_LIMITS))
    fields, sent_files = build_form(request, str(body["model"]), provider="openai")
    expected = {name: value for name, value in _form(body).items() if name not in NOT_FOR_GPT_IMAGE}
    assert dict(fields) == expected
    assert tuple(part.name for part in sent_files) == files


# -- what comes back ---------------------------------------------------------------------------------


def _answer_fields() -> Iterator[tuple[str, Any]]:
    """A value for each response-level field the gateway can carry, as OpenAI would send it."""
    yield "background", "opaque"
    yield "output_format", "png"
    yield "quality", "high"
    yield "size", "1024x1024"
    yield "safety_identifier", "hashed-user-42"
    yield (
        "usage",
        {
            "input_tokens": 10,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 0},
            "output_tokens": 4160,
            "output_tokens_details": {"image_tokens": 4160, "text_tokens": 0},
            "total_tokens": 4170,
        },
    )
    yield "svg_usage", {"model": "a", "input_tokens": 1, "output_tokens": 2, "reasoning_tokens": 1, "total_tokens": 3}


def _full_result() -> ImageResult:
    served = routed("openai", "gpt-image-2.6-sunburst", [(1024, 1024)])
    return dataclasses.replace(served.result, **dict(_answer_fields()))


def test_every_images_response_field_is_in_the_gateways_answer() -> None:
    result = _full_result()
    fields = response_fields(
        dataclasses.replace(routed("openai", "gpt-image-2.6-sunburst", [(1024, 1024)]), result=result)
    )
    body = json.loads(images_body(1, result.images, ResponseFormat.B64_JSON, fields))
    assert body.keys() == ImagesResponse.model_fields.keys()
    parsed = ImagesResponse.model_validate(body)
    assert parsed.safety_identifier == "hashed-user-42"
    assert parsed.svg_usage is not None and parsed.svg_usage.reasoning_tokens == 1


def test_every_image_item_field_can_be_answered() -> None:
    image = GeneratedImage(data=b"\x89PNG", mime_type="image/png", revised_prompt="a detailed lantern")
    seen: set[str] = set()
    for response_format in (ResponseFormat.B64_JSON, ResponseFormat.URL):
        seen |= json.loads(images_body(1, [image], response_format))["data"][0].keys()
    assert seen == SdkImage.model_fields.keys()


@pytest.mark.parametrize(
    ("prefix", "partial_type", "completed_type"),
    [
        (GENERATION_EVENTS, ImageGenPartialImageEvent, ImageGenCompletedEvent),
        (EDIT_EVENTS, ImageEditPartialImageEvent, ImageEditCompletedEvent),
    ],
)
def test_every_streaming_event_field_is_in_the_gateways_events(
    prefix: str, partial_type: type[Any], completed_type: type[Any]
) -> None:
    request = ImageRequest(prompt="x", stream=True, partial_images=1)
    partial = PartialImage(index=0, b64_json="AAAA", provider="openai", model="gpt-image-2.6-flare")
    event = _data(partial_image_event(partial, request, prefix))
    assert event.keys() == partial_type.model_fields.keys()
    partial_type.model_validate(event)
    result = _full_result()
    fields = {name: value for name, value in _answer_fields() if name != "svg_usage"}
    completed = _data(completed_event(result.images[0], request, 1, fields, prefix))
    assert completed.keys() == completed_type.model_fields.keys()
    assert completed_type.model_validate(completed).safety_identifier == "hashed-user-42"


def _data(event: bytes) -> dict[str, Any]:
    data_line = next(line for line in event.split(b"\n") if line.startswith(b"data: "))
    parsed: dict[str, Any] = json.loads(data_line[len(b"data: ") :])
    return parsed


def test_every_response_level_field_has_a_place_in_the_generation_report() -> None:
    report_fields = {field.name for field in images_pb2.GenerationReport.DESCRIPTOR.fields}
    assert ImagesResponse.model_fields.keys() - {"created", "data"} <= report_fields
    svg_fields = {field.name for field in images_pb2.SvgUsage.DESCRIPTOR.fields}
    assert svg_fields == SvgUsage.model_fields.keys()
    message = images_pb2.GenerationReport()
    grpc_mapping.fill_report(message, _full_result())
    assert message.safety_identifier == "hashed-user-42"
    assert (message.svg_usage.model, message.svg_usage.reasoning_tokens, message.svg_usage.total_tokens) == ("a", 1, 3)
