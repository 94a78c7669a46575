"""The state machine of one circuit breaker (the transitions drawn in ``state.breakers``).

Pure: no I/O, no clock and no lock of its own; the caller passes the time and serialises calls. The
in-process backend keeps one per routing identity; a shared backend can apply the same machine to
the state it loads.
"""

from __future__ import annotations

import collections
import itertools

from imagegateway_server.state.breakers import (
    BreakerPolicy,
    BreakerView,
    CircuitState,
    Outcome,
    PermitKind,
    TargetIdentity,
)

# What a closed breaker answers every call: built once, since it is the answer on the hot path.
_CALL_NO_TRANSITION: tuple[PermitKind, CircuitState | None] = (PermitKind.CALL, None)


class CircuitBreaker:
    """The state machine of one routing identity. Not thread-safe: its owner locks it."""

    __slots__ = (
        "_probing",
        "consecutive",
        "epoch",
        "failures",
        "opened_at",
        "opened_wall",
        "outcomes",
        "policy",
        "retry_at",
        "state",
    )

    def __init__(self, policy: BreakerPolicy) -> None:
        self.policy = policy  # the thresholds of the latest call, for views
        self.state = CircuitState.CLOSED  # stored state; see ``effective_state``
        self.consecutive = 0
        self.outcomes: collections.deque[bool] = collections.deque(maxlen=policy.window)  # True: a failure
        self.failures = 0  # failures in ``outcomes``, kept so the rate costs nothing per call
        self.epoch = 0  # bumped on every transition; permits from older epochs are stale
        self.opened_at = 0.0
        self.opened_wall = 0.0
        self.retry_at = 0.0
        self._probing = False

    @property
    def probing(self) -> bool:
        return self._probing

    @property
    def counts_failures(self) -> bool:
        """Whether any failure is counted: a closed breaker without one holds no evidence worth keeping."""
        return bool(self.consecutive or self.failures)

    def acquire(self, policy: BreakerPolicy, now: float, force: bool) -> tuple[PermitKind, CircuitState | None]:
        """Admits or refuses one call; returns the permit kind and the transition it caused, if any."""
        self.policy = policy
        if policy.window > (self.outcomes.maxlen or 0):  # another config reaching this identity looks further back
            self.outcomes = collections.deque(self.outcomes, maxlen=policy.window)
        if self.state is CircuitState.CLOSED:
            return _CALL_NO_TRANSITION
        transition = None
        if self.state is CircuitState.OPEN and now >= self.retry_at:
            self.state = CircuitState.HALF_OPEN
            self.epoch += 1
            transition = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            return PermitKind.PROBE, transition
        return (PermitKind.BYPASS if force else PermitKind.REFUSED), transition

    def record(
        self, kind: PermitKind, epoch: int, policy: BreakerPolicy, outcome: Outcome, now: float, wall: float
    ) -> CircuitState | None:
        """Applies one call's outcome; returns the state it moved to, if it moved."""
        if epoch != self.epoch or kind is PermitKind.REFUSED:
            return None
        if kind is PermitKind.CALL:  # the epoch matches, so the breaker is still closed
            if outcome is Outcome.NEUTRAL:
                return None
            failed = outcome is Outcome.FAILURE
            if len(self.outcomes) == self.outcomes.maxlen:
                self.failures -= self.outcomes[0]
            self.outcomes.append(failed)
            self.failures += failed
            self.consecutive = self.consecutive + 1 if failed else 0
            # Checked after successes too: the call that fills the window can be the one that shows the rate.
            return self._open(policy, now, wall) if self._tripped(policy) else None
        # A probe, or a call let through because it was the caller's last option: either way a
        # real answer from a target we believed broken.
        if kind is PermitKind.PROBE:
            self._probing = False
        if outcome is Outcome.SUCCESS:
            return self._close()
        if outcome is Outcome.FAILURE:
            return self._open(policy, now, wall)
        return None

    def _tripped(self, policy: BreakerPolicy) -> bool:
        if policy.consecutive_failures and self.consecutive >= policy.consecutive_failures:
            return True
        if policy.failure_rate and len(self.outcomes) >= policy.window:
            return self._recent_failures(policy.window) >= policy.failure_rate * policy.window
        return False

    def _recent_failures(self, window: int) -> int:
        if len(self.outcomes) <= window:
            return self.failures
        # Only when configs with different windows share this identity.
        return sum(itertools.islice(reversed(self.outcomes), window))

    def _open(self, policy: BreakerPolicy, now: float, wall: float) -> CircuitState | None:
        previous = self.state
        self.state = CircuitState.OPEN
        self.opened_at, self.opened_wall = now, wall
        self.retry_at = now + policy.cooldown_seconds
        self._probing = False
        self.epoch += 1
        return None if previous is CircuitState.OPEN else CircuitState.OPEN

    def _close(self) -> CircuitState:
        self.state = CircuitState.CLOSED
        self.consecutive = 0
        self.outcomes.clear()
        self.failures = 0
        self._probing = False
        self.epoch += 1
        return CircuitState.CLOSED

    def force_open(self, opened_at: float, opened_wall: float, retry_at: float) -> CircuitState | None:
        """Opens until ``retry_at`` because another replica's breaker opened; returns the transition."""
        previous = self.state
        self.state = CircuitState.OPEN
        self.opened_at, self.opened_wall, self.retry_at = opened_at, opened_wall, retry_at
        self._probing = False
        self.epoch += 1
        return None if previous is CircuitState.OPEN else CircuitState.OPEN

    def force_close(self) -> CircuitState:
        """Closes because another replica's probe succeeded."""
        return self._close()

    def effective_state(self, now: float) -> CircuitState:
        """OPEN turns HALF_OPEN once the cool-down has passed, even before a probe arrives."""
        if self.state is CircuitState.OPEN and now >= self.retry_at:
            return CircuitState.HALF_OPEN
        return self.state

    def view(self, identity: TargetIdentity, now: float, wall: float) -> BreakerView:
        calls = min(len(self.outcomes), self.policy.window)
        is_open = self.state is not CircuitState.CLOSED
        return BreakerView(
            identity=identity,
            state=self.effective_state(now),
            consecutive_failures=self.consecutive,
            failure_rate=round(self._recent_failures(calls) / calls, 4) if calls else 0.0,
            window_calls=calls,
            opened_time=self.opened_wall if is_open else 0.0,
            next_probe_time=(wall + max(0.0, self.retry_at - now)) if is_open else 0.0,
        )
