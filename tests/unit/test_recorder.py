"""Recording a finished request: the log record (cost, cache status, redaction), its metrics and its cost."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest

from imagegateway.v1 import images_pb2
from imagegateway_server.api.log_mapping import log_from_record
from imagegateway_server.core.accounting import RequestAccounting
from imagegateway_server.core.pricing import load_price_table
from imagegateway_server.domain.calls import Caller, GenerationCall, RoutingSpec
from imagegateway_server.domain.errors import ErrorKind, ProviderError, RequestFailed
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, ImageResult, RoutedResult
from imagegateway_server.domain.routing_config import RoutingConfig
from imagegateway_server.observability.log_records import PendingLogRecord
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.recorder import RequestRecorder, config_label
from imagegateway_server.routing.plan import Leaf
from imagegateway_server.storage.records import LogRecord


class CapturingWriter:
    """Keeps what the recorder submits, built as the log writer would build it."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []

    def submit(self, record: LogRecord | PendingLogRecord) -> None:
        self.records.append(record.build() if isinstance(record, PendingLogRecord) else record)


def call(routing: RoutingSpec | None = None) -> GenerationCall:
    return GenerationCall(
        request=ImageRequest(prompt="a private prompt", size="1024x1024"),
        routing=routing or RoutingSpec(config_id="cfg-1"),
        caller=Caller("key_1", "generate"),
        transport="rest",
        trace_id="t-1",
        metadata={"team": "web"},
    )


def served() -> RoutedResult:
    leaf = Leaf(
        path="config.targets[0]",
        provider="openai",
        virtual_key="vk",
        credential=None,
        custom_host=None,
        override_params=MappingProxyType({}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )
    return RoutedResult(
        result=ImageResult(images=(GeneratedImage(b"png", "image/png", 1024, 1024),), model="dall-e-3", created=1),
        leaf=leaf,
        provider="openai",
        retry_count=0,
        fallback_used=False,
        attempts=(AttemptRecord("config.targets[0]", "openai", "dall-e-3", 200, 10),),
    )


def recorder(**options: Any) -> tuple[RequestAccounting, CapturingWriter, Metrics]:
    """The recorder as the core uses it: behind the accounting that prices each request."""
    writer, metrics = CapturingWriter(), Metrics()
    metrics.set_known_models(["dall-e-3"])
    recording = RequestRecorder(writer, metrics, **options)  # type: ignore[arg-type]
    return RequestAccounting(recording, load_price_table()), writer, metrics


def test_a_served_request_is_logged_with_its_cost_and_counted_once() -> None:
    rec, writer, metrics = recorder()
    recorded = rec.success(
        call(), served(), trace_id="t-1", started=0.0, config_id="cfg-1", config_version=3, cache_status="MISS"
    )
    assert recorded.cost_usd == pytest.approx(0.04)
    [record] = writer.records
    log = log_from_record(record)
    assert (log.id, log.cost_usd, log.cache_status) == (
        recorded.log_id,
        pytest.approx(0.04),
        images_pb2.CACHE_STATUS_MISS,
    )
    assert (log.prompt, dict(log.metadata), log.config_version) == ("a private prompt", {"team": "web"}, 3)
    assert metrics.registry.get_sample_value(
        "imagegateway_cost_usd_total", {"provider": "openai", "model": "dall-e-3"}
    ) == pytest.approx(0.04)
    assert (
        metrics.registry.get_sample_value(
            "imagegateway_requests_total", {"transport": "rest", "outcome": "success", "config": "cfg-1"}
        )
        == 1
    )


def test_a_cache_hit_costs_nothing() -> None:
    rec, writer, metrics = recorder()
    recorded = rec.success(
        call(), served(), trace_id="t-1", started=0.0, config_id="cfg-1", config_version=1, cache_status="HIT"
    )
    assert recorded.cost_usd == 0
    assert log_from_record(writer.records[0]).cost_usd == 0
    assert (
        metrics.registry.get_sample_value("imagegateway_cost_usd_total", {"provider": "openai", "model": "dall-e-3"})
        is None
    )


def test_prompts_are_left_out_of_the_log_when_redaction_is_on() -> None:
    rec, writer, _ = recorder(redact_prompts=True)
    rec.success(call(), served(), trace_id="t-1", started=0.0, config_id="", config_version=0)
    failure = RequestFailed(ProviderError(ErrorKind.UNAVAILABLE, "down", provider="openai", status_code=503))
    rec.failure(call(), failure, trace_id="t-2", started=0.0, config_id="", config_version=0)
    assert [log_from_record(r).prompt for r in writer.records] == ["", ""]
    assert all("a private prompt" not in r.payload for r in writer.records)
    assert failure.log_id == writer.records[1].id


def test_config_labels_stay_bounded() -> None:
    assert config_label(RoutingSpec(config_id="cfg-1"), "cfg-1") == "cfg-1"
    assert config_label(RoutingSpec(config_id="whatever-the-caller-typed"), "") == "unresolved"
    assert config_label(RoutingSpec(config=RoutingConfig()), "") == "inline"
    assert config_label(RoutingSpec(virtual_key="vk"), "") == "none"
