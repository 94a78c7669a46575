"""Key limits over both front ends, against the emulators: requests per minute, daily budgets,
virtual keys over budget inside a fallback, limits shown by get/list, and limits and spend kept
across a gateway restart.

DALL-E 3 at 1024x1024 costs $0.040 by the built-in price table, so budgets below are multiples of it.
"""

from __future__ import annotations

import io
import json
import math
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2

from imagegateway import ImageGatewayClient, ImageGatewayError
from imagegateway.v1 import keys_pb2
from imagegateway_server.cli import main as cli_main
from tests.conftest import OPENAI_SECRET, Emulators, Seed, eventually
from tests.emulators import OpenAIEmulator
from tests.harness import GatewayThread, running_gateway
from tests.integration.test_grpc_api import prometheus_samples

GENERATIONS = "/images/generations"
DALL_E_3 = {"prompt": "a lighthouse at dusk", "model": "dall-e-3", "response_format": "b64_json"}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def key_with(admin: ImageGatewayClient, **limits: Any) -> str:
    """A new generate key with these limits; returns its plaintext."""
    return admin.create_api_key(unique("limited"), "generate", limits=keys_pb2.Limits(**limits)).key


def vk_with(admin: ImageGatewayClient, base_url: str, **limits: Any) -> str:
    """A new OpenAI virtual key (on the emulator) with these limits; returns its id."""
    return admin.create_virtual_key(
        unique("limited-openai"), "openai", OPENAI_SECRET, base_url=base_url, limits=keys_pb2.Limits(**limits)
    ).id


@pytest.fixture
def rest(gateway: GatewayThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.rest_base_url, timeout=30.0) as client:
        yield client


def generate(rest: httpx.Client, key: str, virtual_key: str, **headers: str) -> httpx.Response:
    return rest.post(
        GENERATIONS, json=DALL_E_3, headers={"x-portkey-api-key": key, "x-portkey-virtual-key": virtual_key, **headers}
    )


def refusal(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    error: dict[str, Any] = response.json()["error"]
    assert {"message", "type", "param", "code"} <= error.keys()
    return error


def seconds_to_utc_midnight() -> float:
    now = datetime.now(UTC)
    return (datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1) - now).total_seconds()


# -- requests per minute ----------------------------------------------------------------------------


def test_rest_over_a_keys_requests_per_minute_is_429_with_retry_after_and_may_be_retried(
    rest: httpx.Client, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    key = key_with(admin, requests_per_minute=2)
    responses = [generate(rest, key, seed.openai_vk) for _ in range(4)]
    statuses = [r.status_code for r in responses]
    # The sliding minute lets at most one more through when the burst straddles a clock minute.
    assert statuses.count(200) in (2, 3) and statuses[:2] == [200, 200], statuses
    refused = responses[statuses.index(429)]
    error = refusal(refused)
    assert (error["code"], error["type"], error["param"]) == ("rate_limit_exceeded", "rate_limit_error", None)
    assert "2 requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 61
    assert refused.headers["x-should-retry"] == "true"  # the one error the SDK may retry on its own
    assert len(emulators.openai.requests) == statuses.count(200)  # refused requests never went upstream
    record = eventually(lambda: next(iter(admin.list_logs(trace_id=refused.headers["x-portkey-trace-id"]).logs), None))
    assert (record.status_code, record.cost_usd, list(record.attempts)) == (429, 0.0, [])


def test_grpc_over_a_keys_requests_per_minute_is_resource_exhausted_with_retry_info(
    gateway: GatewayThread, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    with ImageGatewayClient(gateway.grpc_target, api_key=key_with(admin, requests_per_minute=1)) as client:
        errors: list[ImageGatewayError] = []
        for _ in range(3):
            try:
                client.generate_image(prompt="a kite", model="dall-e-3", virtual_key=seed.openai_vk)
            except ImageGatewayError as exc:
                errors.append(exc)
    assert 1 <= len(errors) <= 2
    error = errors[0]
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error.error_info
    assert info is not None and info.reason == "RATE_LIMITED"
    assert (info.metadata["limit"], info.metadata["key_kind"], info.metadata["http_status"]) == (
        "requests_per_minute",
        "gateway key",
        "429",
    )
    retry = error.detail(error_details_pb2.RetryInfo)
    assert retry is not None and 1 <= retry.retry_delay.seconds <= 61


def refusals_counted(gateway: GatewayThread) -> dict[tuple[str, str], float]:
    """imagegateway_limit_refusals_total by (scope, limit), read from /metrics."""
    text = httpx.get(gateway.metrics_url, timeout=10).text
    return {
        (labels["scope"], labels["limit"]): value
        for name, labels, value in prometheus_samples(text)
        if name == "imagegateway_limit_refusals_total"
    }


def test_refusals_by_a_keys_requests_per_minute_are_counted_by_scope_and_limit(
    rest: httpx.Client, gateway: GatewayThread, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    before = refusals_counted(gateway)
    assert len(before) == 6 and ("virtual_key", "usd_per_month") in before  # every series exists from the start
    key = key_with(admin, requests_per_minute=1)
    statuses = [generate(rest, key, seed.openai_vk).status_code for _ in range(3)]
    refused_by_key = statuses.count(429)
    assert statuses[0] == 200 and refused_by_key >= 1, statuses

    # A virtual key over its requests per minute, skipped inside a fallback, is a refusal too.
    limited = vk_with(admin, emulators.openai.base_url, requests_per_minute=1)
    config = json.dumps(
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"virtual_key": limited, "override_params": {"model": "dall-e-3"}},
                {"virtual_key": seed.stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}},
            ],
        }
    )
    unlimited = key_with(admin)
    served = [
        rest.post(GENERATIONS, json=DALL_E_3, headers={"x-portkey-api-key": unlimited, "x-portkey-config": config})
        for _ in range(3)
    ]
    assert [r.status_code for r in served] == [200, 200, 200], [r.text for r in served]
    skipped = [r.headers["x-portkey-last-used-option-index"] for r in served].count("config.targets[1]")
    assert skipped >= 1

    after = refusals_counted(gateway)
    moved = {labels: after[labels] - before[labels] for labels in after if after[labels] != before[labels]}
    assert moved == {
        ("gateway_key", "requests_per_minute"): refused_by_key,
        ("virtual_key", "requests_per_minute"): skipped,
    }


