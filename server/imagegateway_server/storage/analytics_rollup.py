"""Hourly rollups of the request log: what they hold, how a range is split between them and the raw
log, the latency histogram, and the SQL both sides share.

A rollup cell is one hour and one combination of every column analytics groups or filters by
(provider, model, config id, caller key, first and last target, status code, fallback flag, error
kind and the request's whole metadata object). It holds plain sums (requests, cache hits, images,
upstream calls, failed calls, retries, cost in integer nano-USD) and a latency histogram. Because
every dimension is a column of the cell, any grouping or filter over cells gives exactly what the
same grouping over the raw rows gives: a generate key's filter on ``caller_key_id`` keeps every
other key's cells out, grouping by metadata included.

The store marks a request-log row ``rolled_up`` in the transaction that adds it to its cell, so an
answer is rollup cells for the whole hours of the range plus the raw rows that are not rolled up
yet, plus the raw rows of the partial hours at either end: never a row twice, never one missed, and
no lag at all (the rollup job's own lag, bounded by its interval, only moves work between the two).
Pruning the log subtracts the pruned rows from their cells, so the rollups never say more than the log.

Cost is summed as integer nano-USD (each request's cost rounded to 1e-9 USD) on both sides, so any
split of a sum adds up to the same number, bit for bit. Latency percentiles over rollups come from
a log-linear histogram: exact below 64 ms, and within 1/64 (1.6 %) of the exact nearest-rank value
above, in 32 bins per doubling. Exact percentiles would need every latency, which is what makes a
million-row range slow; ranges the rollups do not serve (shorter than about a day, or filtered by
trace id) stay exact.

The SQL here is SQLite's; a backend with other JSON functions replaces ``json_*`` expressions only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imagegateway_server.storage.analytics import INLINE_GROUP, AnalyticsQuery, GroupBy
from imagegateway_server.storage.latency_histogram import latency_bin
from imagegateway_server.storage.records import LogFilter

ROLLUP_SPAN = timedelta(hours=1)
_MICROS_PER_SPAN = 3_600_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --- which part of a range the rollups answer ------------------------------------------------------


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True, slots=True)
class RangePlan:
    """Where a query's numbers come from, in microseconds since the epoch: rollup cells for
    ``[rollup_start, rollup_end)`` (None: no rollups) plus the raw rows of ``raw_spans`` plus the
    raw rows inside the rollup span that are not rolled up yet."""

    raw_spans: tuple[tuple[int, int], ...]
    rollup: tuple[int, int] | None


def plan_range(query: AnalyticsQuery) -> RangePlan:
    """Rollups serve the whole hours of the range when the query's buckets are whole hours aligned to
    the hour (every bucket then holds whole cells) and no filter needs a column cells lack (trace id)."""
    start, end = _micros(query.start), _micros(query.end)
    whole_hours = query.bucket_size % ROLLUP_SPAN == timedelta(0)
    if not whole_hours or query.log_filter.trace_id is not None:
        return RangePlan(((start, end),), None)
    first = -(-start // _MICROS_PER_SPAN) * _MICROS_PER_SPAN
    last = end // _MICROS_PER_SPAN * _MICROS_PER_SPAN
    if first >= last:
        return RangePlan(((start, end),), None)
    edges = tuple(span for span in ((start, first), (last, end)) if span[0] < span[1])
    return RangePlan(edges, (first, last))


# --- the cells --------------------------------------------------------------------------------------

# The columns that make a cell, in the table's unique-index order; all but the first are also
# request_logs columns (metadata is the payload's metadata object, canonical JSON).
CELL_KEY = (
    "bucket_start",
    "provider",
    "model",
    "config_id",
    "caller_key_id",
    "first_target",
    "last_target",
    "status_code",
    "fallback_used",
    "error_kind",
    "metadata",
)
CELL_SUMS = ("requests", "cache_hits", "images", "attempts", "failed_attempts", "retries", "cost_nanos")

# One request-log row as the rollup job reads it: its rowid, the cell key (bucket_start is the
# create time, floored to the hour in Python), the sums and the latency. Shared by roll-up and prune.
COST_NANOS = "CAST(round(cost_usd * 1000000000) AS INTEGER)"
ROW_FOR_ROLLUP = (
    "rowid, create_time, provider, model, config_id, caller_key_id, first_target, last_target, status_code, "
    "fallback_used, error_kind, coalesce(json_extract(payload, '$.metadata'), '{}'), "
    f"cache_hit, image_count, attempt_count, failed_attempt_count, retry_count, {COST_NANOS}, latency_ms"
)

CellKey = tuple[Any, ...]


@dataclasses.dataclass(slots=True)
class CellSums:
    """The sums of one cell; ``latency_bins`` maps a histogram bin to requests."""

    requests: int = 0
    cache_hits: int = 0
    images: int = 0
    attempts: int = 0
    failed_attempts: int = 0
    retries: int = 0
    cost_nanos: int = 0
    latency_bins: dict[int, int] = dataclasses.field(default_factory=dict)

    def add(self, other: CellSums, sign: int = 1) -> None:
        self.requests += sign * other.requests
        self.cache_hits += sign * other.cache_hits
        self.images += sign * other.images
        self.attempts += sign * other.attempts
        self.failed_attempts += sign * other.failed_attempts
        self.retries += sign * other.retries
        self.cost_nanos += sign * other.cost_nanos
        for bin_index, count in other.latency_bins.items():
            left = self.latency_bins.get(bin_index, 0) + sign * count
            if left:
                self.latency_bins[bin_index] = left
            else:
                self.latency_bins.pop(bin_index, None)

    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, name) for name in CELL_SUMS)

    def bins_json(self) -> str:
        return json.dumps({str(b): n for b, n in sorted(self.latency_bins.items())}, separators=(",", ":"))

    @classmethod
    def from_stored(cls, values: Sequence[int], bins_json: str) -> CellSums:
        bins = {int(b): int(n) for b, n in json.loads(bins_json).items()}
        requests, cache_hits, images, attempts, failed_attempts, retries, cost_nanos = (int(v) for v in values)
        return cls(requests, cache_hits, images, attempts, failed_attempts, retries, cost_nanos, bins)


def canonical_metadata(text: str) -> str:
    """The metadata object as sorted, compact JSON, so the same metadata always makes the same cell."""
    try:
        value = json.loads(text)
    except ValueError:
        value = {}
    if not isinstance(value, dict):
        value = {}
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cells_of(rows: Iterable[Sequence[Any]]) -> dict[CellKey, CellSums]:
    """The cells that rows read with ``ROW_FOR_ROLLUP`` add up to."""
    cells: dict[CellKey, CellSums] = {}
    for row in rows:
        hour = int(row[1]) // _MICROS_PER_SPAN * _MICROS_PER_SPAN
        key: CellKey = (hour, *row[2:11], canonical_metadata(row[11]))
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = CellSums()
        cache_hit, attempts = int(row[12]), int(row[14])
        cell.requests += 1
        cell.cache_hits += cache_hit
        cell.images += int(row[13])
        cell.attempts += attempts
        cell.failed_attempts += int(row[15])
        cell.retries += int(row[16])
        cell.cost_nanos += int(row[17])
        if attempts > 0 and not cache_hit:
            bin_index = latency_bin(int(row[18]))
            cell.latency_bins[bin_index] = cell.latency_bins.get(bin_index, 0) + 1
    return cells


_KEY_MATCH = " AND ".join(f"{column} = ?" for column in CELL_KEY)
SELECT_CELL = f"SELECT {', '.join(CELL_SUMS)}, latency_bins FROM request_log_rollups WHERE {_KEY_MATCH}"
DELETE_CELL = f"DELETE FROM request_log_rollups WHERE {_KEY_MATCH}"
UPSERT_CELL = (
    f"INSERT INTO request_log_rollups ({', '.join((*CELL_KEY, *CELL_SUMS))}, latency_bins) "
    f"VALUES ({', '.join('?' for _ in range(len(CELL_KEY) + len(CELL_SUMS) + 1))}) "
    f"ON CONFLICT ({', '.join(CELL_KEY)}) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in (*CELL_SUMS, "latency_bins"))
)


# --- the query over rollups and raw rows ------------------------------------------------------------

_SUCCESS = "status_code BETWEEN 200 AND 299"


def filter_conditions(wanted: LogFilter) -> tuple[list[str], dict[str, Any]]:
    """A log filter's conditions (its time fields aside) as named-parameter SQL; each column exists
    in request_logs and in request_log_rollups alike."""
    conditions: list[str] = []
    parameters: dict[str, Any] = {}
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
            conditions.append(f"{column} = :f_{column}")
            parameters[f"f_{column}"] = value
    if wanted.success is True:
        conditions.append(_SUCCESS)
    elif wanted.success is False:
        conditions.append(f"NOT ({_SUCCESS})")
    return conditions, parameters


def _group(query: AnalyticsQuery, metadata_column: str) -> str:
    """A row's group; ``metadata_column`` is the JSON the metadata key is looked up in."""
    if query.group_by == GroupBy.METADATA:
        # The key is checked against METADATA_KEY_PATTERN (no quote reaches the path) and bound.
        return f"coalesce(json_extract({metadata_column}, :metadata_path), '')"
    return {
        GroupBy.PROVIDER: "provider",
        GroupBy.MODEL: "model",
        GroupBy.CONFIG: f"CASE config_id WHEN '' THEN '{INLINE_GROUP}' ELSE config_id END",
        GroupBy.API_KEY: "caller_key_id",
        GroupBy.TARGET: "last_target",
    }[query.group_by]


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsSql:
    """The two statements of one analytics query and their named parameters.

    ``counts`` yields (group, bucket, failed request's error kind or NULL, fallback's first target or
    NULL, its serving target or NULL, requests, successes, fallbacks, attempts, failed attempts,
    retries, cache hits, images, cost in nano-USD). ``raw_latencies`` yields (group, bucket,
    latency) of raw rows; ``binned_latencies`` (group, bucket, bin, requests) of rollup cells, or is
    empty when the plan uses no rollups.
    """

    counts: str
    raw_latencies: str
    binned_latencies: str
    parameters: dict[str, Any]


