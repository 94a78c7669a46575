"""Circuit breakers: the state machine, the in-process board, identities and config validation."""

from __future__ import annotations

import asyncio

import pytest

from imagegateway_server.api.config_json import parse_config, parse_config_message
from imagegateway_server.api.config_proto import config_from_proto
from imagegateway_server.domain.errors import ErrorKind, InvalidArgument
from imagegateway_server.domain.routing_config import CircuitBreakerSettings
from imagegateway_server.routing.breakers import outcome_of, overrides_from_config
from imagegateway_server.routing.plan import Leaf, compile_plan, leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.state.breakers import (
    BreakerOverrides,
    BreakerPolicy,
    CircuitState,
    Outcome,
    Permit,
    PermitKind,
    TargetIdentity,
    key_fingerprint,
)
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from tests.credentials import api_key

IDENTITY = TargetIdentity("stability-ai", "", key_fingerprint(api_key("sk-a", "stability-ai")), "sd3")
OTHER = TargetIdentity("openai", "", key_fingerprint(api_key("sk-b")), "dall-e-3")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Board:
    """An InProcessBreakers on a fake clock that records every transition."""

    def __init__(self, policy: BreakerPolicy) -> None:
        self.clock = FakeClock()
        self.transitions: list[tuple[TargetIdentity, CircuitState]] = []
        self.breakers = InProcessBreakers(
            policy,
            clock=self.clock,
            wall_clock=lambda: 5_000_000.0 + self.clock.now,
            on_transition=lambda i, s: self.transitions.append((i, s)),
        )

    async def call(
        self,
        outcome: Outcome,
        identity: TargetIdentity = IDENTITY,
        *,
        force: bool = False,
        overrides: BreakerOverrides | None = None,
    ) -> Permit:
        permit = await self.breakers.acquire(identity, overrides, force=force)
        if not permit.refused:
            self.breakers.record(permit, outcome)
        return permit

    async def state(self, identity: TargetIdentity = IDENTITY) -> CircuitState:
        views = {v.identity: v for v in await self.breakers.snapshot()}
        return views[identity].state


POLICY = BreakerPolicy(consecutive_failures=3, failure_rate=0.5, window=10, cooldown_seconds=30)


async def test_consecutive_failures_open_the_circuit_and_refuse_calls() -> None:
    board = Board(POLICY)
    for _ in range(2):
        await board.call(Outcome.FAILURE)
    assert await board.state() is CircuitState.CLOSED
    await board.call(Outcome.FAILURE)
    assert await board.state() is CircuitState.OPEN
    assert board.transitions == [(IDENTITY, CircuitState.OPEN)]
    refused = await board.breakers.acquire(IDENTITY, None)
    assert refused.refused and refused.retry_at == board.clock.now + 30


async def test_a_success_resets_the_consecutive_count() -> None:
    board = Board(POLICY)
    for outcome in (Outcome.FAILURE, Outcome.FAILURE, Outcome.SUCCESS, Outcome.FAILURE, Outcome.FAILURE):
        await board.call(outcome)
    assert await board.state() is CircuitState.CLOSED


async def test_failure_rate_over_a_full_window_opens_the_circuit() -> None:
    board = Board(BreakerPolicy(consecutive_failures=0, failure_rate=0.5, window=10, cooldown_seconds=30))
    # Alternating outcomes never make two failures in a row; 5 of 10 is the 0.5 threshold.
    for i in range(9):
        await board.call(Outcome.FAILURE if i % 2 == 0 else Outcome.SUCCESS)
    assert await board.state() is CircuitState.CLOSED  # 5 failures, but the window is not full yet
    await board.call(Outcome.SUCCESS)  # the call that fills the window shows 5 of 10
    assert await board.state() is CircuitState.OPEN


async def test_configs_with_different_windows_share_an_identity() -> None:
    board = Board(BreakerPolicy(consecutive_failures=0, failure_rate=0.5, window=4, cooldown_seconds=30))
    wide = BreakerOverrides(window=8)
    for outcome in (Outcome.FAILURE, Outcome.FAILURE, Outcome.SUCCESS, Outcome.SUCCESS, Outcome.SUCCESS):
        await board.call(outcome, overrides=wide)
    assert await board.state() is CircuitState.CLOSED  # the wide window is not full
    await board.call(Outcome.SUCCESS)  # the narrow window's last 4 are all successes
    assert await board.state() is CircuitState.CLOSED
    for _ in range(2):
        await board.call(Outcome.FAILURE)  # 2 of the last 4: the narrow window trips
    assert await board.state() is CircuitState.OPEN


async def test_the_rate_window_slides_so_old_failures_age_out() -> None:
    board = Board(BreakerPolicy(consecutive_failures=0, failure_rate=0.5, window=4, cooldown_seconds=30))
    for outcome in (
        Outcome.FAILURE,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
        Outcome.SUCCESS,
        Outcome.FAILURE,
    ):
        await board.call(outcome)
    assert await board.state() is CircuitState.CLOSED  # the last 4 hold 1 failure
    await board.call(Outcome.FAILURE)
    assert await board.state() is CircuitState.OPEN  # 2 of the last 4


