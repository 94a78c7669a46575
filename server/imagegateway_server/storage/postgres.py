"""The shared store: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Replicas behind a load balancer share one database. The schema is SQLite's, column for column
(``migrations/postgresql/`` mirrors ``migrations/sqlite/`` step for step), times are BIGINT
microseconds as there, so page tokens and analytics numbers are the same on both backends.

* Migrations run at ``open`` on a connection of their own, one transaction per step, each under a
  transaction-scoped advisory lock: replicas starting together apply each step once, and nothing
  holds a session lock that a transaction-pooling pgbouncer could strand.
* Writes that check an invariant across rows (a config name is unique among latest versions, the
  last admin key stays) serialise on an advisory lock, since READ COMMITTED would let two pass.
* ``append_logs`` COPYs a batch straight into ``request_logs``, its analytics columns computed
  from the payload by the writer (``log_columns.py``), so the shared server does no JSON work per
  row; a batch holding ids already stored (a retry) goes through a temporary table instead.
* When the database cannot be reached, every call fails at once with ``StoreUnavailable`` naming
  the database (never its password) while a background probe waits for it to come back: callers
  serve from their caches instead of each waiting on a connect timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from imagegateway_server.domain.errors import AlreadyExists, FailedPrecondition, NotFound, StoreUnavailable
from imagegateway_server.storage.analytics import (
    AnalyticsQuery,
    AnalyticsResult,
)
from imagegateway_server.storage.analytics_rollup import (
    DEFAULT_ROLLUP_INTERVAL,
    POSTGRES,
    ROLLUP_CHUNK,
    CellKey,
    CellSums,
    aggregate,
    cell_id,
    cells_of,
    merged_cells,
)
from imagegateway_server.storage.common_reads import CommonReads
from imagegateway_server.storage.database_url import parse_postgres_url
from imagegateway_server.storage.log_columns import log_columns
from imagegateway_server.storage.migrations import check_not_newer, load_migrations
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

Row = tuple[Any, ...]
Connection = psycopg.AsyncConnection[Row]


# Advisory lock keys (any bigint; these spell "imagegw" and a purpose).
_MIGRATION_LOCK = 0x696D6167_65677701
_CONFIG_NAMES_LOCK = 0x696D6167_65677702
_API_KEYS_LOCK = 0x696D6167_65677703
# Held by whoever changes the analytics rollups (the rollup job, pruning), in every process: a row is
# added to its cells once, and never pruned between being read for its cells and being marked.
_ROLLUP_LOCK = 0x696D6167_65677704

_ANALYTICS_COLUMNS = (
    "error_kind, cache_hit, latency_ms, image_count, attempt_count, failed_attempt_count, retry_count, "
    "first_target, last_target"
)
_COPY_LOGS = f"COPY request_logs ({LOG_COLUMNS}, {_ANALYTICS_COLUMNS}) FROM STDIN"
# The slow path, for a batch some of whose ids are stored already (a retry after a write whose
# outcome was unknown): COPY into a temporary table dropped at commit, then move what is new. One
# transaction, so a transaction-pooling pgbouncer keeps it on one server connection.
# Defaults included: columns the COPY leaves out (rolled_up) are NOT NULL.
_BATCH_TABLE = "CREATE TEMPORARY TABLE request_logs_batch (LIKE request_logs INCLUDING DEFAULTS) ON COMMIT DROP"
_COPY_BATCH = f"COPY request_logs_batch ({LOG_COLUMNS}, {_ANALYTICS_COLUMNS}) FROM STDIN"
_MOVE_BATCH = (
    f"INSERT INTO request_logs ({LOG_COLUMNS}, {_ANALYTICS_COLUMNS}) "
    f"SELECT {LOG_COLUMNS}, {_ANALYTICS_COLUMNS} FROM request_logs_batch ON CONFLICT (id) DO NOTHING"
)
_SUCCESS = "status_code BETWEEN 200 AND 299"
# Request-log rows deleted per transaction when pruning.
_PRUNE_CHUNK = 5000
# The rollup statements in PostgreSQL's dialect (storage/analytics_rollup.py).
_ROW_FOR_ROLLUP = POSTGRES.row_for_rollup()
_SELECT_CELLS = POSTGRES.select_cells()
_UPSERT_CELL = POSTGRES.upsert_cell()
_DELETE_CELL = POSTGRES.delete_cell()

# SQLSTATE classes and codes that mean the server is not reachable or not serving, rather than a
# problem with one statement: connection exceptions, and the server shutting down or starting up.
_UNREACHABLE_STATES = ("57P01", "57P02", "57P03")
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_CONNECTIONS = 10
# How often the background probe tries the database while it is unreachable.
PROBE_INTERVAL = 0.5


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
        ("fallback_used", wanted.fallback_used),
    ):
        if value is not None:
            conditions.append(f"{column} = %s")
            parameters.append(value)
    if wanted.success is True:
        conditions.append(_SUCCESS)
    elif wanted.success is False:
        conditions.append(f"NOT ({_SUCCESS})")
    if wanted.start_time is not None:
        conditions.append("create_time >= %s")
        parameters.append(to_micros(wanted.start_time))
    if wanted.end_time is not None:
        conditions.append("create_time < %s")
        parameters.append(to_micros(wanted.end_time))
    return conditions, parameters


def _is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` says the server cannot be reached (as opposed to a failed statement)."""
    if isinstance(error, psycopg.InterfaceError):
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    state = error.sqlstate
    return state is None or state.startswith("08") or state in _UNREACHABLE_STATES


