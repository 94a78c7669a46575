"""Rate-limit and budget counters in Redis, checked and counted atomically in one round trip (a Lua script).

Keys (``<counter>`` is ``api_key:<id>`` or ``virtual_key:<id>``):

* ``igw:rpm:<counter>:<minute>``: admitted requests in one clock minute (the sliding minute of
  ``state.limit_counters`` reads this minute's and the previous one's); expire after two minutes.
* ``igw:spend:day:<YYYY-MM-DD>`` and ``igw:spend:month:<YYYY-MM>``: one hash per UTC period, a field
  per counter holding micro-dollars spent, plus ``__seeded`` once the period's totals were recomputed
  from the request log. A period hash without ``__seeded`` (Redis restarted, the hash was evicted, a
  new day began) is recomputed from the log before a budget is checked against it, so a Redis that
  comes back empty never resets spend. They expire a few days (months: weeks) after their period.
* ``igw:held:<counter>``: the estimates requests in flight hold, a field per replica; a field whose
  replica's heartbeat ``igw:replica:<replica id>`` has expired (the replica died) is dropped.

``release`` and ``add_spend`` are synchronous (the request is over): they are applied to the
in-process fallback at once and written to Redis in the background, summed per key with the other
writes of the same moment (``DEFER_SECONDS``) into one script call, sent with the next pipeline.
While Redis is unreachable the fallback decides alone (limits then hold per replica), after
recomputing spend from the log; when Redis returns, its spend is recomputed from the log again,
since this replica's writes meanwhile are not in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from imagegateway_server.state.limit_counters import (
    ADMITTED,
    Admission,
    Budget,
    Period,
    SpendSeeder,
)
from imagegateway_server.state.redis.events import PREFIX
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable

log = logging.getLogger(__name__)

SEEDED_FIELD = "__seeded"
HEARTBEAT_PREFIX = PREFIX + "replica:"
HEARTBEAT_SECONDS = 30.0
HEARTBEAT_EVERY_SECONDS = 10.0
# A hold lives at most this long without a new reservation of its key (a request longer than this is rare).
HELD_TTL_SECONDS = 2 * 3600.0
RPM_TTL_SECONDS = 120.0
DAY_TTL_SECONDS = 3 * 86400.0
MONTH_TTL_SECONDS = 40 * 86400.0
# One replica recomputes a period's spend at a time; the others answer from their fallback meanwhile.
SEEDING_LOCK = PREFIX + "spend:seeding"
SEEDING_LOCK_SECONDS = 30.0

# KEYS: 1 day hash, 2 month hash, 3 held hash, 4 this minute, 5 previous minute, 6 this replica's heartbeat.
# ARGV: 1 counter, 2 replica id, 3 micros to hold, 4 day limit (-1: none), 5 month limit (-1: none),
#       6 requests per minute (0: none), 7 now (epoch seconds), 8 heartbeat ms, 9 held ttl ms,
#       10 minute ttl ms, 11 heartbeat key prefix.
# Returns {'ok'}, {'unseeded'}, {'over', day 0/1, month 0/1} or {'wait', seconds}: the rules of
# state/limit_counters.py (and InProcessLimitCounters) in one atomic step.
_ADMIT = """
local counter = ARGV[1]
local micros = tonumber(ARGV[3])
local day_limit = tonumber(ARGV[4])
local month_limit = tonumber(ARGV[5])
local per_minute = tonumber(ARGV[6])
redis.call('SET', KEYS[6], '1', 'PX', ARGV[8])
local budgets = day_limit >= 0 or month_limit >= 0
if budgets then
  if (day_limit >= 0 and redis.call('HEXISTS', KEYS[1], '__seeded') == 0)
     or (month_limit >= 0 and redis.call('HEXISTS', KEYS[2], '__seeded') == 0) then
    return {'unseeded'}
  end
  local held = 0
  local fields = redis.call('HGETALL', KEYS[3])
  for i = 1, #fields, 2 do
    local amount = tonumber(fields[i + 1])
    if amount > 0 and redis.call('EXISTS', ARGV[11] .. fields[i]) == 1 then
      held = held + amount
    else
      redis.call('HDEL', KEYS[3], fields[i])
    end
  end
  local needed = math.max(micros, 1)
  local over_day = day_limit >= 0 and tonumber(redis.call('HGET', KEYS[1], counter) or '0') + held + needed > day_limit
  local over_month = month_limit >= 0
    and tonumber(redis.call('HGET', KEYS[2], counter) or '0') + held + needed > month_limit
  if over_day or over_month then
    return {'over', over_day and 1 or 0, over_month and 1 or 0}
  end
