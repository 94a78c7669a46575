"""Records one finished generation request, exactly once: its log record, its cost (charged to its
keys' budgets) and its metrics.

The gateway core calls ``success`` or ``failure`` when a request ends; the log record goes to the
background writer, which builds it (hashes, JSON) off the response path and is never awaited here;
the cost comes from the price table loaded at start.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.observability.costs import PriceTable
from imagegateway_server.observability.log_records import pending_log_record
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.request_log import RequestLogWriter

if TYPE_CHECKING:
    from imagegateway_server.domain.errors import RequestFailed
    from imagegateway_server.gateway import GenerationCall, RoutingSpec
    from imagegateway_server.routing.router import RoutedResult

CACHE_HIT = "HIT"


class SpendSink(Protocol):
    """Told each request's actual cost, for key budgets (``security.limits.Limiter``); never blocks."""

    def record_spend(self, caller_key_id: str, virtual_key_id: str, cost_usd: float, when: datetime) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded:
    """What recording a served request produced: the log record id and the request's cost."""

    log_id: str
    cost_usd: float


def config_label(routing: RoutingSpec, config_id: str) -> str:
    """The ``config`` metric label: a resolved saved config id (bounded by the saved configs), or
    "inline", "unresolved" (a named config that did not resolve: the name is the caller's) or "none"."""
    if config_id:
        return config_id
    if routing.config is not None:
        return "inline"
    if routing.config_id:
        return "unresolved"
    return "none"


class RequestRecorder:
    """Turns finished requests into log records, costs and metrics. One per process."""

    def __init__(
        self, log_writer: RequestLogWriter, metrics: Metrics, prices: PriceTable, *, redact_prompts: bool = False,
        spend: SpendSink | None = None,
    ) -> None:
        self._log_writer = log_writer
        self._metrics = metrics
        self._prices = prices
        self._redact_prompts = redact_prompts
        self._spend = spend

    def success(
        self, call: GenerationCall, routed: RoutedResult, *, trace_id: str, started: float, config_id: str,
        config_version: int, cache_status: CacheStatus = CacheStatus.DISABLED,
    ) -> Recorded:
        cached = cache_status == CacheStatus.HIT
        # A cache hit made no upstream call, so it cost nothing and generated nothing.
        cost = 0.0 if cached else self._prices.success_cost(routed, call.request)
        record = pending_log_record(
            call, trace_id=trace_id, started=started, config_id=config_id, config_version=config_version,
            routed=routed, cache_status=cache_status, cost_usd=cost, redact_prompt=self._redact_prompts,
        )
        self._log_writer.submit(record)
        self._charge(call, record.virtual_key_id, cost, record.create_time)
        self._metrics.observe_success(call.transport, routed, config=config_label(call.routing, config_id),
                                      cost_usd=cost, cached=cached)
        return Recorded(record.id, cost)

    def failure(
        self, call: GenerationCall, failure: RequestFailed, *, trace_id: str, started: float, config_id: str,
        config_version: int, cache_status: CacheStatus = CacheStatus.DISABLED,
    ) -> str:
        """Records the failure, sets its ``log_id`` and returns it."""
        cost = self._prices.failed_attempts_cost(failure.attempts, call.request)
        record = pending_log_record(
            call, trace_id=trace_id, started=started, config_id=config_id, config_version=config_version,
            failure=failure, cache_status=cache_status, cost_usd=cost, redact_prompt=self._redact_prompts,
        )
        failure.log_id = record.id
        self._log_writer.submit(record)
        self._charge(call, record.virtual_key_id, cost, record.create_time)
        self._metrics.observe_failure(call.transport, failure, config=config_label(call.routing, config_id),
                                      cost_usd=cost)
        return record.id

    def _charge(self, call: GenerationCall, virtual_key_id: str, cost: float, when: datetime) -> None:
        # Charged with the log record's key and time, so spend recomputed from the log at start agrees.
        if self._spend is not None and cost > 0:
            self._spend.record_spend(call.caller.key_id, virtual_key_id, cost, when)