class PostgresStore(CommonReads):
    """The Store on a PostgreSQL database. ``open`` before use; ``close`` when done."""

    PARAMETER_MARKER = "%s"

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        probe_interval: float = PROBE_INTERVAL,
        rollup_interval: float = DEFAULT_ROLLUP_INTERVAL,
    ) -> None:
        """``rollup_interval`` is how often the background job rolls new log rows up (0: never; call
        ``roll_up_logs``). Analytics answers are exact either way: rows not rolled up are read raw."""
        self._url = parse_postgres_url(url)
        self._rollup_interval = rollup_interval
        self._rollup_task: asyncio.Task[None] | None = None
        self._rollup_backlog = False  # a full chunk was rolled up: a backlog is being worked through
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._probe_interval = probe_interval
        self._pool: AsyncConnectionPool[Connection] | None = None
        self._reachable = True
        self._probe: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        """The database as people may see it: ``postgresql://user@host:port/db``, no password."""
        return self._url.name

    @property
    def reachable(self) -> bool:
        """False from a failed connection until the background probe reaches the database again."""
        return self._reachable

    def __repr__(self) -> str:
        return f"PostgresStore({self.name!r})"

    def _connect_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in psycopg.conninfo.conninfo_to_dict(self._url.url):
            options["connect_timeout"] = max(1, round(self._connect_timeout))
        return options

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            await self._migrate()
        except psycopg.OperationalError as error:
            # An OSError: `imagegw serve` reports it in one line, without a traceback.
            raise ConnectionError(f"cannot open the database {self.name}: {self._reason(error)}") from None
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            self._url.url,
            kwargs=self._connect_options(),
            min_size=1,
            max_size=self._max_connections,
            timeout=self._connect_timeout,
            name="imagegw-store",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=self._connect_timeout)
        except psycopg.OperationalError as error:
            await pool.close()
            raise ConnectionError(f"cannot open the database {self.name}: {self._reason(error)}") from None
        self._pool = pool
        self._reachable = True
        if self._rollup_interval > 0:
            self._rollup_task = asyncio.create_task(self._roll_up_continuously(), name=f"rollups:{self.name}")

    async def _migrate(self) -> None:
        migrations = load_migrations("postgresql")
        connection = await psycopg.AsyncConnection.connect(self._url.url, **self._connect_options())
        async with connection:
            for migration in migrations:
                async with connection.transaction():
                    # Held to the end of this step's transaction: another replica waits here, then
                    # reads the version this one recorded and skips the step.
                    await connection.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                    await connection.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, apply_time BIGINT NOT NULL)"
                    )
                    applied = await self._applied_version(connection)
                    check_not_newer(applied, len(migrations))
                    if migration.version <= applied:
                        continue
                    # Without parameters psycopg sends the text as it is, several statements included.
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name, apply_time) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, to_micros(datetime.now(UTC))),
                    )
                logger.info("applied schema migration %04d_%s to %s", migration.version, migration.name, self.name)
            if not migrations:
                return
            check_not_newer(await self._applied_version(connection), len(migrations))

    @staticmethod
    async def _applied_version(connection: Connection) -> int:
        cursor = await connection.execute("SELECT max(version) FROM schema_migrations")
        row = await cursor.fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    async def close(self) -> None:
        pool, probe, rollups = self._pool, self._probe, self._rollup_task
        self._pool = self._probe = self._rollup_task = None
        for task in (probe, rollups):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if pool is not None:
            await pool.close()

    async def schema_version(self) -> int:
        """The highest migration applied to the database."""
        async with self._connection() as connection:
            return await self._applied_version(connection)

    # Reachability.

    def _reason(self, error: BaseException) -> str:
        text = str(error).strip().splitlines()
        return self._url.scrub(text[0] if text else type(error).__name__)

    def _unavailable(self) -> StoreUnavailable:
        return StoreUnavailable(
            f"the database {self.name} is unreachable; the gateway keeps serving from its caches and "
            "queues request logs, but changes cannot be saved until it is back"
        )

    def _lost(self, error: BaseException) -> StoreUnavailable:
        if self._reachable:
            self._reachable = False
            logger.warning("the database %s is unreachable: %s", self.name, self._reason(error))
            if self._probe is None or self._probe.done():
                self._probe = asyncio.create_task(self._wait_until_reachable(), name="store-probe")
        return self._unavailable()

    async def _wait_until_reachable(self) -> None:
        while self._pool is not None:
            await asyncio.sleep(self._probe_interval)
            pool = self._pool
            if pool is None:
                return
            try:
                await pool.check()  # drops the connections the outage broke, before anyone takes one
                async with pool.connection(timeout=self._connect_timeout) as connection:
                    await connection.execute("SELECT 1")
            except Exception as error:
                if not _is_unreachable(error):
                    logger.warning("probing the database %s failed: %s", self.name, self._reason(error))
                continue
            self._reachable = True
            logger.warning("the database %s is reachable again", self.name)
            return

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        if not self._reachable:
            raise self._unavailable()
        try:
            async with self._pool.connection() as connection:
                yield connection
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:
            if _is_unreachable(error):
                raise self._lost(error) from None
            raise

    @contextlib.asynccontextmanager
    async def _transaction(self, *locks: int) -> AsyncIterator[Connection]:
        async with self._connection() as connection, connection.transaction():
            for lock in locks:
                await connection.execute("SELECT pg_advisory_xact_lock(%s)", (lock,))
            yield connection

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Row]:
        async with self._connection() as connection:
            cursor = await connection.execute(sql, parameters)
            return await cursor.fetchall()

    @staticmethod
    async def _fetch(connection: Connection, sql: str, parameters: Sequence[Any] | Mapping[str, Any]) -> list[Row]:
        cursor = await connection.execute(sql, parameters)
        return await cursor.fetchall()

    @staticmethod
    async def _change(connection: Connection, sql: str, parameters: Sequence[Any]) -> int:
        cursor = await connection.execute(sql, parameters)
        return cursor.rowcount

    # Configs.

    async def create_config(self, record: ConfigRecord) -> ConfigRecord:
        created = to_micros(record.create_time)
        async with self._transaction(_CONFIG_NAMES_LOCK) as connection:
            if await self._fetch(connection, "SELECT 1 FROM configs WHERE id = %s", (record.id,)):
                raise AlreadyExists(f"config {record.id!r} already exists")
            await self._refuse_taken_name(connection, record.name, record.id)
            await connection.execute(
                "INSERT INTO configs (id, latest_version, first_create_time) VALUES (%s, 1, %s)", (record.id, created)
            )
            await connection.execute(
                "INSERT INTO config_versions (config_id, version, name, document, sealed_secrets, "
                "create_time) VALUES (%s, 1, %s, %s, %s, %s)",
                (record.id, record.name, record.document, record.sealed_secrets, created),
            )
        return config_record((record.id, record.name, 1, record.document, record.sealed_secrets, created, created))

    async def add_config_version(self, record: ConfigRecord) -> ConfigRecord:
        created = to_micros(record.create_time)
        async with self._transaction(_CONFIG_NAMES_LOCK) as connection:
            rows = await self._fetch(
                connection, "SELECT latest_version, first_create_time FROM configs WHERE id = %s", (record.id,)
            )
            if not rows:
                raise NotFound(f"config {record.id!r} not found")
            version, first_created = rows[0][0] + 1, rows[0][1]
            await self._refuse_taken_name(connection, record.name, record.id)
            await connection.execute(
                "INSERT INTO config_versions (config_id, version, name, document, sealed_secrets, "
                "create_time) VALUES (%s, %s, %s, %s, %s, %s)",
                (record.id, version, record.name, record.document, record.sealed_secrets, created),
            )
            await connection.execute("UPDATE configs SET latest_version = %s WHERE id = %s", (version, record.id))
        return config_record(
            (record.id, record.name, version, record.document, record.sealed_secrets, created, first_created)
        )

    async def _refuse_taken_name(self, connection: Connection, name: str, config_id: str) -> None:
        # As on SQLite: two configs answering to one name would make a name ambiguous. The caller
        # holds the config-names lock, so a concurrent save on another replica cannot slip past.
        taken = await self._fetch(
            connection,
            "SELECT c.id FROM configs c JOIN config_versions v ON v.config_id = c.id AND v.version = c.latest_version "
            "WHERE v.name = %s AND c.id != %s LIMIT 1",
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
            if await self._change(connection, "DELETE FROM configs WHERE id = %s", (config_id,)) == 0:
                raise NotFound(f"config {config_id!r} not found")

    # Virtual keys.

    async def create_virtual_key(self, record: VirtualKeyRecord) -> None:
        try:
            async with self._transaction() as connection:
                await connection.execute(
                    f"INSERT INTO virtual_keys ({VIRTUAL_KEY_COLUMNS}) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
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
        except psycopg.errors.UniqueViolation:
            raise AlreadyExists(f"virtual key {record.id!r} already exists") from None

    async def update_virtual_key_secret(
        self,
        virtual_key_id: str,
        sealed_secret: bytes,
        rotate_time: datetime,
        public_credential_fields: Mapping[str, str] | None = None,
    ) -> VirtualKeyRecord:
        async with self._transaction() as connection:
            rows = await self._fetch(
                connection,
                "UPDATE virtual_keys SET sealed_secret = %s, rotate_time = %s, public_credential_fields = %s "
                f"WHERE id = %s RETURNING {VIRTUAL_KEY_COLUMNS}",
                (
                    sealed_secret,
                    to_micros(rotate_time),
                    public_fields_column(public_credential_fields),
                    virtual_key_id,
                ),
            )
            if not rows:
                raise NotFound(f"virtual key {virtual_key_id!r} not found")
        return virtual_key_record(rows[0])

    async def delete_virtual_key(self, virtual_key_id: str) -> None:
        async with self._transaction() as connection:
            if await self._change(connection, "DELETE FROM virtual_keys WHERE id = %s", (virtual_key_id,)) == 0:
                raise NotFound(f"virtual key {virtual_key_id!r} not found")

    async def replace_virtual_key_sealed_secret(self, virtual_key_id: str, expected: bytes, sealed: bytes) -> bool:
        async with self._transaction() as connection:
            changed = await self._change(
                connection,
                "UPDATE virtual_keys SET sealed_secret = %s WHERE id = %s AND sealed_secret = %s",
                (sealed, virtual_key_id, expected),
            )
        return changed == 1

    async def replace_config_sealed_secrets(self, config_id: str, version: int, expected: bytes, sealed: bytes) -> bool:
        async with self._transaction() as connection:
            changed = await self._change(
                connection,
                "UPDATE config_versions SET sealed_secrets = %s "
                "WHERE config_id = %s AND version = %s AND sealed_secrets = %s",
                (sealed, config_id, version, expected),
            )
        return changed == 1

    # Gateway API keys.

    async def create_api_key(self, record: ApiKeyRecord) -> None:
        async with self._transaction(_API_KEYS_LOCK) as connection:
            if await self._fetch(connection, "SELECT 1 FROM api_keys WHERE id = %s", (record.id,)):
                raise AlreadyExists(f"API key {record.id!r} already exists")
            if await self._fetch(
                connection,
                "SELECT 1 FROM api_keys WHERE key_hash = %s OR previous_key_hash = %s",
                (record.key_hash, record.key_hash),
            ):
                raise AlreadyExists(f"API key {record.id!r}: a key with the same secret already exists")
            await self._insert_api_key(connection, record)

    async def create_first_api_key(self, record: ApiKeyRecord) -> bool:
        # Under the API keys lock: replicas starting together on an empty database queue here, and
        # only the first finds the table empty (READ COMMITTED alone would let each see it empty).
        async with self._transaction(_API_KEYS_LOCK) as connection:
            if await self._fetch(connection, "SELECT 1 FROM api_keys LIMIT 1", ()):
                return False
            await self._insert_api_key(connection, record)
        return True

    @staticmethod
    async def _insert_api_key(connection: Connection, record: ApiKeyRecord) -> None:
        values = api_key_values(record)
        await connection.execute(
            f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ({', '.join(['%s'] * len(values))})", values
        )

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        rows = await self._read(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = %s OR previous_key_hash = %s",
            (key_hash, key_hash),
        )
        return api_key_record(rows[0]) if rows else None

    async def list_api_keys(self, page_size: int = 0, page_token: str = "") -> Page[ApiKeyRecord]:
        size = page_size_or_default(page_size)
        after = decode_page_token("api_keys", page_token, (int, str))
        where, parameters = "", []
        if after is not None:
            where = "WHERE (create_time, id) > (%s, %s)"
            parameters = [after[0], after[1]]
        rows = await self._read(
            f"SELECT {API_KEY_COLUMNS} FROM api_keys {where} ORDER BY create_time, id LIMIT %s",
            (*parameters, size + 1),
        )
        items = [api_key_record(row) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_page_token("api_keys", (rows[size - 1][5], rows[size - 1][0]))
        return Page(items, token)

    async def revoke_api_key(self, api_key_id: str, when: datetime) -> ApiKeyRecord:
        async with self._transaction(_API_KEYS_LOCK) as connection:
            existing = await self._fetch(
                connection, f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = %s", (api_key_id,)
            )
            if not existing:
                raise NotFound(f"API key {api_key_id!r} not found")
            await self._refuse_removing_the_last_admin(connection, api_key_record(existing[0]), "revoke")
            rows = await self._fetch(
                connection,
                "UPDATE api_keys SET revoke_time = coalesce(revoke_time, %s) WHERE id = %s "
                f"RETURNING {API_KEY_COLUMNS}",
                (to_micros(when), api_key_id),
            )
        return api_key_record(rows[0])

    async def rotate_api_key(
        self,
        api_key_id: str,
        key_hash: str,
        display_prefix: str,
        rotate_time: datetime,
        previous_key_expire_time: datetime,
    ) -> ApiKeyRecord:
        async with self._transaction(_API_KEYS_LOCK) as connection:
            before = await self._fetch(connection, "SELECT revoke_time FROM api_keys WHERE id = %s", (api_key_id,))
            if not before:
                raise NotFound(f"API key {api_key_id!r} not found")
            if before[0][0] is not None:
                raise FailedPrecondition(
                    f"API key {api_key_id!r} is revoked; a revoked key cannot be rotated", param="id"
                )
            # Every right-hand side reads the row as it was, so the old key_hash moves to previous.
            rows = await self._fetch(
                connection,
                "UPDATE api_keys SET previous_key_hash = key_hash, previous_key_expire_time = %s, key_hash = %s, "
                f"display_prefix = %s, rotate_time = %s WHERE id = %s RETURNING {API_KEY_COLUMNS}",
                (to_micros(previous_key_expire_time), key_hash, display_prefix, to_micros(rotate_time), api_key_id),
            )
        return api_key_record(rows[0])

    async def delete_api_key(self, api_key_id: str) -> ApiKeyRecord:
        async with self._transaction(_API_KEYS_LOCK) as connection:
            rows = await self._fetch(connection, f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = %s", (api_key_id,))
            if not rows:
                raise NotFound(f"API key {api_key_id!r} not found")
            record = api_key_record(rows[0])
            await self._refuse_removing_the_last_admin(connection, record, "delete")
            await connection.execute("DELETE FROM api_keys WHERE id = %s", (api_key_id,))
        return record

    async def _refuse_removing_the_last_admin(self, connection: Connection, record: ApiKeyRecord, action: str) -> None:
        """Revoking or deleting the last active admin key would leave nobody able to manage the gateway."""
        if record.scope != "admin" or record.revoke_time is not None:
            return
        others = await self._fetch(
            connection,
            "SELECT count(*) FROM api_keys WHERE scope = 'admin' AND revoke_time IS NULL AND id != %s",
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
                record.fallback_used,
                record.payload,
                record.virtual_key_id,
                record.cost_usd,
                *log_columns(record.payload),
            )
            for record in records
        ]
        try:
            async with self._transaction() as connection:
                await self._copy(connection, _COPY_LOGS, rows)
        except psycopg.errors.UniqueViolation:
            async with self._transaction() as connection:
                await connection.execute(_BATCH_TABLE)
                await self._copy(connection, _COPY_BATCH, rows)
                await connection.execute(_MOVE_BATCH)

    @staticmethod
    async def _copy(connection: Connection, statement: str, rows: Sequence[Row]) -> None:
        async with connection.cursor().copy(statement) as copy:
            for row in rows:
                await copy.write_row(row)

    async def list_logs(
        self, log_filter: LogFilter | None = None, page_size: int = 0, page_token: str = ""
    ) -> Page[LogRecord]:
        size = page_size_or_default(page_size)
        after = decode_page_token("request_logs", page_token, (int, str))
        conditions, parameters = _log_conditions(log_filter or LogFilter())
        if after is not None:
            conditions.append("(create_time, id) < (%s, %s)")
            parameters.extend((after[0], after[1]))
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._read(
            f"SELECT {LOG_COLUMNS} FROM request_logs {where} ORDER BY create_time DESC, id DESC LIMIT %s",
            (*parameters, size + 1),
        )
        items = [log_record(row) for row in rows[:size]]
        token = ""
        if len(rows) > size:
            token = encode_page_token("request_logs", (rows[size - 1][2], rows[size - 1][0]))
        return Page(items, token)

    async def prune_logs(self, older_than: datetime | None = None, keep_max: int | None = None) -> int:
        # Deleted in chunks through the time index, each its own short transaction, so appends
        # interleave with a large prune and no transaction holds millions of row locks.
        if older_than is not None:
            to_micros(older_than)  # a naive datetime is refused before anything is deleted
        if keep_max is not None and keep_max < 0:
            raise ValueError("keep_max must not be negative")
        deleted = 0
        if older_than is not None:
            deleted += await self._delete_log_chunks("create_time < %s", (to_micros(older_than),))
        if keep_max is not None:
            rows = await self._read(
                "SELECT create_time, id FROM request_logs ORDER BY create_time DESC, id DESC LIMIT 1 OFFSET %s",
                (keep_max,),
            )
            if rows:  # rows[0] is the newest record beyond the cap: it and everything older go
                deleted += await self._delete_log_chunks("(create_time, id) <= (%s, %s)", (rows[0][0], rows[0][1]))
        return deleted

    async def _delete_log_chunks(self, condition: str, parameters: tuple[Any, ...]) -> int:
        deleted = 0
        while True:
            async with self._transaction(_ROLLUP_LOCK) as connection:
                chunk = await self._fetch(
                    connection,
                    f"SELECT id FROM request_logs WHERE {condition} ORDER BY create_time, id LIMIT %s",
                    (*parameters, _PRUNE_CHUNK),
                )
                ids = [row[0] for row in chunk]
                # The rows already in the rollups leave them too, so analytics never count pruned requests.
                rolled = await self._fetch(
                    connection, f"SELECT {_ROW_FOR_ROLLUP} FROM request_logs WHERE id = ANY(%s) AND rolled_up", (ids,)
                )
                await self._merge_cells(connection, cells_of(rolled), -1)
                count = await self._change(connection, "DELETE FROM request_logs WHERE id = ANY(%s)", (ids,))
            deleted += count
            if len(ids) < _PRUNE_CHUNK:
                return deleted

    # Analytics rollups (storage/analytics_rollup.py).

    async def roll_up_logs(self, max_rows: int = ROLLUP_CHUNK) -> int:
        async with self._transaction(_ROLLUP_LOCK) as connection:
            # Read after taking the lock: rows another process rolled up meanwhile are marked already.
            rows = await self._fetch(
                connection,
                f"SELECT {_ROW_FOR_ROLLUP} FROM request_logs WHERE NOT rolled_up ORDER BY create_time LIMIT %s",
                (max_rows,),
            )
            if rows:
                await self._merge_cells(connection, cells_of(rows), 1)
                await connection.execute(
                    "UPDATE request_logs SET rolled_up = true WHERE id = ANY(%s)", ([row[0] for row in rows],)
                )
        if len(rows) == max_rows:
            self._rollup_backlog = True
        elif self._rollup_backlog:
            self._rollup_backlog = False
            await self._analyze_request_logs()
        return len(rows)

    async def _analyze_request_logs(self) -> None:
        """Refreshes the planner's statistics after a backlog was rolled up. Until autovacuum gets to
        it, the planner still counts most rows as not rolled up and reads a month of the log through
        the time index instead of the few unrolled rows through their partial index (0.3 s instead
        of 0.06 s for 100,000 rows, growing with the log)."""
        try:
            async with self._connection() as connection:
                await connection.execute("ANALYZE request_logs")
        except psycopg.Error as error:  # not the table's owner, say: autovacuum does it later
            logger.info("could not analyze request_logs after rolling up: %s", self._url.scrub(str(error)))

    async def _roll_up_continuously(self) -> None:
        while True:
            rolled = 0
            try:
                # Looked for without the lock first: an idle gateway never takes it for this.
                if await self._read("SELECT 1 FROM request_logs WHERE NOT rolled_up LIMIT 1"):
                    rolled = await self.roll_up_logs()
            except StoreUnavailable:
                pass  # said once by the reachability probe; the rows wait for the database
            except Exception as exc:
                if self._pool is None:
                    return  # closed meanwhile: psycopg may end a cancelled statement with an error of its own
                # The answers stay exact without the rollups (the rows are read raw).
                logger.warning(
                    "rolling up the request log for analytics failed (next try in %.0f s): %s: %s",
                    self._rollup_interval,
                    type(exc).__name__,
                    self._url.scrub(str(exc)),
                )
            # A full chunk means a backlog (after an upgrade): go on at once, letting others in between.
            await asyncio.sleep(0 if rolled == ROLLUP_CHUNK else self._rollup_interval)

    async def _merge_cells(self, connection: Connection, cells: Mapping[CellKey, CellSums], sign: int) -> None:
        """Adds (sign 1) or subtracts (sign -1, pruning) cells to the stored ones; a cell left with no
        requests is deleted."""
        if not cells:
            return
        rows = await self._fetch(connection, _SELECT_CELLS, ([cell_id(key) for key in cells],))
        stored = {row[0]: CellSums.from_stored(row[1:-1], row[-1]) for row in rows}
        upserts, deletes = merged_cells(cells, stored, sign)
        async with connection.cursor() as cursor:
            if upserts:
                await cursor.executemany(_UPSERT_CELL, upserts)
            if deletes:
                await cursor.executemany(_DELETE_CELL, [(identity,) for identity in deletes])

    async def aggregate_logs(self, query: AnalyticsQuery) -> AnalyticsResult:
        return (await self.aggregate_logs_together([query]))[0]

    async def aggregate_logs_together(self, queries: Sequence[AnalyticsQuery]) -> list[AnalyticsResult]:
        async with self._transaction() as connection:
            # One snapshot for every statement of every query: the passes and the answers agree.
            await connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            fetch = functools.partial(self._fetch, connection)
            return [await aggregate(query, POSTGRES, fetch) for query in queries]
