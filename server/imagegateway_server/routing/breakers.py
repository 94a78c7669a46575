"""How routing uses circuit breakers: which attempt results count against a target, and a config's
``circuit_breaker`` settings.

Only failures that say the upstream is unwell count (``FAILURE_KINDS``); an answer about the
request or the key (bad request, content policy, auth) proves the upstream is up and counts as a
success; an attempt cut short by the caller (its deadline, a cancel) counts as nothing.

The breakers themselves (identities, thresholds, permits, the ``Breakers`` interface and its
backends) live in ``imagegateway_server.state.breakers``, and are imported from there.
"""

from __future__ import annotations

import math

from imagegateway_server.domain.errors import ErrorKind, InvalidArgument
from imagegateway_server.domain.routing_config import CircuitBreakerSettings
from imagegateway_server.state.breakers import (
    MAX_CONSECUTIVE_FAILURES,
    MAX_COOLDOWN_SECONDS,
    MAX_WINDOW,
    BreakerOverrides,
    Outcome,
)

# Failures that say the upstream (not the request, not the key) is in trouble.
FAILURE_KINDS = frozenset(
    {
        ErrorKind.UNAVAILABLE,
        ErrorKind.TIMEOUT,
        ErrorKind.UPSTREAM_BUG,
        ErrorKind.RATE_LIMITED,
        ErrorKind.INTERNAL,
    }
)
# The caller ran out of time: says nothing about the upstream.
NEUTRAL_KINDS = frozenset({ErrorKind.DEADLINE_EXCEEDED})


def outcome_of(kind: ErrorKind | None) -> Outcome:
    """Classifies an attempt's result (None: it succeeded) for the breaker."""
    if kind is None:
        return Outcome.SUCCESS
    if kind in FAILURE_KINDS:
        return Outcome.FAILURE
    if kind in NEUTRAL_KINDS:
        return Outcome.NEUTRAL
    return Outcome.SUCCESS


def overrides_from_config(
    settings: CircuitBreakerSettings, param: str, parent: BreakerOverrides | None
) -> BreakerOverrides:
    """Validates a config's ``circuit_breaker`` (0 = inherit) and merges it over the parent's, field by field."""
    if not 0 <= settings.consecutive_failures <= MAX_CONSECUTIVE_FAILURES:
        raise InvalidArgument(
            f"must be between 1 and {MAX_CONSECUTIVE_FAILURES} (0: inherit)", param=f"{param}.consecutive_failures"
        )
    if not (math.isfinite(settings.failure_rate) and 0 <= settings.failure_rate <= 1):
        raise InvalidArgument("must be a fraction above 0 and at most 1 (0: inherit)", param=f"{param}.failure_rate")
    if not 0 <= settings.window <= MAX_WINDOW:
        raise InvalidArgument(f"must be between 1 and {MAX_WINDOW} calls (0: inherit)", param=f"{param}.window")
    if not (math.isfinite(settings.cooldown_seconds) and 0 <= settings.cooldown_seconds <= MAX_COOLDOWN_SECONDS):
        raise InvalidArgument(
            f"must be above 0 and at most {MAX_COOLDOWN_SECONDS:g} seconds (0: inherit)",
            param=f"{param}.cooldown_seconds",
        )
    base = parent or BreakerOverrides()
    return BreakerOverrides(
        consecutive_failures=settings.consecutive_failures or base.consecutive_failures,
        failure_rate=settings.failure_rate or base.failure_rate,
        window=settings.window or base.window,
        cooldown_seconds=settings.cooldown_seconds or base.cooldown_seconds,
    )
