"""OpenAI's newest image models and parameters through the gateway, with the OpenAI SDK unchanged.

The gpt-image-2.6 models, ``complexity``, GIF (``frame_count``, ``frame_duration_ms``) and SVG
(``svg``) output reach the OpenAI emulator as the SDK sent them, on generations and edits; the
answer's ``safety_identifier`` and ``svg_usage`` come back (also on streamed completed events, never
on partial ones, and never made up by a fallback that did not say them); values OpenAI does not take
are 400s naming the field before any upstream call.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import openai
import pytest

from imagegateway import ImageGatewayClient
from tests.conftest import AZURE_SECRET, Emulators
from tests.emulators import Fault
from tests.emulators.images import solid_image
from tests.harness import GatewayThread
from tests.image_fixtures import openai_target

HTTP_TIMEOUT = 30.0


def sdk(gateway: GatewayThread, key: str, config: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key, "x-portkey-config": json.dumps(config)},
    )


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"conformance-{uuid.uuid4().hex[:6]}", "generate").key


def test_gpt_image_2_6_takes_complexity_and_the_top_quality_and_answers_the_safety_identifier(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        raw = client.images.with_raw_response.generate(
            prompt="a paper lantern",
            model="gpt-image-2.6-flare",
            quality="max",
            complexity="high",
            size="1536x864",
            safety_identifier="hashed-user-42",
            user="legacy-user",
        )
    result = raw.parse()
    sent = emulators.openai.requests[-1].json or {}
    assert {k: sent[k] for k in ("model", "quality", "complexity", "size", "safety_identifier", "user")} == {
        "model": "gpt-image-2.6-flare",
        "quality": "max",
        "complexity": "high",
        "size": "1536x864",
        "safety_identifier": "hashed-user-42",
        "user": "legacy-user",
    }
    assert result.safety_identifier == "hashed-user-42" and result.quality == "max"
    assert result.usage is not None and float(raw.headers["x-imagegw-cost-usd"]) > 0  # priced from usage


def test_gif_output_with_its_frames_comes_back_as_an_animated_gif(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        result = client.images.generate(
            prompt="a spinning top",
            model="gpt-image-2.6-sunburst",
            output_format="gif",
            frame_count=4,
            frame_duration_ms=120,
            size="1024x1024",
        )
    sent = emulators.openai.requests[-1].json or {}
    assert (sent["output_format"], sent["frame_count"], sent["frame_duration_ms"]) == ("gif", 4, 120)
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(b"GIF89a")
    assert result.output_format == "gif"


def test_svg_output_sends_the_author_settings_and_answers_svg_usage(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        result = client.images.generate(
            prompt="a logo",
            model="gpt-image-2.6-sunburst",
            output_format="svg",
            svg={"model": "svg-author", "reasoning": {"effort": "low"}},
        )
    sent = emulators.openai.requests[-1].json or {}
    assert sent["svg"] == {"model": "svg-author", "reasoning": {"effort": "low"}}
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(b"<svg")
    assert result.output_format == "svg"
    assert result.svg_usage is not None and result.svg_usage.model == "svg-author"
    assert result.svg_usage.reasoning_tokens > 0


def test_a_streamed_completed_event_says_the_safety_identifier_and_partial_events_do_not(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        events = list(
            client.images.generate(
                prompt="an otter", model="gpt-image-2.6-flare", stream=True, partial_images=1, user="legacy-user"
            )
        )
    partial, completed = events
    assert partial.type == "image_generation.partial_image" and "safety_identifier" not in partial.model_fields_set
    assert completed.type == "image_generation.completed"
    assert completed.safety_identifier == "legacy-user"  # OpenAI's effective identifier: user, when no other


def test_an_edit_with_gpt_image_2_6_sends_complexity_and_svg_as_the_sdk_spells_them(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        result = client.images.edit(
            image=[("a.png", solid_image(64, 64), "image/png"), ("b.png", solid_image(64, 64), "image/png")],
            mask=("m.png", solid_image(64, 64, "png", True), "image/png"),
            prompt="turn it into a line drawing",
            model="gpt-image-2.6-sunburst",
            output_format="svg",
            complexity="low",
            svg={"model": "svg-author", "reasoning": {"effort": "minimal"}},
            safety_identifier="hashed-user-7",
        )
    form = emulators.openai.requests[-1].form or {}
    assert (form["complexity"], form["svg[model]"], form["svg[reasoning][effort]"]) == ("low", "svg-author", "minimal")
    assert result.safety_identifier == "hashed-user-7" and result.svg_usage is not None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"moderation": "strict"}, "moderation"),
        ({"complexity": "extreme"}, "complexity"),
        ({"output_format": "gif", "frame_count": 30}, "frame_count"),
        ({"output_format": "avif"}, "output_format"),
        ({"background": "clear"}, "background"),
        ({"frame_count": 4}, "frame_count"),  # frames without GIF output
        ({"svg": {"model": "svg-author"}}, "svg"),  # SVG settings without SVG output
        ({"output_format": "svg", "svg": {"reasoning": {"effort": "huge"}}}, "svg.reasoning.effort"),
        ({"output_format": "svg", "n": 2}, "n"),
        ({"output_format": "gif", "stream": True}, "stream"),
        ({"output_format": "webp", "output_compression": 101}, "output_compression"),
    ],
)
def test_a_value_openai_does_not_take_is_a_400_naming_the_field_before_any_call(
    gateway: GatewayThread, key: str, emulators: Emulators, params: dict[str, Any], field: str
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client, pytest.raises(openai.BadRequestError) as raised:
        answer = client.images.generate(prompt="x", model="gpt-image-2.6-flare", **params)
        if params.get("stream"):
            list(answer)  # type: ignore[call-overload]
    assert raised.value.param == field
    assert not emulators.openai.requests


def test_a_fallback_that_does_not_say_a_safety_identifier_answers_without_one(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators), openai_target(emulators, override_params={"model": "dall-e-3"})],
    }
    with sdk(gateway, key, config) as client:
        result = client.images.generate(prompt="a kite", model="gpt-image-2.6-flare", user="legacy-user")
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == ["gpt-image-2.6-flare", "dall-e-3"]
    # The gpt-image caller's shape, with the fields read from the image; nothing dall-e-3 did not say.
    assert result.data and result.data[0].b64_json and result.output_format == "png"
    assert result.safety_identifier is None and result.usage is None and result.svg_usage is None


def test_grpc_sends_the_2_6_parameters_from_extra_params_and_reports_safety_identifier_and_svg_usage(
    admin: ImageGatewayClient, emulators: Emulators
) -> None:
    response = admin.generate_image(
        prompt="a logo",
        model="gpt-image-2.6-sunburst",
        output_format="svg",
        config=openai_target(emulators),
        safety_identifier="hashed-user-9",
        extra_params={"complexity": "medium", "svg": {"model": "svg-author", "reasoning": {"effort": "high"}}},
    )
    sent = emulators.openai.requests[-1].json or {}
    assert sent["complexity"] == "medium" and sent["svg"] == {"model": "svg-author", "reasoning": {"effort": "high"}}
    report = response.report
    assert report.output_format == "svg" and report.safety_identifier == "hashed-user-9"
    assert report.svg_usage.model == "svg-author" and report.svg_usage.reasoning_tokens > 0
    assert response.images[0].data.startswith(b"<svg")


def test_grpc_gif_frames_from_extra_params_arrive_as_integers(admin: ImageGatewayClient, emulators: Emulators) -> None:
    admin.generate_image(
        prompt="a spinning top",
        model="gpt-image-2.6-flare",
        output_format="gif",
        config=openai_target(emulators),
        extra_params={"frame_count": 3, "frame_duration_ms": 90},  # a Struct's numbers are doubles
    )
    sent = emulators.openai.requests[-1].json or {}
    assert (sent["frame_count"], sent["frame_duration_ms"]) == (3, 90)
    assert isinstance(sent["frame_count"], int)


def test_azure_receives_the_2_6_parameters_unchanged_and_its_safety_identifier_comes_back(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    emulators.azure.deployments["image26"] = "gpt-image-2.6-sunburst"
    target = {
        "provider": "azure-openai",
        "api_key": AZURE_SECRET,
        "resource_name": "my-resource",
        "deployment_id": "image26",
        "custom_host": emulators.azure.base_url,
    }
    try:
        with sdk(gateway, key, target) as client:
            result = client.images.generate(
                prompt="a lantern",
                model="gpt-image-2.6-sunburst",
                quality="xhigh",
                complexity="low",
                output_format="gif",
                frame_count=2,
                safety_identifier="hashed-user-3",
            )
    finally:
        del emulators.azure.deployments["image26"]
    sent = emulators.azure.requests[-1].json or {}
    assert {k: sent[k] for k in ("quality", "complexity", "output_format", "frame_count", "safety_identifier")} == {
        "quality": "xhigh",
        "complexity": "low",
        "output_format": "gif",
        "frame_count": 2,
        "safety_identifier": "hashed-user-3",
    }
    assert result.safety_identifier == "hashed-user-3" and result.output_format == "gif"


def test_a_cache_hit_never_answers_another_callers_safety_identifier(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    # ``user`` is not in the cache key (it does not change the images), but OpenAI answers it as the
    # effective safety_identifier: the second caller must not read the first one's.
    config = {**openai_target(emulators), "cache": {"mode": "simple", "max_age": 600}}
    prompt = f"a cached lantern {uuid.uuid4().hex}"
    with sdk(gateway, key, config) as client:
        first = client.images.with_raw_response.generate(prompt=prompt, model="gpt-image-2.6-flare", user="alice")
        second = client.images.with_raw_response.generate(prompt=prompt, model="gpt-image-2.6-flare", user="bob")
    assert first.headers["x-portkey-cache-status"] == "MISS" and first.parse().safety_identifier == "alice"
    assert second.headers["x-portkey-cache-status"] == "HIT" and second.parse().safety_identifier is None
    assert len(emulators.openai.requests) == 1
