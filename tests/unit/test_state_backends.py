"""Every state interface against both backends: in process, and a real Redis (started by the tests).

The same assertions run on both, so the Redis backends keep the in-process semantics: the response
cache store, the limit counters (sliding minute, budgets, holds, restore), dashboard sessions and
circuit breakers. Clock-driven edge cases stay in the in-process tests (a real Redis keeps real time).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from imagegateway_server.app import keepable_image
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.settings import Settings
from imagegateway_server.state.breakers import BreakerOverrides, CircuitState, Outcome, PermitKind, TargetIdentity
from imagegateway_server.state.cache_store import CachedAnswer
from imagegateway_server.state.factory import StateBackends, open_kept_images, open_state
from imagegateway_server.state.in_process.sessions import InProcessSessionStore
from imagegateway_server.state.limit_counters import Budget, Period, to_micros
from imagegateway_server.state.redis.link import RedisLink
from imagegateway_server.state.redis.sessions import RedisSessionStore
from imagegateway_server.storage.kept_images import ImageKeeper
from tests.credentials import api_key

MINUTE_START = 60.0 * 29_000_000
IDENTITY = TargetIdentity.of("openai", None, api_key("sk-test"), "dall-e-3")
ONE_FAILURE_OPENS = BreakerOverrides(consecutive_failures=1, cooldown_seconds=30)


@pytest.fixture(params=["in_process", "redis"])
async def backends(request: pytest.FixtureRequest) -> AsyncIterator[StateBackends]:
    url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    # A generous per-call timeout: the test machine is shared and busy.
    opened = await open_state(Settings(redis_url=url, redis_timeout_seconds=2.0))
    try:
        yield opened
    finally:
        await opened.close()


async def settle(backends: StateBackends) -> None:
    """Waits for queued writes (release, add_spend) to reach the store."""
    if isinstance(backends.health, RedisLink):
        await backends.health.drain()


def answer() -> CachedAnswer:
    images = (
        GeneratedImage(data=b"\x89PNG" + bytes(range(256)) * 40, mime_type="image/png", width=64, height=64, seed=7),
        GeneratedImage(
            data=None, mime_type="image/webp", url="https://x/y.webp", revised_prompt="a cat", provider="openai"
        ),
    )
    result = ImageResult(
        images=images, model="dall-e-3", created=1700, provider_request_id="req_1", usage={"n": 2}, translations=("a",)
    )
    return CachedAnswer(result, provider="openai", served_target="config.targets[0]", identity="abc")


# -- the response cache store ----------------------------------------------------------------------


async def test_an_answer_comes_back_whole_and_delete_forgets_it(backends: StateBackends) -> None:
    store = backends.cache_store
    kept = answer()
    await store.put("k", kept, 60)
    assert await store.get("k") == kept
    assert await store.get("other") is None
    await store.delete("k")
    assert await store.get("k") is None


async def test_an_answer_expires_after_its_ttl(backends: StateBackends) -> None:
    await backends.cache_store.put("k", answer(), 0.2)
    assert await backends.cache_store.get("k") is not None
    await asyncio.sleep(0.35)
    assert await backends.cache_store.get("k") is None


async def test_a_put_replaces_the_answer(backends: StateBackends) -> None:
    first, second = answer(), CachedAnswer(answer().result, "openai", "config.targets[1]", "def")
    await backends.cache_store.put("k", first, 60)
    await backends.cache_store.put("k", second, 60)
    assert await backends.cache_store.get("k") == second


# -- limit counters --------------------------------------------------------------------------------


async def test_the_minute_admits_the_limit_then_says_how_long_to_wait(backends: StateBackends) -> None:
    counters = backends.limit_counters
    assert [await counters.take_request("k", 3, MINUTE_START + i) for i in range(3)] == [0.0, 0.0, 0.0]
    assert await counters.take_request("k", 3, MINUTE_START + 10) == pytest.approx(50.0)
    assert await counters.take_request("other", 3, MINUTE_START + 10) == 0.0


async def test_a_burst_at_the_end_of_a_minute_still_weighs_on_the_next(backends: StateBackends) -> None:
    counters = backends.limit_counters
    for i in range(10):
        assert await counters.take_request("k", 10, MINUTE_START + 59 + i / 100) == 0.0
    assert await counters.take_request("k", 10, MINUTE_START + 61) == 0.0
    assert await counters.take_request("k", 10, MINUTE_START + 61) == pytest.approx(5.0)


async def test_budgets_count_spend_and_holds_in_exact_micro_dollars(backends: StateBackends) -> None:
    counters = backends.limit_counters
    now = datetime.now(UTC)
    day = [Budget(Period.DAY, to_micros(0.3))]
    counters.add_spend("k", to_micros(0.1), now)
    await settle(backends)
    assert await counters.reserve("k", day, to_micros(0.2), now) == []  # 0.1 + 0.2 fits 0.3 exactly
    assert await counters.reserve("k", day, 1, now) == day  # the hold counts
    counters.release("k", to_micros(0.2))
    await settle(backends)
    assert await counters.reserve("k", day, to_micros(0.2), now) == []
    counters.release("k", to_micros(0.2))
    counters.add_spend("k", to_micros(0.2), now)
    await settle(backends)
    assert await counters.reserve("k", day, 0, now) == day  # used up: even an unknown estimate is refused


async def test_every_budget_that_would_be_passed_is_reported(backends: StateBackends) -> None:
    counters = backends.limit_counters
    now = datetime.now(UTC)
    counters.add_spend("k", to_micros(5), now)
    await settle(backends)
    both = [Budget(Period.DAY, to_micros(5)), Budget(Period.MONTH, to_micros(5))]
    assert await counters.reserve("k", both, 1, now) == both
    assert await counters.reserve("k", [Budget(Period.MONTH, to_micros(6))], 1, now) == []


async def test_admit_checks_budgets_then_the_minute_and_a_refused_request_holds_nothing(
    backends: StateBackends,
) -> None:
    counters = backends.limit_counters
    now = time.time()
    budget = [Budget(Period.DAY, to_micros(1))]
    assert (await counters.admit("k", budget, to_micros(0.4), 1, now)).admitted
    refused = await counters.admit("k", budget, to_micros(0.4), 1, now)
    assert refused.wait > 0 and not refused.over
    await settle(backends)
    # Only the admitted request holds: 0.4 + 0.6 fits, 0.4 + 0.61 does not.
    assert not (await counters.admit("k", budget, to_micros(0.61), 0, now)).admitted
    assert (await counters.admit("k", budget, to_micros(0.6), 0, now)).admitted


# -- sessions ----------------------------------------------------------------------------------------


async def test_a_session_maps_to_its_key_until_logout(backends: StateBackends) -> None:
    sessions = backends.sessions
    token = await sessions.create("key1", "admin", "ab" * 32)
    session = await sessions.get(token)
    assert session is not None and (session.key_id, session.scope, session.key_hash) == ("key1", "admin", "ab" * 32)
    assert await sessions.get("not-a-session") is None and await sessions.get(None) is None
    assert await sessions.get("x" * 500) is None
    await sessions.end(token)
    assert await sessions.get(token) is None


async def test_redis_sessions_expire_with_their_ttl_and_keep_no_usable_id(redis_url: str) -> None:
    link = RedisLink(redis_url, timeout_seconds=2.0, failures_to_down=3)
    try:
        sessions = RedisSessionStore(link, InProcessSessionStore(ttl_seconds=0.3))
        token = await sessions.create("key1", "generate", "cd" * 32)
        keys = [key.decode() for key in await link.client.keys("*")]
        assert keys and all(token not in key for key in keys)
        assert await sessions.get(token) is not None
        await asyncio.sleep(0.45)
        assert await sessions.get(token) is None
    finally:
        await link.close()


# -- breakers ----------------------------------------------------------------------------------------


async def test_a_breaker_opens_refuses_and_lets_the_last_option_through(backends: StateBackends) -> None:
    breakers = backends.breakers
    permit = await breakers.acquire(IDENTITY, ONE_FAILURE_OPENS)
    assert permit.kind is PermitKind.CALL
    breakers.record(permit, Outcome.FAILURE)
    assert (await breakers.acquire(IDENTITY, ONE_FAILURE_OPENS)).refused
    assert (await breakers.acquire(IDENTITY, ONE_FAILURE_OPENS, force=True)).kind is PermitKind.BYPASS
    [view] = await breakers.snapshot("openai")
    assert view.state is CircuitState.OPEN and view.consecutive_failures == 1
    assert ("openai", "dall-e-3", CircuitState.OPEN) in breakers.states()


async def test_after_the_cooldown_one_probe_goes_and_its_success_closes(backends: StateBackends) -> None:
    quick = BreakerOverrides(consecutive_failures=1, cooldown_seconds=0.2)
    breakers = backends.breakers
    breakers.record(await breakers.acquire(IDENTITY, quick), Outcome.FAILURE)
    await settle(backends)
    await asyncio.sleep(0.3)
    probe = await breakers.acquire(IDENTITY, quick)
    assert probe.kind is PermitKind.PROBE
    assert (await breakers.acquire(IDENTITY, quick)).refused  # one probe at a time
    breakers.record(probe, Outcome.SUCCESS)
    await settle(backends)
    assert (await breakers.acquire(IDENTITY, quick)).kind is PermitKind.CALL


# -- kept images -------------------------------------------------------------------------------------

LOG_ID = "log_" + "ab" * 16


async def test_a_kept_image_is_found_by_its_log_id(backends: StateBackends, tmp_path: Path) -> None:
    kept = open_kept_images(backends, ImageKeeper(tmp_path / "kept"), keepable_image)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
    assert await kept.keep(LOG_ID, png, "image/png")
    assert await kept.get(LOG_ID) == (png, "image/png")
    assert await kept.kept_among([LOG_ID, "log_" + "cd" * 16]) == {LOG_ID}
    assert await kept.get("log_" + "cd" * 16) is None
    assert not await kept.keep("log_" + "ef" * 16, b"<svg/>", "image/svg+xml")  # not a kept type
    assert not await kept.keep("../etc/passwd", png, "image/png")
