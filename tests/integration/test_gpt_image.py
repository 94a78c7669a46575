"""gpt-image as OpenAI answers it, over real sockets with the OpenAI SDK and gRPC stubs.

Default ``b64_json``, the response-level fields and ``usage``, the answer's shape kept through a
fallback, cost from ``usage``, and retired models served by their successor (one retry, remembered
per account, said in a header, trailing metadata, the log and a metric; ``model_successor: false``
opts out). The retired-model tests run their own gateway: what it remembers must not reach the
session gateway's other tests, which still send dall-e-3 to the emulator.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest

from imagegateway import ImageGatewayClient
from imagegateway.errors import NotFoundError
from imagegateway.v1 import images_pb2, service_pb2_grpc
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.retired_models import load_retired_models
from tests.conftest import OPENAI_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.emulators.images import solid_image
from tests.harness import GatewayThread, running_gateway
from tests.image_fixtures import openai_target

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTTP_TIMEOUT = 30.0
SUBSTITUTED = "x-imagegw-model-substituted"


def sdk(gateway: GatewayThread, key: str, config: dict[str, Any]) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key, "x-portkey-config": json.dumps(config)},
    )


def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"gpt-image-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return generate_key(admin)


def usd(tokens: dict[str, int], rates: dict[str, float]) -> float:
    return sum(tokens[kind] * rates[kind] for kind in rates) / 1_000_000


# -- the shape OpenAI answers with -------------------------------------------------------------------


def test_gpt_image_without_response_format_answers_b64_json_with_usage_and_the_response_fields(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        raw = client.images.with_raw_response.generate(
            prompt="a lighthouse at dusk", model="gpt-image-1.5", extra_body={"safety_identifier": "user-42"}
        )
    result = raw.parse()
    assert result.data and result.data[0].url is None
    assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    assert (result.background, result.output_format, result.quality, result.size) == (
        "opaque",
        "png",
        "high",
        "1024x1024",
    )
    usage = result.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.input_tokens_details.text_tokens == usage.input_tokens
    sent = emulators.openai.requests[-1].json or {}
    assert sent["safety_identifier"] == "user-42" and "response_format" not in sent
    # Cost from usage: text input at $5 and image output at $32 per million tokens (gpt-image-1.5).
    details = usage.output_tokens_details
    assert details is not None
    tokens = {"text_input": usage.input_tokens, "image_output": details.image_tokens}
    expected = usd(tokens, {"text_input": 5.0, "image_output": 32.0})
    assert float(raw.headers["x-imagegw-cost-usd"]) == pytest.approx(expected, abs=1e-6)


def test_every_gpt_image_parameter_reaches_openai_unchanged(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        result = client.images.generate(
            prompt="a glass bird",
            model="gpt-image-2.5-sunburst",
            quality="max",  # type: ignore[arg-type]  # newer than the SDK's literal
            size="1536x864",
            background="transparent",
            output_format="webp",
            output_compression=80,
            moderation="low",
            user="legacy-user",
        )
    sent = emulators.openai.requests[-1].json or {}
    assert {k: sent[k] for k in ("quality", "size", "background", "output_format", "output_compression")} == {
        "quality": "max",
        "size": "1536x864",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 80,
    }
    assert sent["moderation"] == "low" and sent["user"] == "legacy-user"
    assert result.output_format == "webp" and result.background == "transparent" and result.quality == "max"


def test_a_fallback_from_gpt_image_to_dall_e_3_keeps_the_b64_json_shape(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators), openai_target(emulators, override_params={"model": "dall-e-3"})],
    }
    with sdk(gateway, key, config) as client:
        result = client.images.generate(prompt="a red kite", model="gpt-image-1.5")
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == ["gpt-image-1.5", "dall-e-3"]
    assert result.data and result.data[0].url is None and result.data[0].b64_json
    # What the SDK user of gpt-image reads is there, read from the images dall-e-3 made; usage is never made up.
    assert result.output_format == "png" and result.size == "1024x1024" and result.usage is None


def test_a_fallback_from_dall_e_3_to_gpt_image_keeps_the_url_shape(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [openai_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1.5"})],
    }
    with sdk(gateway, key, config) as client:
        result = client.images.generate(prompt="a red kite", model="dall-e-3")
    assert result.data and result.data[0].b64_json is None
    assert (result.data[0].url or "").startswith("data:image/png;base64,")


def test_without_a_model_the_primary_targets_model_decides_the_shape(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    config = openai_target(emulators, override_params={"model": "gpt-image-1-mini"})
    with sdk(gateway, key, config) as client:
        result = client.images.generate(prompt="a red kite")
    assert result.data and result.data[0].b64_json and result.usage is not None


def test_a_smaller_image_than_asked_costs_what_was_asked(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    tiny = base64.b64encode(solid_image(64, 64)).decode()
    emulators.openai.inject(Fault.status(200, {"created": 1, "data": [{"b64_json": tiny}]}))
    with sdk(gateway, key, openai_target(emulators)) as client:
        raw = client.images.with_raw_response.generate(
            prompt="a kite", model="dall-e-3", size="1024x1024", quality="hd", response_format="b64_json"
        )
    assert raw.headers["x-imagegw-size"] == "64x64"
    assert float(raw.headers["x-imagegw-cost-usd"]) == pytest.approx(0.08)  # dall-e-3 hd 1024x1024


def test_grpc_answers_carry_the_report_and_usage(admin: ImageGatewayClient, emulators: Emulators) -> None:
    response = admin.generate_image(
        prompt="a lighthouse",
        model="gpt-image-1.5",
        config=openai_target(emulators),
        safety_identifier="user-7",
    )
    report = response.report
    assert (report.background, report.output_format, report.quality, report.size) == (
        "opaque",
        "png",
        "high",
        "1024x1024",
    )
    assert report.usage.input_tokens > 0 and report.usage.output_image_tokens > 0
    assert report.usage.total_tokens == report.usage.input_tokens + report.usage.output_tokens
    assert (emulators.openai.requests[-1].json or {})["safety_identifier"] == "user-7"
    assert response.outcome.cost_usd > 0


# -- retired models ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def retiring_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(Path(tmp_path_factory.mktemp("retiring"))) as running:
        yield running


@pytest.fixture(scope="module")
def retiring_admin(retiring_gateway: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(retiring_gateway.grpc_target, api_key=retiring_gateway.admin_key) as client:
        yield client


def expected_successor(model: str) -> str:
    today = datetime.datetime.now(datetime.UTC).date()
    succession = load_retired_models().successor_of("openai", ImageRequest(prompt="x", model=model), today)
    assert succession is not None
    return succession.successor


def substitutions(gateway: GatewayThread) -> dict[str, float]:
    text = httpx.get(gateway.metrics_url, timeout=HTTP_TIMEOUT).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("imagegateway_model_substitutions_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels] = float(value)
    return out


def test_a_retired_model_is_retried_once_with_its_successor_then_remembered(
    retiring_gateway: GatewayThread, retiring_admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.retire_models()
    successor = expected_successor("dall-e-3")
    key = generate_key(retiring_admin)
    with sdk(retiring_gateway, key, openai_target(emulators)) as client:
        raw = client.images.with_raw_response.generate(
            prompt="a harbour", model="dall-e-3", quality="hd", style="natural", size="1792x1024"
        )
        first = raw.parse()
        asked = [r.json for r in emulators.openai.requests if r.json]
        assert [body["model"] for body in asked] == ["dall-e-3", successor]
        retry = asked[1]
        assert retry["quality"] == "high" and "style" not in retry and "response_format" not in retry
        assert retry["size"] == "1792x1024"  # gpt-image-2 makes free sizes; no translation needed
        assert raw.headers[SUBSTITUTED] == f"dall-e-3->{successor}"
        assert f"model=dall-e-3->{successor}" in raw.headers["x-imagegw-translated"]
        assert "style=natural->omitted" in raw.headers["x-imagegw-translated"]
        # dall-e-3's caller asked for its shape: a URL (a data: URL, since the successor gives bytes).
        assert first.data and (first.data[0].url or "").startswith("data:image/png;base64,")

        emulators.openai.reset()
        emulators.openai.retire_models()
        again = client.images.with_raw_response.generate(prompt="a harbour", model="dall-e-3")
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == [successor]
    assert again.headers[SUBSTITUTED] == f"dall-e-3->{successor}"

    counts = substitutions(retiring_gateway)
    reasons = {labels.split('reason="')[1].split('"')[0]: value for labels, value in counts.items()}
    assert reasons == {"retired": 1.0, "remembered": 1.0}

    log_id = raw.headers["x-imagegw-log-id"]
    log = eventually(lambda: _log_or_none(retiring_admin, log_id))
    assert log.model_substitution.model == "dall-e-3" and log.model_substitution.successor == successor
    assert log.model_substitution.reason == "retired" and log.model_substitution.retired_on == "2026-05-12"
    assert [a.model for a in log.attempts] == ["dall-e-3", successor] and log.attempts[0].status_code == 404


def test_model_successor_false_leaves_the_404(
    retiring_gateway: GatewayThread, retiring_admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.retire_models()
    key = generate_key(retiring_admin)
    with (
        sdk(retiring_gateway, key, openai_target(emulators, model_successor=False)) as client,
        pytest.raises(openai.NotFoundError) as raised,
    ):
        client.images.generate(prompt="a harbour", model="dall-e-2")
    assert raised.value.code == "model_not_found"
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == ["dall-e-2"]


def test_a_model_that_is_not_retired_is_not_replaced_on_a_404(
    retiring_gateway: GatewayThread, retiring_admin: ImageGatewayClient, emulators: Emulators
) -> None:
    key = generate_key(retiring_admin)
    with sdk(retiring_gateway, key, openai_target(emulators)) as client, pytest.raises(openai.NotFoundError):
        client.images.generate(prompt="a harbour", model="gpt-image-9")
    assert len(emulators.openai.requests) == 1


def test_grpc_says_the_substitution_in_the_outcome_and_trailing_metadata(
    retiring_gateway: GatewayThread, retiring_admin: ImageGatewayClient, emulators: Emulators
) -> None:
    emulators.openai.retire_models()
    successor = expected_successor("gpt-image-1")
    key = generate_key(retiring_admin)
    request = images_pb2.GenerateImageRequest(
        parameters=images_pb2.ImageParameters(prompt="a harbour", model="gpt-image-1"),
        routing=images_pb2.Routing(
            provider="openai", provider_api_key=OPENAI_SECRET, custom_host=emulators.openai.base_url
        ),
    )
    with grpc.insecure_channel(retiring_gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        response, call = stub.GenerateImage.with_call(
            request, metadata=(("authorization", f"Bearer {key}"),), timeout=HTTP_TIMEOUT
        )
    substitution = response.outcome.model_substitution
    assert (substitution.model, substitution.successor) == ("gpt-image-1", successor)
    assert substitution.reason in ("retired", "remembered") and substitution.retired_on == "2026-10-23"
    assert (SUBSTITUTED, f"gpt-image-1->{successor}") in tuple(call.trailing_metadata() or ())
    assert response.images and response.images[0].model == successor


def _log_or_none(admin: ImageGatewayClient, log_id: str) -> Any:
    try:
        return admin.get_log(log_id)
    except NotFoundError:  # not written yet: logs are written in batches
        return None
