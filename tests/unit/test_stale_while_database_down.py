"""What the services serve from their caches while the real PostgreSQL server is stopped, and for how long.

API keys, virtual keys and saved configs read before the outage keep working past their caches'
TTLs, up to ``stale_max_age`` since they were read; anything never read, or read too long ago,
answers StoreUnavailable; a rotated-away API key is not accepted past its grace even then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.errors import StoreUnavailable, Unauthenticated
from imagegateway_server.routing import config_service
from imagegateway_server.routing.config_service import ConfigService
from imagegateway_server.security.api_keys import ApiKeyService
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.vault import Vault
from imagegateway_server.security.virtual_keys import VirtualKeyService
from imagegateway_server.storage.postgres import PostgresStore
from tests.postgres_server import PostgresServer

VAULT = Vault({"k1": b"\x02" * 32}, "k1")
STALE = 1.5  # seconds a cached entry may be served while the database is down


@pytest.fixture
async def store(postgres_server: PostgresServer) -> AsyncIterator[PostgresStore]:
    if not postgres_server.managed:
        pytest.skip("stops the server: only one the tests started")
    url = postgres_server.fresh_database()
    opened = PostgresStore(url, probe_interval=0.1)
    await opened.open()
    yield opened
    await opened.close()
    postgres_server.drop_database(url)


async def test_cached_keys_and_configs_are_served_stale_within_the_bound_only(
    store: PostgresStore, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(config_service, "LATEST_TTL_SECONDS", 0.05)
    api_keys = ApiKeyService(store, cache_ttl=0.05, stale_max_age=STALE)
    virtual_keys = VirtualKeyService(store, VAULT, canonicalize_provider=str, cache_ttl=0.05, stale_max_age=STALE)
    configs = ConfigService(store, VAULT, canonical_provider=str, host_policy=UpstreamHostPolicy(), stale_max_age=STALE)
    _, current = await api_keys.create("current", "generate")
    rotated_record, old_secret = await api_keys.create("rotated", "generate")
    _, never_read = await api_keys.create("never read", "generate")
    await api_keys.rotate(rotated_record.id, previous_key_valid_seconds=1)
    await virtual_keys.create("vk", "openai", "sk-upstream", virtual_key_id="vk")
    config = await configs.create("c", parse_config({"provider": "openai", "api_key": "sk-inline"}))
    # Read once each, as requests would, so the caches hold them.
    await api_keys.authenticate(current)
    await api_keys.authenticate(old_secret)
    await virtual_keys.resolve("vk")
    await configs.resolve(config.id)
    read_at = time.monotonic()

    postgres_server.stop()
    try:
        await asyncio.sleep(0.2)  # past every TTL: each look-up below goes to the database first
        assert (await api_keys.authenticate(current)).name == "current"
        assert (await virtual_keys.resolve("vk")).credential.value("api_key") == "sk-upstream"
        assert (await configs.resolve(config.id)).version == 1
        with pytest.raises(StoreUnavailable, match=r"postgresql://imagegw@127\.0\.0\.1:\d+/"):
            await api_keys.authenticate(never_read)
        with pytest.raises(StoreUnavailable):
            await configs.create("during", parse_config({"provider": "openai", "api_key": "sk-x"}))

        await asyncio.sleep(max(0.0, read_at + 1.1 - time.monotonic()))  # the rotated-away secret's grace ends
        with pytest.raises(StoreUnavailable):
            await api_keys.authenticate(old_secret)

        await asyncio.sleep(max(0.0, read_at + STALE + 0.1 - time.monotonic()))  # past the stale bound
        with pytest.raises(StoreUnavailable):
            await api_keys.authenticate(current)
        with pytest.raises(StoreUnavailable):
            await virtual_keys.resolve("vk")
        with pytest.raises(StoreUnavailable):
            await configs.resolve(config.id)
    finally:
        postgres_server.start()
    deadline = time.monotonic() + 30
    while not store.reachable:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert (await api_keys.authenticate(current)).name == "current"
    with pytest.raises(Unauthenticated):
        await api_keys.authenticate(old_secret)
