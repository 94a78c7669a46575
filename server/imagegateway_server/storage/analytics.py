"""Analytics over the request log: the query, its answer, and the backend-neutral arithmetic.

A backend sums counts per (group, bucket) with its own SQL and hands the sums and the latencies to
``AnalyticsBuilder``, which lays out every bucket (empty ones as zeros), computes exact latency
percentiles and totals per group. The definitions (issue 14) are the same for every backend:
``requests`` counts each request once, in the group of what served it or was last tried;
``errors`` are requests that did not succeed (status outside 2xx), split by error kind;
``fallbacks`` are requests served by a target other than the first, with from -> to pairs;
``images`` are images returned (cache hits included); latency percentiles are over requests that
reached a provider (cache hits excluded). A request counts in the bucket of its start time.

Costs are summed as integer nano-USD (each request's cost rounded to 1e-9 USD), so a sum split
between rollups and raw rows, or between buckets, adds up to the same total exactly. Latency
percentiles are exact when a backend hands over every latency (``add_latency``) and come from the
rollups' histogram when it hands over bins (``add_latency_bin``, see ``analytics_rollup``).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from imagegateway_server.storage.latency_histogram import histogram_percentiles
from imagegateway_server.storage.records import LogFilter


class GroupBy(enum.StrEnum):
    """The dimension rows are grouped by."""

    PROVIDER = "provider"
    MODEL = "model"
    CONFIG = "config"  # the saved config id; requests without one group under INLINE_GROUP
    API_KEY = "api_key"  # the caller's gateway key id
    TARGET = "target"  # the served target's path, else the last tried
    METADATA = "metadata"  # the value of one metadata key ("" where a request did not send it)


# The group of requests routed without a saved config (an inline config, or a bare provider/virtual key).
INLINE_GROUP = "inline"

# Metadata keys analytics may group by: what x-portkey-metadata keys look like (``_user`` included).
METADATA_KEY_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")

# Bucket sizes to choose from, smallest first; each divides a UTC day or is whole days.
# Neighbours differ by at most 2.5 times, so a range gets at least about 48 / 2.5 = 19 buckets;
# past a day, sizes are whole days (see bucket_size_for).
_BUCKET_LADDER = tuple(
    timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
)
# A range gets at most this many buckets (24 h: 25 hourly ones), so a chart or a sparkline stays readable.
MAX_BUCKETS = 48
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Decimal places of USD that cost sums are rounded to.
COST_DIGITS = 9


def bucket_size_for(start: datetime, end: datetime) -> timedelta:
    """The smallest ladder size that covers ``[start, end)`` in at most ``MAX_BUCKETS`` UTC-aligned buckets."""
    for size in _BUCKET_LADDER:
        if len(bucket_starts(start, end, size)) <= MAX_BUCKETS:
            return size
    days = math.ceil((end - start) / timedelta(days=1) / (MAX_BUCKETS - 1))
    return timedelta(days=days)


def bucket_starts(start: datetime, end: datetime, size: timedelta) -> list[datetime]:
    """The starts of the buckets covering ``[start, end)``, aligned to multiples of ``size`` since the epoch (UTC)."""
    first = _EPOCH + ((start - _EPOCH) // size) * size
    starts: list[datetime] = []
    when = first
    while when < end:
        starts.append(when)
        when += size
    return starts or [first]


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """What to aggregate: requests created in ``[start, end)`` matching ``log_filter`` (its own
    time fields are ignored), grouped by ``group_by`` (``metadata_key`` for METADATA), in buckets
    of ``bucket_size`` aligned to UTC. Without ``latencies`` the percentiles are left 0 and no
    latency or histogram is read: for answers that show none (the dashboard's top tables), where
    reading them is most of the work."""

    start: datetime
    end: datetime
    bucket_size: timedelta
    group_by: GroupBy
    metadata_key: str = ""
    log_filter: LogFilter = dataclasses.field(default_factory=LogFilter)
    latencies: bool = True

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("analytics times must be timezone-aware")
        if self.end <= self.start:
            raise ValueError("the analytics range must end after it starts")
        if self.bucket_size <= timedelta(0):
            raise ValueError("the bucket size must be positive")
        if len(bucket_starts(self.start, self.end, self.bucket_size)) > 10 * MAX_BUCKETS:
            raise ValueError("too many buckets for the range")
        if (self.group_by == GroupBy.METADATA) != bool(self.metadata_key):
            raise ValueError("a metadata key is given exactly when grouping by metadata")
        if self.metadata_key and not METADATA_KEY_PATTERN.fullmatch(self.metadata_key):
            raise ValueError(f"not a metadata key analytics can group by: {self.metadata_key!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsCounts:
    """The numbers of one group over one bucket (or the whole range).

    ``errors_by_kind`` keys are the API's ErrorKind names (``ERROR_KIND_UNSPECIFIED`` for a failure
    without a kind); ``fallback_pairs`` maps (first target, serving target) to requests. The
    latencies are 0 when no request in the bucket reached a provider.
    """

    requests: int = 0
    successes: int = 0
    errors: int = 0
    errors_by_kind: Mapping[str, int] = dataclasses.field(default_factory=dict)
    fallbacks: int = 0
    fallback_pairs: Mapping[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    attempts: int = 0
    failed_attempts: int = 0
    retries: int = 0
    cache_hits: int = 0
    images: int = 0
    cost_usd: float = 0.0
    latency_p50_ms: int = 0
    latency_p95_ms: int = 0
    latency_p99_ms: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsBucket:
    """One time bucket of a row: it starts at ``start`` (UTC) and lasts the answer's bucket size."""

    start: datetime
    counts: AnalyticsCounts


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsRow:
    """One group: its totals over the range and every bucket in order (empty ones zero)."""

    group: str
    totals: AnalyticsCounts
    buckets: list[AnalyticsBucket]


