"""Limits and spend in the store (both backends): key limits kept, spend summed per key; SQLite's migration 0003."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.migrations import load_migrations
from imagegateway_server.storage.records import ApiKeyRecord, LogRecord, VirtualKeyRecord
from imagegateway_server.storage.sqlite import SqliteStore

WHEN = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
MICROS = int(WHEN.timestamp() * 1_000_000)


def _schema_2_database(path: Path) -> None:
    """A database as the gateway left it before limits existed, with one request logged at 0.04 USD."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
            "apply_time INTEGER NOT NULL)"
        )
        for migration in load_migrations("sqlite")[:2]:
            db.executescript(migration.sql)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, ?)", (migration.version, migration.name, 0))
        db.execute(
            "INSERT INTO api_keys (id, name, scope, key_hash, display_prefix, create_time) "
            "VALUES ('old', 'old key', 'generate', 'h', 'igw_abcdef', 0)"
        )
        for n, cost in ((1, 0.04), (2, None)):
            payload = json.dumps({"id": f"log_{n}", **({"cost_usd": cost} if cost else {})})
            db.execute(
                "INSERT INTO request_logs (id, trace_id, create_time, status_code, provider, model, "
                "caller_key_id, config_id, fallback_used, payload) VALUES (?, 't', ?, 200, 'openai', "
                "'dall-e-3', 'old', '', 0, ?)",
                (f"log_{n}", MICROS, payload),
            )


async def test_migration_3_keeps_old_keys_unlimited_and_old_costs_countable(tmp_path: Path) -> None:
    path = tmp_path / "gw.db"
    _schema_2_database(path)
    store = SqliteStore(path)
    await store.open()
    try:
        assert await store.schema_version() == len(load_migrations("sqlite"))  # 3 and every later one
        [old_key] = (await store.list_api_keys()).items
        assert old_key.limits == NO_LIMITS
        assert (old_key.rotate_time, old_key.previous_key_hash) == (None, None)  # never rotated (migration 4)
        spend = await store.spend_since(WHEN)
        assert spend.by_caller_key == {"old": 0.04}
        assert spend.by_virtual_key == {}  # which virtual key served was not recorded before
        assert (await store.get_log("log_1")).cost_usd == 0.04
    finally:
        await store.close()


async def test_key_limits_are_stored_and_read_back(any_store: Store) -> None:
    store = any_store
    limits = Limits(requests_per_minute=60, usd_per_day=2.5, usd_per_month=40)
    await store.create_api_key(ApiKeyRecord("k1", "n", "generate", "hash1", "igw_abcdef", WHEN, limits=limits))
    await store.create_api_key(ApiKeyRecord("k2", "n", "admin", "hash2", "igw_ghijkl", WHEN))
    await store.create_virtual_key(
        VirtualKeyRecord("vk", "n", "openai", None, b"sealed", WHEN, WHEN, limits=Limits(usd_per_month=9.99))
    )
    assert [k.limits for k in (await store.list_api_keys()).items] == [limits, NO_LIMITS]
    assert (await store.get_api_key_by_hash("hash1")).limits == limits  # type: ignore[union-attr]
    assert (await store.get_virtual_key("vk")).limits == Limits(usd_per_month=9.99)
    rotated = await store.update_virtual_key_secret("vk", b"new", WHEN)
    assert rotated.limits == Limits(usd_per_month=9.99)


async def test_spend_is_summed_per_caller_key_and_virtual_key_since_an_instant(any_store: Store) -> None:
    store = any_store

    def record(n: int, when: datetime, key: str, vk: str, cost: float) -> LogRecord:
        return LogRecord(f"log_{n}", "t", when, 200, "openai", "dall-e-3", key, "", False, "{}", vk, cost)

    await store.append_logs(
        [
            record(1, datetime(2025, 3, 13, 23, 59, 59, tzinfo=UTC), "k1", "vk", 1.0),
            record(2, WHEN, "k1", "vk", 0.04),
            record(3, WHEN, "k1", "", 0.02),
            record(4, WHEN, "k2", "vk", 0.5),
            record(5, WHEN, "k3", "vk", 0.0),
        ]
    )
    spend = await store.spend_since(datetime(2025, 3, 14, tzinfo=UTC))
    assert spend.by_caller_key == {"k1": 0.06, "k2": 0.5}
    assert spend.by_virtual_key == {"vk": 0.54}
    stored = await store.get_log("log_2")
    assert (stored.virtual_key_id, stored.cost_usd) == ("vk", 0.04)
