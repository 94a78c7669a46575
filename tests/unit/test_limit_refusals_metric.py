"""Each refusal by a key's own limits is counted once, by scope and limit, on series that exist from the start."""

from __future__ import annotations

import pytest

from imagegateway_server.core.limits import LIMIT_FIELDS, REFUSAL_SCOPES, Limiter, LimitExceeded
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.observability import metrics as metrics_module
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.routing.router import RouteContext
from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from tests.unit.test_limits import DALL_E_3, NOON, OPENAI, PRICES, SPENT_VK, Adapter, Clock, plan_of, router
from tests.unit.test_metrics_accounting import value

REFUSALS = "imagegateway_limit_refusals_total"


def counted_limiter(metrics: Metrics, vk_limits: dict[str, Limits] | None = None) -> Limiter:
    async def virtual_key_limits(vk: str) -> Limits:
        return (vk_limits or {}).get(vk, NO_LIMITS)

    return Limiter(
        InProcessLimitCounters(),
        PRICES,
        virtual_key_limits=virtual_key_limits,
        clock=Clock(),
        on_refusal=metrics.count_limit_refusal,
    )


def test_every_scope_and_limit_the_limiter_names_exists_at_zero() -> None:
    assert set(REFUSAL_SCOPES.values()) == set(metrics_module.LIMIT_SCOPES)
    assert set(LIMIT_FIELDS) == set(metrics_module.LIMIT_NAMES)
    metrics = Metrics()
    for scope in REFUSAL_SCOPES.values():
        for limit in LIMIT_FIELDS:
            assert metrics.registry.get_sample_value(REFUSALS, {"scope": scope, "limit": limit}) == 0


async def test_a_gateway_key_over_its_requests_per_minute_counts_each_refusal_once() -> None:
    metrics = Metrics()
    gate = counted_limiter(metrics)
    limits = Limits(requests_per_minute=1)
    (await gate.admit("key-1", limits, OPENAI, DALL_E_3)).release()
    for _ in range(2):
        with pytest.raises(LimitExceeded):
            await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    assert value(metrics, REFUSALS, scope="gateway_key", limit="requests_per_minute") == 2
    assert value(metrics, REFUSALS, scope="gateway_key", limit="usd_per_day") == 0


async def test_a_spent_monthly_budget_is_counted_under_usd_per_month() -> None:
    metrics = Metrics()
    gate = counted_limiter(metrics)
    limits = Limits(usd_per_month=0.04)
    gate.record_spend("key-1", "", 0.04, NOON)
    with pytest.raises(LimitExceeded):
        await gate.admit("key-1", limits, OPENAI, DALL_E_3)
    assert value(metrics, REFUSALS, scope="gateway_key", limit="usd_per_month") == 1


async def test_a_virtual_key_skipped_inside_a_fallback_counts_as_a_refusal() -> None:
    metrics = Metrics()
    gate = counted_limiter(metrics, SPENT_VK)
    gate.record_spend("someone", "vk-a", 0.04, NOON)
    adapters = {"vk-a": Adapter("vk-a"), "vk-b": Adapter("vk-b")}
    plan = plan_of({"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "vk-a"}, {"virtual_key": "vk-b"}]})
    ticket = await gate.admit("key-1", NO_LIMITS, plan, DALL_E_3)
    routed = await router(adapters).run(plan, DALL_E_3, RouteContext(trace_id="t", target_gate=ticket))
    assert routed.provider == "vk-b"
    assert value(metrics, REFUSALS, scope="virtual_key", limit="usd_per_day") == 1
    assert value(metrics, REFUSALS, scope="gateway_key", limit="usd_per_day") == 0
