"""Shared calls across replicas in Redis: a lock key per cache key with a time to live, and a message when it ends.

The leader holds ``igw:flight:<cache key>`` (its own random token, ``LOCK_TTL_SECONDS``, renewed
while its call runs, so a leader whose replica dies frees the key within that time). When the call
ends the key is set to ``kept`` or ``not_kept`` for ``OUTCOME_TTL_SECONDS`` and, if a waiter marked
the call (``igw:flight-waited:<cache key>``), the outcome is published on ``igw:events:flights``;
waiters wake on the message, and also look at the key every ``POLL_SECONDS`` in case a message was
lost. While Redis is unreachable every replica leads its own calls, as before shared state.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from typing import Any

from imagegateway_server.state.flights import FlightEnd
from imagegateway_server.state.redis.events import FLIGHTS_CHANNEL, PREFIX, Events
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable

KEY_PREFIX = PREFIX + "flight:"
WAITED_PREFIX = PREFIX + "flight-waited:"
LOCK_TTL_SECONDS = 30.0
LOCK_TTL_MILLISECONDS = int(LOCK_TTL_SECONDS * 1000)
# Locks a cache miss took (``cache_store``) and no claim has used yet are forgotten past this many.
MAX_PRECLAIMED = 4096
RENEW_EVERY_SECONDS = 10.0
OUTCOME_TTL_SECONDS = 10.0
OUTCOME_TTL_MILLISECONDS = int(OUTCOME_TTL_SECONDS * 1000)
POLL_SECONDS = 0.5
_OUTCOMES = {b"kept": FlightEnd.KEPT, b"not_kept": FlightEnd.NOT_KEPT}

# KEYS[1] the lock; ARGV[1] the leader's token, ARGV[2] the new value, ARGV[3] its time to live (ms).
# Replaces the value only while the caller still holds the lock (an expired lock may be another's).
_IF_HELD_SET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
# KEYS[1] the lock, KEYS[2] the channel, KEYS[3] the lock's waited-on mark; ARGV[1] the leader's token,
# ARGV[2] the outcome, ARGV[3] its time to live (ms), ARGV[4] the message. Ends the call, only while
# the caller still holds the lock, and tells the replicas only if one waits (``_LOOK``): most calls
# have no waiter elsewhere, and a message would wake every replica's subscription for nothing.
_END = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  if redis.call('DEL', KEYS[3]) == 1 then
    redis.call('PUBLISH', KEYS[2], ARGV[4])
  end
  return 1
end
return 0
"""
# KEYS[1] the lock, KEYS[2] its waited-on mark; ARGV[1] the mark's time to live (ms). The lock's value
# (a token while the call runs, then its outcome), marking it waited on while the call runs. Atomic
# with ``_END``: a waiter either reads the outcome or is marked before the end, which then publishes.
_LOOK = """
local value = redis.call('GET', KEYS[1])
if value and value ~= 'kept' and value ~= 'not_kept' then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
end
return value
"""
# KEYS[1] the lock; ARGV[1] the token. Frees the lock only if the caller holds it.
_IF_HELD_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def flight_key(key: str) -> str:
    return KEY_PREFIX + key


def waited_key(key: str) -> str:
    return WAITED_PREFIX + key


