"""The store contract on both backends (configs, virtual keys, API keys, logs), and SQLite's files and migrations."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from imagegateway_server.domain.errors import AlreadyExists, InvalidArgument, NotFound
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.migrations import SchemaTooNewError, load_migrations
from imagegateway_server.storage.records import ApiKeyRecord, ConfigRecord, LogFilter, LogRecord, VirtualKeyRecord
from imagegateway_server.storage.sqlite import SqliteStore

T0 = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each backend in turn (tests/conftest.py): the behaviour below is the Store contract."""
    return any_store


def config(config_id: str, *, name: str = "", document: str = '{"provider": "openai"}') -> ConfigRecord:
    return ConfigRecord(
        id=config_id,
        name=name or f"cfg-{config_id}",  # config names are unique, as ids are
        version=99,  # ignored: the store numbers versions
        document=document,
        sealed_secrets=b"\x01sealed",
        create_time=T0,
        first_create_time=T0 + timedelta(days=9),  # ignored too
    )


def log(log_id: str, seconds: int, **changes: object) -> LogRecord:
    record = LogRecord(
        id=log_id,
        trace_id=f"trace-{log_id}",
        create_time=T0 + timedelta(seconds=seconds),
        status_code=200,
        provider="openai",
        model="dall-e-3",
        caller_key_id="key-a",
        config_id="",
        fallback_used=False,
        payload='{"attempts": []}',
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


# Files and schema.


async def test_open_creates_directory_0700_and_database_file_0600(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "gateway.db"
    store = SqliteStore(path)
    await store.open()
    await store.create_api_key(ApiKeyRecord("k1", "n", "admin", "h" * 64, "igw_abcdef", T0))  # makes the WAL file exist
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for file in (path, Path(f"{path}-wal")):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    finally:
        await store.close()


async def test_migrations_apply_once_and_reopen_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    first = SqliteStore(path)
    await first.open()
    await first.create_config(config("c1"))
    await first.close()

    second = SqliteStore(path)
    await second.open()
    try:
        assert (await second.get_config("c1")).version == 1
        assert await second.schema_version() == len(load_migrations("sqlite"))
    finally:
        await second.close()
    with sqlite3.connect(path) as connection:
        versions = [row[0] for row in connection.execute("SELECT version FROM schema_migrations")]
        journal_mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == list(range(1, len(load_migrations("sqlite")) + 1))
    assert journal_mode == "wal"


async def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (999, 'from_the_future', 0)")
    with pytest.raises(SchemaTooNewError, match="version 999, newer than this ImageGateway knows"):
        await SqliteStore(path).open()


def test_migrations_are_numbered_without_gaps() -> None:
    migrations = load_migrations("sqlite")
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert migrations[0].name == "initial"


async def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.create_config(dataclasses.replace(config("c1"), create_time=datetime(2025, 1, 1)))


# Configs.


async def test_create_config_stores_version_one(store: Store) -> None:
    stored = await store.create_config(config("c1"))
    assert stored.version == 1
    assert stored.first_create_time == stored.create_time == T0
    assert await store.get_config("c1") == stored
    assert await store.get_config("c1", 1) == stored


async def test_create_config_with_taken_id_raises_already_exists(store: Store) -> None:
    await store.create_config(config("c1"))
    with pytest.raises(AlreadyExists, match="config 'c1' already exists"):
        await store.create_config(config("c1"))


async def test_a_taken_config_name_is_refused_naming_it_on_create_and_on_rename(store: Store) -> None:
    await store.create_config(config("c1", name="sdxl-to-dalle"))
    with pytest.raises(AlreadyExists, match="a config named 'sdxl-to-dalle' already exists") as taken:
        await store.create_config(config("c2", name="sdxl-to-dalle"))
    assert taken.value.param == "name"
    await store.create_config(config("c2", name="other"))
    with pytest.raises(AlreadyExists, match="'sdxl-to-dalle' already exists"):
        await store.add_config_version(config("c2", name="sdxl-to-dalle"))
    # A config keeps its own name across versions, and a name given up is free again.
    await store.add_config_version(config("c1", name="sdxl-to-dalle"))
    await store.add_config_version(config("c1", name="renamed"))
    assert (await store.create_config(config("c3", name="sdxl-to-dalle"))).name == "sdxl-to-dalle"


async def test_add_config_version_numbers_versions_and_keeps_old_ones(store: Store) -> None:
    await store.create_config(config("c1", document='{"v": 1}'))
    later = T0 + timedelta(hours=1)
    v2 = await store.add_config_version(
        dataclasses.replace(config("c1", name="renamed", document='{"v": 2}'), create_time=later)
    )
    v3 = await store.add_config_version(config("c1", document='{"v": 3}'))
    assert (v2.version, v3.version) == (2, 3)
    assert v2.first_create_time == T0 and v2.create_time == later
    assert (await store.get_config("c1")).document == '{"v": 3}'
    assert (await store.get_config("c1", 2)).name == "renamed"
    assert (await store.get_config("c1", 1)).document == '{"v": 1}'


async def test_add_config_version_to_unknown_id_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="config 'nope' not found"):
        await store.add_config_version(config("nope"))


async def test_get_config_not_found_messages_name_the_id_and_version(store: Store) -> None:
    with pytest.raises(NotFound, match="config 'missing' not found"):
        await store.get_config("missing")
    with pytest.raises(NotFound, match="config 'missing' not found"):
        await store.get_config("missing", 1)
    await store.create_config(config("c1"))
    with pytest.raises(NotFound, match="config 'c1' has no version 7"):
        await store.get_config("c1", 7)


async def test_list_configs_pages_through_latest_versions_in_id_order(store: Store) -> None:
    for index in range(7):
        await store.create_config(config(f"c{index}"))
    await store.add_config_version(config("c3", document='{"latest": true}'))

    seen: list[ConfigRecord] = []
    token = ""
    pages = 0
    while True:
        page = await store.list_configs(page_size=3, page_token=token)
        seen.extend(page.items)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert [record.id for record in seen] == [f"c{index}" for index in range(7)]
    latest = next(record for record in seen if record.id == "c3")
    assert (latest.version, latest.document) == (2, '{"latest": true}')


async def test_list_configs_with_exact_page_size_has_no_next_token(store: Store) -> None:
    await store.create_config(config("a"))
    await store.create_config(config("b"))
    page = await store.list_configs(page_size=2)
    assert [record.id for record in page.items] == ["a", "b"]
    assert page.next_page_token == ""


async def test_page_tokens_are_checked(store: Store) -> None:
    for index in range(3):
        await store.create_config(config(f"c{index}"))
    token = (await store.list_configs(page_size=1)).next_page_token
    with pytest.raises(InvalidArgument, match="page_token"):
        await store.list_virtual_keys(page_token=token)  # a token of another listing
    with pytest.raises(InvalidArgument, match="page_token"):
        await store.list_configs(page_token="not a token!")
    with pytest.raises(InvalidArgument, match="page_size"):
        await store.list_configs(page_size=-1)


async def test_delete_config_removes_every_version(store: Store) -> None:
    await store.create_config(config("c1"))
    await store.add_config_version(config("c1"))
    await store.delete_config("c1")
    with pytest.raises(NotFound):
        await store.get_config("c1", 1)
    with pytest.raises(NotFound, match="config 'c1' not found"):
        await store.delete_config("c1")
    assert (await store.list_configs()).items == []
    recreated = await store.create_config(config("c1"))
    assert recreated.version == 1


# Virtual keys.


def virtual_key(key_id: str) -> VirtualKeyRecord:
    return VirtualKeyRecord(key_id, f"name {key_id}", "openai", None, b"sealed-" + key_id.encode(), T0, T0)


async def test_virtual_key_crud(store: Store) -> None:
    record = dataclasses.replace(virtual_key("vk1"), base_url="https://example.test/v1")
    await store.create_virtual_key(record)
    assert await store.get_virtual_key("vk1") == record
    with pytest.raises(AlreadyExists, match="virtual key 'vk1' already exists"):
        await store.create_virtual_key(record)

    rotated_at = T0 + timedelta(days=1)
    rotated = await store.update_virtual_key_secret("vk1", b"new-sealed", rotated_at)
    assert (rotated.sealed_secret, rotated.rotate_time, rotated.create_time) == (
        b"new-sealed",
        rotated_at,
        T0,
    )
    assert await store.get_virtual_key("vk1") == rotated

    await store.delete_virtual_key("vk1")
    with pytest.raises(NotFound, match="virtual key 'vk1' not found"):
        await store.get_virtual_key("vk1")
    with pytest.raises(NotFound, match="virtual key 'vk1' not found"):
        await store.delete_virtual_key("vk1")
    with pytest.raises(NotFound, match="virtual key 'vk1' not found"):
        await store.update_virtual_key_secret("vk1", b"x", T0)


async def test_list_virtual_keys_pages_in_id_order(store: Store) -> None:
    for key_id in ("b", "a", "d", "c", "e"):
        await store.create_virtual_key(virtual_key(key_id))
    first = await store.list_virtual_keys(page_size=2)
    second = await store.list_virtual_keys(page_size=2, page_token=first.next_page_token)
    third = await store.list_virtual_keys(page_size=2, page_token=second.next_page_token)
    assert [[r.id for r in page.items] for page in (first, second, third)] == [["a", "b"], ["c", "d"], ["e"]]
    assert third.next_page_token == ""
    assert [r.id for r in await store.all_virtual_keys_sealed()] == ["a", "b", "c", "d", "e"]


# API keys.


def api_key(key_id: str, created: datetime = T0) -> ApiKeyRecord:
    return ApiKeyRecord(key_id, f"name {key_id}", "generate", key_id * 4, "igw_abcdef", created)


async def test_api_key_lookup_by_hash_and_revoke(store: Store) -> None:
    assert await store.count_api_keys() == 0
    record = api_key("k1")
    await store.create_api_key(record)
    assert await store.get_api_key_by_hash(record.key_hash) == record
    assert await store.get_api_key_by_hash("0" * 64) is None
    with pytest.raises(AlreadyExists, match="API key 'k1' already exists"):
        await store.create_api_key(record)
    with pytest.raises(AlreadyExists, match="same secret"):
        await store.create_api_key(dataclasses.replace(record, id="k2"))

    revoked = await store.revoke_api_key("k1", T0 + timedelta(hours=1))
    assert revoked.revoke_time == T0 + timedelta(hours=1)
    again = await store.revoke_api_key("k1", T0 + timedelta(hours=2))
    assert again.revoke_time == T0 + timedelta(hours=1)  # the first revoke time stays
    with pytest.raises(NotFound, match="API key 'nope' not found"):
        await store.revoke_api_key("nope", T0)
    assert await store.count_api_keys() == 1


async def test_list_api_keys_pages_oldest_first(store: Store) -> None:
    for index, key_id in enumerate(("z", "y", "x", "w")):
        await store.create_api_key(api_key(key_id, T0 + timedelta(seconds=index // 2)))
    first = await store.list_api_keys(page_size=3)
    second = await store.list_api_keys(page_size=3, page_token=first.next_page_token)
    assert [r.id for r in first.items] == ["y", "z", "w"]
    assert [r.id for r in second.items] == ["x"]
    assert second.next_page_token == ""


# Request logs.


async def test_append_logs_and_get_log(store: Store) -> None:
    record = log("l1", 0, fallback_used=True, payload='{"x": "\u00e9"}')
    await store.append_logs([record])
    assert await store.get_log("l1") == record
    with pytest.raises(NotFound, match="request log 'nope' not found"):
        await store.get_log("nope")


async def test_append_logs_skips_ids_already_stored(store: Store) -> None:
    await store.append_logs([log("l1", 0)])
    await store.append_logs([log("l1", 0, status_code=500), log("l2", 1)])
    assert (await store.get_log("l1")).status_code == 200
    assert len((await store.list_logs()).items) == 2


async def test_list_logs_is_newest_first_across_pages_with_ties_broken_by_id(store: Store) -> None:
    # Two records share each second; order is (time, id) descending.
    await store.append_logs([log(f"l{index:02d}", index // 2) for index in range(11)])
    seen: list[str] = []
    token = ""
    while True:
        page = await store.list_logs(page_size=4, page_token=token)
        seen.extend(record.id for record in page.items)
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"l{index:02d}" for index in reversed(range(11))]


async def test_list_logs_filters(store: Store) -> None:
    await store.append_logs(
        [
            log("ok", 0),
            log("failed", 1, status_code=503, provider="stability-ai"),
            log("other-caller", 2, caller_key_id="key-b"),
            log("traced", 3, trace_id="t-123", status_code=429),
        ]
    )

    async def ids(**conditions: object) -> list[str]:
        page = await store.list_logs(LogFilter(**conditions))  # type: ignore[arg-type]
        return [record.id for record in page.items]

    assert await ids() == ["traced", "other-caller", "failed", "ok"]
    assert await ids(trace_id="t-123") == ["traced"]
    assert await ids(status_code=503) == ["failed"]
    assert await ids(success=True) == ["other-caller", "ok"]
    assert await ids(success=False) == ["traced", "failed"]
    assert await ids(provider="stability-ai") == ["failed"]
    assert await ids(caller_key_id="key-b") == ["other-caller"]
    assert await ids(start_time=T0 + timedelta(seconds=1)) == ["traced", "other-caller", "failed"]
    assert await ids(end_time=T0 + timedelta(seconds=1)) == ["ok"]  # end is exclusive
    assert await ids(caller_key_id="key-a", success=False) == ["traced", "failed"]


async def test_filtered_log_listing_pages(store: Store) -> None:
    await store.append_logs(
        [log(f"l{index}", index, provider="openai" if index % 2 else "stability-ai") for index in range(9)]
    )
    first = await store.list_logs(LogFilter(provider="openai"), page_size=3)
    second = await store.list_logs(LogFilter(provider="openai"), page_size=3, page_token=first.next_page_token)
    assert [r.id for r in first.items] == ["l7", "l5", "l3"]
    assert [r.id for r in second.items] == ["l1"]
    assert second.next_page_token == ""


async def test_log_filters_use_indexes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    await store.open()
    await store.close()
    with sqlite3.connect(store.path) as connection:
        for column in ("trace_id", "provider", "caller_key_id", "status_code"):
            plan = connection.execute(
                f"EXPLAIN QUERY PLAN SELECT id FROM request_logs WHERE {column} = ? "
                "ORDER BY create_time DESC, id DESC LIMIT 10",
                ("x",),
            ).fetchall()
            detail = " ".join(str(row[-1]) for row in plan)
            assert "USING INDEX" in detail or "USING COVERING INDEX" in detail, (column, detail)
            assert "TEMP B-TREE" not in detail, (column, detail)


async def test_processes_opening_one_new_file_together_all_open_it(tmp_path: Path) -> None:
    # Switching a new file to WAL needs it alone for a moment; SQLite answers "database is locked" at once
    # to a store whose switch meets another's, so several replicas starting on one new file raced.
    # Each round is a fresh file opened by six stores at once (separate connections, as processes have).
    for round_index in range(15):
        stores = [SqliteStore(tmp_path / f"round{round_index}.db") for _ in range(6)]
        try:
            await asyncio.gather(*(store.open() for store in stores))
            assert {await store.schema_version() for store in stores} == {len(load_migrations("sqlite"))}
        finally:
            for store in stores:
                await store.close()
