"""Picks and opens the state backends the settings name: the one place that chooses them.

Today every kind is kept in this process. ``IMAGEGW_REDIS_URL`` is refused rather than ignored:
a replica that believed it shared its cache, breakers, limits and sessions while keeping them to
itself would let each replica spend a key's whole budget. A shared backend adds one branch here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Protocol

from imagegateway_server.state.breakers import BreakerPolicy, Breakers, TransitionListener
from imagegateway_server.state.cache_store import CacheStore
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from imagegateway_server.state.in_process.cache_store import MemoryCacheStore
from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from imagegateway_server.state.in_process.sessions import InProcessSessionStore
from imagegateway_server.state.limit_counters import LimitCounters
from imagegateway_server.state.sessions import SessionStore

REDIS_NOT_AVAILABLE = (
    "IMAGEGW_REDIS_URL is set, but shared state (Redis) is not available yet; unset it to keep the cache, "
    "circuit breakers, rate limits and dashboard sessions in this process"
)


class StateSettings(Protocol):
    """The settings the factory reads (``imagegateway_server.settings.Settings`` has them all)."""

    @property
    def redis_url(self) -> str: ...

    @property
    def cache_max_bytes(self) -> int: ...

    @property
    def breaker_consecutive_failures(self) -> int: ...

    @property
    def breaker_failure_rate(self) -> float: ...

    @property
    def breaker_window(self) -> int: ...

    @property
    def breaker_cooldown_seconds(self) -> float: ...


@dataclasses.dataclass(frozen=True, slots=True)
class StateBackends:
    """The process's state backends, one per kind; ``close`` releases what they hold open."""

    cache_store: CacheStore
    breakers: Breakers
    limit_counters: LimitCounters
    sessions: SessionStore
    # What the backends hold open (connections, pools), closed in reverse order; empty in process.
    resources: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack, repr=False)

    async def close(self) -> None:
        """Releases what the backends hold open; a second call does nothing."""
        await self.resources.aclose()


async def open_state(
    settings: StateSettings, *, on_breaker_transition: TransitionListener | None = None
) -> StateBackends:
    """Opens the backends the settings choose. ValueError (one line, never the URL) when a chosen
    backend is not available. The caller closes what it gets."""
    if settings.redis_url:
        raise ValueError(REDIS_NOT_AVAILABLE)
    breaker_policy = BreakerPolicy(
        settings.breaker_consecutive_failures,
        settings.breaker_failure_rate,
        settings.breaker_window,
        settings.breaker_cooldown_seconds,
    )
    return StateBackends(
        cache_store=MemoryCacheStore(settings.cache_max_bytes),
        breakers=InProcessBreakers(breaker_policy, on_transition=on_breaker_transition),
        limit_counters=InProcessLimitCounters(),
        sessions=InProcessSessionStore(),
    )
