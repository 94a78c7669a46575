"""The router with circuit breakers: open targets are skipped (recorded, not called) while others remain."""

from __future__ import annotations

import asyncio
import random

import pytest

from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.result import ImageResult, RoutedResult
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.routing.router import RouteContext, Router
from imagegateway_server.state.breakers import BreakerPolicy, CircuitState, Outcome, PermitKind, TargetIdentity
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from tests.credentials import api_key
from tests.unit.test_router import REQUEST, KeyResolver, Recorder, ScriptedAdapter, fail, fallback, plan_of

POLICY = BreakerPolicy(consecutive_failures=2, failure_rate=0, window=10, cooldown_seconds=30)
CTX = RouteContext(trace_id="t")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def identity(provider: str, model: str = REQUEST.model or "") -> TargetIdentity:
    return TargetIdentity.of(provider, None, api_key(f"key-{provider}", provider), model)


def setup(
    adapters: dict[str, ScriptedAdapter], policy: BreakerPolicy = POLICY
) -> tuple[Router, InProcessBreakers, Clock]:
    clock = Clock()
    breakers = InProcessBreakers(policy, clock=clock)
    router = Router(
        adapters.__getitem__,
        KeyResolver(),
        default_timeout=5.0,
        rng=random.Random(1),
        sleep=Recorder().sleep,
        breakers=breakers,
    )
    return router, breakers, clock


async def open_circuit(breakers: InProcessBreakers, provider: str) -> None:
    for _ in range(POLICY.consecutive_failures):
        permit = await breakers.acquire(identity(provider), None)
        breakers.record(permit, Outcome.FAILURE)


async def state_of(breakers: InProcessBreakers, provider: str) -> CircuitState:
    return {v.identity: v.state for v in await breakers.snapshot()}[identity(provider)]


def summary(routed: RoutedResult) -> list[tuple[str, int, bool]]:
    return [(a.target, a.status_code, a.circuit_open) for a in routed.attempts]


async def test_an_open_target_is_skipped_without_a_call_while_others_remain() -> None:
    adapters = {"stab": ScriptedAdapter("stab", []), "oai": ScriptedAdapter("oai", [])}
    router, breakers, _ = setup(adapters)
    await open_circuit(breakers, "stab")
    routed = await router.run(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, CTX)
    assert routed.provider == "oai" and routed.fallback_used
    assert not adapters["stab"].calls
    assert summary(routed) == [("config.targets[0]", 503, True), ("config.targets[1]", 200, False)]
    skipped = routed.attempts[0]
    assert (skipped.error, skipped.error_kind, skipped.latency_ms, skipped.provider) == (
        "circuit open",
        ErrorKind.UNAVAILABLE,
        0,
        "stab",
    )


async def test_repeated_failures_across_requests_open_the_circuit() -> None:
    adapters = {
        "stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)] * 5),
        "oai": ScriptedAdapter("oai", []),
    }
    router, breakers, _ = setup(adapters)
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"})
    for _ in range(3):
        await router.run(plan, REQUEST, CTX)
    assert len(adapters["stab"].calls) == 2  # the third request went straight to the fallback
    assert await state_of(breakers, "stab") is CircuitState.OPEN


async def test_caller_problems_never_open_the_circuit() -> None:
    adapters = {
        "stab": ScriptedAdapter("stab", [fail(ErrorKind.BAD_REQUEST, 400)] * 5),
        "oai": ScriptedAdapter("oai", []),
    }
    router, breakers, _ = setup(adapters)
    for _ in range(5):
        await router.run(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, CTX)
    assert len(adapters["stab"].calls) == 5 and await state_of(breakers, "stab") is CircuitState.CLOSED


async def test_a_skip_moves_the_chain_on_whatever_on_status_codes_says() -> None:
    adapters = {"stab": ScriptedAdapter("stab", []), "oai": ScriptedAdapter("oai", [])}
    router, breakers, _ = setup(adapters)
    await open_circuit(breakers, "stab")
    plan = fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}, on_status_codes=[429])
    assert (await router.run(plan, REQUEST, CTX)).provider == "oai"


async def test_when_every_remaining_target_is_open_the_one_cooling_down_first_is_called() -> None:
    adapters = {"stab": ScriptedAdapter("stab", []), "oai": ScriptedAdapter("oai", [])}
    router, breakers, clock = setup(adapters)
    await open_circuit(breakers, "oai")  # opened first: its cool-down ends first
    clock.now += 10
    await open_circuit(breakers, "stab")
    routed = await router.run(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, CTX)
    assert summary(routed) == [
        ("config.targets[0]", 503, True),
        ("config.targets[1]", 503, True),
        ("config.targets[1]", 200, False),
    ]
    assert routed.provider == "oai" and not adapters["stab"].calls
    assert await state_of(breakers, "oai") is CircuitState.CLOSED  # its answer closed it
    assert await state_of(breakers, "stab") is CircuitState.OPEN


