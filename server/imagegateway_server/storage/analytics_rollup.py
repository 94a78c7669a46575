"""Rollups of the request log for analytics over long ranges: what a cell holds, how a range is split
between cells and raw rows, and the SQL both sides share.

A cell is one hour, six hours or one day (UTC) and one combination of every column analytics
groups or filters by: provider, model, config id, caller key, first and last target, status code,
fallback flag and error kind; half of the cells also carry the request's whole metadata object
(for grouping by a metadata key), the other half do not (so every other grouping reads far fewer
cells). A cell holds plain sums (requests, cache hits, images, upstream calls, failed calls,
retries, cost in integer nano-USD) and a latency histogram (``latency_histogram``). Because every
dimension is a column of the cell, any grouping or filter over cells gives what the same grouping
over the raw rows gives: a generate key's filter on ``caller_key_id`` keeps every other key's cells
out, by metadata too.

The store marks a request-log row ``rolled_up`` in the transaction that adds it to its cells, so an
answer is: cells of the largest span (a day, six hours, an hour) the query's buckets are whole
multiples of for the whole spans of the range, smaller cells for the whole hours at its edges, the
raw rows of the partial hours at either end, and the raw rows of the covered hours that are not
rolled up yet. Never a row twice, never one missed, and no lag in the
answer: the job's lag (its interval) only moves work between cells and raw rows. Pruning the log
subtracts the pruned rows from their cells, so the rollups never count what the log no longer has.

Cost is summed as integer nano-USD on both sides, so any split of a sum adds up to the same number
bit for bit. Latency percentiles of an answer that reads cells come from the histogram (exact below
64 ms, else within 1.6 %); exact percentiles need every latency, which is what makes a million-row
range slow. Answers that read no cells (ranges under about a day, or filtered by trace id) stay exact.

The SQL is shared; a ``Dialect`` (SQLITE, POSTGRES) supplies what differs between the backends:
parameter style, JSON lookups, boolean columns, row identity and the partial index's use.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imagegateway_server.storage.analytics import (
    INLINE_GROUP,
    AnalyticsBuilder,
    AnalyticsQuery,
    AnalyticsResult,
    GroupBy,
)
from imagegateway_server.storage.latency_histogram import latency_bin
from imagegateway_server.storage.records import LogFilter

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROS_PER_SECOND = 1_000_000
# Cell sizes in seconds, largest first: a query reads the largest its buckets are multiples of.
SPANS = (86400, 21600, 3600)
# Request-log rows added to the rollups per transaction (a few ms of the write lock each).
ROLLUP_CHUNK = 5000
# How often a store's rollup job looks for new rows: rollups lag the log by about this much (at most 10 s).
DEFAULT_ROLLUP_INTERVAL = 2.0


def _micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


@dataclasses.dataclass(frozen=True, slots=True)
class RangePlan:
    """Where a query's numbers come from, in microseconds since the epoch: cells of ``rollups``
    (span in seconds, start, end), the raw rows of ``raw_spans``, and the raw rows inside the
    rollup spans not rolled up yet; ``with_metadata`` says which half of the cells to read."""

    raw_spans: tuple[tuple[int, int], ...]
    rollups: tuple[tuple[int, int, int], ...]
    with_metadata: bool


def _cover(low: int, high: int, spans: Sequence[int]) -> tuple[list[tuple[int, int, int]], list[tuple[int, int]]]:
    """Splits ``[low, high)`` into whole cells of the largest span that fits, then smaller ones at the
    edges, then raw time."""
    if low >= high:
        return [], []
    if not spans:
        return [], [(low, high)]
    size = spans[0] * _MICROS_PER_SECOND
    first, last = -(-low // size) * size, high // size * size
    if first >= last:
        return _cover(low, high, spans[1:])
    left_cells, left_raw = _cover(low, first, spans[1:])
    right_cells, right_raw = _cover(last, high, spans[1:])
    return [*left_cells, (spans[0], first, last), *right_cells], [*left_raw, *right_raw]


def plan_range(query: AnalyticsQuery) -> RangePlan:
    """Cells of a span serve a query whose buckets are whole multiples of it (bucket starts are then
    cell starts, so each bucket holds whole cells) unless a filter needs a column cells lack (trace id)."""
    start, end = _micros(query.start), _micros(query.end)
    with_metadata = query.group_by == GroupBy.METADATA
    bucket_seconds = query.bucket_size / timedelta(seconds=1)
    spans = [span for span in SPANS if bucket_seconds % span == 0]
    if not spans or query.log_filter.trace_id is not None:
        return RangePlan(((start, end),), (), with_metadata)
    cells, raw = _cover(start, end, spans)
    return RangePlan(tuple(raw), tuple(cells), with_metadata)


# --- the cells --------------------------------------------------------------------------------------

# The columns that make a cell; all from provider on but metadata are request_logs columns too.
CELL_KEY = (
    "span_seconds",
    "with_metadata",
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
STORED_COLUMNS = ("cell_id", *CELL_KEY, *CELL_SUMS, "latency_bins")


@dataclasses.dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the backends' SQL for rollups: parameters, JSON, types, row identity.

    ``row_id`` names a request-log row for marking and pruning; ``metadata_of_payload`` and
    ``metadata_of_cell`` look the query's metadata key up (bound as ``metadata_path`` /
    ``payload_metadata_path`` for SQLite's JSON paths, ``metadata_key`` for PostgreSQL's ``->>``);
    ``as_integer`` turns a boolean column into 0/1; ``unrolled_rows`` is the table expression that
    reads the rows not rolled up yet through their partial index, ``not_rolled_up`` its condition.
    """

    name: str
    row_id: str
    cost_nanos: str
    metadata_object: str
    metadata_of_payload: str
    metadata_of_cell: str
    unrolled_rows: str
    not_rolled_up: str
    integer_cast: str  # appended to a boolean column to read it as 0/1 ("" where it is 0/1 already)

    def parameter(self, name: str) -> str:
        return f":{name}" if self.name == "sqlite" else f"%({name})s"

    def as_integer(self, column: str) -> str:
        return f"{column}{self.integer_cast}"

    def row_for_rollup(self) -> str:
        """One request-log row as the rollup job reads it: its identity, create time, the cell
        columns, the metadata object, the sums and the latency. Shared by roll-up and prune."""
        return (
            f"{self.row_id}, create_time, provider, model, config_id, caller_key_id, first_target, last_target, "
            f"status_code, fallback_used, error_kind, {self.metadata_object}, {self.as_integer('cache_hit')}, "
            f"image_count, attempt_count, failed_attempt_count, retry_count, {self.cost_nanos}, latency_ms"
        )

    def select_cells(self) -> str:
        """The stored cells among ids (one parameter: a JSON array for SQLite, a list for PostgreSQL)."""
        among = "IN (SELECT value FROM json_each(?))" if self.name == "sqlite" else "= ANY(%s)"
        return f"SELECT cell_id, {', '.join(CELL_SUMS)}, latency_bins FROM request_log_rollups WHERE cell_id {among}"

    def delete_cell(self) -> str:
        return f"DELETE FROM request_log_rollups WHERE cell_id = {'?' if self.name == 'sqlite' else '%s'}"

    def upsert_cell(self) -> str:
        """Stores a cell (the values of STORED_COLUMNS, positional), replacing its sums."""
        values = ", ".join(("?" if self.name == "sqlite" else "%s") for _ in STORED_COLUMNS)
        return (
            f"INSERT INTO request_log_rollups ({', '.join(STORED_COLUMNS)}) VALUES ({values}) "
            "ON CONFLICT (cell_id) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in (*CELL_SUMS, "latency_bins"))
        )