# -- budgets ----------------------------------------------------------------------------------------


def test_a_daily_budget_is_reached_after_some_requests_on_both_front_ends(
    rest: httpx.Client, gateway: GatewayThread, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    key = key_with(admin, usd_per_day=0.08)
    assert [generate(rest, key, seed.openai_vk).status_code for _ in range(2)] == [200, 200]
    refused = generate(rest, key, seed.openai_vk)
    error = refusal(refused)
    assert (error["code"], error["type"]) == ("budget_exceeded", "insufficient_quota")
    assert "0.08 USD per UTC day" in error["message"]
    assert math.isclose(int(refused.headers["retry-after"]), seconds_to_utc_midnight(), abs_tol=60)
    assert refused.headers["x-should-retry"] == "false"  # hours away: not worth an SDK retry
    assert len(emulators.openai.requests) == 2

    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client, pytest.raises(ImageGatewayError) as info:
        client.generate_image(prompt="a kite", model="dall-e-3", virtual_key=seed.openai_vk)
    assert info.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert info.value.reason == "BUDGET_EXCEEDED"
    retry = info.value.detail(error_details_pb2.RetryInfo)
    assert retry is not None and math.isclose(retry.retry_delay.seconds, seconds_to_utc_midnight(), abs_tol=60)


def test_a_virtual_key_over_its_budget_is_refused_directly_and_skipped_by_a_fallback(
    rest: httpx.Client, gateway: GatewayThread, admin: ImageGatewayClient, seed: Seed, emulators: Emulators
) -> None:
    key = key_with(admin)  # the gateway key has no limits: the virtual key's budget is what refuses
    limited = vk_with(admin, emulators.openai.base_url, usd_per_day=0.04)
    assert generate(rest, key, limited).status_code == 200
    error = refusal(generate(rest, key, limited))
    assert error["code"] == "budget_exceeded" and f"virtual key {limited}" in error["message"]

    emulators.openai.reset()
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"virtual_key": limited, "override_params": {"model": "dall-e-3"}},
            {"virtual_key": seed.stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}},
        ],
    }
    served = rest.post(
        GENERATIONS, json=DALL_E_3, headers={"x-portkey-api-key": key, "x-portkey-config": json.dumps(config)}
    )
    assert served.status_code == 200, served.text
    assert served.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert emulators.openai.requests == [] and len(emulators.stability.requests) == 1
    record = eventually(lambda: next(iter(admin.list_logs(trace_id=served.headers["x-portkey-trace-id"]).logs), None))
    assert [(a.target, a.status_code) for a in record.attempts] == [
        ("config.targets[0]", 429),
        ("config.targets[1]", 200),
    ]
    assert "budget" in record.attempts[0].error and record.fallback_used

    with ImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        response = client.generate_image(prompt="a kite", config=config)
    assert response.outcome.served_target == "config.targets[1]"
    assert [a.status_code for a in response.outcome.attempts] == [429, 200]


# -- storing limits ---------------------------------------------------------------------------------


def test_limits_are_shown_by_get_and_list(admin: ImageGatewayClient, emulators: Emulators) -> None:
    limits = keys_pb2.Limits(requests_per_minute=30, usd_per_day=1.5, usd_per_month=20)
    created = admin.create_api_key(unique("shown"), "generate", limits=limits)
    assert created.api_key.limits == limits
    listed = {k.id: k for k in admin.iter_api_keys()}
    assert listed[created.api_key.id].limits == limits
    vk = admin.create_virtual_key(
        unique("shown"),
        "openai",
        OPENAI_SECRET,
        base_url=emulators.openai.base_url,
        limits=keys_pb2.Limits(usd_per_month=7.25),
    )
    assert admin.get_virtual_key(vk.id).limits == keys_pb2.Limits(usd_per_month=7.25)
    assert {k.id: k for k in admin.iter_virtual_keys()}[vk.id].limits.usd_per_month == 7.25
    unlimited = admin.create_api_key(unique("unlimited"), "generate").api_key
    assert unlimited.limits == keys_pb2.Limits()


