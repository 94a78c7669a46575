"""A request cancelled mid-walk keeps its attempts: the finished ones and the call cut short, which the
breaker does not count and the metrics count as their own outcome."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from imagegateway_server.domain.errors import CallerCancelled, ErrorKind, RequestFailed, ShuttingDown
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.routing.router import AttemptTrail, RouteContext
from imagegateway_server.state.breakers import CircuitState
from tests.unit.test_breakers_router import POLICY, HangingAdapter, setup, state_of
from tests.unit.test_metrics_accounting import FIRST, SECOND, attempt, value
from tests.unit.test_router import REQUEST, ScriptedAdapter, fail, fallback

LEFT = CallerCancelled("the caller cancelled the request")


async def cancelled_walk(adapters: dict[str, ScriptedAdapter], hanging: HangingAdapter) -> AttemptTrail:
    """Runs stab -> oai until ``hanging`` is called, cancels the walk, and returns its trail."""
    router, _, _ = setup(adapters)
    trail = AttemptTrail()
    task = asyncio.create_task(
        router.run(
            fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, RouteContext(trace_id="t", trail=trail)
        )
    )
    await hanging.started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    return trail


async def test_a_cancel_keeps_the_failed_attempt_and_records_the_one_in_flight_as_cancelled() -> None:
    hanging = HangingAdapter("oai")
    trail = await cancelled_walk(
        {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)]), "oai": hanging}, hanging
    )
    failed, cut = trail.cut_short(LEFT)
    assert (failed.target, failed.provider, failed.status_code, failed.cancelled) == (
        "config.targets[0]",
        "stab",
        503,
        False,
    )
    assert (cut.target, cut.provider, cut.model, cut.status_code, cut.error_kind, cut.error, cut.cancelled) == (
        "config.targets[1]",
        "oai",
        REQUEST.model,
        499,
        ErrorKind.TIMEOUT,
        "the caller cancelled the request",
        True,
    )
    assert cut.latency_ms >= 0 and cut.seconds > 0


async def test_a_cancel_during_shutdown_records_the_call_in_flight_with_the_shutdown_status() -> None:
    hanging = HangingAdapter("stab")
    trail = await cancelled_walk({"stab": hanging, "oai": ScriptedAdapter("oai", [])}, hanging)
    (cut,) = trail.cut_short(ShuttingDown())
    assert (cut.status_code, cut.error_kind, cut.cancelled) == (503, ErrorKind.UNAVAILABLE, True)


async def test_a_trail_with_nothing_in_flight_is_just_its_finished_attempts() -> None:
    router, _, _ = setup(
        {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)]), "oai": ScriptedAdapter("oai", [])}
    )
    trail = AttemptTrail()
    routed = await router.run(
        fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, RouteContext(trace_id="t", trail=trail)
    )
    assert trail.cut_short(LEFT) == routed.attempts  # every call finished: none is left in flight


async def test_cancelled_calls_never_count_against_the_breaker() -> None:
    hanging = HangingAdapter("stab")
    adapters = {"stab": hanging, "oai": ScriptedAdapter("oai", [])}
    router, breakers, _ = setup(adapters)
    for _ in range(POLICY.consecutive_failures + 1):
        hanging.started.clear()
        task = asyncio.create_task(
            router.run(
                fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}),
                REQUEST,
                RouteContext(trace_id="t", trail=AttemptTrail()),
            )
        )
        await hanging.started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await state_of(breakers, "stab") is CircuitState.CLOSED


def test_a_cancelled_attempt_is_its_own_metric_outcome_with_no_upstream_latency() -> None:
    metrics = Metrics()
    cut = dataclasses.replace(attempt(SECOND, "openai", "dall-e-3", ErrorKind.TIMEOUT), status_code=499, cancelled=True)
    metrics.observe_failure(
        "grpc", RequestFailed(LEFT, attempts=(attempt(FIRST, "stability-ai", "core", ErrorKind.UNAVAILABLE), cut))
    )
    assert value(metrics, "imagegateway_attempts_total", provider="openai", model="other", outcome="cancelled") == 1
    assert value(metrics, "imagegateway_attempts_total", provider="openai", model="other", outcome="timeout") == 0
    assert (
        value(metrics, "imagegateway_upstream_request_duration_seconds_count", provider="openai", outcome="cancelled")
        == 0
    )
    assert (
        value(metrics, "imagegateway_attempts_total", provider="stability-ai", model="other", outcome="unavailable")
        == 1
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
