"""Circuit-breaker state: what a breaker is about, its thresholds, the permit a call carries, and the
``Breakers`` interface every breaker backend implements.

A routing identity is (provider, upstream host, key fingerprint, model): two configs that reach the
same account and model share one breaker, two keys or two hosts of one provider do not. Each
breaker is a small state machine (``circuit_breaker.CircuitBreaker``):

    CLOSED --N consecutive failures, or failure rate >= R over the last W calls--> OPEN
    OPEN --cool-down elapsed; the next call is the one probe--> HALF_OPEN
    HALF_OPEN --probe succeeds--> CLOSED;  --probe fails--> OPEN (a new cool-down)

Which attempt results count as failures is the router's judgement (``routing.breakers.outcome_of``);
a backend only sees ``Outcome``. Outcomes of calls admitted before the breaker's last transition are
stale evidence and ignored (image calls take seconds to minutes, so many are in flight when a
breaker opens or closes).
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from imagegateway_server.domain.credentials import Credential

MAX_WINDOW = 1000
MAX_CONSECUTIVE_FAILURES = 1000
MAX_COOLDOWN_SECONDS = 3600.0


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
            consecutive_failures=base.consecutive_failures
            if self.consecutive_failures is None
            else self.consecutive_failures,
            failure_rate=base.failure_rate if self.failure_rate is None else self.failure_rate,
            window=base.window if self.window is None else self.window,
            cooldown_seconds=base.cooldown_seconds if self.cooldown_seconds is None else self.cooldown_seconds,
        )


def key_fingerprint(credential: Credential) -> str:
    """A short, stable, non-reversible tag of a provider account, to tell accounts apart in views."""
    return credential.account_fingerprint()


@dataclasses.dataclass(frozen=True, slots=True)
class TargetIdentity:
    """What a breaker is about. ``host`` is empty when the provider's public API host is used."""

    provider: str
    host: str
    key_fingerprint: str
    model: str

    @classmethod
    def of(cls, provider: str, base_url: str | None, credential: Credential, model: str) -> TargetIdentity:
        host = (urlsplit(base_url).netloc.rpartition("@")[2].lower()) if base_url else ""
        return cls(provider, host, key_fingerprint(credential), model)


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
    ``breaker`` is the backend's own handle on the breaker, so ``record`` needs no look-up (the
    in-process backend: its ``CircuitBreaker``); None when nothing is tracked for the identity.
    """

    kind: PermitKind
    identity: TargetIdentity
    policy: BreakerPolicy
    epoch: int = 0
    retry_at: float = 0.0
    breaker: object | None = dataclasses.field(default=None, compare=False, repr=False)

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


# Told of every transition (the transitions metric).
TransitionListener = Callable[[TargetIdentity, CircuitState], None]


class Breakers(Protocol):
    """Breaker state, consulted by the router around each attempt and read by the admin API and metrics."""

    async def acquire(
        self, identity: TargetIdentity, overrides: BreakerOverrides | None, *, force: bool = False
    ) -> Permit:
        """May a call go to ``identity`` now? ``force``: the caller has no other target, let it through."""
        ...

    def record(self, permit: Permit, outcome: Outcome) -> None:
        """Reports how a permitted call went.

        Synchronous, so it is safe in ``finally`` and on cancel: a shared backend applies the outcome
        to its local copy and queues the write, it does no I/O here.
        """
        ...

    async def snapshot(self, provider: str | None = None) -> list[BreakerView]:
        """Every tracked identity (of one provider), sorted."""
        ...

    def states(self) -> list[tuple[str, str, CircuitState]]:
        """(provider, model, state) of every tracked identity, for the metrics scrape.

        Synchronous and called from the scrape's own thread: a shared backend answers from the copy
        it keeps locally, it does no I/O here.
        """
        ...