SQLITE = Dialect(
    name="sqlite",
    row_id="rowid",
    cost_nanos="CAST(round(cost_usd * 1000000000) AS INTEGER)",
    metadata_object="coalesce(json_extract(payload, '$.metadata'), '{}')",
    metadata_of_payload="json_extract(payload, :payload_metadata_path)",
    metadata_of_cell="json_extract(metadata, :metadata_path)",
    # Named, the partial index holding only them is used even when a filter column has an index of
    # its own (a key's month of rows, say).
    unrolled_rows="request_logs INDEXED BY request_logs_not_rolled_up",
    not_rolled_up="rolled_up = 0",
    integer_cast="",
)
POSTGRES = Dialect(
    name="postgresql",
    row_id="id",
    # Whole nano-dollars, ties away from zero as SQLite's round: the same integers on both backends.
    cost_nanos="round((cost_usd * 1000000000)::numeric)::bigint",
    metadata_object="coalesce((payload::json -> 'metadata')::text, '{}')",
    # ``json`` rather than ``jsonb``: read once per row, the text parse is the cheaper one.
    metadata_of_payload="payload::json -> 'metadata' ->> %(metadata_key)s",
    metadata_of_cell="metadata::json ->> %(metadata_key)s",
    unrolled_rows="request_logs",  # its planner picks the partial index by itself
    not_rolled_up="NOT rolled_up",
    integer_cast="::int",
)

