"""Raw access to either store backend for tests that look under the Store interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from imagegateway_server.storage.base import Store
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.sqlite import SqliteStore


def sql_for(store: Store, sql: str) -> str:
    """SQL written with SQLite's ``?`` placeholders, as ``store``'s driver takes it."""
    return sql.replace("?", "%s") if isinstance(store, PostgresStore) else sql


async def execute(store: Store, sql: str, parameters: tuple[Any, ...] = ()) -> None:
    """Runs one statement (``?`` placeholders) in a write transaction of ``store``."""
    assert isinstance(store, SqliteStore | PostgresStore)
    async with store._transaction() as connection:
        await connection.execute(sql_for(store, sql), parameters)


async def stored_bytes(store: Store) -> bytes:
    """Everything the database holds, as bytes to search: SQLite's files, or every PostgreSQL row as text."""
    if isinstance(store, SqliteStore):
        files = [store.path, Path(f"{store.path}-wal")]
        return b"".join(path.read_bytes() for path in files if path.exists())
    assert isinstance(store, PostgresStore)
    contents = []
    async with store._connection() as connection:
        cursor = await connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for (table,) in await cursor.fetchall():
            rows = await connection.execute(f'SELECT t::text FROM "{table}" t')
            contents.extend(row[0].encode() for row in await rows.fetchall())
    return b"\n".join(contents)
