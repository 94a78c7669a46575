"""Circuit breakers shared through Redis: a breaker opened by one replica is open on all, and one
half-open probe goes out across the fleet.

Each replica counts failures in its own breakers (``InProcessBreakers``: no Redis call while a
breaker is closed, which is the hot path). What is shared is the transitions:

* A breaker that opens here is written to the hash ``igw:breakers`` (field: the routing identity;
  value: when it opened and when its cool-down ends, wall clock) and published on
  ``igw:events:breakers``; every other replica opens its own breaker until the same time.
* When the cool-down ends, the replica whose call would be the probe first takes
  ``igw:probe:<identity>`` (SET NX, ``PROBE_LOCK_SECONDS``); a replica that cannot is refused like
  any call during a probe. The probe's outcome is published: success closes every replica's
  breaker (and removes the hash field), failure opens them all for a new cool-down.
* A replica (re)subscribing, or going back to Redis, loads the hash and closes what is no longer in it.

While Redis is unreachable every replica's breakers work alone, as in process.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from imagegateway_server.state.breakers import (
    BreakerOverrides,
    BreakerView,
    CircuitState,
    Outcome,
    Permit,
    PermitKind,
    TargetIdentity,
)
from imagegateway_server.state.circuit_breaker import CircuitBreaker
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from imagegateway_server.state.redis.events import BREAKERS_CHANNEL, PREFIX, Events
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable

OPEN_HASH = PREFIX + "breakers"
PROBE_PREFIX = PREFIX + "probe:"
# A probe's replica that dies frees the probe after this long.
PROBE_LOCK_SECONDS = 60.0
# After losing the probe to another replica, calls are refused here for this long without asking Redis.
PROBE_LOST_SECONDS = 0.5
MAX_PROBES_LOST = 1024
# The open-breakers hash outlives its last write by this long (identities no longer called).
OPEN_HASH_TTL_SECONDS = 86400.0


def identity_field(identity: TargetIdentity) -> str:
    return json.dumps([identity.provider, identity.host, identity.key_fingerprint, identity.model])


def identity_of(field: str | bytes) -> TargetIdentity | None:
    try:
        provider, host, fingerprint, model = json.loads(field)
        return TargetIdentity(str(provider), str(host), str(fingerprint), str(model))
    except (ValueError, TypeError):
        return None


class RedisBreakers:
    """Breakers counted in this process whose transitions every replica on this Redis shares."""

    def __init__(
        self,
        link: RedisLink,
        events: Events,
        local: InProcessBreakers,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._link = link
        self._events = events
        self._local = local
        self._wall = wall_clock
        self._probe_lost_until: dict[TargetIdentity, float] = {}
        events.on(BREAKERS_CHANNEL, self._on_message)
        events.on_resubscribed(self.load)
        link.add_return_hook(self._load_direct)

    async def acquire(
        self, identity: TargetIdentity, overrides: BreakerOverrides | None, *, force: bool = False
    ) -> Permit:
        permit = await self._local.acquire(identity, overrides, force=force)
        if permit.kind is not PermitKind.PROBE:
            return permit
        breaker = permit.breaker
        now = time.monotonic()
        lost_until = self._probe_lost_until.get(identity, 0.0)
        if now >= lost_until:
            try:
                won = await self._link.run(
                    lambda client: client.set(
                        PROBE_PREFIX + identity_field(identity),
                        self._link.replica_id,
                        nx=True,
                        px=int(PROBE_LOCK_SECONDS * 1000),
                    )
                )
            except RedisUnavailable:
                return permit  # alone: this replica's breaker decides
            if won:
                self._probe_lost_until.pop(identity, None)
                return permit
            if len(self._probe_lost_until) >= MAX_PROBES_LOST:
                self._probe_lost_until.clear()  # many targets half-open at once: just ask Redis again
            self._probe_lost_until[identity] = now + PROBE_LOST_SECONDS
        # Another replica is probing: give the local probe back and treat this call as any other during a probe.
        self._local.record(permit, Outcome.NEUTRAL)
        epoch = breaker.epoch if isinstance(breaker, CircuitBreaker) else permit.epoch
        return Permit(
            PermitKind.BYPASS if force else PermitKind.REFUSED, identity, permit.policy, epoch, permit.retry_at, breaker
        )

    def record(self, permit: Permit, outcome: Outcome) -> None:
        breaker = permit.breaker
        if not isinstance(breaker, CircuitBreaker):
            return
        epoch = breaker.epoch
        self._local.record(permit, outcome)
        moved = breaker.epoch != epoch
        if moved and breaker.state is CircuitState.OPEN:
            retry_wall = breaker.opened_wall + (breaker.retry_at - breaker.opened_at)
            self._link.spawn(self._share_open(permit.identity, breaker.opened_wall, retry_wall))
        elif moved and breaker.state is CircuitState.CLOSED:
            self._link.spawn(self._share_closed(permit.identity))
        elif permit.kind is PermitKind.PROBE:
            self._link.spawn(self._free_probe(permit.identity))  # a probe that proved nothing

    async def snapshot(self, provider: str | None = None) -> list[BreakerView]:
        return await self._local.snapshot(provider)

    def states(self) -> list[tuple[str, str, CircuitState]]:
        return self._local.states()

    # --- sharing --------------------------------------------------------------------------------

    async def _share_open(self, identity: TargetIdentity, opened_wall: float, retry_wall: float) -> None:
        field = identity_field(identity)
        value = json.dumps({"opened": opened_wall, "retry": retry_wall})

        async def write(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(OPEN_HASH, field, value)
                pipe.pexpire(OPEN_HASH, int(OPEN_HASH_TTL_SECONDS * 1000))
                pipe.delete(PROBE_PREFIX + field)
                await pipe.execute()

        await self._link.run(write)
        await self._events.publish(
            BREAKERS_CHANNEL, {"identity": field, "state": "open", "opened": opened_wall, "retry": retry_wall}
        )

    async def _share_closed(self, identity: TargetIdentity) -> None:
        field = identity_field(identity)

        async def write(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hdel(OPEN_HASH, field)
                pipe.delete(PROBE_PREFIX + field)
                await pipe.execute()

        await self._link.run(write)
        await self._events.publish(BREAKERS_CHANNEL, {"identity": field, "state": "closed"})

    async def _free_probe(self, identity: TargetIdentity) -> None:
        await self._link.run(lambda client: client.delete(PROBE_PREFIX + identity_field(identity)))

    def _on_message(self, message: Mapping[str, Any]) -> None:
        identity = identity_of(str(message.get("identity", "")))
        if identity is None:
            return
        if message.get("state") == "open":
            try:
                opened, retry = float(message["opened"]), float(message["retry"])
            except (KeyError, TypeError, ValueError):
                return
            self._local.apply(identity, CircuitState.OPEN, retry, opened)
        elif message.get("state") == "closed":
            self._local.apply(identity, CircuitState.CLOSED, 0.0, 0.0)

    async def load(self) -> None:
        """Takes the fleet's open breakers from Redis, and closes local ones the fleet closed."""
        entries = await self._link.run(lambda client: client.hgetall(OPEN_HASH))
        self._apply_all(entries, close_missing=True)

    async def _load_direct(self) -> None:
        # Before the link is back up (its return hook), so not through ``run``. Breakers this replica
        # opened while alone stay open here: the fleet did not see their evidence.
        self._apply_all(await self._link.client.hgetall(OPEN_HASH), close_missing=False)

    def _apply_all(self, entries: Mapping[Any, Any], *, close_missing: bool) -> None:
        shared: set[TargetIdentity] = set()
        for field, value in entries.items():
            identity = identity_of(field)
            if identity is None:
                continue
            try:
                times = json.loads(value)
                opened, retry = float(times["opened"]), float(times["retry"])
            except (ValueError, TypeError, KeyError):
                continue
            shared.add(identity)
            self._local.apply(identity, CircuitState.OPEN, retry, opened)
        for identity in self._local.open_identities() if close_missing else ():
            if identity not in shared:
                self._local.apply(identity, CircuitState.CLOSED, 0.0, 0.0)