def analytics_sql(query: AnalyticsQuery, plan: RangePlan, first_bucket_start: datetime) -> AnalyticsSql:
    """The SQL answering ``query`` from the sources ``plan`` names."""
    conditions, parameters = filter_conditions(query.log_filter)
    parameters.update(
        first_bucket=_micros(first_bucket_start), bucket_size=query.bucket_size // timedelta(microseconds=1)
    )
    if query.group_by == GroupBy.METADATA:
        parameters["metadata_path"] = f'$."{query.metadata_key}"'
        parameters["payload_metadata_path"] = f'$.metadata."{query.metadata_key}"'
    filters = "".join(f" AND {condition}" for condition in conditions)

    raw_group = _group(query, "payload").replace(":metadata_path", ":payload_metadata_path")
    raw_wheres: list[str] = []
    for index, (low, high) in enumerate(plan.raw_spans):
        parameters[f"raw_low_{index}"], parameters[f"raw_high_{index}"] = low, high
        raw_wheres.append(f"create_time >= :raw_low_{index} AND create_time < :raw_high_{index}")
    if plan.rollup is not None:
        parameters["rollup_low"], parameters["rollup_high"] = plan.rollup
        # Rows written since the rollup job last ran; the partial index on rolled_up = 0 finds them.
        raw_wheres.append("rolled_up = 0 AND create_time >= :rollup_low AND create_time < :rollup_high")
    raw_bucket = "(create_time - :first_bucket) / :bucket_size"

    raw_counts = [
        f"SELECT {raw_group} AS g, {raw_bucket} AS b, status_code, error_kind, fallback_used, first_target, "
        f"last_target, 1 AS requests, attempt_count AS attempts, failed_attempt_count AS failed_attempts, "
        f"retry_count AS retries, cache_hit AS cache_hits, image_count AS images, {COST_NANOS} AS cost_nanos "
        f"FROM request_logs WHERE {where}{filters}"
        for where in raw_wheres
    ]
    raw_latencies = " UNION ALL ".join(
        f"SELECT {raw_group}, {raw_bucket}, latency_ms FROM request_logs "
        f"WHERE {where}{filters} AND attempt_count > 0 AND cache_hit = 0"
        for where in raw_wheres
    )
    binned_latencies = ""
    sources = raw_counts
    if plan.rollup is not None:
        rollup_group = _group(query, "metadata")
        rollup_bucket = "(bucket_start - :first_bucket) / :bucket_size"
        rollup_where = f"bucket_start >= :rollup_low AND bucket_start < :rollup_high{filters}"
        sources = [
            *raw_counts,
            f"SELECT {rollup_group} AS g, {rollup_bucket} AS b, status_code, error_kind, fallback_used, "
            "first_target, last_target, requests, attempts, failed_attempts, retries, cache_hits, images, cost_nanos "
            f"FROM request_log_rollups WHERE {rollup_where}",
        ]
        binned_latencies = (
            f"SELECT {rollup_group} AS g, {rollup_bucket} AS b, CAST(bins.key AS INTEGER) AS bin, sum(bins.value) "
            f"FROM request_log_rollups, json_each(request_log_rollups.latency_bins) AS bins WHERE {rollup_where} "
            "GROUP BY g, b, bin"
        )
    counts = (
        f"SELECT g, b, CASE WHEN {_SUCCESS} THEN NULL ELSE error_kind END AS kind, "
        "CASE WHEN fallback_used = 1 THEN first_target END AS from_target, "
        "CASE WHEN fallback_used = 1 THEN last_target END AS to_target, "
        f"sum(requests), sum(CASE WHEN {_SUCCESS} THEN requests ELSE 0 END), sum(fallback_used * requests), "
        "sum(attempts), sum(failed_attempts), sum(retries), sum(cache_hits), sum(images), sum(cost_nanos) "
        f"FROM ({' UNION ALL '.join(sources)}) GROUP BY g, b, kind, from_target, to_target"
    )
    return AnalyticsSql(counts, raw_latencies, binned_latencies, parameters)
