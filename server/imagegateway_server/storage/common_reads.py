"""The store reads whose SQL is the same on SQLite and PostgreSQL but for the parameter marker.

Both stores inherit ``CommonReads`` and say how they mark a parameter (``?`` for sqlite3, ``%s`` for
psycopg) and how they run one read; the reads themselves (a config or its versions, virtual keys, a
log record, spend totals) are written once here, with ``?`` markers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from imagegateway_server.domain.errors import NotFound
from imagegateway_server.storage.paging import decode_page_token, encode_page_token, page_size_or_default
from imagegateway_server.storage.records import ConfigRecord, LogRecord, Page, SpendTotals, VirtualKeyRecord
from imagegateway_server.storage.rows import (
    CONFIG_COLUMNS,
    LOG_COLUMNS,
    VIRTUAL_KEY_COLUMNS,
    config_record,
    log_record,
    to_micros,
    virtual_key_record,
)


class CommonReads:
    """Reads both stores share; a store sets ``PARAMETER_MARKER`` and implements ``_read``."""

    PARAMETER_MARKER = "?"

    async def _read(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    async def _common(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """``_read`` of SQL written with ``?`` markers, in this store's spelling."""
        if self.PARAMETER_MARKER != "?":
            sql = sql.replace("?", self.PARAMETER_MARKER)
        return await self._read(sql, parameters)

    async def get_config(self, config_id: str, version: int | None = None) -> ConfigRecord:
        select = f"SELECT {CONFIG_COLUMNS} FROM configs c JOIN config_versions v ON v.config_id = c.id "
        if version is None:
            rows = await self._common(select + "AND v.version = c.latest_version WHERE c.id = ?", (config_id,))
            if not rows:
                raise NotFound(f"config {config_id!r} not found")
            return config_record(rows[0])
        rows = await self._common(select + "WHERE c.id = ? AND v.version = ?", (config_id, version))
        if rows:
            return config_record(rows[0])
        if await self._common("SELECT 1 FROM configs WHERE id = ?", (config_id,)):
            raise NotFound(f"config {config_id!r} has no version {version}")
        raise NotFound(f"config {config_id!r} not found")

    async def list_configs(self, page_size: int = 0, page_token: str = "") -> Page[ConfigRecord]:
        size = page_size_or_default(page_size)
        after = decode_page_token("configs", page_token, (str,))
        rows = await self._common(
            f"SELECT {CONFIG_COLUMNS} FROM configs c JOIN config_versions v "
            "ON v.config_id = c.id AND v.version = c.latest_version "
            "WHERE c.id > ? ORDER BY c.id LIMIT ?",
            ("" if after is None else after[0], size + 1),
        )
        items = [config_record(row) for row in rows[:size]]
        token = encode_page_token("configs", (items[-1].id,)) if len(rows) > size else ""
        return Page(items, token)

    async def all_config_versions_sealed(self) -> list[ConfigRecord]:
        rows = await self._common(
            f"SELECT {CONFIG_COLUMNS} FROM configs c JOIN config_versions v ON v.config_id = c.id "
            "WHERE v.sealed_secrets IS NOT NULL ORDER BY c.id, v.version"
        )
        return [config_record(row) for row in rows]

    async def get_virtual_key(self, virtual_key_id: str) -> VirtualKeyRecord:
        rows = await self._common(f"SELECT {VIRTUAL_KEY_COLUMNS} FROM virtual_keys WHERE id = ?", (virtual_key_id,))
        if not rows:
            raise NotFound(f"virtual key {virtual_key_id!r} not found")
        return virtual_key_record(rows[0])

    async def list_virtual_keys(self, page_size: int = 0, page_token: str = "") -> Page[VirtualKeyRecord]:
        size = page_size_or_default(page_size)
        after = decode_page_token("virtual_keys", page_token, (str,))
        rows = await self._common(
            f"SELECT {VIRTUAL_KEY_COLUMNS} FROM virtual_keys WHERE id > ? ORDER BY id LIMIT ?",
            ("" if after is None else after[0], size + 1),
        )
        items = [virtual_key_record(row) for row in rows[:size]]
        token = encode_page_token("virtual_keys", (items[-1].id,)) if len(rows) > size else ""
        return Page(items, token)

    async def all_virtual_keys_sealed(self) -> list[VirtualKeyRecord]:
        rows = await self._common(f"SELECT {VIRTUAL_KEY_COLUMNS} FROM virtual_keys ORDER BY id")
        return [virtual_key_record(row) for row in rows]

    async def count_api_keys(self) -> int:
        rows = await self._common("SELECT count(*) FROM api_keys")
        return int(rows[0][0])

    async def get_log(self, log_id: str) -> LogRecord:
        rows = await self._common(f"SELECT {LOG_COLUMNS} FROM request_logs WHERE id = ?", (log_id,))
        if not rows:
            raise NotFound(f"request log {log_id!r} not found")
        return log_record(rows[0])

    async def spend_since(self, since: datetime) -> SpendTotals:
        start = to_micros(since)
        by_caller = await self._common(
            "SELECT caller_key_id, sum(cost_usd) FROM request_logs WHERE create_time >= ? AND cost_usd > 0 "
            "GROUP BY caller_key_id",
            (start,),
        )
        by_virtual_key = await self._common(
            "SELECT virtual_key_id, sum(cost_usd) FROM request_logs WHERE create_time >= ? AND cost_usd > 0 "
            "AND virtual_key_id != '' GROUP BY virtual_key_id",
            (start,),
        )
        return SpendTotals(
            {row[0]: float(row[1]) for row in by_caller}, {row[0]: float(row[1]) for row in by_virtual_key}
        )
