"""Gone models shared through Redis: a 404 one replica was answered spares every other replica its own.

Reads stay in this process (``LocalGoneModels``: no Redis call on the request path). What is shared:

* A model remembered gone here is written as the key ``igw:gone:<identity>`` with the memory's
  time to live, and published on ``igw:events:gone`` with the seconds it has left; every other
  replica remembers it for as long.
* A replica (re)subscribing, or going back to Redis, reads the keys (``SCAN``) and their time to
  live, since messages sent while it was away are lost.

While Redis is unreachable each replica remembers alone, as in process. The identity holds the
credential's fingerprint (a digest, as the shared breakers use), never a secret.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from imagegateway_server.state.breakers import TargetIdentity
from imagegateway_server.state.in_process.gone_models import LocalGoneModels
from imagegateway_server.state.redis.breakers import identity_field, identity_of
from imagegateway_server.state.redis.events import GONE_CHANNEL, PREFIX, Events
from imagegateway_server.state.redis.link import RedisLink

GONE_PREFIX = PREFIX + "gone:"
# The longest a peer may ask this replica to remember a model as gone: the setting's own upper bound
# (IMAGEGW_RETIRED_MODEL_MEMORY_SECONDS), so a malformed message (inf, nan, 1e300) never pins a model.
MAX_SHARED_SECONDS = 30 * 86400.0
_SCAN_BATCH = 500


class RedisGoneModels:
    """Gone models remembered in this process and shared with every replica on this Redis."""

    def __init__(self, link: RedisLink, events: Events, local: LocalGoneModels) -> None:
        self._link = link
        self._events = events
        self._local = local
        events.on(GONE_CHANNEL, self._on_message)
        events.on_resubscribed(self.load)
        link.add_return_hook(self._load_direct)

    def remember(self, identity: TargetIdentity, seconds: float) -> None:
        self._local.remember(identity, seconds)
        if seconds > 0:
            self._link.spawn(self._share(identity, seconds))

    def recalls(self, identity: TargetIdentity) -> bool:
        return self._local.recalls(identity)

    async def _share(self, identity: TargetIdentity, seconds: float) -> None:
        field = identity_field(identity)
        await self._link.run(lambda client: client.set(GONE_PREFIX + field, "1", px=max(1, int(seconds * 1000))))
        await self._events.publish(GONE_CHANNEL, {"identity": field, "seconds": seconds})

    def _on_message(self, message: Mapping[str, Any]) -> None:
        identity = identity_of(str(message.get("identity", "")))
        try:
            seconds = float(message.get("seconds", 0))
        except (TypeError, ValueError):
            return
        if not math.isfinite(seconds) or not 0 < seconds <= MAX_SHARED_SECONDS:
            return
        if identity is not None and seconds > self._local.remaining(identity):
            self._local.remember(identity, seconds)

    async def load(self) -> None:
        """Takes the fleet's gone models from Redis (after a resubscription)."""
        await self._link.run(self._read_into_local)

    async def _load_direct(self) -> None:
        # Before the link is back up (its return hook), so not through ``run``.
        await self._read_into_local(self._link.client)

    async def _read_into_local(self, client: Any) -> None:
        async for key in client.scan_iter(match=GONE_PREFIX + "*", count=_SCAN_BATCH):
            name = key.decode() if isinstance(key, bytes) else str(key)
            identity = identity_of(name[len(GONE_PREFIX) :])
            milliseconds = await client.pttl(key)
            if identity is not None and isinstance(milliseconds, int) and milliseconds > 0:
                seconds = milliseconds / 1000
                if seconds > self._local.remaining(identity):
                    self._local.remember(identity, seconds)
