"""In-process breakers stay bounded whatever model names callers send, and never forget an open circuit
that still matters."""

from __future__ import annotations

from imagegateway_server.state.breakers import (
    BreakerOverrides,
    BreakerPolicy,
    CircuitState,
    Outcome,
    PermitKind,
    TargetIdentity,
    key_fingerprint,
)
from imagegateway_server.state.in_process.breakers import (
    IDLE_SECONDS,
    MAX_IDENTITIES,
    MAX_POLICIES,
    NO_ROOM_RETRY_SECONDS,
    InProcessBreakers,
)
from tests.credentials import api_key

POLICY = BreakerPolicy(consecutive_failures=3, failure_rate=0.5, window=10, cooldown_seconds=30)
KEY = key_fingerprint(api_key("sk-caller"))
FAILING = TargetIdentity("openai", "", KEY, "dall-e-3")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bogus(index: int) -> TargetIdentity:
    return TargetIdentity("openai", "", KEY, f"no-such-model-{index}")


async def call(breakers: InProcessBreakers, identity: TargetIdentity, outcome: Outcome) -> None:
    permit = await breakers.acquire(identity, None)
    if not permit.refused:
        breakers.record(permit, outcome)


async def open_circuit(breakers: InProcessBreakers, identity: TargetIdentity = FAILING) -> None:
    for _ in range(POLICY.consecutive_failures):
        await call(breakers, identity, Outcome.FAILURE)


async def test_a_hundred_thousand_bogus_model_names_keep_the_map_under_the_cap() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock)
    largest = 0
    for index in range(100_000):
        # A bogus model name is a 400 or 404 upstream: an answer about the request, so a success.
        await call(breakers, bogus(index), Outcome.SUCCESS)
        largest = max(largest, len(breakers))
        clock.now += 0.001
    assert largest <= MAX_IDENTITIES
    assert len(breakers.states()) == len(await breakers.snapshot()) == len(breakers) <= MAX_IDENTITIES
    assert bogus(99_999) in {view.identity for view in await breakers.snapshot()}  # the newest are kept


async def test_an_open_breaker_survives_the_flood_and_still_refuses() -> None:
    clock = Clock()
    transitions: list[CircuitState] = []
    breakers = InProcessBreakers(POLICY, clock=clock, on_transition=lambda _, state: transitions.append(state))
    await open_circuit(breakers)
    for index in range(100_000):
        await call(breakers, bogus(index), Outcome.SUCCESS)
        clock.now += 0.0001  # ten seconds in all: inside the 30 s cool-down
    assert len(breakers) <= MAX_IDENTITIES
    assert (await breakers.acquire(FAILING, None)).refused
    states = breakers.states()
    assert ("openai", "dall-e-3", CircuitState.OPEN) in states
    assert [state for _, _, state in states].count(CircuitState.OPEN) == 1
    assert len(states) == len(breakers)
    assert transitions == [CircuitState.OPEN]


async def test_a_half_open_breaker_with_its_probe_in_flight_survives_the_flood() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock, max_identities=16)
    await open_circuit(breakers)
    clock.now += POLICY.cooldown_seconds
    probe = await breakers.acquire(FAILING, None)
    assert probe.kind is PermitKind.PROBE
    for index in range(1000):
        await call(breakers, bogus(index), Outcome.SUCCESS)
    clock.now += IDLE_SECONDS * 2  # a slow probe: still the breaker's one trial call
    for index in range(1000, 2000):
        await call(breakers, bogus(index), Outcome.SUCCESS)
    assert ("openai", "dall-e-3", CircuitState.HALF_OPEN) in breakers.states()
    breakers.record(probe, Outcome.SUCCESS)
    assert ("openai", "dall-e-3", CircuitState.CLOSED) in breakers.states()


async def test_closed_breakers_with_counted_failures_are_kept_over_clean_ones() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock, max_identities=16)
    await call(breakers, FAILING, Outcome.FAILURE)  # one failure counted: evidence towards opening
    for index in range(1000):
        await call(breakers, bogus(index), Outcome.SUCCESS)
        clock.now += 1
    view = {v.identity: v for v in await breakers.snapshot()}[FAILING]
    assert view.state is CircuitState.CLOSED and view.consecutive_failures == 1
    await call(breakers, FAILING, Outcome.FAILURE)
    await call(breakers, FAILING, Outcome.FAILURE)
    assert (await breakers.acquire(FAILING, None)).refused  # the three failures added up


