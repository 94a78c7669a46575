"""What only the PostgreSQL store has: migrations under an advisory lock, the URL's password kept
out of every message, and an unreachable database answered at once with StoreUnavailable.

The store contract itself runs on both backends in test_storage_sqlite.py and the other store tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from imagegateway_server.domain.errors import StoreUnavailable
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.migrations import SchemaTooNewError, load_migrations
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.records import LogRecord
from imagegateway_server.storage.sqlite import SqliteStore
from tests.postgres_server import PASSWORD, PostgresServer, database_url


def test_both_backends_have_the_same_migration_steps() -> None:
    sqlite = [(m.version, m.name) for m in load_migrations("sqlite")]
    postgresql = [(m.version, m.name) for m in load_migrations("postgresql")]
    assert postgresql == sqlite


async def test_replicas_opening_together_apply_each_migration_once(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database(migrate=False)
    try:
        stores = [PostgresStore(url) for _ in range(4)]
        await asyncio.gather(*(store.open() for store in stores))
        try:
            assert {await store.schema_version() for store in stores} == {len(load_migrations("postgresql"))}
        finally:
            await asyncio.gather(*(store.close() for store in stores))
        with psycopg.connect(url) as connection:
            versions = [row[0] for row in connection.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == list(range(1, len(load_migrations("postgresql")) + 1))
    finally:
        postgres_server.drop_database(url)


async def test_a_database_newer_than_the_code_is_refused(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("INSERT INTO schema_migrations VALUES (999, 'from_the_future', 0)")
        with pytest.raises(SchemaTooNewError, match="999"):
            await PostgresStore(url).open()
    finally:
        postgres_server.drop_database(url)


async def test_a_wrong_password_is_refused_without_showing_either_password(postgres_server: PostgresServer) -> None:
    wrong = "wrong-pw-4f1c9a"
    url = postgres_server.url.replace(PASSWORD, wrong)
    with pytest.raises(ConnectionError) as raised:
        await PostgresStore(url).open()
    message = str(raised.value)
    assert "password authentication failed" in message
    assert "postgresql://imagegw@127.0.0.1:" in message
    assert wrong not in message and PASSWORD not in message


async def test_libpq_parameters_in_the_url_are_honoured(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database()
    try:
        store = PostgresStore(url.replace("postgresql://", "postgres://") + "?sslmode=disable&application_name=igw-t")
        await store.open()
        try:
            assert await store.count_api_keys() == 0
        finally:
            await store.close()
    finally:
        postgres_server.drop_database(url)


def _record(log_id: str) -> LogRecord:
    return LogRecord(
        id=log_id,
        trace_id="t",
        create_time=datetime(2025, 1, 1, tzinfo=UTC),
        status_code=200,
        provider="openai",
        model="dall-e-3",
        caller_key_id="k",
        config_id="",
        fallback_used=False,
        payload='{"attempts": []}',
    )


async def test_an_unreachable_database_fails_fast_naming_it_and_is_used_again_when_back(
    postgres_server: PostgresServer,
) -> None:
    if not postgres_server.managed:
        pytest.skip("stops the server: only one the tests started")
    url = postgres_server.fresh_database()
    store = PostgresStore(url, probe_interval=0.1)
    await store.open()
    try:
        await store.append_logs([_record("log-before")])
        postgres_server.stop()
        try:
            with pytest.raises(StoreUnavailable) as raised:
                await store.get_log("log-before")
            assert store.name in raised.value.message and PASSWORD not in raised.value.message
            assert not store.reachable
            # Later calls do not wait on a connection: they fail at once until the probe succeeds.
            started = time.monotonic()
            for _ in range(20):
                with pytest.raises(StoreUnavailable):
                    await store.append_logs([_record("log-during")])
            assert time.monotonic() - started < 1.0
        finally:
            postgres_server.start()
        deadline = time.monotonic() + 30
        while not store.reachable:
            assert time.monotonic() < deadline, "the store did not see the database come back"
            await asyncio.sleep(0.05)
        await store.append_logs([_record("log-after")])
        assert (await store.get_log("log-after")).id == "log-after"
        assert (await store.get_log("log-before")).id == "log-before"
    finally:
        await store.close()
        postgres_server.drop_database(url)


def test_the_test_server_urls_name_a_database() -> None:
    assert (
        database_url("postgresql://u:p@h:1/postgres?sslmode=disable", "x") == "postgresql://u:p@h:1/x?sslmode=disable"
    )


async def test_listings_page_alike_with_the_same_tokens_on_both_backends(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    records = [
        dataclasses.replace(_record(f"log-{n % 7}-{n}"), create_time=datetime(2025, 1, 1, 0, 0, n // 3, tzinfo=UTC))
        for n in range(40)
    ]
    url = postgres_server.fresh_database()
    stores: list[Store] = [SqliteStore(tmp_path / "same.db"), PostgresStore(url)]
    try:
        walks: list[list[tuple[list[str], str]]] = []
        for store in stores:
            await store.open()
            await store.append_logs(records)
            walk, token = [], ""
            while True:
                page = await store.list_logs(page_size=6, page_token=token)
                walk.append(([r.id for r in page.items], page.next_page_token))
                if not (token := page.next_page_token):
                    break
            walks.append(walk)
        assert walks[0] == walks[1] and len(walks[0]) == 7
    finally:
        for store in stores:
            await store.close()
        postgres_server.drop_database(url)


async def test_filtered_log_listings_are_index_scans_in_listing_order(postgres_server: PostgresServer) -> None:
    url = postgres_server.fresh_database()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("SET enable_seqscan = off")  # an empty table: ask what plan the indexes allow
            for column, value in (
                ("trace_id", "'x'"),
                ("provider", "'x'"),
                ("caller_key_id", "'x'"),
                ("status_code", "500"),
                ("model", "'x'"),
                ("config_id", "'x'"),
                ("fallback_used", "true"),
                ("virtual_key_id", "'x'"),
            ):
                plan = "\n".join(
                    str(row[0])
                    for row in connection.execute(
                        f"EXPLAIN SELECT payload FROM request_logs WHERE {column} = {value} "
                        "AND (create_time, id) < (99, 'z') ORDER BY create_time DESC, id DESC LIMIT 10"
                    )
                )
                assert "Index Scan Backward using request_logs_by_" in plan, (column, plan)
                assert "Sort" not in plan, (column, plan)  # the index serves the order: no sort
    finally:
        postgres_server.drop_database(url)


ODD_PAYLOADS = [
    {},
    {"attempts": [], "images": [], "latency_ms": ""},
    {"error_kind": None, "cache_status": "CACHE_STATUS_HIT", "latency_ms": "15.9", "images": [{}, {}, {}]},
    {"error_kind": "ERROR_KIND_TIMEOUT", "latency_ms": "007", "served_target": "", "attempts": [{"target": "t0"}]},
    {
        "served_target": "targets[2]",
        "attempts": [
            {"target": "targets[0]", "circuit_open": True},
            {"target": "targets[1]", "circuit_open": False, "error_kind": "ERROR_KIND_RATE_LIMITED"},
            {"target": "targets[1]", "circuit_open": None, "retry_index": 1, "error_kind": ""},
            {"target": "targets[2]", "retry_index": 0},
            {"target": "targets[2]", "retry_index": 2, "error_kind": None},
        ],
    },
    {"attempts": [{"circuit_open": 0}, {"circuit_open": 1}, {"target": None}], "latency_ms": 12},
]


async def test_the_analytics_columns_are_the_same_as_sqlites_sql_computes(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    records = [
        dataclasses.replace(_record(f"odd-{n}"), payload=json.dumps(payload)) for n, payload in enumerate(ODD_PAYLOADS)
    ]
    columns = (
        "id, error_kind, cache_hit, latency_ms, image_count, attempt_count, failed_attempt_count, retry_count, "
        "first_target, last_target"
    )
    url = postgres_server.fresh_database()
    sqlite, postgres = SqliteStore(tmp_path / "odd.db"), PostgresStore(url)
    try:
        for store in (sqlite, postgres):
            await store.open()
            await store.append_logs(records)
        from_sqlite = await sqlite._read(f"SELECT {columns} FROM request_logs ORDER BY id")
        async with postgres._connection() as connection:
            cursor = await connection.execute(f"SELECT {columns} FROM request_logs ORDER BY id")
            from_postgres = await cursor.fetchall()
        assert [(row[0], row[1], bool(row[2]), *row[3:]) for row in from_sqlite] == from_postgres
    finally:
        await sqlite.close()
        await postgres.close()
        postgres_server.drop_database(url)
