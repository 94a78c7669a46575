"""Circuit breakers kept in this process: one ``CircuitBreaker`` per routing identity, bounded.

Callers choose model names (and, with a bare provider, bring their own key), so every bogus name
would otherwise make a breaker that lives forever. The map is bounded two ways:

* Idle: a closed breaker with no failures counted and no call for ``IDLE_SECONDS`` holds no
  evidence and is forgotten (seen again, it starts closed, as it was).
* A cap of ``MAX_IDENTITIES``: a new identity past it first forgets idle breakers, and open ones
  whose cool-down ended ``IDLE_SECONDS`` ago with no call since and no probe in flight (their next
  call would be a probe, and a forgotten breaker lets that call through the same way); then closed
  breakers, least recently called first, those without counted failures before those with. An
  open or half-open breaker that still matters is never forgotten: when every tracked breaker is
  one, a new identity's calls go through untracked until room appears (logged).

Both sweeps walk the map in call order (oldest first) and stop early, so the cost per call stays
flat; room is made in batches of an eighth of the cap.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from imagegateway_server.state.breakers import (
    BreakerOverrides,
    BreakerPolicy,
    BreakerView,
    CircuitState,
    Outcome,
    Permit,
    PermitKind,
    TargetIdentity,
    TransitionListener,
)
from imagegateway_server.state.circuit_breaker import CircuitBreaker

log = logging.getLogger(__name__)

# Past this many identities, closed breakers are forgotten to make room. A breaker is about 1.3 KB
# (more with a long failure-rate window), so the map stays around a megabyte and a sweep stays short.
MAX_IDENTITIES = 1024
# A closed breaker without counted failures, not called for this long, is forgotten; so is, when
# room is needed, an open one whose cool-down ended this long ago.
IDLE_SECONDS = 1800.0
# How often the idle sweep runs (it is triggered by a call, never by a timer).
SWEEP_INTERVAL_SECONDS = 60.0
# With every tracked breaker open, the map is searched for room again at most this often.
NO_ROOM_RETRY_SECONDS = 1.0
# How often a map full of open breakers is logged.
NO_ROOM_WARNING_SECONDS = 60.0
# Distinct config overrides whose resolved policy is remembered (inline configs are per request).
MAX_POLICIES = 256


class _TrackedBreaker(CircuitBreaker):
    """A breaker plus what the in-process map keeps about it."""

    __slots__ = ("call_permit", "last_used")

    def __init__(self, policy: BreakerPolicy, now: float) -> None:
        super().__init__(policy)
        self.last_used = now  # when a call last asked (the map's clock), for the idle sweep
        # The permit every call gets while closed in one epoch under one policy: reused, since it
        # is the same answer each time and closed is the hot path.
        self.call_permit: Permit | None = None


class InProcessBreakers:
    """Breakers kept in this process. One lock guards them: the metrics scrape reads from its own thread."""

    def __init__(
        self,
        defaults: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        on_transition: TransitionListener | None = None,
        max_identities: int = MAX_IDENTITIES,
    ) -> None:
        if max_identities < 1:
            raise ValueError("max_identities must be at least 1")
        self._defaults = defaults
        self._clock = clock
        self._wall = wall_clock
        self._on_transition = on_transition
        self._max = max_identities
        # Room is made down to this many, so that a flood of new identities sweeps once per batch.
        self._low_water = max_identities - max(1, max_identities // 8)
        # In call order, oldest first: both sweeps rely on it.
        self._breakers: collections.OrderedDict[TargetIdentity, _TrackedBreaker] = collections.OrderedDict()
        self._policies: dict[BreakerOverrides, BreakerPolicy] = {}
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        self._no_room_until = 0.0
        self._next_no_room_warning = 0.0

    def __len__(self) -> int:
        return len(self._breakers)

    def policy(self, overrides: BreakerOverrides | None) -> BreakerPolicy:
        """The thresholds for a target: its config's, falling back to the global defaults."""
        if overrides is None:
            return self._defaults
        policy = self._policies.get(overrides)
        if policy is None:  # saved configs compile once, so this fills once per distinct override
            if len(self._policies) >= MAX_POLICIES:
                self._policies.clear()  # callers' inline configs may each carry their own
            policy = self._policies[overrides] = overrides.apply(self._defaults)
        return policy

    async def acquire(
        self, identity: TargetIdentity, overrides: BreakerOverrides | None, *, force: bool = False
    ) -> Permit:
        policy = self.policy(overrides)
        with self._lock:
            now = self._clock()
            if now >= self._next_sweep:
                self._sweep_idle(now, stale_open=False)
            breaker = self._breakers.get(identity)
            if breaker is None:
                if not policy.enabled or not self._has_room(now):
                    return Permit(PermitKind.CALL, identity, policy)  # nothing tracked
                breaker = self._breakers[identity] = _TrackedBreaker(policy, now)
            else:
                self._breakers.move_to_end(identity)
                breaker.last_used = now
            kind, transition = breaker.acquire(policy, now, force)
            if kind is PermitKind.CALL:
                permit = breaker.call_permit
                if permit is None or permit.epoch != breaker.epoch or permit.policy is not policy:
                    permit = breaker.call_permit = Permit(
                        kind, identity, policy, breaker.epoch, breaker.retry_at, breaker
                    )
            else:
                permit = Permit(kind, identity, policy, breaker.epoch, breaker.retry_at, breaker)
        if transition is not None:
            self._notify(identity, transition)
        return permit

    def record(self, permit: Permit, outcome: Outcome) -> None:
        breaker = permit.breaker
        if not isinstance(breaker, CircuitBreaker):
            return  # nothing was tracked for this call
        with self._lock:
            transition = breaker.record(permit.kind, permit.epoch, permit.policy, outcome, self._clock(), self._wall())
        if transition is not None:
            self._notify(permit.identity, transition)

    def apply(self, identity: TargetIdentity, state: CircuitState, retry_wall: float, opened_wall: float) -> None:
        """Takes a transition another replica made (a shared backend's messages): OPEN until the wall
        clock reaches ``retry_wall``, or CLOSED. Outcomes of calls admitted before it become stale."""
        transition = None
        with self._lock:
            now, wall = self._clock(), self._wall()
            breaker = self._breakers.get(identity)
            if breaker is None:
                if state is CircuitState.CLOSED or not self._has_room(now):
                    return
                breaker = self._breakers[identity] = _TrackedBreaker(self._defaults, now)
            if state is CircuitState.OPEN:
                retry_at = now + (retry_wall - wall)
                if breaker.state is CircuitState.OPEN and breaker.retry_at >= retry_at:
                    return  # already open at least as long
                transition = breaker.force_open(now - (wall - opened_wall), opened_wall, retry_at)
            elif breaker.state is not CircuitState.CLOSED:
                transition = breaker.force_close()
        if transition is not None:
            self._notify(identity, transition)

    def open_identities(self) -> list[TargetIdentity]:
        """The identities whose breaker is open or half-open here."""
        with self._lock:
            return [i for i, b in self._breakers.items() if b.state is not CircuitState.CLOSED]

    def _notify(self, identity: TargetIdentity, state: CircuitState) -> None:
        if self._on_transition is not None:
            self._on_transition(identity, state)

    async def snapshot(self, provider: str | None = None) -> list[BreakerView]:
        with self._lock:
            now, wall = self._clock(), self._wall()
            views = [
                b.view(i, now, wall) for i, b in self._breakers.items() if provider is None or i.provider == provider
            ]
        return sorted(
            views, key=lambda v: (v.identity.provider, v.identity.host, v.identity.model, v.identity.key_fingerprint)
        )

    def states(self) -> list[tuple[str, str, CircuitState]]:
        with self._lock:
            now = self._clock()
            return [(i.provider, i.model, b.effective_state(now)) for i, b in self._breakers.items()]

    # --- bounds (called with the lock held) ----------------------------------------------------------

    def _forget(self, identities: list[TargetIdentity]) -> None:
        for identity in identities:
            # The cached permit points back at its breaker: break the cycle so the pair is freed at once.
            self._breakers.pop(identity).call_permit = None

    def _sweep_idle(self, now: float, *, stale_open: bool) -> None:
        """Forgets idle closed breakers without counted failures; with ``stale_open``, also open ones
        whose cool-down ended long ago, uncalled since and with no probe in flight."""
        self._next_sweep = now + SWEEP_INTERVAL_SECONDS
        idle_before = now - IDLE_SECONDS
        idle: list[TargetIdentity] = []
        for identity, breaker in self._breakers.items():
            if breaker.last_used > idle_before:
                break  # every later one was called more recently
            if breaker.state is CircuitState.CLOSED:
                if not breaker.counts_failures:
                    idle.append(identity)
            elif stale_open and not breaker.probing and breaker.retry_at <= idle_before:
                idle.append(identity)
        self._forget(idle)

    def _has_room(self, now: float) -> bool:
        """Whether a new identity may be tracked, forgetting closed breakers to make room if needed."""
        if len(self._breakers) < self._max:
            return True
        if now < self._no_room_until:
            return False
        self._sweep_idle(now, stale_open=True)
        for spare_failing in (True, False):
            if len(self._breakers) <= self._low_water:
                break
            self._forget_closed(spare_failing=spare_failing)
        if len(self._breakers) < self._max:
            return True
        self._no_room_until = now + NO_ROOM_RETRY_SECONDS
        if now >= self._next_no_room_warning:
            self._next_no_room_warning = now + NO_ROOM_WARNING_SECONDS
            log.warning(
                "all %d tracked circuit breakers are open or half-open; calls to other targets go "
                "through without a breaker until one closes or goes stale",
                self._max,
            )
        return False

    def _forget_closed(self, *, spare_failing: bool) -> None:
        """Forgets closed breakers, least recently called first, down to the low-water mark."""
        excess = len(self._breakers) - self._low_water
        chosen: list[TargetIdentity] = []
        for identity, breaker in self._breakers.items():
            if len(chosen) == excess:
                break
            if breaker.state is CircuitState.CLOSED and not (spare_failing and breaker.counts_failures):
                chosen.append(identity)
        self._forget(chosen)