def test_the_cli_sets_and_shows_limits(
    gateway: GatewayThread, emulators: Emulators, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = ["--server", gateway.grpc_target, "--api-key", gateway.admin_key, "-o", "json"]
    assert (
        cli_main(
            [
                *base,
                "api-keys",
                "create",
                "--name",
                unique("cli"),
                "--rpm",
                "12",
                "--usd-per-day",
                "3",
                "--usd-per-month",
                "40",
            ]
        )
        == 0
    )
    created = json.loads(capsys.readouterr().out)
    assert created["limits"] == {"requests_per_minute": 12, "usd_per_day": 3.0, "usd_per_month": 40.0}
    assert cli_main([*base, "api-keys", "get", created["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["limits"]["usd_per_month"] == 40.0

    monkeypatch.setattr("sys.stdin", io.StringIO(OPENAI_SECRET))
    name = unique("cli-vk")
    assert (
        cli_main(
            [
                *base,
                "virtual-keys",
                "create",
                "--name",
                name,
                "--provider",
                "openai",
                "--api-key-stdin",
                "--base-url",
                emulators.openai.base_url,
                "--usd-per-day",
                "0.5",
            ]
        )
        == 0
    )
    vk = json.loads(capsys.readouterr().out)
    assert cli_main([*base, "virtual-keys", "get", vk["id"]]) == 0
    assert json.loads(capsys.readouterr().out)["limits"]["usd_per_day"] == 0.5

    assert cli_main([*base, "api-keys", "create", "--name", unique("cli"), "--usd-per-day", "-1"]) != 0
    assert "limits.usd_per_day" in capsys.readouterr().err


@pytest.mark.parametrize("field", ["requests_per_minute", "usd_per_day", "usd_per_month"])
def test_negative_limits_are_invalid_argument_naming_the_field(admin: ImageGatewayClient, field: str) -> None:
    for create in (
        lambda limits: admin.create_api_key(unique("bad"), "generate", limits=limits),
        lambda limits: admin.create_virtual_key(unique("bad"), "openai", "sk-x", limits=limits),
    ):
        with pytest.raises(ImageGatewayError) as info:
            create(keys_pb2.Limits(**{field: -1}))
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.error_info is not None and info.value.error_info.metadata["param"] == f"limits.{field}"


# -- across a restart --------------------------------------------------------------------------------


def test_limits_and_spend_survive_a_gateway_restart(tmp_path: Path, openai_emulator: OpenAIEmulator) -> None:
    openai_emulator.reset()
    data_dir = tmp_path / "gateway"
    with running_gateway(data_dir) as first, ImageGatewayClient(first.grpc_target, api_key=first.admin_key) as admin:
        limited_key = admin.create_api_key("budgeted", "generate", limits=keys_pb2.Limits(usd_per_day=0.04))
        vk = admin.create_virtual_key(
            "budgeted-openai",
            "openai",
            OPENAI_SECRET,
            base_url=openai_emulator.base_url,
            limits=keys_pb2.Limits(requests_per_minute=100, usd_per_month=0.04),
        )
        with ImageGatewayClient(first.grpc_target, api_key=limited_key.key) as client:
            client.generate_image(prompt="a kite", model="dall-e-3", virtual_key=vk.id)
        eventually(lambda: list(admin.list_logs(caller_key_id=limited_key.api_key.id).logs))

    with running_gateway(data_dir) as second, ImageGatewayClient(second.grpc_target, api_key=second.admin_key) as admin:
        assert {k.id: k for k in admin.iter_api_keys()}[limited_key.api_key.id].limits.usd_per_day == 0.04
        assert admin.get_virtual_key(vk.id).limits == keys_pb2.Limits(requests_per_minute=100, usd_per_month=0.04)
        with (
            ImageGatewayClient(second.grpc_target, api_key=limited_key.key) as client,
            pytest.raises(ImageGatewayError) as by_key,
        ):
            client.generate_image(prompt="a kite", model="dall-e-3", virtual_key=vk.id)
        assert by_key.value.reason == "BUDGET_EXCEEDED"
        assert by_key.value.error_info is not None and by_key.value.error_info.metadata["key_kind"] == "gateway key"
        with pytest.raises(ImageGatewayError) as by_vk:  # the admin key has no limits; the virtual key's month does
            admin.generate_image(prompt="a kite", model="dall-e-3", virtual_key=vk.id)
        info = by_vk.value.error_info
        assert info is not None and (info.reason, info.metadata["key_kind"], info.metadata["limit"]) == (
            "BUDGET_EXCEEDED",
            "virtual key",
            "usd_per_month",
        )
    assert len(openai_emulator.requests) == 1
