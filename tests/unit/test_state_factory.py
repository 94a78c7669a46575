"""The state factory: in process by default, Redis with IMAGEGW_REDIS_URL, a bad URL refused in one line."""

from __future__ import annotations

import pytest

from imagegateway_server.settings import SETTINGS, Settings
from imagegateway_server.state.breakers import CircuitState, Outcome, TargetIdentity
from imagegateway_server.state.factory import open_state
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from imagegateway_server.state.in_process.cache_store import MemoryCacheStore
from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters
from imagegateway_server.state.in_process.sessions import InProcessSessionStore
from tests.credentials import api_key

IDENTITY = TargetIdentity.of("openai", None, api_key("sk-test"), "dall-e-3")


async def test_without_a_redis_url_every_kind_is_kept_in_the_process() -> None:
    backends = await open_state(Settings.load(environ={}))
    try:
        assert isinstance(backends.cache_store, MemoryCacheStore)
        assert isinstance(backends.breakers, InProcessBreakers)
        assert isinstance(backends.limit_counters, InProcessLimitCounters)
        assert isinstance(backends.sessions, InProcessSessionStore)
    finally:
        await backends.close()


async def test_the_backends_take_their_settings() -> None:
    transitions: list[CircuitState] = []
    settings = Settings.load(environ={"IMAGEGW_CACHE_MAX_BYTES": "4096", "IMAGEGW_BREAKER_CONSECUTIVE_FAILURES": "1"})
    backends = await open_state(settings, on_breaker_transition=lambda _, state: transitions.append(state))
    assert isinstance(backends.cache_store, MemoryCacheStore) and backends.cache_store.max_bytes == 4096
    backends.breakers.record(await backends.breakers.acquire(IDENTITY, None), Outcome.FAILURE)
    assert transitions == [CircuitState.OPEN]  # one failure opens, and the listener hears it
    assert (await backends.breakers.acquire(IDENTITY, None)).refused
    await backends.close()


@pytest.mark.parametrize(
    "url", ["http://:hunter2@cache.internal:6379/0", "cache.internal:6379", "redis://:pw@h:port/0"]
)
async def test_a_url_that_is_not_a_redis_url_is_refused_in_one_line_naming_the_setting(url: str) -> None:
    with pytest.raises(ValueError) as refused:
        await open_state(Settings.load(environ={"IMAGEGW_REDIS_URL": url}))
    message = str(refused.value)
    assert "IMAGEGW_REDIS_URL" in message and "\n" not in message
    assert "hunter2" not in message and "cache.internal" not in message and "pw" not in message


async def test_close_releases_what_the_backends_hold_once_in_reverse_order() -> None:
    backends = await open_state(Settings.load(environ={}))
    closed: list[str] = []

    async def closer(name: str) -> None:
        closed.append(name)

    backends.resources.push_async_callback(closer, "pool")
    backends.resources.push_async_callback(closer, "subscriber")
    await backends.close()
    assert closed == ["subscriber", "pool"]
    await backends.close()
    assert closed == ["subscriber", "pool"]


def test_the_settings_help_names_the_redis_and_postgresql_url_forms() -> None:
    help_of = {spec.env: spec.help for spec in SETTINGS}
    assert "redis://" in help_of["IMAGEGW_REDIS_URL"] and "rediss://" in help_of["IMAGEGW_REDIS_URL"]
    assert "postgresql://USER:PASSWORD@HOST:PORT/DB" in help_of["IMAGEGW_DATABASE_URL"]
    assert "not supported yet" not in help_of["IMAGEGW_DATABASE_URL"] + help_of["IMAGEGW_REDIS_URL"]


def test_the_redis_timeout_and_hysteresis_settings_are_bounded() -> None:
    loaded = Settings.load(environ={"IMAGEGW_REDIS_TIMEOUT_SECONDS": "0.1", "IMAGEGW_REDIS_FAILURES_TO_DOWN": "5"})
    assert (loaded.redis_timeout_seconds, loaded.redis_failures_to_down) == (0.1, 5)
    assert (Settings.load(environ={}).redis_timeout_seconds, Settings.load(environ={}).redis_failures_to_down) == (
        0.25,
        3,
    )
    for env, value in (("IMAGEGW_REDIS_TIMEOUT_SECONDS", "0"), ("IMAGEGW_REDIS_FAILURES_TO_DOWN", "0")):
        with pytest.raises(ValueError, match=env):
            Settings.load(environ={env: value})


def test_the_settings_repr_never_shows_a_url_password() -> None:
    settings = Settings(redis_url="redis://:hunter2@cache:6379/0", database_url="postgresql://igw:s3cr/t@db/igw")
    shown = repr(settings)
    assert "hunter2" not in shown and "s3cr" not in shown
    assert "redis://:***@cache:6379/0" in shown and "postgresql://igw:***@db/igw" in shown
    assert "sqlite:///data/gw.db" in repr(Settings(database_url="sqlite:///data/gw.db"))


def test_the_settings_repr_never_shows_a_password_in_a_url_query() -> None:
    shown = repr(Settings(redis_url="unix:///run/redis.sock?db=0&password=hunter2"))
    assert "hunter2" not in shown and "unix:///run/redis.sock?***" in shown
