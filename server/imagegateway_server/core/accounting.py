"""Settles a finished request: prices it, has it recorded once (log and metrics), charges its cost.

The request's gateway key was admitted before routing (``core/limits.py``); when the request ends,
its actual cost comes from the price table (``core/pricing.py``), the recorder logs and counts it,
and the cost is charged to the keys' budgets with the log record's key and time; the admission's
reservation is released after that, by the gateway.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Protocol

from imagegateway_server.core.pricing import PriceTable
from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.domain.calls import GenerationCall
from imagegateway_server.domain.errors import RequestFailed
from imagegateway_server.domain.result import RoutedResult
from imagegateway_server.observability.recorder import Logged, RequestRecorder


class SpendSink(Protocol):
    """Told each request's actual cost, for key budgets (``core.limits.Limiter``); never blocks."""

    def record_spend(self, caller_key_id: str, virtual_key_id: str, cost_usd: float, when: datetime) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Recorded:
    """What settling a served request produced: the log record id and the request's cost."""

    log_id: str
    cost_usd: float


class RequestAccounting:
    """Prices, records and charges finished requests. One per process."""

    def __init__(self, recorder: RequestRecorder, prices: PriceTable, *, spend: SpendSink | None = None) -> None:
        self._recorder = recorder
        self._prices = prices
        self._spend = spend

    def success(
        self,
        call: GenerationCall,
        routed: RoutedResult,
        *,
        trace_id: str,
        started: float,
        config_id: str,
        config_version: int,
        cache_status: CacheStatus = CacheStatus.DISABLED,
    ) -> Recorded:
        # A cache hit made no upstream call, so it cost nothing and generated nothing.
        cost = 0.0 if cache_status == CacheStatus.HIT else self._prices.success_cost(routed, call.request)
        logged = self._recorder.success(
            call,
            routed,
            trace_id=trace_id,
            started=started,
            config_id=config_id,
            config_version=config_version,
            cache_status=cache_status,
            cost_usd=cost,
        )
        self._charge(call, logged, cost)
        return Recorded(logged.log_id, cost)

    def failure(
        self,
        call: GenerationCall,
        failure: RequestFailed,
        *,
        trace_id: str,
        started: float,
        config_id: str,
        config_version: int,
        cache_status: CacheStatus = CacheStatus.DISABLED,
    ) -> str:
        """Settles the failure, sets its ``log_id`` and returns it."""
        cost = self._prices.failed_attempts_cost(failure.attempts, call.request)
        logged = self._recorder.failure(
            call,
            failure,
            trace_id=trace_id,
            started=started,
            config_id=config_id,
            config_version=config_version,
            cache_status=cache_status,
            cost_usd=cost,
        )
        self._charge(call, logged, cost)
        return logged.log_id

    def _charge(self, call: GenerationCall, logged: Logged, cost: float) -> None:
        # Charged with the log record's key and time, so spend recomputed from the log at start agrees.
        if self._spend is not None and cost > 0:
            self._spend.record_spend(call.caller.key_id, logged.virtual_key_id, cost, logged.create_time)