async def test_idle_closed_breakers_without_failures_are_forgotten() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock)
    clean, failed, opened = bogus(1), bogus(2), bogus(3)
    await call(breakers, clean, Outcome.SUCCESS)
    await call(breakers, failed, Outcome.FAILURE)
    await open_circuit(breakers, opened)
    clock.now += IDLE_SECONDS + 1
    await call(breakers, bogus(4), Outcome.SUCCESS)  # any call runs the sweep when it is due
    assert {v.identity for v in await breakers.snapshot()} == {failed, opened, bogus(4)}
    assert {(model, state) for _, model, state in breakers.states()} == {
        (failed.model, CircuitState.CLOSED),
        (opened.model, CircuitState.HALF_OPEN),
        (bogus(4).model, CircuitState.CLOSED),
    }


async def test_a_breaker_called_within_the_idle_time_is_kept() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock)
    await call(breakers, FAILING, Outcome.SUCCESS)
    clock.now += IDLE_SECONDS - 1
    await call(breakers, FAILING, Outcome.SUCCESS)
    clock.now += IDLE_SECONDS - 1
    await call(breakers, bogus(1), Outcome.SUCCESS)
    assert FAILING in {v.identity for v in await breakers.snapshot()}


async def test_when_every_tracked_breaker_is_open_new_targets_go_through_untracked() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock, max_identities=4)
    opened = [bogus(i) for i in range(4)]
    for identity in opened:
        await open_circuit(breakers, identity)
    permit = await breakers.acquire(bogus(99), None)
    assert permit.kind is PermitKind.CALL and permit.breaker is None
    breakers.record(permit, Outcome.FAILURE)  # nothing tracked, nothing to record
    assert {v.identity for v in await breakers.snapshot()} == set(opened)
    assert all(state is CircuitState.OPEN for _, _, state in breakers.states())
    # One circuit closes after its cool-down; the next new target finds room once the retry pause has passed.
    clock.now += POLICY.cooldown_seconds
    probe = await breakers.acquire(opened[0], None)
    breakers.record(probe, Outcome.SUCCESS)
    clock.now += NO_ROOM_RETRY_SECONDS
    assert (await breakers.acquire(bogus(100), None)).breaker is not None
    assert bogus(100) in {v.identity for v in await breakers.snapshot()}
    assert len(breakers) <= 4


async def test_an_open_breaker_long_past_its_cool_down_and_never_called_again_makes_room() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock, max_identities=4)
    for index in range(4):
        await open_circuit(breakers, bogus(index))
    clock.now += IDLE_SECONDS  # not yet stale: the cool-down ended less than the idle time ago
    assert (await breakers.acquire(bogus(10), None)).breaker is None
    clock.now += POLICY.cooldown_seconds + NO_ROOM_RETRY_SECONDS
    assert (await breakers.acquire(bogus(11), None)).breaker is not None
    assert len(breakers) <= 4


async def test_the_periodic_sweep_never_forgets_an_open_breaker() -> None:
    clock = Clock()
    breakers = InProcessBreakers(POLICY, clock=clock)
    await open_circuit(breakers)
    clock.now += 10 * IDLE_SECONDS
    await call(breakers, bogus(1), Outcome.SUCCESS)
    assert ("openai", "dall-e-3", CircuitState.HALF_OPEN) in breakers.states()


async def test_a_closed_breaker_hands_every_call_the_same_permit_until_it_moves() -> None:
    breakers = InProcessBreakers(POLICY, clock=Clock())
    first = await breakers.acquire(FAILING, None)
    assert await breakers.acquire(FAILING, None) is first  # no allocation per call while closed
    await open_circuit(breakers)
    assert (await breakers.acquire(FAILING, None)).refused


def test_distinct_config_overrides_do_not_grow_without_end() -> None:
    breakers = InProcessBreakers(POLICY)
    for window in range(1, MAX_POLICIES * 3):
        assert breakers.policy(BreakerOverrides(window=1 + window % 1000)).window == 1 + window % 1000
    assert len(breakers._policies) <= MAX_POLICIES