async def test_caller_and_config_problems_do_not_count_as_failures() -> None:
    assert {k for k in ErrorKind if outcome_of(k) is Outcome.FAILURE} == {
        ErrorKind.UNAVAILABLE,
        ErrorKind.TIMEOUT,
        ErrorKind.UPSTREAM_BUG,
        ErrorKind.RATE_LIMITED,
        ErrorKind.INTERNAL,
    }
    assert outcome_of(ErrorKind.DEADLINE_EXCEEDED) is Outcome.NEUTRAL
    for kind in (ErrorKind.BAD_REQUEST, ErrorKind.CONTENT_POLICY, ErrorKind.AUTHENTICATION):
        assert outcome_of(kind) is Outcome.SUCCESS
    board = Board(POLICY)
    for _ in range(10):
        await board.call(outcome_of(ErrorKind.BAD_REQUEST))
        await board.call(Outcome.NEUTRAL)
    assert await board.state() is CircuitState.CLOSED


async def test_cool_down_lets_one_probe_through_and_its_success_closes() -> None:
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.clock.now += 29.9
    assert (await board.breakers.acquire(IDENTITY, None)).refused
    board.clock.now += 0.1
    assert await board.state() is CircuitState.HALF_OPEN  # visible before any call arrives
    probe = await board.breakers.acquire(IDENTITY, None)
    assert probe.kind is PermitKind.PROBE
    assert (await board.breakers.acquire(IDENTITY, None)).refused  # one probe at a time
    board.breakers.record(probe, Outcome.SUCCESS)
    assert await board.state() is CircuitState.CLOSED
    assert [s for _, s in board.transitions] == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.CLOSED]
    view = (await board.breakers.snapshot())[0]
    assert view.consecutive_failures == 0 and view.window_calls == 0 and view.opened_time == 0


async def test_a_failed_probe_reopens_for_a_new_cool_down() -> None:
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.clock.now += 30
    probe = await board.call(Outcome.FAILURE)
    assert probe.kind is PermitKind.PROBE
    assert await board.state() is CircuitState.OPEN
    refused = await board.breakers.acquire(IDENTITY, None)
    assert refused.refused and refused.retry_at == board.clock.now + 30
    assert [s for _, s in board.transitions] == [CircuitState.OPEN, CircuitState.HALF_OPEN, CircuitState.OPEN]


async def test_a_neutral_probe_frees_the_slot_for_the_next_caller() -> None:
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.clock.now += 30
    assert (await board.call(Outcome.NEUTRAL)).kind is PermitKind.PROBE
    assert await board.state() is CircuitState.HALF_OPEN
    assert (await board.breakers.acquire(IDENTITY, None)).kind is PermitKind.PROBE


async def test_half_open_admits_a_single_probe_among_concurrent_callers() -> None:
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.clock.now += 30
    permits = await asyncio.gather(*(board.breakers.acquire(IDENTITY, None) for _ in range(50)))
    assert [p.kind for p in permits].count(PermitKind.PROBE) == 1
    assert all(p.refused for p in permits if p.kind is not PermitKind.PROBE)


async def test_half_open_admits_a_single_probe_across_threads() -> None:
    # The scrape thread reads while the loop writes; acquisition itself is guarded by the same lock.
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.clock.now += 30

    def acquire() -> Permit:
        return asyncio.run(board.breakers.acquire(IDENTITY, None))

    loop = asyncio.get_running_loop()
    permits = await asyncio.gather(*(loop.run_in_executor(None, acquire) for _ in range(16)))
    assert [p.kind for p in permits].count(PermitKind.PROBE) == 1


async def test_outcomes_of_calls_admitted_before_the_circuit_opened_are_ignored() -> None:
    board = Board(POLICY)
    slow = await board.breakers.acquire(IDENTITY, None)  # a long image call, in flight
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.breakers.record(slow, Outcome.SUCCESS)  # it started before the outage was known
    assert await board.state() is CircuitState.OPEN


async def test_bypass_lets_a_last_option_through_and_its_answer_decides() -> None:
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    board.clock.now += 10
    bypass = await board.call(Outcome.FAILURE, force=True)
    assert bypass.kind is PermitKind.BYPASS
    refused = await board.breakers.acquire(IDENTITY, None)
    assert refused.retry_at == board.clock.now + 30  # a failed bypass restarts the cool-down
    assert [s for _, s in board.transitions] == [CircuitState.OPEN]  # open -> open is no transition
    assert (await board.call(Outcome.SUCCESS, force=True)).kind is PermitKind.BYPASS
    assert await board.state() is CircuitState.CLOSED


async def test_identities_are_independent() -> None:
    board = Board(POLICY)
    for _ in range(3):
        await board.call(Outcome.FAILURE)
    assert (await board.breakers.acquire(OTHER, None)).kind is PermitKind.CALL
    assert {v.identity: v.state for v in await board.breakers.snapshot()} == {
        IDENTITY: CircuitState.OPEN,
        OTHER: CircuitState.CLOSED,
    }
    assert [v.identity for v in await board.breakers.snapshot("openai")] == [OTHER]


