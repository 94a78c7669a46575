"""Stored rows to records and back, the same for every backend: times as microseconds since the epoch
(UTC), the column lists the stores select, and each table's row turned into its record.

Both schemas keep the same columns in the same order (docs/postgresql.md), so one mapping serves
SQLite's rows and PostgreSQL's; where a driver hands over another type for the same value
(PostgreSQL's ``memoryview`` for BYTEA, ``bool`` for BOOLEAN), the mapping reads both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imagegateway_server.domain.limits import Limits
from imagegateway_server.storage.records import ApiKeyRecord, ConfigRecord, LogRecord, VirtualKeyRecord

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# The columns each mapping below reads, in its order (configs joined as c, their versions as v).
CONFIG_COLUMNS = "c.id, v.name, v.version, v.document, v.sealed_secrets, v.create_time, c.first_create_time"
LIMIT_COLUMNS = "limit_requests_per_minute, limit_usd_per_day, limit_usd_per_month"
VIRTUAL_KEY_COLUMNS = (
    f"id, name, provider, base_url, sealed_secret, create_time, rotate_time, {LIMIT_COLUMNS}, public_credential_fields"
)
API_KEY_COLUMNS = (
    f"id, name, scope, key_hash, display_prefix, create_time, revoke_time, {LIMIT_COLUMNS}, "
    "rotate_time, previous_key_hash, previous_key_expire_time"
)
LOG_COLUMNS = (
    "id, trace_id, create_time, status_code, provider, model, caller_key_id, config_id, "
    "fallback_used, payload, virtual_key_id, cost_usd"
)

Row = Sequence[Any]


def to_micros(when: datetime) -> int:
    """A timezone-aware time as stored; a naive one is a ValueError."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError("the store takes timezone-aware datetimes, got a naive one")
    return (when - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> datetime:
    return _EPOCH + micros * _MICROSECOND


def optional_micros(when: datetime | None) -> int | None:
    return None if when is None else to_micros(when)


def optional_time(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def public_fields_column(fields: Mapping[str, str] | None) -> str | None:
    """A virtual key's public credential fields as stored (sorted JSON), or NULL."""
    return None if fields is None else json.dumps(dict(fields), sort_keys=True)


def limit_values(limits: Limits) -> tuple[int, float, float]:
    """A key's limits as LIMIT_COLUMNS store them."""
    return limits.requests_per_minute, limits.usd_per_day, limits.usd_per_month


def config_record(row: Row) -> ConfigRecord:
    """A row of CONFIG_COLUMNS."""
    return ConfigRecord(
        id=row[0],
        name=row[1],
        version=row[2],
        document=row[3],
        sealed_secrets=_bytes(row[4]),
        create_time=from_micros(row[5]),
        first_create_time=from_micros(row[6]),
    )


def virtual_key_record(row: Row) -> VirtualKeyRecord:
    """A row of VIRTUAL_KEY_COLUMNS."""
    return VirtualKeyRecord(
        id=row[0],
        name=row[1],
        provider=row[2],
        base_url=row[3],
        sealed_secret=bytes(row[4]),
        create_time=from_micros(row[5]),
        rotate_time=from_micros(row[6]),
        limits=Limits(row[7], row[8], row[9]),
        public_credential_fields=None if row[10] is None else json.loads(row[10]),
    )


def api_key_record(row: Row) -> ApiKeyRecord:
    """A row of API_KEY_COLUMNS."""
    return ApiKeyRecord(
        id=row[0],
        name=row[1],
        scope=row[2],
        key_hash=row[3],
        display_prefix=row[4],
        create_time=from_micros(row[5]),
        revoke_time=optional_time(row[6]),
        limits=Limits(row[7], row[8], row[9]),
        rotate_time=optional_time(row[10]),
        previous_key_hash=row[11],
        previous_key_expire_time=optional_time(row[12]),
    )


def api_key_values(record: ApiKeyRecord) -> tuple[Any, ...]:
    """The values of API_KEY_COLUMNS for ``record``, in their order (both stores' inserts)."""
    return (
        record.id,
        record.name,
        record.scope,
        record.key_hash,
        record.display_prefix,
        to_micros(record.create_time),
        optional_micros(record.revoke_time),
        *limit_values(record.limits),
        optional_micros(record.rotate_time),
        record.previous_key_hash,
        optional_micros(record.previous_key_expire_time),
    )


def log_record(row: Row) -> LogRecord:
    """A row of LOG_COLUMNS."""
    return LogRecord(
        id=row[0],
        trace_id=row[1],
        create_time=from_micros(row[2]),
        status_code=row[3],
        provider=row[4],
        model=row[5],
        caller_key_id=row[6],
        config_id=row[7],
        fallback_used=bool(row[8]),
        payload=row[9],
        virtual_key_id=row[10],
        cost_usd=row[11],
    )