end
if per_minute > 0 then
  local minutes = tonumber(ARGV[7]) / 60
  local fraction = minutes - math.floor(minutes)
  local current = tonumber(redis.call('GET', KEYS[4]) or '0')
  local previous = tonumber(redis.call('GET', KEYS[5]) or '0')
  if previous * (1 - fraction) + current >= per_minute then
    local wait
    if current < per_minute then
      wait = math.max((1 - (per_minute - current) / previous - fraction) * 60, 1e-6)
    else
      wait = (1 - fraction + 1 - per_minute / current) * 60
    end
    return {'wait', string.format('%.17g', wait)}
  end
  redis.call('INCR', KEYS[4])
  redis.call('PEXPIRE', KEYS[4], ARGV[10])
end
if budgets and micros > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[2], micros)
  redis.call('PEXPIRE', KEYS[3], ARGV[9])
end
return {'ok'}
"""


# The writes of requests that ended, summed (``_take_pending``): one script call, however many keys,
# so that they cost the pipeline one command and one reply, not one per key and period.
# KEYS: the hashes written. ARGV: 1 the number N of additions, then N triples (index in KEYS, field,
# amount), then pairs (index in KEYS, time to live in ms) to the end.
_ADD_PENDING = """
local additions = tonumber(ARGV[1])
local i = 2
for _ = 1, additions do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
  i = i + 3
end
while i < #ARGV do
  redis.call('PEXPIRE', KEYS[tonumber(ARGV[i])], ARGV[i + 1])
  i = i + 2
