"""What only the Redis backends do: share state between replicas, and survive Redis going away.

Two ``open_state`` results on one real Redis play two replicas. Redis is killed and restarted (empty)
by the tests that need it, on a server of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from imagegateway_server.app import keepable_image
from imagegateway_server.settings import Settings
from imagegateway_server.state.answering import answering
from imagegateway_server.state.breakers import BreakerOverrides, CircuitState, Outcome, PermitKind, TargetIdentity
from imagegateway_server.state.changes import ALL, RecordKind
from imagegateway_server.state.factory import StateBackends, open_kept_images, open_state
from imagegateway_server.state.flights import FlightEnd
from imagegateway_server.state.limit_counters import Budget, LimitCounters, Period, to_micros
from imagegateway_server.state.redis import events as events_module
from imagegateway_server.state.redis import flights as flights_module
from imagegateway_server.state.redis import link as link_module
from imagegateway_server.state.redis.link import RedisLink, RedisUnavailable, pack_commands, redacted_url
from imagegateway_server.storage.kept_images import ImageKeeper
from tests.certificates import TestCA
from tests.credentials import api_key
from tests.redis_server import RedisServer, running_redis
from tests.unit.test_state_backends import answer

IDENTITY = TargetIdentity.of("openai", None, api_key("sk-test"), "dall-e-3")
PASSWORD = "s3cret-redis-pass"


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while True:
        outcome = check()
        if asyncio.iscoroutine(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.02)


async def open_replica(url: str, **settings: object) -> StateBackends:
    fields: dict[str, object] = {"redis_url": url, "redis_timeout_seconds": 2.0}
    fields.update(settings)
    return await open_state(Settings(**fields))  # type: ignore[arg-type]


def link_of(backends: StateBackends) -> RedisLink:
    assert isinstance(backends.health, RedisLink)
    return backends.health


@pytest.fixture
async def replicas(redis_url: str) -> AsyncIterator[tuple[StateBackends, StateBackends]]:
    first, second = await open_replica(redis_url), await open_replica(redis_url)
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


# -- sharing between replicas -------------------------------------------------------------------------


async def test_a_rate_limit_is_one_limit_across_replicas(replicas: tuple[StateBackends, StateBackends]) -> None:
    first, second = replicas
    now = time.time()
    admitted = [
        await replica.limit_counters.take_request("api_key:k", 4, now) == 0.0 for replica in (first, second) * 3
    ]
    assert admitted == [True] * 4 + [False] * 2


async def test_spend_on_one_replica_counts_against_the_budget_on_another(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    now = datetime.now(UTC)
    budget = [Budget(Period.DAY, to_micros(1))]
    assert await first.limit_counters.reserve("api_key:k", budget, to_micros(0.5), now) == []
    assert await second.limit_counters.reserve("api_key:k", budget, to_micros(0.6), now) == budget  # held on first
    first.limit_counters.release("api_key:k", to_micros(0.5))
    first.limit_counters.add_spend("api_key:k", to_micros(0.5), now)
    await link_of(first).drain()
    assert await second.limit_counters.reserve("api_key:k", budget, to_micros(0.5), now) == []
    assert await first.limit_counters.reserve("api_key:k", budget, 1, now) == budget


async def test_a_dead_replicas_holds_stop_counting_when_its_heartbeat_expires(redis_url: str) -> None:
    first, second = await open_replica(redis_url), await open_replica(redis_url)
    try:
        now = datetime.now(UTC)
        budget = [Budget(Period.DAY, to_micros(1))]
        assert await first.limit_counters.reserve("api_key:k", budget, to_micros(0.9), now) == []
        assert await second.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == budget
        await first.close()
        await link_of(second).client.delete("igw:replica:" + link_of(first).replica_id)  # its heartbeat expired
        assert await second.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == []
    finally:
        await second.close()


async def test_a_breaker_opened_on_one_replica_is_open_on_all_and_one_probe_goes_across_the_fleet(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    quick = BreakerOverrides(consecutive_failures=1, cooldown_seconds=0.5)
    assert (await second.breakers.acquire(IDENTITY, quick)).kind is PermitKind.CALL
    first.breakers.record(await first.breakers.acquire(IDENTITY, quick), Outcome.FAILURE)

    async def refused_on_second() -> bool:
        return (await second.breakers.acquire(IDENTITY, quick)).refused

    await eventually(refused_on_second, within=1.0)
    await asyncio.sleep(0.6)  # the cool-down ends on both
    permits = [await replica.breakers.acquire(IDENTITY, quick) for replica in (first, second, first, second)]
    probes = [p for p in permits if p.kind is PermitKind.PROBE]
    assert len(probes) == 1 and all(p.refused for p in permits if p is not probes[0])
    prober = first if permits.index(probes[0]) % 2 == 0 else second
    other = second if prober is first else first
    prober.breakers.record(probes[0], Outcome.SUCCESS)

    async def closed_on_other() -> bool:
        return (await other.breakers.acquire(IDENTITY, quick)).kind is PermitKind.CALL

    await eventually(closed_on_other, within=1.0)


async def test_a_replica_that_starts_later_loads_the_open_breakers(redis_url: str) -> None:
    first = await open_replica(redis_url)
    try:
        first.breakers.record(
            await first.breakers.acquire(IDENTITY, BreakerOverrides(consecutive_failures=1)), Outcome.FAILURE
        )
        await link_of(first).drain()
        late = await open_replica(redis_url)
        try:
            [view] = await late.breakers.snapshot()
            assert view.state is CircuitState.OPEN and view.next_probe_time > time.time() + 20
        finally:
            await late.close()
    finally:
        await first.close()


async def test_one_replica_leads_an_identical_call_and_the_other_waits_for_its_outcome(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    assert await first.flights.claim("key") is True
    assert await second.flights.claim("key") is False
    waiting = asyncio.ensure_future(second.flights.wait("key", 5.0))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    first.flights.finish("key", kept=True)
    assert await asyncio.wait_for(waiting, 2.0) is FlightEnd.KEPT
    assert await second.flights.wait("other", 1.0) is FlightEnd.GONE
    assert await first.flights.claim("failing") is True
    first.flights.finish("failing", kept=False)
    await link_of(first).drain()
    assert await second.flights.wait("failing", 1.0) is FlightEnd.NOT_KEPT
    assert await first.flights.claim("slow") is True
    assert await second.flights.wait("slow", 0.1) is FlightEnd.EXPIRED
    first.flights.finish("slow", kept=False)


async def test_a_waiter_claims_again_when_the_leaders_replica_went_away(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    assert await first.flights.claim("key")
    waiting = asyncio.ensure_future(second.flights.wait("key", 5.0))
    await asyncio.sleep(0.05)
    await link_of(first).client.delete("igw:flight:key")  # its lock expired with the replica
    assert await asyncio.wait_for(waiting, 2.0) is FlightEnd.GONE
    assert await second.flights.claim("key")


async def test_a_change_on_one_replica_reaches_the_others_listeners_within_a_second(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    heard_first: list[str] = []
    heard_second: list[str] = []
    first.changes.subscribe(RecordKind.VIRTUAL_KEY, heard_first.append)
    second.changes.subscribe(RecordKind.VIRTUAL_KEY, heard_second.append)
    second.changes.subscribe(RecordKind.CONFIG, lambda config_id: heard_second.append("config " + config_id))
    started = time.monotonic()
    first.changes.publish(RecordKind.VIRTUAL_KEY, "vk-1")
    first.changes.publish(RecordKind.CONFIG, "pc-1")
    await eventually(lambda: len(heard_second) == 2, within=1.0)
    assert time.monotonic() - started < 1.0
    assert heard_second == ["vk-1", "config pc-1"] and heard_first == []  # a replica does not hear itself


async def test_a_cache_entry_written_by_one_replica_is_read_by_another(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    await first.cache_store.put("k", answer(), 60)
    await link_of(first).drain()  # put returns before Redis has the answer (see the next test)
    assert await second.cache_store.get("k") == answer()


async def test_a_large_answer_is_written_without_a_copy_and_read_whole_by_another_replica(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    kept = answer()
    large_image = dataclasses.replace(kept.result.images[0], data=os.urandom(2 * 1024 * 1024))
    large = dataclasses.replace(kept, result=dataclasses.replace(kept.result, images=(large_image,)))
    await first.cache_store.put("large", large, 60)
    await link_of(first).drain()
    assert await second.cache_store.get("large") == large


async def test_a_shared_call_keeps_its_lock_while_it_runs_and_ends_it_when_done(
    replicas: tuple[StateBackends, StateBackends], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = replicas
    monkeypatch.setattr(flights_module, "LOCK_TTL_MILLISECONDS", 1000)
    monkeypatch.setattr(flights_module, "RENEW_EVERY_SECONDS", 0.1)
    assert await first.flights.claim("slow") is True
    await asyncio.sleep(1.5)  # past the lock's own time to live: renewed meanwhile
    assert await second.flights.claim("slow") is False
    first.flights.finish("slow", kept=False)
    assert await asyncio.wait_for(second.flights.wait("slow", 5.0), 2.0) is FlightEnd.NOT_KEPT


async def test_a_hot_path_call_redis_does_not_answer_in_time_fails_at_the_timeout_without_giving_up(
    redis_url: str,
) -> None:
    link = RedisLink(redis_url, timeout_seconds=0.1, failures_to_down=3)
    await link.open()
    try:
        await link.client.execute_command("CLIENT", "PAUSE", 600, "ALL")  # Redis answers nobody meanwhile
        started = time.monotonic()
        with pytest.raises(RedisUnavailable):
            await link.call(lambda pipe: pipe.get("k"))
        assert 0.09 < time.monotonic() - started < 0.4
        assert link.up  # one slow call does not flip the replica
        await asyncio.sleep(0.6)
        assert await link.call(lambda pipe: pipe.get("k")) is None  # on a new connection
    finally:
        await link.close()


async def test_a_cache_redis_does_not_answer_in_time_serves_from_the_replicas_own_memory(redis_url: str) -> None:
    replica = await open_replica(redis_url, redis_timeout_seconds=0.1)
    try:
        await link_of(replica).client.execute_command("CLIENT", "PAUSE", 800, "ALL")
        await replica.cache_store.put("k", answer(), 60)  # its write times out: kept in the fallback
        await asyncio.sleep(0.2)
        assert await replica.cache_store.get("k") == answer()  # the look-up times out too
        assert link_of(replica).up
    finally:
        await asyncio.sleep(0.6)
        await replica.close()


def test_commands_are_packed_as_redis_py_packs_them_with_a_large_value_sent_as_it_is() -> None:
    large = os.urandom(100_000)
    stack = [
        (("SET", "igw:cache:k", large, "PX", 60_000), {}),
        (("EVALSHA", "ab" * 20, 2, "k1", "k2", "tok", 1.5, -3, "é", b"\x00\r\n"), {}),
        (("SCRIPT LOAD", "return 1"), {}),
    ]
    chunks = pack_commands(stack)
    assert b"".join(chunks) == b"".join(Connection().pack_commands([arguments for arguments, _ in stack]))
    assert any(chunk is large for chunk in chunks)  # the value itself, not a copy of it
    with pytest.raises(DataError):
        pack_commands([(("SET", "k", True), {})])


async def test_a_replica_told_that_a_shared_call_kept_its_answer_finds_it(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    # The leader's store and the call's end are queued without waiting; they travel in that order, so
    # a waiter that hears "kept" cannot read the key before the answer is there.
    first, second = replicas
    assert await first.cache_store.get("k") is None  # a miss: first holds the lock
    assert await first.flights.claim("k") is True
    assert await second.cache_store.get("k") is None
    assert await second.flights.claim("k") is False
    waiting = asyncio.ensure_future(second.flights.wait("k", 5.0))
    await asyncio.sleep(0.05)
    await first.cache_store.put("k", answer(), 60)
    first.flights.finish("k", kept=True)
    assert await asyncio.wait_for(waiting, 2.0) is FlightEnd.KEPT
    assert await second.cache_store.get("k") == answer()


async def test_a_misses_store_and_shared_call_end_go_once_its_request_has_its_answer(
    replicas: tuple[StateBackends, StateBackends], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Queued while the request is served, sent when the task answering it ends: not on its caller's path,
    # not on the next request's, and not after the deferred writes' timer (made long here).
    first, second = replicas
    monkeypatch.setattr(link_module, "DEFER_SECONDS", 30.0)
    answer_written = asyncio.Event()

    async def request() -> None:
        with answering():
            assert await first.cache_store.get("k") is None  # a miss: first holds the lock
            assert await first.flights.claim("k") is True
            await first.cache_store.put("k", answer(), 60)
            first.flights.finish("k", kept=True)
            await answer_written.wait()

    served = asyncio.ensure_future(request())
    await asyncio.sleep(0.1)
    client = link_of(second).client
    assert await client.exists("igw:cache:k") == 0 and await client.get("igw:flight:k") != b"kept"
    answer_written.set()
    await served

    async def ended() -> bool:
        return await client.get("igw:flight:k") == b"kept"

    await eventually(ended, within=1.0)
    assert await second.cache_store.get("k") == answer()


async def test_spend_of_requests_ending_together_is_summed_into_one_write_per_key(own_redis: RedisServer) -> None:
    replica = await open_replica(own_redis.url)
    link = link_of(replica)
    now = datetime.now(UTC)
    try:
        await link.drain()
        server = own_redis.client()
        server.config_resetstat()
        for _ in range(50):
            replica.limit_counters.add_spend("api_key:a", 3, now)
            replica.limit_counters.add_spend("api_key:b", 5, now)
        await link.drain()
        day = f"igw:spend:day:{now.date().isoformat()}"
        assert server.hget(day, "api_key:a") == b"150" and server.hget(day, "api_key:b") == b"250"
        # Two keys, two periods: four additions, not two hundred.
        assert server.info("commandstats")["cmdstat_hincrby"]["calls"] == 4
    finally:
        await replica.close()


async def test_spend_written_after_redis_forgot_the_scripts_is_not_lost(own_redis: RedisServer) -> None:
    replica = await open_replica(own_redis.url)
    link = link_of(replica)
    now = datetime.now(UTC)
    try:
        await link.drain()
        own_redis.client().script_flush()  # as after a restart: the summed writes' script is unknown
        replica.limit_counters.add_spend("api_key:a", 7, now)
        replica.limit_counters.release("api_key:a", 0)
        await link.drain()
        server = own_redis.client()
        assert server.hget(f"igw:spend:day:{now.date().isoformat()}", "api_key:a") == b"7"
        assert server.hget(f"igw:spend:month:{now.year:04d}-{now.month:02d}", "api_key:a") == b"7"
        assert server.pttl(f"igw:spend:day:{now.date().isoformat()}") > 0
    finally:
        await replica.close()


# -- Redis away ----------------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own, which it may kill; with a password, to check it never shows."""
    with running_redis(tmp_path, password=PASSWORD) as server:
        if server.external:
            pytest.skip("IMAGEGW_TEST_REDIS_URL names a Redis the tests cannot kill")
        yield server