@dataclasses.dataclass(frozen=True, slots=True)
class AnalyticsResult:
    """Rows by requests, most first (then by group); the bucket starts every row shares; ``overall``
    is every matching request as one row (group ""), whose percentiles span all groups;
    ``latency_exact`` is False when percentiles come from a histogram (``latency_histogram``)."""

    bucket_starts: list[datetime]
    rows: list[AnalyticsRow]
    overall: AnalyticsRow | None = None
    latency_exact: bool = True  # False: the percentiles come from the rollups' histogram


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """The nearest-rank percentile of ascending values (0 for none): the smallest value with at
    least ``fraction`` of the values at or below it."""
    if not sorted_values:
        return 0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def _add_counts(into: dict[Any, int], more: Mapping[Any, int]) -> None:
    """Adds counts by key; a key new to ``into`` is copied in one C-level update."""
    if not into:
        into.update(more)
        return
    get = into.get
    for key, count in more.items():
        into[key] = get(key, 0) + count


@dataclasses.dataclass(slots=True)
class _Sums:
    requests: int = 0
    successes: int = 0
    errors: int = 0
    errors_by_kind: dict[str, int] = dataclasses.field(default_factory=dict)
    fallbacks: int = 0
    fallback_pairs: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    attempts: int = 0
    failed_attempts: int = 0
    retries: int = 0
    cache_hits: int = 0
    images: int = 0
    cost_nanos: int = 0
    latencies: list[int] = dataclasses.field(default_factory=list)
    latency_bins: dict[int, int] = dataclasses.field(default_factory=dict)

    def add(self, other: _Sums) -> None:
        self.requests += other.requests
        self.successes += other.successes
        self.errors += other.errors
        if other.errors_by_kind:
            _add_counts(self.errors_by_kind, other.errors_by_kind)
        self.fallbacks += other.fallbacks
        if other.fallback_pairs:
            _add_counts(self.fallback_pairs, other.fallback_pairs)
        self.attempts += other.attempts
        self.failed_attempts += other.failed_attempts
        self.retries += other.retries
        self.cache_hits += other.cache_hits
        self.images += other.images
        self.cost_nanos += other.cost_nanos
        self.latencies.extend(other.latencies)
        if other.latency_bins:
            _add_counts(self.latency_bins, other.latency_bins)

    def counts(self) -> AnalyticsCounts:
        if self.latency_bins:
            p50, p95, p99 = histogram_percentiles(self.latency_bins, (0.50, 0.95, 0.99))
        else:
            latencies = sorted(self.latencies)
            p50, p95, p99 = (percentile(latencies, f) for f in (0.50, 0.95, 0.99))
        return AnalyticsCounts(
            requests=self.requests,
            successes=self.successes,
            errors=self.errors,
            errors_by_kind=dict(sorted(self.errors_by_kind.items())),
            fallbacks=self.fallbacks,
            fallback_pairs=dict(sorted(self.fallback_pairs.items())),
            attempts=self.attempts,
            failed_attempts=self.failed_attempts,
            retries=self.retries,
            cache_hits=self.cache_hits,
            images=self.images,
            cost_usd=self.cost_nanos / 1e9,
            latency_p50_ms=p50,
            latency_p95_ms=p95,
            latency_p99_ms=p99,
        )


