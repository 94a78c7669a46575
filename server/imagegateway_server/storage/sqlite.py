"""The embedded store: one SQLite file through aiosqlite, in WAL mode, with one writer.

Writes go through a single connection, one transaction at a time (``BEGIN IMMEDIATE`` under an
asyncio lock), so SQLite never sees two writers of ours race. Reads use a second, read-only
connection: in WAL mode they neither wait for nor block the writer. Times are stored as integer
microseconds since the epoch (UTC), which sort and compare exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from imagegateway_server.domain.errors import AlreadyExists, FailedPrecondition, NotFound
from imagegateway_server.storage.analytics import AnalyticsQuery, AnalyticsResult
from imagegateway_server.storage.analytics_rollup import (
    DEFAULT_ROLLUP_INTERVAL,
    ROLLUP_CHUNK,
    SQLITE,
    CellKey,
    CellSums,
    aggregate,
    cell_id,
    cells_of,
    merged_cells,
)
from imagegateway_server.storage.common_reads import CommonReads
from imagegateway_server.storage.migrations import Migration, check_not_newer, load_migrations
from imagegateway_server.storage.paging import decode_page_token, encode_page_token, page_size_or_default
from imagegateway_server.storage.records import (
    ApiKeyRecord,
    ConfigRecord,
    LogFilter,
    LogRecord,
    Page,
    VirtualKeyRecord,
)
from imagegateway_server.storage.rows import (
    API_KEY_COLUMNS,
    LOG_COLUMNS,
    VIRTUAL_KEY_COLUMNS,
    api_key_record,
    api_key_values,
    config_record,
    limit_values,
    log_record,
    public_fields_column,
    to_micros,
    virtual_key_record,
)

logger = logging.getLogger(__name__)


# The analytics columns (migration 0006), computed from the payload (parameter ?10) as a row is
# inserted: the payload stays the one source, and aggregates read columns instead of parsing JSON.
_ANALYTICS_COLUMNS = (
    "error_kind, cache_hit, latency_ms, image_count, attempt_count, failed_attempt_count, retry_count, "
    "first_target, last_target"
)
_CALLS = "json_each(?10, '$.attempts') WHERE coalesce(json_extract(value, '$.circuit_open'), 0) = 0"
_ANALYTICS_VALUES = (
    "coalesce(json_extract(?10, '$.error_kind'), ''), "
    "coalesce(json_extract(?10, '$.cache_status'), '') = 'CACHE_STATUS_HIT', "
    "coalesce(CAST(json_extract(?10, '$.latency_ms') AS INTEGER), 0), "
    "coalesce(json_array_length(?10, '$.images'), 0), "
    f"(SELECT count(*) FROM {_CALLS}), "
    f"(SELECT count(*) FROM {_CALLS} AND coalesce(json_extract(value, '$.error_kind'), '') != ''), "
    f"(SELECT count(*) FROM {_CALLS} AND coalesce(json_extract(value, '$.retry_index'), 0) > 0), "
    "coalesce(json_extract(?10, '$.attempts[0].target'), ''), "
    "coalesce(nullif(json_extract(?10, '$.served_target'), ''), json_extract(?10, '$.attempts[#-1].target'), '')"
)
_SUCCESS = "status_code BETWEEN 200 AND 299"

Row = sqlite3.Row | tuple[Any, ...]
# Request-log rows deleted per transaction when pruning.
_PRUNE_CHUNK = 5000
_ROWIDS = "rowid IN (SELECT value FROM json_each(?))"
# The rollup statements in SQLite's dialect (storage/analytics_rollup.py).
ROW_FOR_ROLLUP = SQLITE.row_for_rollup()
SELECT_CELLS = SQLITE.select_cells()
UPSERT_CELL = SQLITE.upsert_cell()
DELETE_CELL = SQLITE.delete_cell()


def _log_conditions(wanted: LogFilter) -> tuple[list[str], list[Any]]:
    """The WHERE conditions (ANDed) and their parameters of a log filter, on request_logs' columns."""
    conditions: list[str] = []
    parameters: list[Any] = []
    for column, value in (
        ("trace_id", wanted.trace_id),
        ("status_code", wanted.status_code),
        ("provider", wanted.provider),
        ("caller_key_id", wanted.caller_key_id),
        ("model", wanted.model),
        ("config_id", wanted.config_id),
        ("fallback_used", None if wanted.fallback_used is None else int(wanted.fallback_used)),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            parameters.append(value)
    if wanted.success is True:
        conditions.append(_SUCCESS)
    elif wanted.success is False:
        conditions.append(f"NOT ({_SUCCESS})")
    if wanted.start_time is not None:
        conditions.append("create_time >= ?")
        parameters.append(to_micros(wanted.start_time))
    if wanted.end_time is not None:
        conditions.append("create_time < ?")
        parameters.append(to_micros(wanted.end_time))
    return conditions, parameters


def _statements(script: str) -> Iterable[str]:
    """Splits a migration into statements (sqlite3 refuses several in one ``execute``)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statement = pending.strip()
            pending = ""
            if statement.rstrip(";").strip():
                yield statement
    if pending.strip() and not all(line.strip().startswith("--") or not line.strip() for line in pending.splitlines()):
        raise RuntimeError("a migration ends with an incomplete SQL statement")


def _prepare_file(path: Path) -> None:
    """Creates the database's directory (0700) and file (0600) unless they exist."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning("database file %s is accessible to other users (mode %o); it should be 0600", path, mode)
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class SqliteStore(CommonReads):
    """The Store on one SQLite file. ``open`` before use; ``close`` when done."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        rollup_interval: float = DEFAULT_ROLLUP_INTERVAL,
    ) -> None:
        """``rollup_interval`` is how often the background job rolls new log rows up (0: never; call
        ``roll_up_logs``). Analytics answers are exact either way: rows not rolled up are read raw."""
        self._path = Path(path)
        self._busy_timeout = busy_timeout
        self._rollup_interval = rollup_interval
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._rollup_task: asyncio.Task[None] | None = None

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    async def open(self) -> None:
        if self._writer is not None:
            return
        _prepare_file(self._path)
        try:
            self._writer = await self._connect()
            mode = await self._enter_wal(self._writer)
            if mode is None or str(mode[0]).lower() != "wal":
                raise RuntimeError(f"SQLite refused WAL mode for {self._path}")
            await self._migrate(self._writer, load_migrations("sqlite"))
            self._reader = await self._connect()
            await self._reader.execute("PRAGMA query_only=ON")
        except BaseException:
            await self.close()
            raise
        if self._rollup_interval > 0:
            self._rollup_task = asyncio.create_task(self._roll_up_continuously(), name=f"rollups:{self._path.name}")

    async def _enter_wal(self, connection: aiosqlite.Connection) -> Any:
        """Switches the file to WAL and returns the mode SQLite reports. Switching a new file needs it alone
        for a moment, and SQLite answers "database is locked" at once (its busy handler is not asked) when
        another process opens the same new file then, so that answer is retried up to the busy timeout."""
        give_up = asyncio.get_running_loop().time() + self._busy_timeout
        while True:
            try:
                async with connection.execute("PRAGMA journal_mode=WAL") as cursor:
                    return await cursor.fetchone()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or asyncio.get_running_loop().time() >= give_up:
                    raise
            await asyncio.sleep(0.005)

    async def _connect(self) -> aiosqlite.Connection:
        # isolation_level=None: transactions are ours (BEGIN IMMEDIATE ... COMMIT), never implicit.
        connection = await aiosqlite.connect(self._path, timeout=self._busy_timeout, isolation_level=None)
        await connection.execute(f"PRAGMA busy_timeout={int(self._busy_timeout * 1000)}")
        await connection.execute("PRAGMA synchronous=NORMAL")
        await connection.execute("PRAGMA foreign_keys=ON")
        return connection

    async def _migrate(self, connection: aiosqlite.Connection, migrations: Sequence[Migration]) -> None:
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, apply_time INTEGER NOT NULL)"
        )
        for migration in migrations:
            # Re-read under the write lock so two processes opening one file apply each step once.
            await connection.execute("BEGIN IMMEDIATE")
            try:
                async with connection.execute("SELECT max(version) FROM schema_migrations") as cursor:
                    row = await cursor.fetchone()
                applied = int(row[0]) if row is not None and row[0] is not None else 0
                check_not_newer(applied, len(migrations))
                if migration.version <= applied:
                    await connection.execute("ROLLBACK")
                    continue
                for statement in _statements(migration.sql):
                    await connection.execute(statement)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, apply_time) VALUES (?, ?, ?)",
                    (migration.version, migration.name, to_micros(datetime.now(UTC))),
                )
                await connection.execute("COMMIT")
            except BaseException:
                if connection.in_transaction:
                    await connection.execute("ROLLBACK")
                raise
            logger.info("applied schema migration %04d_%s to %s", migration.version, migration.name, self._path)
        if not migrations:
            return
        async with connection.execute("SELECT max(version) FROM schema_migrations") as cursor:
            row = await cursor.fetchone()
        check_not_newer(int(row[0]) if row is not None and row[0] is not None else 0, len(migrations))

    async def close(self) -> None:
        task, self._rollup_task = self._rollup_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer, reader = self._writer, self._reader
        self._writer = self._reader = None
        for connection in (reader, writer):
            if connection is not None:
                await connection.close()

    async def schema_version(self) -> int:
        """The highest migration applied to the file."""
        rows = await self._read("SELECT max(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    # Plumbing.

    def _reader_connection(self) -> aiosqlite.Connection:
        if self._reader is None:
            raise RuntimeError("the store is not open")
        return self._reader

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        if self._writer is None:
            raise RuntimeError("the store is not open")
        connection = self._writer
        async with self._write_lock:
            if connection.in_transaction:  # a cancelled rollback left one behind
                await connection.execute("ROLLBACK")
            await connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:
                    await connection.execute("ROLLBACK")
                raise
            await connection.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read transaction on a connection of its own: every statement in it sees the same
        committed state, and analytics queries run beside each other and beside the reader's."""
        if self._reader is None:
            raise RuntimeError("the store is not open")
        connection = await self._connect()
        try:
            await connection.execute("PRAGMA query_only=ON")
            await connection.execute("BEGIN")
            yield connection
        finally:
            await connection.close()  # ends the read transaction

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        async with self._reader_connection().execute(sql, parameters) as cursor:
            return list(await cursor.fetchall())

    @staticmethod
    async def _fetch(
        connection: aiosqlite.Connection, sql: str, parameters: Sequence[Any] | Mapping[str, Any]
    ) -> list[Row]:
        async with connection.execute(sql, parameters) as cursor:
            return list(await cursor.fetchall())

    # Configs.

    async def create_config(self, record: ConfigRecord) -> ConfigRecord:
        created = to_micros(record.create_time)
        async with self._transaction() as connection:
            if await self._fetch(connection, "SELECT 1 FROM configs WHERE id = ?", (record.id,)):
                raise AlreadyExists(f"config {record.id!r} already exists")
            await self._refuse_taken_name(connection, record.name, record.id)
            await connection.execute(
                "INSERT INTO configs (id, latest_version, first_create_time) VALUES (?, 1, ?)",
                (record.id, created),
            )
            await connection.execute(
                "INSERT INTO config_versions (config_id, version, name, document, sealed_secrets, "
                "create_time) VALUES (?, 1, ?, ?, ?, ?)",
                (record.id, record.name, record.document, record.sealed_secrets, created),
            )
        return config_record((record.id, record.name, 1, record.document, record.sealed_secrets, created, created))

    async def add_config_version(self, record: ConfigRecord) -> ConfigRecord:
        created = to_micros(record.create_time)
        async with self._transaction() as connection:
            rows = await self._fetch(
                connection, "SELECT latest_version, first_create_time FROM configs WHERE id = ?", (record.id,)
            )
            if not rows:
                raise NotFound(f"config {record.id!r} not found")
            version, first_created = rows[0][0] + 1, rows[0][1]
            await self._refuse_taken_name(connection, record.name, record.id)
            await connection.execute(
                "INSERT INTO config_versions (config_id, version, name, document, sealed_secrets, "
                "create_time) VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, version, record.name, record.document, record.sealed_secrets, created),
            )
            await connection.execute("UPDATE configs SET latest_version = ? WHERE id = ?", (version, record.id))
        return config_record(
            (record.id, record.name, version, record.document, record.sealed_secrets, created, first_created)
        )

    async def _refuse_taken_name(self, connection: aiosqlite.Connection, name: str, config_id: str) -> None:
        # Names are what people type (``configs create --name``); two configs answering to one name
        # would make "the sdxl-to-dalle config" ambiguous. Checked in the writing transaction.
        taken = await self._fetch(
            connection,
            "SELECT c.id FROM configs c JOIN config_versions v ON v.config_id = c.id AND v.version = c.latest_version "
            "WHERE v.name = ? AND c.id != ? LIMIT 1",
            (name, config_id),
        )
        if taken:
            raise AlreadyExists(
                f"a config named {name!r} already exists ({taken[0][0]}); "
                "change that one with UpdateConfig, or choose another name",
                param="name",
            )

    async def delete_config(self, config_id: str) -> None:
        async with self._transaction() as connection:
            cursor = await connection.execute("DELETE FROM configs WHERE id = ?", (config_id,))
            if cursor.rowcount == 0:
                raise NotFound(f"config {config_id!r} not found")

    # Virtual keys.

    async def create_virtual_key(self, record: VirtualKeyRecord) -> None:
        async with self._transaction() as connection:
            if await self._fetch(connection, "SELECT 1 FROM virtual_keys WHERE id = ?", (record.id,)):
                raise AlreadyExists(f"virtual key {record.id!r} already exists")
            await connection.execute(
                f"INSERT INTO virtual_keys ({VIRTUAL_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.name,
                    record.provider,
                    record.base_url,
                    record.sealed_secret,
                    to_micros(record.create_time),
                    to_micros(record.rotate_time),
                    *limit_values(record.limits),
                    public_fields_column(record.public_credential_fields),
                ),
            )

    async def update_virtual_key_secret(
        self,
        virtual_key_id: str,
        sealed_secret: bytes,
        rotate_time: datetime,
        public_credential_fields: Mapping[str, str] | None = None,
    ) -> VirtualKeyRecord:
        async with self._transaction() as connection:
            await connection.execute(
                "UPDATE virtual_keys SET sealed_secret = ?, rotate_time = ?, public_credential_fields = ? WHERE id = ?",
                (
                    sealed_secret,
                    to_micros(rotate_time),
                    public_fields_column(public_credential_fields),
                    virtual_key_id,
                ),
            )
            rows = await self._fetch(
                connection, f"SELECT {VIRTUAL_KEY_COLUMNS} FROM virtual_keys WHERE id = ?", (virtual_key_id,)
            )
            if not rows:
                raise NotFound(f"virtual key {virtual_key_id!r} not found")
        return virtual_key_record(rows[0])

    async def delete_virtual_key(self, virtual_key_id: str) -> None:
        async with self._transaction() as connection:
            cursor = await connection.execute("DELETE FROM virtual_keys WHERE id = ?", (virtual_key_id,))
            if cursor.rowcount == 0:
                raise NotFound(f"virtual key {virtual_key_id!r} not found")

    async def replace_virtual_key_sealed_secret(self, virtual_key_id: str, expected: bytes, sealed: bytes) -> bool:
        async with self._transaction() as connection:
            cursor = await connection.execute(
                "UPDATE virtual_keys SET sealed_secret = ? WHERE id = ? AND sealed_secret = ?",
                (sealed, virtual_key_id, expected),
            )
            return cursor.rowcount == 1

    async def replace_config_sealed_secrets(self, config_id: str, version: int, expected: bytes, sealed: bytes) -> bool:
        async with self._transaction() as connection:
            cursor = await connection.execute(
                "UPDATE config_versions SET sealed_secrets = ? "
                "WHERE config_id = ? AND version = ? AND sealed_secrets = ?",
                (sealed, config_id, version, expected),
            )
            return cursor.rowcount == 1

    # Gateway API keys.

    async def create_api_key(self, record: ApiKeyRecord) -> None:
        async with self._transaction() as connection:
            if await self._fetch(connection, "SELECT 1 FROM api_keys WHERE id = ?", (record.id,)):
                raise AlreadyExists(f"API key {record.id!r} already exists")
            if await self._fetch(
                connection,
                "SELECT 1 FROM api_keys WHERE key_hash = ? OR previous_key_hash = ?",
                (record.key_hash, record.key_hash),
            ):
                raise AlreadyExists(f"API key {record.id!r}: a key with the same secret already exists")
            await self._insert_api_key(connection, record)

    async def create_first_api_key(self, record: ApiKeyRecord) -> bool:
        # BEGIN IMMEDIATE takes the database's write lock before the look: another process on the same
        # file (a sibling worker, a second `serve`) waits for it and then finds the key written.
        async with self._transaction() as connection:
            if await self._fetch(connection, "SELECT 1 FROM api_keys LIMIT 1", ()):
                return False
            await self._insert_api_key(connection, record)
        return True

    @staticmethod
    async def _insert_api_key(connection: aiosqlite.Connection, record: ApiKeyRecord) -> None:
        values = api_key_values(record)
        await connection.execute(
            f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ({', '.join(['?'] * len(values))})", values
        )

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        rows = await self._read(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ? OR previous_key_hash = ?", (key_hash, key_hash)
        )
        return api_key_record(rows[0]) if rows else None

    async def list_api_keys(self, page_size: int = 0, page_token: str = "") -> Page[ApiKeyRecord]:
        size = page_size_or_default(page_size)
        after = decode_page_token("api_keys", page_token, (int, str))
        where, parameters = "", []
        if after is not None:
            where = "WHERE create_time > ? OR (create_time = ? AND id > ?)"
            parameters = [after[0], after[0], after[1]]
        rows = await self._read(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys {where} ORDER BY create_time, id LIMIT ?",
            (*parameters, size + 1),
        )
        items = [api_key_record(row) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_page_token("api_keys", (rows[size - 1][5], rows[size - 1][0]))
        return Page(items, token)

    async def revoke_api_key(self, api_key_id: str, when: datetime) -> ApiKeyRecord:
        async with self._transaction() as connection:
            existing = await self._fetch(
                connection, f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", (api_key_id,)
            )
            if existing:
                await self._refuse_removing_the_last_admin(connection, api_key_record(existing[0]), "revoke")
            await connection.execute(
                "UPDATE api_keys SET revoke_time = coalesce(revoke_time, ?) WHERE id = ?",
                (to_micros(when), api_key_id),
            )
            rows = await self._fetch(connection, f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", (api_key_id,))
            if not rows:
                raise NotFound(f"API key {api_key_id!r} not found")
        return api_key_record(rows[0])

    async def rotate_api_key(
        self,
        api_key_id: str,
        key_hash: str,
        display_prefix: str,
        rotate_time: datetime,
        previous_key_expire_time: datetime,
    ) -> ApiKeyRecord:
        async with self._transaction() as connection:
            before = await self._fetch(connection, "SELECT revoke_time FROM api_keys WHERE id = ?", (api_key_id,))
            if not before:
                raise NotFound(f"API key {api_key_id!r} not found")
            if before[0][0] is not None:
                raise FailedPrecondition(
                    f"API key {api_key_id!r} is revoked; a revoked key cannot be rotated", param="id"
                )
            # Every right-hand side reads the row as it was, so the old key_hash moves to previous.
            await connection.execute(
                "UPDATE api_keys SET previous_key_hash = key_hash, previous_key_expire_time = ?, key_hash = ?, "
                "display_prefix = ?, rotate_time = ? WHERE id = ?",
                (to_micros(previous_key_expire_time), key_hash, display_prefix, to_micros(rotate_time), api_key_id),
            )
            rows = await self._fetch(connection, f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", (api_key_id,))
        return api_key_record(rows[0])

    async def delete_api_key(self, api_key_id: str) -> ApiKeyRecord:
        async with self._transaction() as connection:
            rows = await self._fetch(connection, f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?", (api_key_id,))
            if not rows:
                raise NotFound(f"API key {api_key_id!r} not found")
            record = api_key_record(rows[0])
            await self._refuse_removing_the_last_admin(connection, record, "delete")
            await connection.execute("DELETE FROM api_keys WHERE id = ?", (api_key_id,))
        return record

    async def _refuse_removing_the_last_admin(
        self, connection: aiosqlite.Connection, record: ApiKeyRecord, action: str
    ) -> None:
        """Revoking or deleting the last active admin key would leave nobody able to manage the gateway."""
        if record.scope != "admin" or record.revoke_time is not None:
            return
        others = await self._fetch(
            connection,
            "SELECT count(*) FROM api_keys WHERE scope = 'admin' AND revoke_time IS NULL AND id != ?",
            (record.id,),
        )
        if int(others[0][0]) == 0:
            raise FailedPrecondition(
                f"cannot {action} API key {record.id!r}: it is the last active admin key; create another admin "
                "key first",
                param="id",
            )

    # Request logs.

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        if not records:
            return
        rows = [
            (
                record.id,
                record.trace_id,
                to_micros(record.create_time),
                record.status_code,
                record.provider,
                record.model,
                record.caller_key_id,
                record.config_id,
                int(record.fallback_used),
                record.payload,
                record.virtual_key_id,
                record.cost_usd,
            )
            for record in records
        ]
        async with self._transaction() as connection:
            await connection.executemany(
                f"INSERT INTO request_logs ({LOG_COLUMNS}, {_ANALYTICS_COLUMNS}) "
                f"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, {_ANALYTICS_VALUES}) "
                "ON CONFLICT (id) DO NOTHING",
                rows,
            )

    async def list_logs(
        self, log_filter: LogFilter | None = None, page_size: int = 0, page_token: str = ""
    ) -> Page[LogRecord]:
        size = page_size_or_default(page_size)
        after = decode_page_token("request_logs", page_token, (int, str))
        conditions, parameters = _log_conditions(log_filter or LogFilter())
        if after is not None:
            conditions.append("(create_time < ? OR (create_time = ? AND id < ?))")
            parameters.extend((after[0], after[0], after[1]))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._read(
            f"SELECT {LOG_COLUMNS} FROM request_logs {where} ORDER BY create_time DESC, id DESC LIMIT ?",
            (*parameters, size + 1),
        )
        items = [log_record(row) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_page_token("request_logs", (rows[size - 1][2], rows[size - 1][0]))
        return Page(items, token)

    async def prune_logs(self, older_than: datetime | None = None, keep_max: int | None = None) -> int:
        # Deleted in chunks, each its own short transaction, so appends from the request log
        # writer interleave with a large prune instead of waiting for all of it.
        if older_than is not None:
            to_micros(older_than)  # a naive datetime is refused before anything is deleted
        if keep_max is not None and keep_max < 0:
            raise ValueError("keep_max must not be negative")
        deleted = 0
        if older_than is not None:
            deleted += await self._delete_log_chunks(
                "SELECT rowid FROM request_logs WHERE create_time < ? ORDER BY create_time LIMIT ?",
                (to_micros(older_than),),
            )
        if keep_max is not None:
            rows = await self._read(
                "SELECT create_time, id FROM request_logs ORDER BY create_time DESC, id DESC LIMIT 1 OFFSET ?",
                (keep_max,),
            )
            if rows:  # rows[0] is the newest record beyond the cap: it and everything older go
                newest_time, newest_id = rows[0][0], rows[0][1]
                deleted += await self._delete_log_chunks(
                    "SELECT rowid FROM request_logs WHERE create_time < ? OR (create_time = ? AND id <= ?) "
                    "ORDER BY create_time LIMIT ?",
                    (newest_time, newest_time, newest_id),
                )
        return deleted

    async def aggregate_logs(self, query: AnalyticsQuery) -> AnalyticsResult:
        return (await self.aggregate_logs_together([query]))[0]

    async def aggregate_logs_together(self, queries: Sequence[AnalyticsQuery]) -> list[AnalyticsResult]:
        async with self._snapshot() as connection:
            fetch = functools.partial(self._fetch, connection)
            return [await aggregate(query, SQLITE, fetch) for query in queries]

    # Analytics rollups (storage/analytics_rollup.py).

    async def roll_up_logs(self, max_rows: int = ROLLUP_CHUNK) -> int:
        async with self._transaction() as connection:
            rows = await self._fetch(
                connection,
                f"SELECT {ROW_FOR_ROLLUP} FROM request_logs WHERE rolled_up = 0 ORDER BY create_time LIMIT ?",
                (max_rows,),
            )
            if rows:
                await self._merge_cells(connection, cells_of(rows), 1)
                await connection.execute(
                    f"UPDATE request_logs SET rolled_up = 1 WHERE {_ROWIDS}", (json.dumps([row[0] for row in rows]),)
                )
        return len(rows)

    async def _roll_up_continuously(self) -> None:
        while True:
            rolled = 0
            try:
                # Looked for on the reader first: an idle gateway never takes the write lock for this.
                if await self._read("SELECT 1 FROM request_logs WHERE rolled_up = 0 LIMIT 1"):
                    rolled = await self.roll_up_logs()
            except Exception as exc:
                # The answers stay exact without the rollups (the rows are read raw); another process
                # holding the write lock is the usual cause, and the next round gets through.
                logger.warning(
                    "rolling up the request log for analytics failed (next try in %.0f s): %s: %s",
                    self._rollup_interval,
                    type(exc).__name__,
                    exc,
                )
            # A full chunk means a backlog (after an upgrade): go on at once, letting appends in between.
            await asyncio.sleep(0 if rolled == ROLLUP_CHUNK else self._rollup_interval)

    async def _merge_cells(
        self, connection: aiosqlite.Connection, cells: Mapping[CellKey, CellSums], sign: int
    ) -> None:
        """Adds (sign 1) or subtracts (sign -1, pruning) cells to the stored ones; a cell left with no
        requests is deleted."""
        if not cells:
            return
        ids = json.dumps([cell_id(key) for key in cells])
        rows = await self._fetch(connection, SELECT_CELLS, (ids,))
        stored = {row[0]: CellSums.from_stored(row[1:-1], row[-1]) for row in rows}
        upserts, deletes = merged_cells(cells, stored, sign)
        if upserts:
            await connection.executemany(UPSERT_CELL, upserts)
        if deletes:
            await connection.executemany(DELETE_CELL, [(identity,) for identity in deletes])

    async def _delete_log_chunks(self, select_rowids: str, parameters: tuple[Any, ...]) -> int:
        deleted = 0
        while True:
            async with self._transaction() as connection:
                rowids = await self._fetch(connection, select_rowids, (*parameters, _PRUNE_CHUNK))
                chunk = json.dumps([row[0] for row in rowids])
                # The rows already in the rollups leave them too, so analytics never count pruned requests.
                rolled = await self._fetch(
                    connection, f"SELECT {ROW_FOR_ROLLUP} FROM request_logs WHERE {_ROWIDS} AND rolled_up = 1", (chunk,)
                )
                await self._merge_cells(connection, cells_of(rolled), -1)
                cursor = await connection.execute(f"DELETE FROM request_logs WHERE {_ROWIDS}", (chunk,))
                count = cursor.rowcount
            deleted += count
            if count < _PRUNE_CHUNK:
                return deleted
            await asyncio.sleep(0)  # let queued writes take the lock between chunks