end
return additions
"""


def _day(when: datetime) -> date:
    return when.astimezone(UTC).date()


def spend_key(period: Period, when: datetime) -> str:
    day = _day(when)
    if period is Period.DAY:
        return f"{PREFIX}spend:day:{day.isoformat()}"
    return f"{PREFIX}spend:month:{day.year:04d}-{day.month:02d}"


def _period_ttl_ms(period: Period) -> int:
    return int((DAY_TTL_SECONDS if period is Period.DAY else MONTH_TTL_SECONDS) * 1000)


def held_key(counter: str) -> str:
    return f"{PREFIX}held:{counter}"


def minute_key(counter: str, minute: int) -> str:
    return f"{PREFIX}rpm:{counter}:{minute}"


class RedisLimitCounters:
    """Shared counters; ``fallback`` (in-process) decides while Redis is unreachable."""

    def __init__(self, link: RedisLink, fallback: InProcessLimitCounters) -> None:
        self._link = link
        self._fallback = fallback
        self._admit_sha = link.script(_ADMIT)
        self._add_pending_sha = link.script(_ADD_PENDING)
        self._heartbeat_key = HEARTBEAT_PREFIX + link.replica_id
        self._seeder: SpendSeeder | None = None
        self._seeding = asyncio.Lock()
        # Set while this replica recomputes Redis's spend; otherwise ``restore`` (the start's
        # recomputation) fills only the fallback, so that a replica starting beside others does not
        # overwrite the fleet's live totals with the log's, which lag behind them.
        self._seeding_redis = False
        self._heartbeat: asyncio.Task[None] | None = None
        self._reseed_fallback: asyncio.Task[None] | None = None
        # Writes of ended requests not yet sent, summed: (spend hash, counter) -> micros, spend hash ->
        # its time to live (ms), held hash -> micros to give back.
        self._spent: dict[tuple[str, str], int] = {}
        self._spent_ttl: dict[str, int] = {}
        self._released: dict[str, int] = {}
        self._write_queued = False
        link.add_listener(self._on_flip)
        link.add_return_hook(self._forget_seeded)

    async def start(self) -> None:
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat())

    async def close(self) -> None:
        for task in (self._heartbeat, self._reseed_fallback):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def seed_from(self, seeder: SpendSeeder) -> None:
        self._seeder = seeder

    # --- checks (one script call each) ---------------------------------------------------------

    async def admit(self, key: str, budgets: Sequence[Budget], micros: int, per_minute: int, now: float) -> Admission:
        when = datetime.fromtimestamp(now, UTC)
        limits = {budget.period: budget.limit_micros for budget in budgets}
        keys = [
            spend_key(Period.DAY, when),
            spend_key(Period.MONTH, when),
            held_key(key),
            minute_key(key, math.floor(now / 60)),
            minute_key(key, math.floor(now / 60) - 1),
            self._heartbeat_key,
        ]
        args = [
            key,
            self._link.replica_id,
            micros,
            limits.get(Period.DAY, -1),
            limits.get(Period.MONTH, -1),
            per_minute,
            repr(now),
            int(HEARTBEAT_SECONDS * 1000),
            int(HELD_TTL_SECONDS * 1000),
            int(RPM_TTL_SECONDS * 1000),
            HEARTBEAT_PREFIX,
        ]
        command = (self._admit_sha, len(keys), *keys, *args)
        for _ in range(2):
            try:
                reply = await self._link.call(lambda pipe: pipe.evalsha(*command))
            except RedisUnavailable:
                return await self._fallback.admit(key, budgets, micros, per_minute, now)
            verdict = reply[0]
            if verdict == b"ok":
                if budgets and micros > 0:
                    # Mirrored, so that the fallback knows this replica's holds if Redis goes away.
                    self._fallback.hold(key, micros)
                return ADMITTED
            if verdict == b"wait":
                return Admission(wait=float(reply[1]))
            if verdict == b"over":
                flags = {Period.DAY: reply[1], Period.MONTH: reply[2]}
                return Admission(over=tuple(b for b in budgets if flags[b.period]))
            if not await self._seed(when):  # b"unseeded"
                break
        return await self._fallback.admit(key, budgets, micros, per_minute, now)

    async def take_request(self, key: str, per_minute: int, now: float) -> float:
        return (await self.admit(key, (), 0, per_minute, now)).wait

    async def reserve(self, key: str, budgets: Sequence[Budget], micros: int, now: datetime) -> list[Budget]:
        return list((await self.admit(key, budgets, micros, 0, now.timestamp())).over)

    # --- updates after the request (synchronous: queued) ----------------------------------------

    def release(self, key: str, micros: int) -> None:
        if micros <= 0:
            return
        self._fallback.release(key, micros)
        if self._link.up:
            name = held_key(key)
            self._released[name] = self._released.get(name, 0) + micros
            self._write_pending()

    def add_spend(self, key: str, micros: int, when: datetime) -> None:
        if micros <= 0:
            return
        self._fallback.add_spend(key, micros, when)
        if self._link.up:
            for period in (Period.DAY, Period.MONTH):
                name = spend_key(period, when)
                self._spent[name, key] = self._spent.get((name, key), 0) + micros
                self._spent_ttl[name] = _period_ttl_ms(period)
            self._write_pending()

    def _write_pending(self) -> None:
        # Summed per key until the deferred write goes out: one addition per key and period for every
        # request that ended meanwhile, not one per request (at a thousand requests a second, the
        # pipeline and Redis would otherwise do the same additions a thousand times over).
        if self._write_queued:
            return
        self._write_queued = True
        taken: list[tuple[object, ...]] = []

        def add(pipe: Any) -> None:
            # Taken once: if the link sends it again (Redis had forgotten the script), the same writes go.
            if not taken:
                taken.append(self._take_pending())
            pipe.evalsha(*taken[0])

        self._link.defer(add)

    def _take_pending(self) -> tuple[object, ...]:
        """The pending writes as one call of the ``_ADD_PENDING`` script (its SHA-1, keys and arguments)."""
        self._write_queued = False
        spent, self._spent = self._spent, {}
        ttls, self._spent_ttl = self._spent_ttl, {}
        released, self._released = self._released, {}
        keys: dict[str, int] = {}  # hash -> its index in KEYS (from 1, as Lua counts)
        additions: list[object] = []
        for (name, field), micros in spent.items():
            additions += (keys.setdefault(name, len(keys) + 1), field, micros)
        replica = self._link.replica_id
        for name, micros in released.items():
            # A field that reaches 0 is dropped by the next check of the key (the admit script).
            additions += (keys.setdefault(name, len(keys) + 1), replica, -micros)
        expiries: list[object] = []
        for name, milliseconds in ttls.items():
            expiries += (keys.setdefault(name, len(keys) + 1), milliseconds)
        return (self._add_pending_sha, len(keys), *keys, len(additions) // 3, *additions, *expiries)

    async def restore(self, key: str, period: Period, when: datetime, micros: int) -> None:
        await self._fallback.restore(key, period, when, micros)
        if not self._seeding_redis:
            return
        name = spend_key(period, when)

        async def write(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(name, key, micros)
                pipe.pexpire(name, _period_ttl_ms(period))
                await pipe.execute()

        with contextlib.suppress(RedisUnavailable):
            await self._link.run(write)

    # --- recomputing spend ----------------------------------------------------------------------

    async def _seed(self, when: datetime) -> bool:
        """Recomputes the periods holding ``when`` from the request log; False if this replica could not."""
        if self._seeder is None:
            return await self._mark_seeded(when)  # nothing to recompute from (tests, tools)
        async with self._seeding:
            try:
                claimed = await self._link.run(
                    lambda client: client.set(
                        SEEDING_LOCK, self._link.replica_id, nx=True, px=int(SEEDING_LOCK_SECONDS * 1000)
                    )
                )
                if not claimed:
                    return False  # another replica is at it: answer from the fallback meanwhile
                self._seeding_redis = True
                try:
                    await self._seeder(self)
                finally:
                    self._seeding_redis = False
                seeded = await self._mark_seeded(when)
                await self._link.run(lambda client: client.delete(SEEDING_LOCK))
                log.info("spend recomputed from the request log into Redis")
                return seeded
            except RedisUnavailable:
                return False
            except Exception:
                log.exception("recomputing spend from the request log failed; the in-process counters decide")
                return False

    async def _mark_seeded(self, when: datetime) -> bool:
        async def write(client: Any) -> None:
            async with client.pipeline(transaction=False) as pipe:
                for period in (Period.DAY, Period.MONTH):
                    pipe.hset(spend_key(period, when), SEEDED_FIELD, 1)
                    pipe.pexpire(spend_key(period, when), _period_ttl_ms(period))
                await pipe.execute()

        try:
            await self._link.run(write)
        except RedisUnavailable:
            return False
        return True

    async def _forget_seeded(self) -> None:
        """Before going back to Redis: spend written meanwhile went to the fallback only, so the
        current periods are recomputed from the log on their next check."""
        when = datetime.now(UTC)
        async with self._link.client.pipeline(transaction=False) as pipe:
            for period in (Period.DAY, Period.MONTH):
                pipe.hdel(spend_key(period, when), SEEDED_FIELD)
            pipe.set(self._heartbeat_key, "1", px=int(HEARTBEAT_SECONDS * 1000))
            await pipe.execute()

    def _on_flip(self, up: bool) -> None:
        if up or self._seeder is None:
            return
        # Going down: the fallback holds only this replica's spend; recompute the fleet's from the log.
        seeder = self._seeder
        self._reseed_fallback = asyncio.get_running_loop().create_task(self._reseed(seeder))

    async def _reseed(self, seeder: SpendSeeder) -> None:
        try:
            await seeder(self._fallback)
        except Exception:
            log.exception("recomputing spend from the request log for the in-process counters failed")

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(RedisUnavailable):
                await self._link.run(
                    lambda client: client.set(self._heartbeat_key, "1", px=int(HEARTBEAT_SECONDS * 1000))
                )
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
