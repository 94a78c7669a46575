"""Circuit breakers per routing identity: when to skip a failing target and when to try it again.

A routing identity is (provider, upstream host, key fingerprint, model): two configs that reach the
same account and model share one breaker, two keys or two hosts of one provider do not. Each
breaker is a small state machine:

    CLOSED --N consecutive failures, or failure rate >= R over the last W calls--> OPEN
    OPEN --cool-down elapsed; the next call is the one probe--> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED;  --probe fails--> OPEN (a new cool-down)

Only failures that say the upstream is unwell count (``FAILURE_KINDS``); an answer about the
request or the key (bad request, content policy, auth) proves the upstream is up and counts as a
success; an attempt cut short by the caller (its deadline, a cancel) counts as nothing.

Outcomes of calls admitted before the breaker's last transition are stale evidence and ignored
(image calls take seconds to minutes, so many are in flight when a breaker opens or closes).

``Breakers`` is the interface the router and the admin API use; ``InProcessBreakers`` keeps the
state in this process (a shared store can implement the same interface).
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import hashlib
import itertools
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from imagegateway_server.domain.errors import ErrorKind, InvalidArgument
from imagegateway_server.domain.routing_config import CircuitBreakerSettings

MAX_WINDOW = 1000
MAX_CONSECUTIVE_FAILURES = 1000
MAX_COOLDOWN_SECONDS = 3600.0
# Bare-provider requests carry the caller's own key, so identities are not bounded by config;
# past this many the least recently used breaker is forgotten (it starts closed if seen again).
MAX_IDENTITIES = 1024

# Failures that say the upstream (not the request, not the key) is in trouble.
FAILURE_KINDS = frozenset({
    ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT, ErrorKind.UPSTREAM_BUG, ErrorKind.RATE_LIMITED, ErrorKind.INTERNAL,
})
# The caller ran out of time: says nothing about the upstream.
NEUTRAL_KINDS = frozenset({ErrorKind.DEADLINE_EXCEEDED})


class CircuitState(enum.Enum):
    """A breaker's state as callers see it."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


class Outcome(enum.Enum):
    """What one call says about its target's health."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"


def outcome_of(kind: ErrorKind | None) -> Outcome:
    """Classifies an attempt's result (None: it succeeded) for the breaker."""
    if kind is None:
        return Outcome.SUCCESS
    if kind in FAILURE_KINDS:
        return Outcome.FAILURE
    if kind in NEUTRAL_KINDS:
        return Outcome.NEUTRAL
    return Outcome.SUCCESS


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """Resolved thresholds. A zero ``consecutive_failures`` or ``failure_rate`` turns that trigger off."""

    consecutive_failures: int = 5
    failure_rate: float = 0.5
    window: int = 20
    cooldown_seconds: float = 30.0

    def __post_init__(self) -> None:
        if not 0 <= self.consecutive_failures <= MAX_CONSECUTIVE_FAILURES:
            raise ValueError(f"consecutive_failures must be between 0 and {MAX_CONSECUTIVE_FAILURES}")
        if not (math.isfinite(self.failure_rate) and 0 <= self.failure_rate <= 1):
            raise ValueError("failure_rate must be between 0 and 1")
        if not 1 <= self.window <= MAX_WINDOW:
            raise ValueError(f"window must be between 1 and {MAX_WINDOW}")
        if not (math.isfinite(self.cooldown_seconds) and 0 < self.cooldown_seconds <= MAX_COOLDOWN_SECONDS):
            raise ValueError(f"cooldown_seconds must be above 0 and at most {MAX_COOLDOWN_SECONDS:g}")

    @property
    def enabled(self) -> bool:
        return bool(self.consecutive_failures or self.failure_rate)


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerOverrides:
    """A config's ``circuit_breaker`` after inheritance; None fields take the global default."""

    consecutive_failures: int | None = None
    failure_rate: float | None = None
    window: int | None = None
    cooldown_seconds: float | None = None

    def apply(self, base: BreakerPolicy) -> BreakerPolicy:
        return BreakerPolicy(
            consecutive_failures=base.consecutive_failures if self.consecutive_failures is None
            else self.consecutive_failures,
            failure_rate=base.failure_rate if self.failure_rate is None else self.failure_rate,
            window=base.window if self.window is None else self.window,
            cooldown_seconds=base.cooldown_seconds if self.cooldown_seconds is None else self.cooldown_seconds,
        )