class AnalyticsBuilder:
    """Collects a backend's per-(group, bucket index) sums and lays out the answer."""

    def __init__(self, query: AnalyticsQuery) -> None:
        self._starts = bucket_starts(query.start, query.end, query.bucket_size)
        self._cells: dict[tuple[str, int], _Sums] = {}
        self._binned = False

    @property
    def first_bucket_start(self) -> datetime:
        """Where bucket 0 starts: a backend's bucket index is (create time - this) // bucket size."""
        return self._starts[0]

    def _cell(self, group: str, bucket: int) -> _Sums:
        if not 0 <= bucket < len(self._starts):
            raise ValueError(f"bucket index {bucket} is outside the range")
        cell = self._cells.get((group, bucket))
        if cell is None:
            cell = self._cells[group, bucket] = _Sums()
        return cell

    def add_counts(
        self,
        group: str,
        bucket: int,
        *,
        requests: int,
        successes: int,
        fallbacks: int,
        attempts: int,
        failed_attempts: int,
        retries: int,
        cache_hits: int,
        images: int,
        cost_nanos: int,
    ) -> None:
        """The plain sums of one (group, bucket); ``errors`` is ``requests - successes``; cost in nano-USD."""
        cell = self._cell(group, bucket)
        cell.requests += requests
        cell.successes += successes
        cell.errors += requests - successes
        cell.fallbacks += fallbacks
        cell.attempts += attempts
        cell.failed_attempts += failed_attempts
        cell.retries += retries
        cell.cache_hits += cache_hits
        cell.images += images
        cell.cost_nanos += cost_nanos

    def add_errors(self, group: str, bucket: int, error_kind: str, count: int) -> None:
        """Failed requests of one kind (the API's ErrorKind name; "" for none)."""
        name = error_kind or "ERROR_KIND_UNSPECIFIED"
        kinds = self._cell(group, bucket).errors_by_kind
        kinds[name] = kinds.get(name, 0) + count

    def add_fallbacks(self, group: str, bucket: int, from_target: str, to_target: str, count: int) -> None:
        """Requests that the first target did not serve but ``to_target`` did."""
        pairs = self._cell(group, bucket).fallback_pairs
        pairs[from_target, to_target] = pairs.get((from_target, to_target), 0) + count

    def add_latency(self, group: str, bucket: int, latency_ms: int) -> None:
        """The latency of one request that reached a provider and was not a cache hit."""
        self._cell(group, bucket).latencies.append(latency_ms)

    def add_latency_bin(self, group: str, bucket: int, bin_index: int, count: int) -> None:
        """``count`` latencies in one histogram bin (``analytics_rollup.latency_bin``). A query hands
        over bins or latencies, not both: with bins, every percentile comes from the histogram."""
        self._binned = True
        bins = self._cell(group, bucket).latency_bins
        bins[bin_index] = bins.get(bin_index, 0) + count

    def add_latency_bins(self, group: str, bucket: int, histogram: Mapping[str, int]) -> None:
        """A cell's histogram as stored: ``{"bin": count}``."""
        self._binned = True
        bins = self._cell(group, bucket).latency_bins
        for bin_text, count in histogram.items():
            bin_index = int(bin_text)
            bins[bin_index] = bins.get(bin_index, 0) + count

    def _row(self, group: str, cells: list[_Sums]) -> AnalyticsRow:
        totals = _Sums()
        for cell in cells:
            totals.add(cell)
        buckets = [AnalyticsBucket(start, cell.counts()) for start, cell in zip(self._starts, cells, strict=True)]
        return AnalyticsRow(group, totals.counts(), buckets)

    def result(self) -> AnalyticsResult:
        groups: dict[str, list[_Sums]] = {}
        everything = [_Sums() for _ in self._starts]
        for (group, bucket), cell in self._cells.items():
            row = groups.get(group)
            if row is None:
                row = groups[group] = [_Sums() for _ in self._starts]
            row[bucket] = cell
            everything[bucket].add(cell)
        rows = [self._row(group, cells) for group, cells in groups.items()]
        rows.sort(key=lambda row: (-row.totals.requests, row.group))
        return AnalyticsResult(list(self._starts), rows, self._row("", everything), latency_exact=not self._binned)
