"""Parameter translation end to end: REST shim and gRPC, against emulators that enforce each model's rules.

The emulators refuse sizes, qualities and fields their model does not take, so a 200 here means the
translated request is one the real API accepts. Model aliases run on a second gateway started with
IMAGEGW_MODEL_ALIASES_FILE pointing at an enabled table.
"""

from __future__ import annotations

import base64
import json
import struct
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from imagegateway import ImageGatewayClient, InvalidArgumentError
from imagegateway.v1 import images_pb2
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators, Seed, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway

GENERATIONS = "/images/generations"
HTTP_TIMEOUT = 30.0
RPC_TIMEOUT = 30.0
TRANSLATED = "x-imagegw-translated"


# -- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"translation-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture
def rest(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        yield client


@pytest.fixture(scope="module")
def generator(gateway: GatewayThread, generate_key: str) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(gateway.grpc_target, api_key=generate_key, timeout=RPC_TIMEOUT) as client:
        yield client


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def b64_png_size(response: httpx.Response) -> tuple[int, int]:
    return png_size(base64.b64decode(response.json()["data"][0]["b64_json"]))


def body(**fields: Any) -> dict[str, Any]:
    return {"prompt": "a kraken in the milky way", "response_format": "b64_json", **fields}


def cookbook(key: str, seed: Seed, **headers: str) -> dict[str, str]:
    return {"x-portkey-api-key": key, "x-portkey-config": seed.config_id, **headers}


def openai_direct(key: str, emulators: Emulators, **headers: str) -> dict[str, str]:
    return {
        "x-portkey-api-key": key,
        "x-portkey-provider": "openai",
        "authorization": f"Bearer {OPENAI_SECRET}",
        "x-portkey-custom-host": emulators.openai.base_url,
        **headers,
    }


def stability_direct(key: str, emulators: Emulators, **headers: str) -> dict[str, str]:
    return {
        "x-portkey-api-key": key,
        "x-portkey-provider": "stability-ai",
        "authorization": f"Bearer {STABILITY_SECRET}",
        "x-portkey-custom-host": emulators.stability.base_url,
        **headers,
    }


def error_of(response: httpx.Response, param: str) -> dict[str, Any]:
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    return error


# -- the cookbook fallback with size="1792x1024" ------------------------------------------------------


def test_rest_cookbook_translates_1792x1024_to_what_stable_diffusion_v1_6_makes(
    rest: httpx.Client, generate_key: str, seed: Seed, emulators: Emulators
) -> None:
    response = rest.post(GENERATIONS, json=body(size="1792x1024"), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    assert set(response.json()) == {"created", "data"}  # the body stays OpenAI's
    assert b64_png_size(response) == (1344, 768)
    assert response.headers["x-portkey-provider"] == "stability-ai"
    assert response.headers["x-imagegw-model"] == "stable-diffusion-v1-6"
    assert response.headers["x-imagegw-size"] == "1344x768"
    assert response.headers[TRANSLATED] == "size=1792x1024->1344x768"
    sent = emulators.stability.requests[-1].json
    assert sent is not None and (sent["width"], sent["height"]) == (1344, 768)
    assert emulators.openai.requests == []


def test_translations_are_recorded_on_the_serving_attempt_in_the_log(
    rest: httpx.Client, generate_key: str, seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    trace_id = "translated-" + uuid.uuid4().hex
    response = rest.post(
        GENERATIONS,
        json=body(size="1792x1024"),
        headers={**cookbook(generate_key, seed), "x-portkey-trace-id": trace_id},
    )
    assert response.status_code == 200, response.text
    log = eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))
    assert [list(a.translations) for a in log.attempts] == [["size=1792x1024->1344x768"]]


def test_rest_cookbook_falls_back_to_dall_e_3_which_takes_1792x1024_as_given(
    rest: httpx.Client, generate_key: str, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    response = rest.post(GENERATIONS, json=body(size="1792x1024"), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    assert b64_png_size(response) == (1792, 1024)
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert (response.headers["x-imagegw-model"], response.headers["x-imagegw-size"]) == ("dall-e-3", "1792x1024")
    assert TRANSLATED not in response.headers
    sent = emulators.openai.requests[-1].json
    assert sent is not None and (sent["model"], sent["size"]) == ("dall-e-3", "1792x1024")


def test_rest_dall_e_3_fans_n_out_and_says_so(
    rest: httpx.Client, generate_key: str, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    response = rest.post(GENERATIONS, json=body(size="1792x1024", n=3), headers=cookbook(generate_key, seed))

    assert response.status_code == 200, response.text
    assert len(response.json()["data"]) == 3
    assert response.headers[TRANSLATED] == "n=3->3x1"
    calls = emulators.openai.requests
    assert len(calls) == 3 and all(call.json is not None and call.json["n"] == 1 for call in calls)


def test_grpc_cookbook_reports_provider_model_and_size_per_image(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    response = generator.generate_image(prompt="a kraken", config_id=seed.config_id, size="1792x1024", n=2)

    assert [(i.provider, i.model, i.size, i.width, i.height) for i in response.images] == [
        ("stability-ai", "stable-diffusion-v1-6", "1344x768", 1344, 768)
    ] * 2
    assert png_size(response.images[0].data) == (1344, 768)
    sent = emulators.stability.requests[-1].json
    assert sent is not None and (sent["width"], sent["height"], sent["samples"]) == (1344, 768, 2)


def test_grpc_cookbook_fallback_image_names_dall_e_3(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    emulators.stability.inject(Fault.status(503))
    response = generator.generate_image(prompt="a kraken", config_id=seed.config_id, size="1792x1024")

    image = response.images[0]
    assert (image.provider, image.model, image.size) == ("openai", "dall-e-3", "1792x1024")
    assert response.outcome.fallback_used


def test_grpc_stream_carries_the_size_on_every_image(
    generator: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    messages = list(generator.stream_generate_image(prompt="a kraken", config_id=seed.config_id, size="1792x1024", n=2))
    assert [m.image.size for m in messages] == ["1344x768", "1344x768"]


# -- strict -----------------------------------------------------------------------------------------


def test_rest_strict_header_refuses_the_translation_so_the_cookbook_moves_on_to_dall_e_3(
    rest: httpx.Client, generate_key: str, seed: Seed, emulators: Emulators, admin: ImageGatewayClient
) -> None:
    trace_id = f"strict-{uuid.uuid4().hex[:8]}"
    headers = cookbook(generate_key, seed, **{"x-imagegw-strict": "true", "x-portkey-trace-id": trace_id})
    response = rest.post(GENERATIONS, json=body(size="1792x1024"), headers=headers)

    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert response.headers["x-imagegw-size"] == "1792x1024"
    assert TRANSLATED not in response.headers
    assert emulators.stability.requests == []  # refused before any call
    log = eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))
    first = log.attempts[0]
    assert (first.provider, first.status_code) == ("stability-ai", 400)
    assert "'size'" in first.error and "strict" in first.error


def test_rest_strict_header_on_a_single_target_is_a_400_naming_the_parameter(
    rest: httpx.Client, generate_key: str, emulators: Emulators
) -> None:
    headers = stability_direct(generate_key, emulators, **{"x-imagegw-strict": "true"})
    response = rest.post(GENERATIONS, json=body(model="stable-diffusion-v1-6", size="1792x1024"), headers=headers)

    error = error_of(response, "size")
    assert "strict" in error["message"]
    assert emulators.stability.requests == []


@pytest.mark.parametrize(
    ("fields", "headers", "param"),
    [
        ({"strict": True}, {}, "strict"),
        ({}, {"x-imagegw-strict": "maybe"}, "x-imagegw-strict"),
    ],
    ids=["strict_in_the_body", "bad_header_value"],
)
def test_rest_strict_is_a_header_only(
    rest: httpx.Client,
    generate_key: str,
    emulators: Emulators,
    fields: dict[str, Any],
    headers: dict[str, str],
    param: str,
) -> None:
    response = rest.post(
        GENERATIONS, json=body(model="dall-e-3", **fields), headers=openai_direct(generate_key, emulators, **headers)
    )
    error_of(response, param)
    assert emulators.openai.requests == []


def test_strict_set_on_a_config_target_refuses_the_translation(
    rest: httpx.Client, generate_key: str, seed: Seed, emulators: Emulators
) -> None:
    config = {"virtual_key": seed.stability_vk, "strict": True, "override_params": {"model": "stable-diffusion-v1-6"}}
    headers = {"x-portkey-api-key": generate_key, "x-portkey-config": json.dumps(config)}
    error = error_of(rest.post(GENERATIONS, json=body(size="1792x1024"), headers=headers), "size")
    assert "strict" in error["message"]
    ok = rest.post(GENERATIONS, json=body(size="1344x768"), headers=headers)  # what it makes: as given
    assert ok.status_code == 200, ok.text


def test_grpc_strict_parameter_is_invalid_argument_naming_the_parameter(
    generator: ImageGatewayClient, emulators: Emulators
) -> None:
    request = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="a kraken", model="dall-e-3", n=2, strict=True),
        routing=images_pb2.Routing(
            provider="openai", provider_api_key=OPENAI_SECRET, custom_host=emulators.openai.base_url
        ),
    )
    with pytest.raises(InvalidArgumentError) as info:
        generator.generate_image(request)
    assert info.value.error_info is not None and info.value.error_info.metadata["param"] == "n"
    assert emulators.openai.requests == []


# -- other rows of the tables, accepted by the emulators ----------------------------------------------


@pytest.mark.parametrize(
    ("provider", "fields", "sent", "translated", "size"),
    [
        (
            "openai",
            {"model": "dall-e-2", "size": "1792x1024"},
            {"size": "1024x1024"},
            "size=1792x1024->1024x1024",
            "1024x1024",
        ),
        (
            "openai",
            {"model": "gpt-image-1", "size": "1792x1024", "quality": "hd"},
            {"size": "1536x1024", "quality": "high"},
            "size=1792x1024->1536x1024, quality=hd->high",
            "1536x1024",
        ),
        (
            "openai",
            {"model": "gpt-image-2", "size": "1000x1000"},
            {"size": "1008x1008"},
            "size=1000x1000->1008x1008",
            "1008x1008",
        ),
        (
            "openai",
            {"model": "dall-e-3", "size": "auto", "quality": "high"},
            {"quality": "hd"},
            "quality=high->hd",
            "1024x1024",
        ),
        (
            "stability-ai",
            {"model": "stable-diffusion-xl-1024-v1-0", "size": "1024x1792", "quality": "hd"},
            {"width": 768, "height": 1344, "steps": 50},
            "size=1024x1792->768x1344, quality=hd->steps=50",
            "768x1344",
        ),
        (
            "stability-ai",
            {"model": "core", "size": "1792x1024"},
            {"aspect_ratio": "16:9"},
            "size=1792x1024->16:9",
            "1344x768",
        ),
        ("stability-ai", {"model": "ultra", "size": "1920x1080"}, {"aspect_ratio": "16:9"}, None, "1344x768"),
    ],
    ids=[
        "dall_e_2_size",
        "gpt_image_quality",
        "gpt_image_2_custom",
        "dall_e_3_auto_size",
        "sdxl_steps",
        "core_ratio",
        "ultra_exact_ratio",
    ],
)
def test_translated_requests_are_accepted_by_the_emulators(
    rest: httpx.Client,
    generate_key: str,
    emulators: Emulators,
    provider: str,
    fields: dict[str, Any],
    sent: dict[str, Any],
    translated: str | None,
    size: str,
) -> None:
    direct = openai_direct if provider == "openai" else stability_direct
    response = rest.post(GENERATIONS, json=body(**fields), headers=direct(generate_key, emulators))

    assert response.status_code == 200, response.text
    assert response.headers.get(TRANSLATED) == translated
    assert response.headers["x-imagegw-size"] == size
    assert b64_png_size(response) == tuple(int(side) for side in size.split("x"))
    emulator = emulators.openai if provider == "openai" else emulators.stability
    recorded = emulator.requests[-1]
    payload = recorded.json if recorded.json is not None else recorded.form
    assert payload is not None
    assert {k: payload.get(k) for k in sent} == sent
    assert "size" not in payload or provider == "openai"


@pytest.mark.parametrize(
    ("provider", "fields", "param"),
    [
        ("openai", {"model": "gpt-image-1", "style": "vivid"}, "style"),
        ("openai", {"model": "dall-e-2", "quality": "hd"}, "quality"),
        ("openai", {"model": "dall-e-3", "seed": 7}, "seed"),
        ("stability-ai", {"model": "core", "background": "transparent"}, "background"),
        ("stability-ai", {"model": "core", "quality": "hd"}, "quality"),
        ("stability-ai", {"model": "stable-diffusion-v1-6", "moderation": "low"}, "moderation"),
    ],
    ids=[
        "style_to_gpt_image",
        "hd_to_dall_e_2",
        "seed_to_openai",
        "background_to_stability",
        "quality_to_core",
        "moderation_to_stability",
    ],
)
def test_parameters_without_an_equivalent_are_a_400_naming_them_before_any_call(
    rest: httpx.Client,
    generate_key: str,
    emulators: Emulators,
    provider: str,
    fields: dict[str, Any],
    param: str,
) -> None:
    direct = openai_direct if provider == "openai" else stability_direct
    error_of(rest.post(GENERATIONS, json=body(**fields), headers=direct(generate_key, emulators)), param)
    assert emulators.openai.requests == [] and emulators.stability.requests == []


def test_url_response_from_a_bytes_provider_is_a_data_url(
    rest: httpx.Client, generate_key: str, emulators: Emulators
) -> None:
    response = rest.post(
        GENERATIONS, json=body(model="core", response_format="url"), headers=stability_direct(generate_key, emulators)
    )

    assert response.status_code == 200, response.text
    url = response.json()["data"][0]["url"]
    assert url.startswith("data:image/png;base64,")
    png_size(base64.b64decode(url.split(",", 1)[1]))


# -- model aliases ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def alias_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    """A second gateway with the dall-e-3 -> gpt-image-1 alias enabled."""
    directory = tmp_path_factory.mktemp("alias-gateway")
    table = directory / "aliases.json"
    table.write_text(
        json.dumps(
            {
                "aliases": [
                    {
                        "provider": "openai",
                        "model": "dall-e-3",
                        "successor": "gpt-image-1",
                        "enabled": True,
                        "params": {"quality": {"standard": "medium", "hd": "high"}},
                    }
                ]
            }
        )
    )
    with running_gateway(directory / "data", model_aliases_file=str(table)) as running:
        yield running


def test_an_enabled_alias_lets_dall_e_3_code_run_on_gpt_image_1(
    alias_gateway: GatewayThread, emulators: Emulators
) -> None:
    headers = openai_direct(alias_gateway.admin_key, emulators)
    with httpx.Client(base_url=alias_gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        response = client.post(
            GENERATIONS,
            headers=headers,
            json={
                "prompt": "a kraken",
                "model": "dall-e-3",
                "size": "1792x1024",
                "quality": "hd",
                "response_format": "url",
            },
        )

    assert response.status_code == 200, response.text
    assert response.json()["data"][0]["url"].startswith("data:image/png;base64,")
    assert response.headers["x-imagegw-model"] == "gpt-image-1"
    assert response.headers["x-imagegw-size"] == "1536x1024"
    assert response.headers[TRANSLATED] == ("model=dall-e-3->gpt-image-1, quality=hd->high, size=1792x1024->1536x1024")
    sent = emulators.openai.requests[-1].json
    assert sent is not None
    assert {k: sent.get(k) for k in ("model", "size", "quality")} == {
        "model": "gpt-image-1",
        "size": "1536x1024",
        "quality": "high",
    }
    assert "response_format" not in sent


def test_an_alias_refuses_what_the_successor_cannot_take_and_strict_refuses_the_alias(
    alias_gateway: GatewayThread, emulators: Emulators
) -> None:
    with httpx.Client(base_url=alias_gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        styled = client.post(
            GENERATIONS,
            headers=openai_direct(alias_gateway.admin_key, emulators),
            json=body(model="dall-e-3", style="vivid"),
        )
        error_of(styled, "style")
    with ImageGatewayClient(alias_gateway.grpc_target, api_key=alias_gateway.admin_key, timeout=RPC_TIMEOUT) as client:
        request = images_pb2.GenerateImageRequest(
            parameters=images_pb2.ImageParameters(prompt="a kraken", model="dall-e-3", strict=True),
            routing=images_pb2.Routing(
                provider="openai", provider_api_key=OPENAI_SECRET, custom_host=emulators.openai.base_url
            ),
        )
        with pytest.raises(InvalidArgumentError) as info:
            client.generate_image(request)
    assert info.value.error_info is not None and info.value.error_info.metadata["param"] == "model"
    assert emulators.openai.requests == []