def overrides_from_config(
    settings: CircuitBreakerSettings, param: str, parent: BreakerOverrides | None
) -> BreakerOverrides:
    """Validates a config's ``circuit_breaker`` (0 = inherit) and merges it over the parent's, field by field."""
    if not 0 <= settings.consecutive_failures <= MAX_CONSECUTIVE_FAILURES:
        raise InvalidArgument(f"must be between 1 and {MAX_CONSECUTIVE_FAILURES} (0: inherit)",
                              param=f"{param}.consecutive_failures")
    if not (math.isfinite(settings.failure_rate) and 0 <= settings.failure_rate <= 1):
        raise InvalidArgument("must be a fraction above 0 and at most 1 (0: inherit)", param=f"{param}.failure_rate")
    if not 0 <= settings.window <= MAX_WINDOW:
        raise InvalidArgument(f"must be between 1 and {MAX_WINDOW} calls (0: inherit)", param=f"{param}.window")
    if not (math.isfinite(settings.cooldown_seconds) and 0 <= settings.cooldown_seconds <= MAX_COOLDOWN_SECONDS):
        raise InvalidArgument(f"must be above 0 and at most {MAX_COOLDOWN_SECONDS:g} seconds (0: inherit)",
                              param=f"{param}.cooldown_seconds")
    base = parent or BreakerOverrides()
    return BreakerOverrides(
        consecutive_failures=settings.consecutive_failures or base.consecutive_failures,
        failure_rate=settings.failure_rate or base.failure_rate,
        window=settings.window or base.window,
        cooldown_seconds=settings.cooldown_seconds or base.cooldown_seconds,
    )


def key_fingerprint(api_key: str) -> str:
    """A short, stable, non-reversible tag of a provider key, to tell accounts apart in views."""
    return "sha256:" + hashlib.sha256(api_key.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True, slots=True)
class TargetIdentity:
    """What a breaker is about. ``host`` is empty when the provider's public API host is used."""

    provider: str
    host: str
    key_fingerprint: str
    model: str

    @classmethod
    def of(cls, provider: str, base_url: str | None, api_key: str, model: str) -> TargetIdentity:
        host = (urlsplit(base_url).netloc.rpartition("@")[2].lower()) if base_url else ""
        return cls(provider, host, key_fingerprint(api_key), model)


class PermitKind(enum.Enum):
    """Why a call may (or may not) go to its target."""

    CALL = "call"  # closed: calls flow
    PROBE = "probe"  # half-open: the one trial call
    BYPASS = "bypass"  # open, but the caller has no other target left
    REFUSED = "refused"  # open: skip the target


@dataclasses.dataclass(frozen=True, slots=True)
class Permit:
    """The breaker's answer for one call; hand it back to ``Breakers.record`` with the outcome.

    ``retry_at`` (the breaker's clock) is when the cool-down ends, for a refused or bypassed call.
    """

    kind: PermitKind
    identity: TargetIdentity
    policy: BreakerPolicy
    epoch: int = 0
    retry_at: float = 0.0
    breaker: CircuitBreaker | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def refused(self) -> bool:
        return self.kind is PermitKind.REFUSED


@dataclasses.dataclass(frozen=True, slots=True)
class BreakerView:
    """One breaker's state for the admin API. Times are wall-clock epoch seconds (0: never)."""

    identity: TargetIdentity
    state: CircuitState
    consecutive_failures: int
    failure_rate: float
    window_calls: int
    opened_time: float
    next_probe_time: float


