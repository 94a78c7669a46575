"""Records one finished generation request, exactly once: its log record and its metrics.

The core (``core/accounting.py``) calls ``success`` or ``failure`` when a request ends, with the
cost it priced; the log record goes to the background writer, which builds it (hashes, JSON) off
the response path and is never awaited here.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING

from imagegateway_server.domain.cache_status import CacheStatus
from imagegateway_server.observability.log_records import pending_log_record
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.request_log import RequestLogWriter

if TYPE_CHECKING:
    from imagegateway_server.domain.calls import GenerationCall, RoutingSpec
    from imagegateway_server.domain.errors import RequestFailed
    from imagegateway_server.domain.result import RoutedResult
    from imagegateway_server.observability.otel import RequestSpans


@dataclasses.dataclass(frozen=True, slots=True)
class Logged:
    """What recording a request produced: its log record's id, and the virtual key and time the
    record charges its cost to (so spend recomputed from the log at start agrees)."""

    log_id: str
    virtual_key_id: str
    create_time: datetime


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
    """Turns finished requests into log records and metrics. One per process."""

    def __init__(
        self,
        log_writer: RequestLogWriter,
        metrics: Metrics,
        *,
        redact_prompts: bool = False,
        spans: RequestSpans | None = None,
    ) -> None:
        self._log_writer = log_writer
        self._metrics = metrics
        self._redact_prompts = redact_prompts
        self._spans = spans

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
        cost_usd: float = 0.0,
    ) -> Logged:
        record = pending_log_record(
            call,
            trace_id=trace_id,
            started=started,
            config_id=config_id,
            config_version=config_version,
            routed=routed,
            cache_status=cache_status,
            cost_usd=cost_usd,
            redact_prompt=self._redact_prompts,
        )
        self._log_writer.submit(record)
        if self._spans is not None:
            self._spans.export(record, started)
        self._metrics.observe_success(
            call.transport,
            routed,
            config=config_label(call.routing, config_id),
            cost_usd=cost_usd,
            cached=cache_status == CacheStatus.HIT,
        )
        return Logged(record.id, record.virtual_key_id, record.create_time)

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
        cost_usd: float = 0.0,
    ) -> Logged:
        """Records the failure and sets its ``log_id``."""
        record = pending_log_record(
            call,
            trace_id=trace_id,
            started=started,
            config_id=config_id,
            config_version=config_version,
            failure=failure,
            cache_status=cache_status,
            cost_usd=cost_usd,
            redact_prompt=self._redact_prompts,
        )
        failure.log_id = record.id
        self._log_writer.submit(record)
        if self._spans is not None:
            self._spans.export(record, started)
        self._metrics.observe_failure(
            call.transport, failure, config=config_label(call.routing, config_id), cost_usd=cost_usd
        )
        return Logged(record.id, record.virtual_key_id, record.create_time)
