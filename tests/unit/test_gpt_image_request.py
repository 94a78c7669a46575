"""The gpt-image family as OpenAI serves it: model tables, parameters sent unchanged, the answer's shape."""

from __future__ import annotations

import dataclasses
import json
from types import MappingProxyType

import pytest

from imagegateway.v1 import images_pb2
from imagegateway_server.api import grpc_mapping, rest_mapping
from imagegateway_server.api.rest import images_body
from imagegateway_server.api.rest_image_shape import answer_format, native_format, response_fields
from imagegateway_server.domain.errors import InvalidArgument, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat, coerce_param
from imagegateway_server.domain.result import ModelSubstitution
from imagegateway_server.providers.kit.openai_image_models import GPT_IMAGE_2, GPT_IMAGE_25, model_spec
from imagegateway_server.providers.kit.openai_images import build_body
from imagegateway_server.providers.kit.translation import translate
from tests.unit.test_costs import routed


@pytest.mark.parametrize(
    ("model", "spec"),
    [
        ("gpt-image-2", GPT_IMAGE_2),
        ("gpt-image-2-2026-04-21", GPT_IMAGE_2),
        ("gpt-image-2.5-flare", GPT_IMAGE_25),
        ("gpt-image-2.5-sunburst-2026-09-08", GPT_IMAGE_25),
        ("gpt-image-3", None),  # newer than the table: sent as given
    ],
)
def test_model_tables_know_the_family_and_its_snapshots(model: str, spec: object) -> None:
    assert model_spec(model) is spec


def test_xhigh_and_max_go_to_gpt_image_2_5_as_asked_and_to_older_models_as_high() -> None:
    asked = ImageRequest(prompt="x", quality="max")
    newest = translate(asked, provider="openai", model="gpt-image-2.5-flare", spec_of=model_spec)
    assert newest.request.quality == "max" and not newest.notes
    older = translate(asked, provider="openai", model="gpt-image-1.5", spec_of=model_spec)
    assert older.request.quality == "high" and older.notes == ("quality=max->high",)
    with pytest.raises(ProviderError, match="strict"):
        translate(asked, provider="openai", model="gpt-image-1.5", spec_of=model_spec, strict=True)


def test_every_gpt_image_parameter_is_sent_unchanged() -> None:
    request = ImageRequest(
        prompt="x",
        model="gpt-image-2",
        size="1536x864",
        quality="high",
        background="transparent",
        output_format="webp",
        output_compression=70,
        moderation="low",
        user="u",
        safety_identifier="s",
    )
    body = build_body(request, "gpt-image-2", provider="openai")
    assert body == {
        "prompt": "x",
        "model": "gpt-image-2",
        "n": 1,
        "size": "1536x864",
        "quality": "high",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 70,
        "moderation": "low",
        "user": "u",
        "safety_identifier": "s",
    }


def test_an_output_format_openai_does_not_list_is_refused_before_the_call_naming_it() -> None:
    request = ImageRequest(prompt="x", output_format="avif")
    with pytest.raises(ProviderError, match="output_format") as refused:
        build_body(request, "gpt-image-2", provider="openai")
    assert refused.value.param == "output_format" and refused.value.status_code == 400
    # A model outside the known families (a compatible server) judges its own values.
    assert build_body(request, "my-server-model", provider="openai")["output_format"] == "avif"


def test_input_fidelity_is_refused_on_generations_as_openai_does() -> None:
    with pytest.raises(ProviderError, match="input_fidelity") as refused:
        build_body(ImageRequest(prompt="x", input_fidelity="high"), "gpt-image-1.5", provider="openai")
    assert refused.value.param == "input_fidelity" and refused.value.code == "unknown_parameter"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"prompt": "x", "model": "gpt-image-1.5"}, ResponseFormat.B64_JSON),
        ({"prompt": "x", "model": "chatgpt-image-latest"}, ResponseFormat.B64_JSON),
        ({"prompt": "x", "model": "dall-e-3"}, ResponseFormat.URL),
        ({"prompt": "x"}, ResponseFormat.MODEL_DEFAULT),
        ({"prompt": "x", "model": "gpt-image-1.5", "response_format": "url"}, ResponseFormat.URL),
    ],
)
def test_rest_without_response_format_takes_the_models_own_shape(
    body: dict[str, str], expected: ResponseFormat
) -> None:
    assert rest_mapping.image_request(body).response_format is expected