async def test_per_target_overrides_change_thresholds_and_cool_down() -> None:
    board = Board(POLICY)
    quick = BreakerOverrides(consecutive_failures=1, cooldown_seconds=2)
    await board.call(Outcome.FAILURE, overrides=quick)
    refused = await board.breakers.acquire(IDENTITY, quick)
    assert refused.refused and refused.retry_at == board.clock.now + 2


async def test_both_triggers_off_disables_tracking() -> None:
    board = Board(BreakerPolicy(consecutive_failures=0, failure_rate=0, window=5, cooldown_seconds=30))
    for _ in range(20):
        assert not (await board.call(Outcome.FAILURE)).refused
    assert await board.breakers.snapshot() == []


async def test_the_least_recently_used_identity_is_forgotten_past_the_cap() -> None:
    breakers = InProcessBreakers(POLICY, max_identities=2)
    ids = [TargetIdentity("openai", "", key_fingerprint(api_key(f"k{i}")), "m") for i in range(3)]
    for identity in ids:
        await breakers.acquire(identity, None)
    assert {v.identity for v in await breakers.snapshot()} == set(ids[1:])


async def test_view_reports_counts_rate_and_times() -> None:
    board = Board(POLICY)
    await board.call(Outcome.SUCCESS)
    await board.call(Outcome.FAILURE)
    view = (await board.breakers.snapshot())[0]
    assert (view.consecutive_failures, view.failure_rate, view.window_calls) == (1, 0.5, 2)
    assert view.opened_time == 0 and view.next_probe_time == 0
    await board.call(Outcome.FAILURE)
    await board.call(Outcome.FAILURE)
    board.clock.now += 5
    view = (await board.breakers.snapshot())[0]
    assert view.opened_time == 5_000_000.0 + board.clock.now - 5
    assert view.next_probe_time == view.opened_time + 30


def test_identity_never_holds_the_key_and_tells_hosts_apart() -> None:
    secret = "sk-live-0123456789abcdef"
    identity = TargetIdentity.of("openai", "https://user:pw@Proxy.Example:8443/v1", api_key(secret), "dall-e-3")
    assert identity.host == "proxy.example:8443"
    assert secret not in repr(identity) and identity.key_fingerprint == key_fingerprint(api_key(secret))
    assert identity.key_fingerprint != key_fingerprint(api_key(secret + "x"))
    assert TargetIdentity.of("openai", None, api_key(secret), "dall-e-3").host == ""


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("consecutive_failures", -1, "between 1 and 1000"),
        ("consecutive_failures", 1001, "between 1 and 1000"),
        ("failure_rate", 1.5, "fraction"),
        ("failure_rate", float("nan"), "fraction"),
        ("window", 1001, "between 1 and 1000"),
        ("cooldown_seconds", -1.0, "seconds"),
        ("cooldown_seconds", float("inf"), "seconds"),
    ],
)
def test_config_values_are_checked_and_the_error_names_the_field(field: str, value: float, message: str) -> None:
    proto = parse_config_message(
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "openai", "api_key": "sk"},
                {"provider": "openai", "api_key": "sk"},
            ],
        }
    )
    setattr(proto.targets[1].circuit_breaker, field, value)  # NaN and infinity only arrive over gRPC
    config = config_from_proto(proto)
    with pytest.raises(InvalidArgument) as info:
        compile_plan(config, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(()))
    assert info.value.param == f"targets[1].circuit_breaker.{field}"
    assert message in info.value.message


def test_children_inherit_circuit_breaker_settings_field_by_field() -> None:
    config = parse_config(
        {
            "strategy": {"mode": "fallback"},
            "circuit_breaker": {"consecutive_failures": 2, "cooldown_seconds": 5},
            "targets": [
                {"provider": "openai", "api_key": "sk"},
                {"provider": "openai", "api_key": "sk", "circuit_breaker": {"cooldown_seconds": 60, "window": 50}},
            ],
        }
    )
    first, second = leaves(compile_plan(config, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(())))
    assert first.circuit_breaker == BreakerOverrides(consecutive_failures=2, cooldown_seconds=5)
    assert second.circuit_breaker == BreakerOverrides(consecutive_failures=2, window=50, cooldown_seconds=60)
    assert second.circuit_breaker.apply(POLICY) == BreakerPolicy(2, 0.5, 50, 60)


def test_a_target_without_circuit_breaker_settings_uses_the_global_defaults() -> None:
    plan = compile_plan(
        parse_config({"provider": "openai", "api_key": "sk"}),
        canonical_provider=lambda n: n,
        host_policy=UpstreamHostPolicy(()),
    )
    assert isinstance(plan, Leaf) and plan.circuit_breaker is None


def test_overrides_zero_means_inherit() -> None:
    parent = BreakerOverrides(failure_rate=0.9)
    merged = overrides_from_config(CircuitBreakerSettings(window=7), "circuit_breaker", parent)
    assert merged == BreakerOverrides(failure_rate=0.9, window=7)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": -1},
        {"failure_rate": 2.0},
        {"window": 0},
        {"cooldown_seconds": 0},
    ],
)
def test_global_policy_rejects_values_out_of_range(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]