class CircuitBreaker:
    """The state machine of one routing identity. Not thread-safe: ``InProcessBreakers`` locks it."""

    __slots__ = ("_probing", "consecutive", "epoch", "failures", "opened_at", "opened_wall", "outcomes",
                 "policy", "retry_at", "state")

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

    def acquire(self, policy: BreakerPolicy, now: float, force: bool) -> tuple[PermitKind, CircuitState | None]:
        """Admits or refuses one call; returns the permit kind and the transition it caused, if any."""
        self.policy = policy
        maxlen = self.outcomes.maxlen or 0
        if policy.window > maxlen:  # another config reaching this identity looks further back
            self.outcomes = collections.deque(self.outcomes, maxlen=policy.window)
        if self.state is CircuitState.CLOSED:
            return PermitKind.CALL, None
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


class Breakers(Protocol):
    """Breaker state, consulted by the router around each attempt."""

    async def acquire(
        self, identity: TargetIdentity, overrides: BreakerOverrides | None, *, force: bool = False
    ) -> Permit:
        """May a call go to ``identity`` now? ``force``: the caller has no other target, let it through."""
        ...

    def record(self, permit: Permit, outcome: Outcome) -> None:
        """Reports how a permitted call went. Synchronous, so it is safe in ``finally`` and on cancel."""
        ...

    async def snapshot(self, provider: str | None = None) -> list[BreakerView]:
        """Every tracked identity (of one provider), sorted."""
        ...

    def states(self) -> list[tuple[str, str, CircuitState]]:
        """(provider, model, state) of every tracked identity, for the metrics scrape (any thread)."""
        ...


TransitionListener = Callable[[TargetIdentity, CircuitState], None]


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
        self._defaults = defaults
        self._clock = clock
        self._wall = wall_clock
        self._on_transition = on_transition
        self._max = max_identities
        self._breakers: collections.OrderedDict[TargetIdentity, CircuitBreaker] = collections.OrderedDict()
        self._policies: dict[BreakerOverrides, BreakerPolicy] = {}
        self._lock = threading.Lock()

    def policy(self, overrides: BreakerOverrides | None) -> BreakerPolicy:
        """The thresholds for a target: its config's, falling back to the global defaults."""
        if overrides is None:
            return self._defaults
        policy = self._policies.get(overrides)
        if policy is None:  # plans are compiled once, so this fills once per distinct override
            policy = self._policies[overrides] = overrides.apply(self._defaults)
        return policy

    async def acquire(
        self, identity: TargetIdentity, overrides: BreakerOverrides | None, *, force: bool = False
    ) -> Permit:
        policy = self.policy(overrides)
        with self._lock:
            breaker = self._breakers.get(identity)
            if breaker is None:
                if not policy.enabled:
                    return Permit(PermitKind.CALL, identity, policy)  # nothing to track
                breaker = self._breakers[identity] = CircuitBreaker(policy)
                if len(self._breakers) > self._max:
                    self._breakers.popitem(last=False)
            else:
                self._breakers.move_to_end(identity)
            kind, transition = breaker.acquire(policy, self._clock(), force)
            permit = Permit(kind, identity, policy, breaker.epoch, breaker.retry_at, breaker)
        if transition is not None:
            self._notify(identity, transition)
        return permit

    def record(self, permit: Permit, outcome: Outcome) -> None:
        if permit.breaker is None:
            return
        with self._lock:
            transition = permit.breaker.record(permit.kind, permit.epoch, permit.policy, outcome, self._clock(),
                                               self._wall())
        if transition is not None:
            self._notify(permit.identity, transition)

    def _notify(self, identity: TargetIdentity, state: CircuitState) -> None:
        if self._on_transition is not None:
            self._on_transition(identity, state)

    async def snapshot(self, provider: str | None = None) -> list[BreakerView]:
        with self._lock:
            now, wall = self._clock(), self._wall()
            views = [b.view(i, now, wall) for i, b in self._breakers.items()
                     if provider is None or i.provider == provider]
        return sorted(views, key=lambda v: (v.identity.provider, v.identity.host, v.identity.model,
                                            v.identity.key_fingerprint))

    def states(self) -> list[tuple[str, str, CircuitState]]:
        with self._lock:
            now = self._clock()
            return [(i.provider, i.model, b.effective_state(now)) for i, b in self._breakers.items()]