CellKey = tuple[Any, ...]


def cell_id(key: CellKey) -> str:
    """The cell's stored identity: a digest of its key, so finding a cell is one indexed lookup."""
    return hashlib.blake2b(json.dumps(key, separators=(",", ":")).encode(), digest_size=16).hexdigest()


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
    """The cells that rows read with ``Dialect.row_for_rollup`` add up to: each row counts in an hour and a
    day cell, each with and without its metadata."""
    cells: dict[CellKey, CellSums] = {}
    for row in rows:
        cache_hit, attempts = int(row[12]), int(row[14])
        request = CellSums(1, cache_hit, int(row[13]), attempts, int(row[15]), int(row[16]), int(row[17]))
        if attempts > 0 and not cache_hit:
            request.latency_bins[latency_bin(int(row[18]))] = 1
        dimensions = tuple(row[2:11])
        metadata = canonical_metadata(row[11])
        for span in SPANS:
            size = span * _MICROS_PER_SECOND
            start = int(row[1]) // size * size
            for with_metadata in (0, 1):
                key: CellKey = (span, with_metadata, start, *dimensions, metadata if with_metadata else "")
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = CellSums()
                cell.add(request)
    return cells


def merged_cells(
    deltas: Mapping[CellKey, CellSums], stored: Mapping[str, CellSums], sign: int
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Cells after adding (sign 1) or subtracting (sign -1, pruning) ``deltas`` to the ``stored``
    ones (by cell id): the rows to upsert (STORED_COLUMNS' values) and the ids of stored cells left
    with no requests, to delete."""
    upserts: list[tuple[Any, ...]] = []
    deletes: list[str] = []
    for key, delta in deltas.items():
        identity = cell_id(key)
        cell = stored.get(identity) or CellSums()
        cell.add(delta, sign)
        if cell.requests > 0:
            upserts.append((identity, *key, *cell.values(), cell.bins_json()))
        elif identity in stored:
            deletes.append(identity)
    return upserts, deletes


# --- the query over rollups and raw rows ------------------------------------------------------------

_SUCCESS = "status_code BETWEEN 200 AND 299"


def filter_conditions(wanted: LogFilter, dialect: Dialect = SQLITE) -> tuple[list[str], dict[str, Any]]:
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
        ("fallback_used", wanted.fallback_used),  # a bool: SQLite binds it as 0/1
    ):
        if value is not None:
            conditions.append(f"{column} = {dialect.parameter('f_' + column)}")
            parameters[f"f_{column}"] = value
    if wanted.success is True:
        conditions.append(_SUCCESS)
    elif wanted.success is False:
        conditions.append(f"NOT ({_SUCCESS})")
    return conditions, parameters


def _group(query: AnalyticsQuery, metadata_value: str) -> str:
    """A row's group; ``metadata_value`` is the dialect's lookup of the metadata key."""
    if query.group_by == GroupBy.METADATA:
        # The key is checked against METADATA_KEY_PATTERN (no quote reaches a path) and bound.
        return f"coalesce({metadata_value}, '')"
    return {
        GroupBy.PROVIDER: "provider",
        GroupBy.MODEL: "model",
        GroupBy.CONFIG: f"CASE config_id WHEN '' THEN '{INLINE_GROUP}' ELSE config_id END",
        GroupBy.API_KEY: "caller_key_id",
        GroupBy.TARGET: "last_target",
    }[query.group_by]


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsSql:
    """The statements of one analytics query and their named parameters.

    ``counts`` yields (group, bucket, failed request's error kind or NULL, fallback's first target or
    NULL, its serving target or NULL, requests, successes, fallbacks, attempts, failed attempts,
    retries, cache hits, images, cost in nano-USD). ``raw_latencies`` yields (group, bucket,
    latency) of raw rows; ``cell_latencies`` (group, bucket, histogram JSON) of cells that have
    latencies, or is empty when the plan reads no cells.
    """

    counts: str
    raw_latencies: str
    cell_latencies: str
    parameters: dict[str, Any]


def analytics_sql(
    query: AnalyticsQuery, plan: RangePlan, first_bucket_start: datetime, dialect: Dialect = SQLITE
) -> AnalyticsSql:
    """The SQL answering ``query`` from the sources ``plan`` names, in ``dialect``."""
    p = dialect.parameter
    conditions, parameters = filter_conditions(query.log_filter, dialect)
    parameters.update(
        first_bucket=_micros(first_bucket_start),
        bucket_size=query.bucket_size // timedelta(microseconds=1),
        with_metadata=int(plan.with_metadata),
    )
    if query.group_by == GroupBy.METADATA:
        parameters["metadata_key"] = query.metadata_key
        parameters["metadata_path"] = f'$."{query.metadata_key}"'
        parameters["payload_metadata_path"] = f'$.metadata."{query.metadata_key}"'
    filters = "".join(f" AND {condition}" for condition in conditions)

    raw_wheres: list[tuple[str, str]] = []  # (table, condition)
    for index, (low, high) in enumerate(plan.raw_spans):
        parameters[f"raw_low_{index}"], parameters[f"raw_high_{index}"] = low, high
        raw_wheres.append(
            ("request_logs", f"create_time >= {p(f'raw_low_{index}')} AND create_time < {p(f'raw_high_{index}')}")
        )
    cell_wheres: list[str] = []
    for index, (span, low, high) in enumerate(plan.rollups):
        parameters[f"span_{index}"], parameters[f"cell_low_{index}"], parameters[f"cell_high_{index}"] = span, low, high
        low_at, high_at = p(f"cell_low_{index}"), p(f"cell_high_{index}")
        cell_wheres.append(
            f"span_seconds = {p(f'span_{index}')} AND with_metadata = {p('with_metadata')} "
            f"AND bucket_start >= {low_at} AND bucket_start < {high_at}{filters}"
        )
        # Rows written since the rollup job last ran, through the partial index holding only them.
        unrolled = f"{dialect.not_rolled_up} AND create_time >= {low_at} AND create_time < {high_at}"
        raw_wheres.append((dialect.unrolled_rows, unrolled))

    raw_group = _group(query, dialect.metadata_of_payload)
    raw_bucket = f"(create_time - {p('first_bucket')}) / {p('bucket_size')}"
    sources = [
        f"SELECT {raw_group} AS g, {raw_bucket} AS b, status_code, error_kind, fallback_used, first_target, "
        f"last_target, 1 AS requests, attempt_count AS attempts, failed_attempt_count AS failed_attempts, "
        f"retry_count AS retries, {dialect.as_integer('cache_hit')} AS cache_hits, image_count AS images, "
        f"{dialect.cost_nanos} AS cost_nanos FROM {table} WHERE {where}{filters}"
        for table, where in raw_wheres
    ]
    raw_latencies = " UNION ALL ".join(
        f"SELECT {raw_group}, {raw_bucket}, latency_ms FROM {table} "
        f"WHERE {where}{filters} AND attempt_count > 0 AND {dialect.as_integer('cache_hit')} = 0"
        for table, where in raw_wheres
    )
    cell_group = _group(query, dialect.metadata_of_cell)
    cell_bucket = f"(bucket_start - {p('first_bucket')}) / {p('bucket_size')}"
    sources += [
        f"SELECT {cell_group} AS g, {cell_bucket} AS b, status_code, error_kind, fallback_used, first_target, "
        "last_target, requests, attempts, failed_attempts, retries, cache_hits, images, cost_nanos "
        f"FROM request_log_rollups WHERE {where}"
        for where in cell_wheres
    ]
    # Histograms are merged by the caller: summing bins in SQL (json_each, GROUP BY) is slower.
    cell_latencies = " UNION ALL ".join(
        f"SELECT {cell_group}, {cell_bucket}, latency_bins FROM request_log_rollups "
        f"WHERE {where} AND latency_bins != '{{}}'"
        for where in cell_wheres
    )
    fell_back = f"{dialect.as_integer('fallback_used')} = 1"
    # Sums cast back to 64-bit integers: PostgreSQL sums bigints as numeric, which its driver reads
    # as Decimal, several times slower than int for the thousands of rows of a metadata grouping.
    sums = ", ".join(
        f"CAST(sum({value}) AS BIGINT)"
        for value in (
            "requests",
            f"CASE WHEN {_SUCCESS} THEN requests ELSE 0 END",
            f"CASE WHEN {fell_back} THEN requests ELSE 0 END",
            "attempts",
            "failed_attempts",
            "retries",
            "cache_hits",
            "images",
            "cost_nanos",
        )
    )
    counts = (
        f"SELECT g, b, CASE WHEN {_SUCCESS} THEN NULL ELSE error_kind END AS kind, "
        f"CASE WHEN {fell_back} THEN first_target END AS from_target, "
        f"CASE WHEN {fell_back} THEN last_target END AS to_target, {sums} "
        f"FROM ({' UNION ALL '.join(sources)}) AS sources GROUP BY g, b, kind, from_target, to_target"
    )
    return AnalyticsSql(counts, raw_latencies, cell_latencies, parameters)


def add_answer(
    builder: AnalyticsBuilder,
    plan: RangePlan,
    counts: Iterable[Sequence[Any]],
    raw_latencies: Iterable[Sequence[Any]],
    cell_latencies: Iterable[Sequence[Any]],
) -> None:
    """Hands the rows of an ``AnalyticsSql``'s statements to ``builder``. Numbers are read with
    ``int``: PostgreSQL's sums of bigints arrive as Decimal."""
    for group, bucket, kind, from_target, to_target, requests, *sums in counts:
        successes, fallbacks, attempts, failed_attempts, retries, cache_hits, images, cost_nanos = map(int, sums)
        bucket, requests = int(bucket), int(requests)
        builder.add_counts(
            group,
            bucket,
            requests=requests,
            successes=successes,
            fallbacks=fallbacks,
            attempts=attempts,
            failed_attempts=failed_attempts,
            retries=retries,
            cache_hits=cache_hits,
            images=images,
            cost_nanos=cost_nanos,
        )
        if kind is not None:  # every request of this row failed with this kind
            builder.add_errors(group, bucket, kind, requests)
        if from_target is not None:  # every request of this row fell back from -> to
            builder.add_fallbacks(group, bucket, from_target, to_target, requests)
    if not plan.rollups:
        for group, bucket, latency_ms in raw_latencies:
            builder.add_latency(group, int(bucket), int(latency_ms))
        return
    # One histogram per answer: raw rows join the cells' bins.
    for group, bucket, latency_ms in raw_latencies:
        builder.add_latency_bin(group, int(bucket), latency_bin(int(latency_ms)), 1)
    for group, bucket, bins in cell_latencies:
        builder.add_latency_bins(group, int(bucket), json.loads(bins))


# Runs one statement with named parameters in the backend's open read snapshot; returns its rows.
Fetch = Callable[[str, Mapping[str, Any]], Awaitable[Sequence[Sequence[Any]]]]


async def aggregate(query: AnalyticsQuery, dialect: Dialect, fetch: Fetch) -> AnalyticsResult:
    """The answer to ``query``: its statements in ``dialect``, run with ``fetch`` (all in one
    snapshot, which the caller holds), handed to the shared builder."""
    builder = AnalyticsBuilder(query)
    plan = plan_range(query)
    sql = analytics_sql(query, plan, builder.first_bucket_start, dialect)
    counts = await fetch(sql.counts, sql.parameters)
    latencies: Sequence[Sequence[Any]] = []
    cells: Sequence[Sequence[Any]] = []
    if query.latencies:
        latencies = await fetch(sql.raw_latencies, sql.parameters)
        if plan.rollups:
            cells = await fetch(sql.cell_latencies, sql.parameters)
    add_answer(builder, plan, counts, latencies, cells)
    return builder.result()