def test_the_gateways_own_marker_is_not_a_response_format_a_caller_may_send() -> None:
    with pytest.raises(InvalidArgument):
        coerce_param("response_format", "model_default", path="response_format")


def test_safety_identifier_is_a_known_parameter_on_rest_and_grpc() -> None:
    assert rest_mapping.image_request({"prompt": "x", "safety_identifier": "s"}).safety_identifier == "s"
    params = images_pb2.ImageParameters(prompt="x", safety_identifier="s")
    assert grpc_mapping.image_request(params).safety_identifier == "s"
    params = images_pb2.ImageParameters(prompt="x")
    params.extra_params.update({"safety_identifier": "t", "custom": 1})
    request = grpc_mapping.image_request(params)
    assert request.safety_identifier == "t" and dict(request.extra) == {"custom": 1}


def test_model_default_answers_in_the_primary_models_shape() -> None:
    served = routed("openai", "dall-e-3", [(1024, 1024)], attempts=())
    assert answer_format(ResponseFormat.MODEL_DEFAULT, served) is ResponseFormat.URL
    first = dataclasses.replace(served.attempts[0], model="gpt-image-1.5", status_code=500)
    fell_back = dataclasses.replace(served, attempts=(first, *served.attempts))
    assert answer_format(ResponseFormat.MODEL_DEFAULT, fell_back) is ResponseFormat.B64_JSON
    replaced = dataclasses.replace(
        routed("openai", "gpt-image-2", [(1024, 1024)]),
        substitution=ModelSubstitution("dall-e-3", "gpt-image-2", "remembered"),
    )
    assert answer_format(ResponseFormat.MODEL_DEFAULT, replaced) is ResponseFormat.URL
    assert native_format("gpt-image-2.5-flare") is ResponseFormat.B64_JSON


def test_the_rest_body_carries_the_providers_fields_and_usage() -> None:
    served = routed("openai", "gpt-image-1.5", [(1024, 1024)])
    usage = {"input_tokens": 3, "output_tokens": 5, "total_tokens": 8}
    result = dataclasses.replace(
        served.result, usage=MappingProxyType(usage), background="opaque", quality="high", size="1024x1024"
    )
    served = dataclasses.replace(served, result=result)
    body = json.loads(images_body(7, result.images, ResponseFormat.B64_JSON, response_fields(served)))
    assert body["created"] == 7 and body["usage"] == usage
    assert (body["background"], body["quality"], body["size"], body["output_format"]) == (
        "opaque",
        "high",
        "1024x1024",
        "png",  # read from the image: the provider did not say
    )
    assert list(body["data"][0]) == ["b64_json"]


def test_a_dall_e_answer_gets_no_gpt_image_fields() -> None:
    served = routed("openai", "dall-e-3", [(1024, 1024)])
    assert response_fields(served) == {}


@pytest.mark.parametrize("name", ["n", "prompt", "response_format"])
def test_a_null_for_a_parameter_that_always_has_a_value_leaves_it_as_it_was(name: str) -> None:
    # From the gRPC fuzzer: extra_params {"n": null} made n None, and the request a 500 (INTERNAL).
    params = images_pb2.ImageParameters(prompt="a cat", n=2)
    params.extra_params.update({name: None})
    request = grpc_mapping.image_request(params)
    assert (request.prompt, request.n) == ("a cat", 2)
    assert request.response_format is grpc_mapping.image_request(images_pb2.ImageParameters(prompt="x")).response_format
    overridden = request.with_overrides({name: None, "size": None})
    assert overridden.n == 2 and overridden.prompt == "a cat" and overridden.size is None