async def test_killing_redis_flips_after_the_hysteresis_serves_in_process_and_comes_back(
    own_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    replica = await open_replica(own_redis.url, redis_timeout_seconds=0.5, redis_failures_to_down=3)
    link = link_of(replica)
    flips: list[bool] = []
    link.add_listener(flips.append)
    link.probe_interval = 0.1
    try:
        own_redis.kill()
        now = time.time()
        # Each call is answered (from in-process state) although Redis is gone; the third failure flips.
        assert await replica.limit_counters.take_request("api_key:k", 100, now) == 0.0
        assert await replica.cache_store.get("k") is None
        assert link.up and flips == []
        await replica.sessions.get("a" * 43)
        assert not link.up and flips == [False]
        status = link.status()
        assert status["up"] is False and "in-process" in str(status["serving_from"])
        for _ in range(5):  # given up: no more tries, no more flips
            assert await replica.limit_counters.take_request("api_key:k", 100, now) == 0.0
        assert flips == [False]
        own_redis.start()
        await eventually(lambda: link.up, within=5.0)
        assert flips == [False, True]
        await replica.cache_store.put("k", answer(), 60)
        await link.drain()  # the store is written after put returns, off the caller's path
        assert own_redis.client().exists("igw:cache:k") == 1
    finally:
        await replica.close()
    messages = [r.getMessage() for r in caplog.records if "Redis" in r.getMessage()]
    assert sum("unreachable" in m for m in messages) == 1 and sum("shared state is back" in m for m in messages) == 1
    shown = " ".join(messages) + repr(link.status())
    assert PASSWORD not in shown and "127.0.0.1" in shown


async def test_a_redis_that_comes_back_empty_does_not_reset_spend(own_redis: RedisServer) -> None:
    replica = await open_replica(own_redis.url, redis_timeout_seconds=0.5, redis_failures_to_down=1)
    link = link_of(replica)
    link.probe_interval = 0.1
    log_spend = {"api_key:k": to_micros(0.9)}  # what the request log says was spent today
    seeded: list[str] = []

    async def seeder(counters: LimitCounters) -> None:
        seeded.append(type(counters).__name__)
        for key, micros in log_spend.items():
            for period in (Period.DAY, Period.MONTH):
                await counters.restore(key, period, datetime.now(UTC), micros)

    replica.limit_counters.seed_from(seeder)
    budget = [Budget(Period.DAY, to_micros(1))]
    try:
        now = datetime.now(UTC)
        assert await replica.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == budget
        assert seeded == ["RedisLimitCounters"]  # the first check of the day recomputed it
        own_redis.kill()
        assert await replica.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == budget
        await eventually(lambda: seeded == ["RedisLimitCounters", "InProcessLimitCounters"])
        own_redis.start()  # empty
        await eventually(lambda: link.up, within=5.0)
        assert own_redis.client().hget(f"igw:spend:day:{now.date().isoformat()}", "api_key:k") is None
        assert await replica.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == budget
        assert seeded[-1] == "RedisLimitCounters"
        assert await replica.limit_counters.reserve("api_key:k", budget, to_micros(0.05), now) == []
    finally:
        await replica.close()


async def test_a_redis_unreachable_at_start_does_not_stop_the_start(tmp_path: Path) -> None:
    with running_redis(tmp_path) as server:
        if server.external:
            pytest.skip("IMAGEGW_TEST_REDIS_URL names a Redis the tests cannot stop")
        url = server.url
    replica = await open_replica(url, redis_timeout_seconds=0.2, redis_failures_to_down=1)
    try:
        assert link_of(replica).up is False
        assert await replica.limit_counters.take_request("api_key:k", 1, time.time()) == 0.0
        assert await replica.sessions.get(await replica.sessions.create("k", "admin", "ab" * 32)) is not None
    finally:
        await replica.close()


async def test_the_change_feed_drops_every_cached_record_after_a_lost_subscription(own_redis: RedisServer) -> None:
    replica = await open_replica(own_redis.url, redis_timeout_seconds=0.5)
    heard: list[str] = []
    replica.changes.subscribe(RecordKind.API_KEY, heard.append)
    try:
        own_redis.kill()
        await asyncio.sleep(0.1)
        own_redis.start()
        await eventually(lambda: ALL in heard, within=5.0)
    finally:
        await replica.close()


async def test_a_cache_miss_takes_the_shared_call_lock_for_the_claim_that_follows(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    assert await first.cache_store.get("k") is None  # a miss: the lock is first's now
    assert await second.cache_store.get("k") is None
    assert await second.flights.claim("k") is False
    assert await first.flights.claim("k") is True
    first.flights.finish("k", kept=False)
    await link_of(first).drain()
    assert await second.flights.wait("k", 1.0) is FlightEnd.NOT_KEPT


async def test_an_image_kept_by_one_replica_is_found_by_another(
    replicas: tuple[StateBackends, StateBackends], tmp_path: Path
) -> None:
    first, second = replicas
    log_id = "log_" + "12" * 16
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
    assert await open_kept_images(first, ImageKeeper(tmp_path / "a"), keepable_image).keep(log_id, png, "image/png")
    on_second = open_kept_images(second, ImageKeeper(tmp_path / "b"), keepable_image)
    assert await on_second.get(log_id) == (png, "image/png")
    assert await on_second.kept_among([log_id]) == {log_id}
    assert 0 < await link_of(first).client.ttl("igw:image:" + log_id) <= 7 * 86400


async def test_a_replica_starting_beside_others_does_not_overwrite_the_fleets_spend(
    replicas: tuple[StateBackends, StateBackends],
) -> None:
    first, second = replicas
    now = datetime.now(UTC)
    budget = [Budget(Period.DAY, to_micros(1))]
    first.limit_counters.add_spend("api_key:k", to_micros(0.9), now)
    await link_of(first).drain()
    assert await first.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == budget
    # The start's recomputation from a log that has not caught up yet fills only the fallback.
    await second.limit_counters.restore("api_key:k", Period.DAY, now, 0)
    assert await second.limit_counters.reserve("api_key:k", budget, to_micros(0.2), now) == budget


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache.internal:6379/0", "redis://cache.internal:6379/0"),
        ("rediss://igw:hunter2@cache.internal/1", "rediss://cache.internal/1"),
        ("unix:///run/redis.sock?db=0&password=hunter2", "unix:///run/redis.sock"),
    ],
)
def test_the_url_shown_in_logs_and_health_has_no_password(url: str, shown: str) -> None:
    assert redacted_url(url) == shown


async def test_rediss_with_a_password_keeps_the_state_over_tls(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis", password=PASSWORD, tls=TestCA(tmp_path / "ca")) as server:
        assert server.url.startswith("rediss://")
        replica = await open_replica(server.url)
        try:
            assert link_of(replica).up
            await replica.cache_store.put("k", answer(), 60)
            assert await replica.cache_store.get("k") == answer()
            assert PASSWORD not in repr(link_of(replica).status())
        finally:
            await replica.close()


async def test_an_idle_subscription_is_kept_alive_by_pings_and_still_hears_changes(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "PING_EVERY_SECONDS", 0.1)
    monkeypatch.setattr(events_module, "SILENT_SECONDS", 0.5)
    first, second = await open_replica(redis_url), await open_replica(redis_url)
    heard: list[str] = []
    second.changes.subscribe(RecordKind.CONFIG, heard.append)
    try:
        await asyncio.sleep(1.2)  # idle for longer than a silent connection is kept
        assert heard == []  # no resubscription (which would tell listeners "*")
        first.changes.publish(RecordKind.CONFIG, "pc-1")
        await eventually(lambda: heard == ["pc-1"], within=1.0)
    finally:
        await first.close()
        await second.close()
