"""Picks and opens the state backends the settings name: the one place that chooses them.

Without ``IMAGEGW_REDIS_URL`` every kind is kept in this process. With it, every kind is kept in
Redis (``state/redis/``), each with an in-process twin that serves while Redis is unreachable.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Protocol

from imagegateway_server.state.breakers import BreakerPolicy, Breakers, TransitionListener
from imagegateway_server.state.cache_store import CacheStore
from imagegateway_server.state.changes import ChangeFeed
from imagegateway_server.state.flights import SharedFlights
from imagegateway_server.state.gone_models import GoneModels
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from imagegateway_server.state.in_process.cache_store import MemoryCacheStore
from imagegateway_server.state.in_process.changes import LocalChangeFeed
from imagegateway_server.state.in_process.flights import LocalFlights
from imagegateway_server.state.in_process.gone_models import LocalGoneModels
from imagegateway_server.state.in_process.kept_images import LocalKeptImages
from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from imagegateway_server.state.in_process.sessions import InProcessSessionStore
from imagegateway_server.state.kept_images import Keepable, KeptImages, LocalImageKeeper
from imagegateway_server.state.limit_counters import LimitCounters
from imagegateway_server.state.redis.breakers import RedisBreakers
from imagegateway_server.state.redis.cache_store import RedisCacheStore
from imagegateway_server.state.redis.changes import RedisChangeFeed
from imagegateway_server.state.redis.events import Events
from imagegateway_server.state.redis.flights import RedisFlights
from imagegateway_server.state.redis.gone_models import RedisGoneModels
from imagegateway_server.state.redis.kept_images import RedisKeptImages
from imagegateway_server.state.redis.limit_counters import RedisLimitCounters
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable, UpListener
from imagegateway_server.state.redis.sessions import RedisSessionStore
from imagegateway_server.state.sessions import SessionStore


class BackendHealth(Protocol):
    """Whether a shared backend is in use right now (health details, the backend-up metric)."""

    @property
    def up(self) -> bool: ...

    def status(self) -> dict[str, object]:
        """Health details; never a password."""
        ...

    def add_listener(self, listener: UpListener) -> None:
        """Told True / False each time the replica goes back to / gives up on the backend."""
        ...


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

    @property
    def redis_timeout_seconds(self) -> float: ...

    @property
    def redis_failures_to_down(self) -> int: ...


@dataclasses.dataclass(frozen=True, slots=True)
class StateBackends:
    """The process's state backends, one per kind; ``close`` releases what they hold open."""

    cache_store: CacheStore
    breakers: Breakers
    limit_counters: LimitCounters
    sessions: SessionStore
    flights: SharedFlights = dataclasses.field(default_factory=LocalFlights)
    changes: ChangeFeed = dataclasses.field(default_factory=LocalChangeFeed)
    # Retired models a provider said are gone, per account (``routing.model_successors``).
    gone_models: GoneModels = dataclasses.field(default_factory=LocalGoneModels)
    # The shared backend's health; None when everything is kept in this process.
    health: BackendHealth | None = None
    # The Redis connection, for the kinds opened later (kept images); None in process.
    link: RedisLink | None = dataclasses.field(default=None, repr=False)
    # What the backends hold open (connections, pools), closed in reverse order; empty in process.
    resources: contextlib.AsyncExitStack = dataclasses.field(default_factory=contextlib.AsyncExitStack, repr=False)

    async def close(self) -> None:
        """Releases what the backends hold open; a second call does nothing."""
        await self.resources.aclose()


def open_kept_images(backends: StateBackends, local: LocalImageKeeper, keepable: Keepable) -> KeptImages:
    """Kept images where the other state is: in Redis (``local`` the fallback), or ``local`` alone."""
    kept = LocalKeptImages(local)
    return kept if backends.link is None else RedisKeptImages(backends.link, kept, keepable)


async def open_state(
    settings: StateSettings, *, on_breaker_transition: TransitionListener | None = None
) -> StateBackends:
    """Opens the backends the settings choose. ValueError (one line, never the URL) for a URL that
    cannot be a Redis URL; an unreachable Redis is not an error (the replica starts in process and
    goes to Redis when it answers). The caller closes what it gets."""
    breaker_policy = BreakerPolicy(
        settings.breaker_consecutive_failures,
        settings.breaker_failure_rate,
        settings.breaker_window,
        settings.breaker_cooldown_seconds,
    )
    cache_store = MemoryCacheStore(settings.cache_max_bytes)
    breakers = InProcessBreakers(breaker_policy, on_transition=on_breaker_transition)
    limit_counters = InProcessLimitCounters()
    sessions = InProcessSessionStore()
    if not settings.redis_url:
        return StateBackends(cache_store, breakers, limit_counters, sessions)
    return await _open_redis(settings, cache_store, breakers, limit_counters, sessions)


async def _open_redis(
    settings: StateSettings,
    cache_store: MemoryCacheStore,
    breakers: InProcessBreakers,
    limit_counters: InProcessLimitCounters,
    sessions: InProcessSessionStore,
) -> StateBackends:
    link = RedisLink(
        settings.redis_url,
        timeout_seconds=settings.redis_timeout_seconds,
        failures_to_down=settings.redis_failures_to_down,
    )
    resources = contextlib.AsyncExitStack()
    resources.push_async_callback(link.close)  # last: it lets queued writes finish
    events = Events(link)
    shared_breakers = RedisBreakers(link, events, breakers)
    counters = RedisLimitCounters(link, limit_counters)
    flights = RedisFlights(link, events)
    gone_models = RedisGoneModels(link, events, LocalGoneModels())
    backends = StateBackends(
        cache_store=RedisCacheStore(link, cache_store, flights),
        breakers=shared_breakers,
        limit_counters=counters,
        sessions=RedisSessionStore(link, sessions),
        flights=flights,
        changes=RedisChangeFeed(link, events),
        gone_models=gone_models,
        health=link,
        link=link,
        resources=resources,
    )
    try:
        await link.open()
        await counters.start()
        resources.push_async_callback(counters.close)
        await events.start()
        resources.push_async_callback(events.close)
        with contextlib.suppress(RedisUnavailable):
            await shared_breakers.load()
        with contextlib.suppress(RedisUnavailable):
            await gone_models.load()
    except BaseException:
        await resources.aclose()
        raise
    return backends
