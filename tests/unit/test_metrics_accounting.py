"""Gateway metrics for one finished request: attempts, retries, fallbacks with reasons, cost, bounded labels."""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.domain.errors import ErrorKind, ProviderError, RequestFailed
from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, ImageResult, RoutedResult
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.routing.plan import Leaf
from tests.credentials import api_key

FIRST, SECOND, THIRD = "config.targets[0]", "config.targets[1]", "config.targets[2]"


def attempt(
    target: str,
    provider: str,
    model: str,
    kind: ErrorKind | None = None,
    retry_index: int = 0,
    circuit_open: bool = False,
) -> AttemptRecord:
    return AttemptRecord(
        target=target,
        provider=provider,
        model=model,
        status_code=200 if kind is None else 503,
        latency_ms=1200,
        retry_index=retry_index,
        error_kind=kind,
        circuit_open=circuit_open,
    )


def served(*attempts: AttemptRecord, images: int = 1) -> RoutedResult:
    last = attempts[-1]
    leaf = Leaf(
        path=last.target,
        provider=last.provider,
        virtual_key=None,
        credential=api_key("k"),
        custom_host=None,
        override_params=MappingProxyType({}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )
    result = ImageResult(
        images=tuple(GeneratedImage(b"x", "image/png") for _ in range(images)), model=last.model, created=0
    )
    return RoutedResult(
        result=result,
        leaf=leaf,
        provider=last.provider,
        attempts=attempts,
        retry_count=0,
        fallback_used=len({a.target for a in attempts}) > 1,
    )


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_a_fallback_is_counted_with_its_providers_and_the_failure_that_caused_it() -> None:
    metrics = Metrics()
    metrics.set_known_models(["dall-e-3", "stable-diffusion-v1-6"])
    metrics.observe_success(
        "rest",
        served(
            attempt(FIRST, "stability-ai", "stable-diffusion-v1-6", ErrorKind.UNAVAILABLE),
            attempt(SECOND, "openai", "dall-e-3"),
        ),
        config="cfg-1",
        cost_usd=0.04,
    )
    assert (
        value(
            metrics,
            "imagegateway_fallbacks_total",
            from_provider="stability-ai",
            to_provider="openai",
            reason="unavailable",
        )
        == 1
    )
    assert value(metrics, "imagegateway_requests_total", transport="rest", outcome="success", config="cfg-1") == 1
    assert (
        value(
            metrics,
            "imagegateway_attempts_total",
            provider="stability-ai",
            model="stable-diffusion-v1-6",
            outcome="unavailable",
        )
        == 1
    )
    assert value(metrics, "imagegateway_attempts_total", provider="openai", model="dall-e-3", outcome="success") == 1
    assert value(metrics, "imagegateway_cost_usd_total", provider="openai", model="dall-e-3") == 0.04
    assert value(metrics, "imagegateway_images_generated_total", provider="openai", model="dall-e-3") == 1
    assert (
        value(
            metrics,
            "imagegateway_upstream_request_duration_seconds_bucket",
            provider="openai",
            outcome="success",
            le="2.5",
        )
        == 1
    )


def test_retries_on_one_target_are_retries_not_fallbacks() -> None:
    metrics = Metrics()
    metrics.observe_success(
        "grpc",
        served(
            attempt(FIRST, "openai", "dall-e-3", ErrorKind.RATE_LIMITED),
            attempt(FIRST, "openai", "dall-e-3", ErrorKind.UNAVAILABLE, retry_index=1),
            attempt(FIRST, "openai", "dall-e-3", retry_index=2),
        ),
    )
    assert value(metrics, "imagegateway_retries_total", provider="openai") == 2
    assert (
        metrics.registry.get_sample_value(
            "imagegateway_fallbacks_total",
            {"from_provider": "openai", "to_provider": "openai", "reason": "rate_limited"},
        )
        is None
    )


def test_an_all_failed_chain_counts_each_move_and_the_failure() -> None:
    metrics = Metrics()
    failure = RequestFailed(
        ProviderError(ErrorKind.UNAVAILABLE, "down", provider="openai", status_code=503),
        attempts=(
            attempt(FIRST, "stability-ai", "core", ErrorKind.TIMEOUT),
            attempt(SECOND, "openai", "dall-e-3", ErrorKind.UNAVAILABLE),
            attempt(THIRD, "openai", "dall-e-2", ErrorKind.UNAVAILABLE),
        ),
    )
    metrics.observe_failure("grpc", failure, config="inline")
    assert value(metrics, "imagegateway_requests_total", transport="grpc", outcome="failure", config="inline") == 1
    assert (
        value(
            metrics,
            "imagegateway_fallbacks_total",
            from_provider="stability-ai",
            to_provider="openai",
            reason="timeout",
        )
        == 1
    )
    assert (
        value(
            metrics, "imagegateway_fallbacks_total", from_provider="openai", to_provider="openai", reason="unavailable"
        )
        == 1
    )


def test_a_skipped_open_circuit_is_its_own_outcome_and_fallback_reason_with_no_latency() -> None:
    metrics = Metrics()
    metrics.observe_success(
        "rest",
        served(
            attempt(FIRST, "stability-ai", "core", ErrorKind.UNAVAILABLE, circuit_open=True),
            attempt(SECOND, "openai", "dall-e-3"),
        ),
    )
    assert (
        value(metrics, "imagegateway_attempts_total", provider="stability-ai", model="other", outcome="circuit_open")
        == 1
    )
    assert (
        value(
            metrics,
            "imagegateway_fallbacks_total",
            from_provider="stability-ai",
            to_provider="openai",
            reason="circuit_open",
        )
        == 1
    )
    assert (
        value(
            metrics,
            "imagegateway_upstream_request_duration_seconds_count",
            provider="stability-ai",
            outcome="circuit_open",
        )
        == 0
    )


def test_model_labels_are_capped_to_known_models() -> None:
    metrics = Metrics()
    metrics.set_known_models(["DALL-E-3"])
    for model in ("dall-e-3", "caller-invented-1", "caller-invented-2", ""):
        metrics.observe_success("rest", served(attempt(FIRST, "openai", model)))
    text = "\n".join(
        f"{s.labels}" for m in metrics.registry.collect() for s in m.samples if m.name == "imagegateway_attempts"
    )
    assert "caller-invented" not in text
    assert value(metrics, "imagegateway_attempts_total", provider="openai", model="dall-e-3", outcome="success") == 1
    assert value(metrics, "imagegateway_attempts_total", provider="openai", model="other", outcome="success") == 3


def test_a_cache_hit_counts_the_request_but_no_attempts_images_or_cost() -> None:
    metrics = Metrics()
    metrics.observe_success("rest", served(attempt(FIRST, "openai", "dall-e-3")), cached=True)
    assert value(metrics, "imagegateway_requests_total", transport="rest", outcome="success", config="none") == 1
    assert value(metrics, "imagegateway_attempts_total", provider="openai", model="other", outcome="success") == 0
    assert value(metrics, "imagegateway_images_generated_total", provider="openai", model="other") == 0
