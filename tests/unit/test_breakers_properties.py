"""Property tests: whatever the sequence of calls, outcomes and waits, a breaker keeps its invariants."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from imagegateway_server.state.breakers import (
    BreakerPolicy,
    CircuitState,
    Outcome,
    Permit,
    PermitKind,
    TargetIdentity,
)
from imagegateway_server.state.circuit_breaker import CircuitBreaker
from imagegateway_server.state.in_process.breakers import InProcessBreakers

IDENTITY = TargetIdentity("openai", "", "sha256:000000000000", "dall-e-3")
ALLOWED_TRANSITIONS = {
    (CircuitState.CLOSED, CircuitState.OPEN),
    (CircuitState.OPEN, CircuitState.HALF_OPEN),
    (CircuitState.OPEN, CircuitState.CLOSED),  # a last-option call that succeeded
    (CircuitState.HALF_OPEN, CircuitState.CLOSED),
    (CircuitState.HALF_OPEN, CircuitState.OPEN),
}


@dataclass(frozen=True)
class Acquire:
    force: bool


@dataclass(frozen=True)
class Settle:
    pick: int  # which outstanding permit (modulo their number)
    outcome: Outcome


@dataclass(frozen=True)
class Wait:
    seconds: float


policies = st.builds(
    BreakerPolicy,
    consecutive_failures=st.integers(0, 5),
    failure_rate=st.sampled_from([0.0, 0.25, 0.5, 1.0]),
    window=st.integers(1, 6),
    cooldown_seconds=st.floats(0.5, 10),
).filter(lambda p: p.enabled)
operations = st.lists(
    st.one_of(
        st.builds(Acquire, st.booleans()),
        st.builds(Settle, st.integers(0, 50), st.sampled_from(list(Outcome))),
        st.builds(Wait, st.floats(0, 15)),
    ),
    max_size=80,
)


def tripped(breaker: CircuitBreaker, policy: BreakerPolicy) -> bool:
    if policy.consecutive_failures and breaker.consecutive >= policy.consecutive_failures:
        return True
    recent = list(breaker.outcomes)[-policy.window :]
    return bool(
        policy.failure_rate and len(recent) >= policy.window and sum(recent) >= policy.failure_rate * policy.window
    )


async def run(policy: BreakerPolicy, ops: list[Acquire | Settle | Wait]) -> None:
    now = [0.0]
    transitions: list[CircuitState] = []
    board = InProcessBreakers(policy, clock=lambda: now[0], on_transition=lambda _, s: transitions.append(s))
    outstanding: list[Permit] = []
    breaker: CircuitBreaker | None = None
    seen = CircuitState.CLOSED  # the stored state, as the transitions tell it
    for op in ops:
        before = breaker.state if breaker else CircuitState.CLOSED
        if isinstance(op, Wait):
            now[0] += op.seconds
        elif isinstance(op, Acquire):
            permit = await board.acquire(IDENTITY, None, force=op.force)
            breaker = permit.breaker
            if before is CircuitState.CLOSED:
                assert permit.kind is PermitKind.CALL  # a closed circuit never refuses
            if op.force:
                assert not permit.refused  # the last option is always let through
            if permit.refused:
                assert breaker is not None and breaker.state is not CircuitState.CLOSED
                assert now[0] < breaker.retry_at or breaker.probing  # refused only while cooling or probing
            else:
                outstanding.append(permit)
        elif outstanding:
            board.record(outstanding.pop(op.pick % len(outstanding)), op.outcome)
        for state in transitions:
            assert (seen, state) in ALLOWED_TRANSITIONS
            seen = state
        transitions.clear()
        if breaker is None:
            continue
        assert breaker.state is seen
        # At most one live probe: probes of the current epoch not yet settled.
        live_probes = [p for p in outstanding if p.kind is PermitKind.PROBE and p.epoch == breaker.epoch]
        assert len(live_probes) == (1 if breaker.probing else 0)
        if breaker.state is CircuitState.CLOSED:
            assert not breaker.probing and not tripped(breaker, policy)
        else:
            assert breaker.retry_at == breaker.opened_at + policy.cooldown_seconds
        if breaker.state is CircuitState.HALF_OPEN:
            assert now[0] >= breaker.retry_at
        view = (await board.snapshot())[0]
        assert 0 <= view.failure_rate <= 1 and 0 <= view.window_calls <= policy.window
        assert view.consecutive_failures >= 0
        assert view.state is breaker.effective_state(now[0])


@settings(max_examples=300, deadline=None)
@given(policies, operations)
def test_any_sequence_of_outcomes_keeps_the_invariants(
    policy: BreakerPolicy, ops: list[Acquire | Settle | Wait]
) -> None:
    asyncio.run(run(policy, ops))


@settings(max_examples=200, deadline=None)
@given(policies, st.lists(st.sampled_from(list(Outcome)), max_size=40))
def test_after_a_cool_down_a_caller_always_gets_through(policy: BreakerPolicy, outcomes: list[Outcome]) -> None:
    async def scenario() -> None:
        now = [0.0]
        board = InProcessBreakers(policy, clock=lambda: now[0])
        for outcome in outcomes:
            permit = await board.acquire(IDENTITY, None)
            if not permit.refused:
                board.record(permit, outcome)
        now[0] += policy.cooldown_seconds
        assert (await board.acquire(IDENTITY, None)).kind in (PermitKind.CALL, PermitKind.PROBE)

    asyncio.run(scenario())