class RedisFlights:
    """Elects one leader per cache key among the replicas sharing this Redis."""

    def __init__(self, link: RedisLink, events: Events) -> None:
        self._link = link
        self._events = events
        self._if_held_set = link.client.register_script(_IF_HELD_SET)
        self._if_held_delete = link.client.register_script(_IF_HELD_DELETE)
        self._end_sha = link.script(_END)
        self._look_sha = link.script(_LOOK)
        # key -> (token, renewal task) of the calls this replica leads.
        self._leading: dict[str, tuple[str, asyncio.TimerHandle]] = {}
        self._waiters: dict[str, set[asyncio.Future[FlightEnd]]] = {}
        # Locks the cache store took on a miss, by key: the claim that follows uses them (no round trip).
        self._preclaimed: dict[str, str] = {}
        events.on(FLIGHTS_CHANNEL, self._on_message)

    def new_token(self) -> str:
        return f"{self._link.replica_id}:{secrets.token_hex(4)}"

    def preclaimed(self, key: str, token: str) -> None:
        """The cache store took ``key``'s lock with ``token`` on a miss; the next claim of it is granted."""
        if len(self._preclaimed) >= MAX_PRECLAIMED:
            # Misses whose requests ended before claiming (cancelled); their locks expire by themselves.
            self._preclaimed.clear()
        self._preclaimed[key] = token

    async def claim(self, key: str) -> bool:
        token = self._preclaimed.pop(key, None)
        if token is None:
            token = self.new_token()
            try:
                claimed = await self._link.call(
                    lambda pipe: pipe.set(flight_key(key), token, nx=True, px=LOCK_TTL_MILLISECONDS)
                )
            except RedisUnavailable:
                return True  # nobody can be told: make the call here
            if not claimed:
                return False
        self._leading[key] = (token, self._renew_later(key, token))
        return True

    def finish(self, key: str, kept: bool) -> None:
        leading = self._leading.pop(key, None)
        if leading is None:
            return  # led without Redis
        token, renewal = leading
        renewal.cancel()
        outcome = "kept" if kept else "not_kept"

        def end(pipe: Any) -> None:
            # Built when the pipeline is, after the answer: the message only then.
            message = self._events.payload({"key": key, "outcome": outcome})
            keys = (flight_key(key), FLIGHTS_CHANNEL, waited_key(key))
            pipe.evalsha(self._end_sha, len(keys), *keys, token, outcome, OUTCOME_TTL_MILLISECONDS, message)

        # Queued at once, behind the answer's store (``RedisCacheStore.put``): one pipeline, in order, sent
        # once this request has its answer (waiters on other replicas hold off until then). A failure
        # leaves the lock to expire; waiters then poll it.
        self._link.defer(end, after_answer=True)

    def abandon(self, key: str) -> None:
        token = self._preclaimed.pop(key, None)
        if token is not None:
            self._link.spawn(
                self._link.run(lambda client: self._if_held_delete(keys=[flight_key(key)], args=[token], client=client))
            )

    def _renew_later(self, key: str, token: str) -> asyncio.TimerHandle:
        # A timer, not a task per call: most calls end long before their first renewal, and a task
        # made and cancelled for each was a good part of a cache miss's cost in the gateway.
        return asyncio.get_running_loop().call_later(RENEW_EVERY_SECONDS, self._renew, key, token)

    def _renew(self, key: str, token: str) -> None:
        leading = self._leading.get(key)
        if leading is None or leading[0] != token:
            return
        milliseconds = LOCK_TTL_MILLISECONDS
        self._link.spawn(
            self._link.run(
                lambda client: self._if_held_set(
                    keys=[flight_key(key)], args=[token, token, milliseconds], client=client
                )
            )
        )
        self._leading[key] = (token, self._renew_later(key, token))

    async def wait(self, key: str, within: float | None) -> FlightEnd:
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        future: asyncio.Future[FlightEnd] = loop.create_future()
        self._waiters.setdefault(key, set()).add(future)
        try:
            while True:
                # Read after registering, so an end published in between is not missed.
                try:
                    value = await self._link.call(
                        lambda pipe: pipe.evalsha(
                            self._look_sha, 2, flight_key(key), waited_key(key), LOCK_TTL_MILLISECONDS
                        )
                    )
                except RedisUnavailable:
                    return FlightEnd.NOT_KEPT  # cannot see the leader: make the call here
                if value is None:
                    return FlightEnd.GONE
                if value in _OUTCOMES:
                    return _OUTCOMES[value]
                pause = POLL_SECONDS
                if deadline is not None:
                    pause = min(pause, deadline - loop.time())
                    if pause <= 0:
                        return FlightEnd.EXPIRED
                done, _ = await asyncio.wait((future,), timeout=pause)
                if done:
                    return future.result()
        finally:
            waiting = self._waiters.get(key)
            if waiting is not None:
                waiting.discard(future)
                if not waiting:
                    del self._waiters[key]

    def _on_message(self, message: Mapping[str, Any]) -> None:
        key = message.get("key")
        outcome = _OUTCOMES.get(str(message.get("outcome", "")).encode())
        if not isinstance(key, str) or outcome is None:
            return
        for future in self._waiters.get(key, ()):
            if not future.done():
                future.set_result(outcome)