async def test_a_failing_last_option_is_still_reported_as_its_own_failure() -> None:
    adapters = {"stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)])}
    router, breakers, clock = setup(adapters)
    await open_circuit(breakers, "stab")
    clock.now += 5
    with pytest.raises(AllTargetsFailed) as info:
        await router.run(plan_of({"virtual_key": "stab"}), REQUEST, CTX)
    assert info.value.status_code == 503 and info.value.last.message == "503 from upstream"
    assert [(a.circuit_open, a.status_code) for a in info.value.attempts] == [(True, 503), (False, 503)]
    refused = await breakers.acquire(identity("stab"), None)
    assert refused.refused and refused.retry_at == clock.now + 30  # the failed call restarted the cool-down


async def test_a_loadbalance_pick_with_an_open_circuit_is_replaced_by_another_pick() -> None:
    adapters = {"stab": ScriptedAdapter("stab", []), "oai": ScriptedAdapter("oai", [])}
    router, breakers, _ = setup(adapters)
    await open_circuit(breakers, "stab")
    plan = plan_of(
        {
            "strategy": {"mode": "loadbalance"},
            "targets": [{"virtual_key": "stab", "weight": 1000}, {"virtual_key": "oai", "weight": 0.001}],
        }
    )
    for _ in range(5):
        assert (await router.run(plan, REQUEST, CTX)).provider == "oai"
    assert not adapters["stab"].calls


async def test_a_circuit_that_opens_during_retries_stops_them_and_moves_on() -> None:
    adapters = {
        "stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)] * 5),
        "oai": ScriptedAdapter("oai", []),
    }
    router, _, _ = setup(adapters)
    plan = fallback({"virtual_key": "stab", "retry": {"attempts": 4}}, {"virtual_key": "oai"})
    routed = await router.run(plan, REQUEST, CTX)
    assert len(adapters["stab"].calls) == 2
    assert [(a.retry_index, a.circuit_open) for a in routed.attempts] == [(0, False), (1, False), (2, True), (0, False)]


async def test_after_the_cool_down_one_probe_goes_through_and_closes_the_circuit() -> None:
    adapters = {"stab": ScriptedAdapter("stab", []), "oai": ScriptedAdapter("oai", [])}
    router, breakers, clock = setup(adapters)
    await open_circuit(breakers, "stab")
    clock.now += POLICY.cooldown_seconds
    routed = await router.run(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, CTX)
    assert routed.provider == "stab" and summary(routed) == [("config.targets[0]", 200, False)]
    assert await state_of(breakers, "stab") is CircuitState.CLOSED


class HangingAdapter(ScriptedAdapter):
    def __init__(self, name: str) -> None:
        super().__init__(name, [])
        self.started = asyncio.Event()

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        self.started.set()
        await asyncio.sleep(60)
        raise AssertionError("cancelled before it answers")


async def test_a_cancelled_probe_frees_the_slot() -> None:
    hanging = HangingAdapter("stab")
    adapters = {"stab": hanging, "oai": ScriptedAdapter("oai", [])}
    router, breakers, clock = setup(adapters)
    await open_circuit(breakers, "stab")
    clock.now += POLICY.cooldown_seconds
    task = asyncio.create_task(router.run(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, CTX))
    await hanging.started.wait()
    assert (await breakers.acquire(identity("stab"), None)).refused  # the probe is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await breakers.acquire(identity("stab"), None)).kind is PermitKind.PROBE


async def test_models_are_separate_identities() -> None:
    adapters = {"oai": ScriptedAdapter("oai", []), "stab": ScriptedAdapter("stab", [])}
    router, breakers, _ = setup(adapters)
    await open_circuit(breakers, "oai")  # for the request's model only
    plan = fallback({"virtual_key": "oai", "override_params": {"model": "dall-e-2"}}, {"virtual_key": "stab"})
    assert (await router.run(plan, REQUEST, CTX)).provider == "oai"


async def test_without_breakers_nothing_is_skipped() -> None:
    adapters = {
        "stab": ScriptedAdapter("stab", [fail(ErrorKind.UNAVAILABLE, 503)] * 5),
        "oai": ScriptedAdapter("oai", []),
    }
    router = Router(
        adapters.__getitem__, KeyResolver(), default_timeout=5.0, rng=random.Random(1), sleep=Recorder().sleep
    )
    for _ in range(5):
        await router.run(fallback({"virtual_key": "stab"}, {"virtual_key": "oai"}), REQUEST, CTX)
    assert len(adapters["stab"].calls) == 5
