"""OpenTelemetry over OTLP, against a real local receiver: a span per request and one per attempt,
the caller's traceparent as parent, the log's trace id, GenAI and gateway attributes; nothing
loaded when the standard variables are unset."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegateway import ImageGatewayClient
from imagegateway_server.observability.otel import otel_trace_id, tracing_enabled
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread, running_gateway
from tests.otlp_receiver import OtlpReceiver

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
SERVER, CLIENT = 2, 3  # OTLP's SpanKind numbers
STATUS_ERROR = 2


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    yield from OtlpReceiver.running()


def _traced_gateway(
    tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> Iterator[GatewayThread]:
    # The SDK and its exporters read these when tracing starts, as in a real deployment.
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=images")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "imagegw-under-test")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    with running_gateway(tmp_path, breaker_consecutive_failures=0, breaker_failure_rate=0.0) as gateway:
        yield gateway


@pytest.fixture
def traced(tmp_path: Path, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[GatewayThread]:
    yield from _traced_gateway(tmp_path, receiver, monkeypatch, "http/protobuf")


def _fallback_config(
    gateway: GatewayThread, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> str:
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        stability = admin.create_virtual_key(
            "otel-stability", "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url
        )
        openai = admin.create_virtual_key("otel-openai", "openai", OPENAI_SECRET, base_url=openai_emulator.base_url)
        return admin.create_config(
            "otel-fallback",
            {
                "strategy": {"mode": "fallback"},
                "targets": [
                    {"virtual_key": stability.id, "override_params": {"model": "stable-diffusion-v1-6"}},
                    {"virtual_key": openai.id, "override_params": {"model": "dall-e-3"}},
                ],
            },
        ).id


def _generate(gateway: GatewayThread, config_id: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.rest_base_url}/images/generations",
        headers={"x-portkey-api-key": gateway.admin_key, "x-portkey-config": config_id, **headers},
        json={"prompt": "a lighthouse at dusk", "response_format": "b64_json", "size": "1024x1024"},
        timeout=30,
    )


def test_a_fallback_is_one_request_span_with_an_attempt_span_per_call(
    traced: GatewayThread,
    receiver: OtlpReceiver,
    emulators: Emulators,
    openai_emulator: OpenAIEmulator,
    stability_emulator: StabilityEmulator,
) -> None:
    config_id = _fallback_config(traced, openai_emulator, stability_emulator)
    emulators.stability.inject(Fault.status(503))
    response = _generate(traced, config_id, traceparent=f"00-{CALLER_TRACE}-{CALLER_SPAN}-01")
    assert response.status_code == 200, response.text
    assert response.headers["x-portkey-trace-id"] == CALLER_TRACE

    spans = receiver.trace(CALLER_TRACE, 3)
    assert len(spans) == 3, spans
    (request,) = [span for span in spans if span.kind == SERVER]
    attempts = sorted((span for span in spans if span.kind == CLIENT), key=lambda span: span.start_ns)
    assert request.parent_span_id == CALLER_SPAN  # the caller's traceparent is the parent
    assert request.resource["service.name"] == "imagegw-under-test"
    assert request.name == "generate_content dall-e-3"
    attributes = request.attributes
    assert attributes["gen_ai.operation.name"] == "generate_content"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.response.model"] == "dall-e-3"
    assert attributes["imagegateway.fallback_used"] is True
    assert attributes["imagegateway.target"] == "config.targets[1]"
    assert attributes["imagegateway.config_id"] == config_id
    assert attributes["imagegateway.log_id"] == response.headers["x-imagegw-log-id"]
    assert attributes["imagegateway.cost_usd"] == pytest.approx(0.04)
    assert attributes["imagegateway.attempts"] == 2

    failed, served = attempts
    assert all(span.parent_span_id == request.span_id for span in attempts)
    assert failed.attributes["gen_ai.provider.name"] == "stability-ai"
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.status_code == STATUS_ERROR
    assert failed.attributes["error.type"] == "unavailable"
    assert served.attributes["gen_ai.request.model"] == "dall-e-3"
    assert served.status_code != STATUS_ERROR
    # Children sit inside their parent's time, in order.
    assert request.start_ns <= failed.start_ns <= failed.end_ns <= served.start_ns <= served.end_ns <= request.end_ns
    assert receiver.http_requests[-1]["x-tenant"] == "images"  # OTEL_EXPORTER_OTLP_HEADERS honoured

    # No secret of any provider reaches the exported spans.
    for span in spans:
        text = repr(span)
        assert STABILITY_SECRET not in text and OPENAI_SECRET not in text and traced.admin_key not in text


def test_a_failed_request_span_says_why_and_a_chosen_trace_id_is_kept(
    traced: GatewayThread,
    receiver: OtlpReceiver,
    emulators: Emulators,
    openai_emulator: OpenAIEmulator,
    stability_emulator: StabilityEmulator,
) -> None:
    config_id = _fallback_config(traced, openai_emulator, stability_emulator)
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(503))
    response = _generate(traced, config_id, **{"x-portkey-trace-id": "checkout-42"})
    assert response.status_code == 503

    expected_id, same = otel_trace_id("checkout-42")
    assert not same
    spans = receiver.trace(f"{expected_id:032x}", 3)
    (request,) = [span for span in spans if span.kind == SERVER]
    assert request.parent_span_id == ""  # a root: no traceparent came
    assert request.attributes["imagegateway.trace_id"] == "checkout-42"
    assert request.status_code == STATUS_ERROR
    assert request.attributes["error.type"] == "unavailable"
    assert "imagegateway.fallback_used" not in request.attributes


def test_otlp_over_grpc(
    tmp_path: Path,
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    emulators: Emulators,
    openai_emulator: OpenAIEmulator,
    stability_emulator: StabilityEmulator,
) -> None:
    for gateway in _traced_gateway(tmp_path, receiver, monkeypatch, "grpc"):
        config_id = _fallback_config(gateway, openai_emulator, stability_emulator)
        response = _generate(gateway, config_id)
        assert response.status_code == 200, response.text
        spans = receiver.trace(response.headers["x-portkey-trace-id"], 2)
        assert sorted(span.kind for span in spans) == [SERVER, CLIENT]


def test_the_standard_variables_decide_whether_tracing_is_on() -> None:
    assert not tracing_enabled({})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"})
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"})
    assert otel_trace_id(CALLER_TRACE) == (int(CALLER_TRACE, 16), True)


def test_with_tracing_off_the_tracing_sdk_and_exporters_are_never_imported() -> None:
    # redis-py imports OpenTelemetry's metrics API when it is installed, for its own optional
    # instrumentation; the gateway's tracing (the SDK's tracer provider and the OTLP exporters) stays out.
    code = (
        "import sys; from imagegateway_server.observability.otel import start_tracing;"
        "import imagegateway_server.app;"
        "assert start_tracing({}) is None;"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter'))];"
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
