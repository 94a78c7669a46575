"""Prometheus metrics: gRPC server metrics named as go-grpc-middleware does, plus imagegateway_*.

Labels are bounded: provider, model (the models the price table knows, else "other"), outcome
(success or an error kind), transport, saved config id (or "inline" / "none"), route template,
gRPC method and code; never prompts, keys or trace ids.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Generic, TypeVar

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from imagegateway_server.domain.cache_status import CacheStatus

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    from prometheus_client import Metric

    from imagegateway_server.domain.errors import RequestFailed
    from imagegateway_server.domain.result import AttemptRecord, RoutedResult

# Image generation takes seconds to minutes; buckets reach 300 s.
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300)
GRPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
# The label values of limit refusals (core.limits REFUSAL_SCOPES and LIMIT_FIELDS).
LIMIT_SCOPES = ("gateway_key", "virtual_key")
LIMIT_NAMES = ("requests_per_minute", "usd_per_day", "usd_per_month")


M = TypeVar("M", Counter, Gauge, Histogram)


class Series(Generic[M]):
    """The series (children) of one labelled metric, remembered by their label values.

    prometheus_client's ``labels()`` checks and locks on every call (~1.5 µs) and a request touches
    several series; label values are bounded (see above), so remembering every child is too.
    """

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *values: str) -> M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


@dataclasses.dataclass(frozen=True, slots=True)
class GrpcMethodSeries:
    """The gRPC server series of one method, looked up once rather than on every call."""

    started: Counter
    seconds: Histogram
    handled: Mapping[grpc.StatusCode, Counter]


# Go's names of the gRPC codes (google.golang.org/grpc/codes, String()), which go-grpc-middleware
# puts in ``grpc_code``. Spelled out rather than derived from Python's names: Python says
# CANCELLED where Go says Canceled, and a dashboard matching ``grpc_code="Canceled"`` would miss it.
GO_CODE_NAMES: Mapping[grpc.StatusCode, str] = {
    grpc.StatusCode.OK: "OK",
    grpc.StatusCode.CANCELLED: "Canceled",
    grpc.StatusCode.UNKNOWN: "Unknown",
    grpc.StatusCode.INVALID_ARGUMENT: "InvalidArgument",
    grpc.StatusCode.DEADLINE_EXCEEDED: "DeadlineExceeded",
    grpc.StatusCode.NOT_FOUND: "NotFound",
    grpc.StatusCode.ALREADY_EXISTS: "AlreadyExists",
    grpc.StatusCode.PERMISSION_DENIED: "PermissionDenied",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "ResourceExhausted",
    grpc.StatusCode.FAILED_PRECONDITION: "FailedPrecondition",
    grpc.StatusCode.ABORTED: "Aborted",
    grpc.StatusCode.OUT_OF_RANGE: "OutOfRange",
    grpc.StatusCode.UNIMPLEMENTED: "Unimplemented",
    grpc.StatusCode.INTERNAL: "Internal",
    grpc.StatusCode.UNAVAILABLE: "Unavailable",
    grpc.StatusCode.DATA_LOSS: "DataLoss",
    grpc.StatusCode.UNAUTHENTICATED: "Unauthenticated",
}


def go_code_name(code: grpc.StatusCode) -> str:
    """grpc.StatusCode.CANCELLED -> "Canceled" (the Go spelling dashboards and alerts match on)."""
    return GO_CODE_NAMES[code]


class Metrics:
    """Every metric of one gateway process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.grpc_started = Counter(
            "grpc_server_started_total",
            "RPCs started on the server.",
            ["grpc_type", "grpc_service", "grpc_method"],
            registry=r,
        )
        self.grpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by code.",
            ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
            registry=r,
        )
        self.grpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "RPC handling time.",
            ["grpc_type", "grpc_service", "grpc_method"],
            buckets=GRPC_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "imagegateway_http_requests_total", "REST shim requests.", ["route", "status"], registry=r
        )
        self.auth_failures = Counter(
            "imagegateway_auth_failures_total",
            "Refused gateway API keys, by transport and reason (never the key).",
            ["transport", "reason"],
            registry=r,
        )
        self.limit_refusals = Counter(
            "imagegateway_limit_refusals_total",
            "Requests and fallback targets refused by a key's own limits, by the key's scope and the limit.",
            ["scope", "limit"],
            registry=r,
        )
        for scope in LIMIT_SCOPES:
            for limit in LIMIT_NAMES:
                self.limit_refusals.labels(scope, limit)
        self.requests = Counter(
            "imagegateway_requests_total",
            "Generation requests by transport, outcome and saved config.",
            ["transport", "outcome", "config"],
            registry=r,
        )
        self.attempts = Counter(
            "imagegateway_attempts_total",
            "Upstream attempts by provider, model and outcome.",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "imagegateway_fallbacks_total",
            "Moves from a failed target to the next one, by provider and the failure.",
            ["from_provider", "to_provider", "reason"],
            registry=r,
        )
        self.retries = Counter(
            "imagegateway_retries_total", "Upstream attempts that retried a target.", ["provider"], registry=r
        )
        self.cost = Counter(
            "imagegateway_cost_usd_total",
            "What requests cost by the price table, in USD.",
            ["provider", "model"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "imagegateway_upstream_request_duration_seconds",
            "Upstream call latency.",
            ["provider", "outcome"],
            buckets=UPSTREAM_BUCKETS,
            registry=r,
        )
        self.images = Counter(
            "imagegateway_images_generated_total", "Images served.", ["provider", "model"], registry=r
        )
        self.model_substitutions = Counter(
            "imagegateway_model_substitutions_total",
            "Requests for a retired model served by its successor, by reason (retired: the provider said "
            "the model does not exist; remembered: an earlier answer for the same account said so).",
            ["provider", "model", "successor", "reason"],
            registry=r,
        )
        self.in_flight = Gauge("imagegateway_in_flight_requests", "Generation requests in progress.", registry=r)
        self.cache_requests = Counter(
            "imagegateway_cache_requests_total",
            "Generation requests by cache status (HIT, MISS, REFRESH, DISABLED).",
            ["status"],
            registry=r,
        )
        for status in CacheStatus:
            self.cache_requests.labels(status)
        self._known_models: frozenset[str] = frozenset()
        self.circuit_transitions = Counter(
            "imagegateway_circuit_transitions_total",
            "Circuit-breaker state changes, by provider and the state entered.",
            ["provider", "to"],
            registry=r,
        )
        self.state_backend_up = Gauge(
            "imagegateway_state_backend_up",
            "1 while the replica keeps its shared state in the backend, 0 while it serves from in-process state.",
            ["backend"],
            registry=r,
        )
        # What every request touches, remembered per label values.
        self.requests_series = Series(self.requests)
        self.attempts_series = Series(self.attempts)
        self.upstream_seconds_series = Series(self.upstream_seconds)
        self.images_series = Series(self.images)
        self.cost_series = Series(self.cost)
        self.cache_requests_series = Series(self.cache_requests)

    def count_limit_refusal(self, scope: str, limit: str) -> None:
        """One refusal by a key's limit (``core.limits.RefusalObserver``)."""
        self.limit_refusals.labels(scope, limit).inc()

    def watch_circuits(self, states: Callable[[], Iterable[tuple[str, str, str]]]) -> None:
        """Exports ``imagegateway_circuit_state`` from ``states()`` ((provider, model, state) per breaker)."""
        self.registry.register(_CircuitStateCollector(states, self.model_label))

    def watch_request_log(
        self, *, dropped: Callable[[], int], pending: Callable[[], int], database_up: Callable[[], bool]
    ) -> None:
        """Exports the request log's backlog and losses, and whether the database is reachable, read at scrape time."""
        self.registry.register(_RequestLogCollector(dropped, pending, database_up))

    def watch_upload_memory(self, reserved: Callable[[], int]) -> None:
        """Exports the upload budget's bytes held now (REST and gRPC uploads), read at scrape time."""
        gauge = Gauge(
            "imagegateway_upload_memory_reserved_bytes",
            "Bytes of edit and variation uploads held now, of IMAGEGW_UPLOAD_MEMORY_BYTES (REST and gRPC).",
            registry=self.registry,
        )
        gauge.set_function(lambda: float(reserved()))

    def set_known_models(self, models: Iterable[str]) -> None:
        """The models that get their own ``model`` label value; any other is counted as "other"."""
        self._known_models = frozenset(m.lower() for m in models)

    def model_label(self, model: str) -> str:
        # Callers choose model names; only known ones become label values, or the series are unbounded.
        lowered = model.lower()
        return lowered if lowered in self._known_models else "other"

    def init_grpc_methods(self, service: str, methods: dict[str, str]) -> None:
        """Pre-creates the gRPC series at zero so dashboards see every method and code."""
        for method, grpc_type in methods.items():
            self.grpc_method(grpc_type, service, method)

    def grpc_method(self, grpc_type: str, service: str, method: str) -> GrpcMethodSeries:
        """The series of one gRPC method (every code's ``handled`` series created at zero)."""
        return GrpcMethodSeries(
            started=self.grpc_started.labels(grpc_type, service, method),
            seconds=self.grpc_seconds.labels(grpc_type, service, method),
            handled={
                code: self.grpc_handled.labels(grpc_type, service, method, go_code_name(code))
                for code in grpc.StatusCode
            },
        )

    def _attempts(self, attempts: Sequence[AttemptRecord]) -> None:
        previous: AttemptRecord | None = None
        for attempt in attempts:
            if attempt.circuit_open:
                outcome = "circuit_open"  # skipped without a call: no upstream latency to observe
            elif attempt.cancelled:
                outcome = "cancelled"  # cut short by the request's end: its time is not the upstream's
            elif attempt.error_kind is None:
                outcome = "success"
            else:
                outcome = attempt.error_kind.value.lower()
            provider = attempt.provider or "unknown"
            self.attempts_series(provider, self.model_label(attempt.model), outcome).inc()
            if not (attempt.circuit_open or attempt.cancelled):
                self.upstream_seconds_series(provider, outcome).observe(attempt.seconds or attempt.latency_ms / 1000)
            if attempt.retry_index > 0:
                self.retries.labels(provider).inc()
            failed = previous is not None and (previous.error_kind is not None or previous.circuit_open)
            if previous is not None and failed and previous.target != attempt.target:
                # The chain moved on: one fallback, attributed to the failure that caused it.
                kind = previous.error_kind
                reason = "circuit_open" if previous.circuit_open or kind is None else kind.value.lower()
                self.fallbacks.labels(previous.provider or "unknown", provider, reason).inc()
            previous = attempt

    def observe_success(
        self, transport: str, routed: RoutedResult, *, config: str = "none", cost_usd: float = 0.0, cached: bool = False
    ) -> None:
        """Counts a served request; ``config`` is its saved config id, "inline" or "none".

        A request ``cached`` (served from the cache) made no attempts and generated no images now.
        """
        self.requests_series(transport, "success", config).inc()
        if cached:
            return
        self._attempts(routed.attempts)
        if routed.substitution is not None:
            sub = routed.substitution
            self.model_substitutions.labels(
                routed.provider, self.model_label(sub.model), self.model_label(sub.successor), sub.reason
            ).inc()
        model = self.model_label(routed.result.model or (routed.attempts[-1].model if routed.attempts else ""))
        self.images_series(routed.provider, model).inc(len(routed.result.images))
        if cost_usd:
            self.cost_series(routed.provider, model).inc(cost_usd)

    def observe_failure(
        self, transport: str, failure: RequestFailed, *, config: str = "none", cost_usd: float = 0.0
    ) -> None:
        """Counts a failed request; ``cost_usd`` is what its billed failed attempts cost."""
        self.requests_series(transport, "failure", config).inc()
        self._attempts(failure.attempts)
        if cost_usd and failure.attempts:
            last = failure.attempts[-1]
            self.cost_series(last.provider or "unknown", self.model_label(last.model)).inc(cost_usd)


_CIRCUIT_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class _CircuitStateCollector(Collector):
    """Reads breaker states at scrape time, so a cool-down that ended shows without a request.

    Host and key are not labels (keys are secrets' tags, hosts multiply series): each (provider,
    model) shows its worst breaker; ListTargetHealth has the per-identity detail.
    """

    def __init__(self, states: Callable[[], Iterable[tuple[str, str, str]]], model_label: Callable[[str], str]) -> None:
        self._states = states
        self._model_label = model_label

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        worst: dict[tuple[str, str], int] = {}
        for provider, model, state in self._states():
            key = (provider, self._model_label(model))
            worst[key] = max(worst.get(key, 0), _CIRCUIT_VALUES[state])
        family = self._family()
        for (provider, model), value in sorted(worst.items()):
            family.add_metric([provider, model], value)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "imagegateway_circuit_state",
            "Circuit-breaker state per provider and model: 0 closed, 1 half-open, 2 open.",
            labels=["provider", "model"],
        )


class _RequestLogCollector(Collector):
    """The request-log writer's counts: what waits for the database, what was lost, whether it is up."""

    def __init__(self, dropped: Callable[[], int], pending: Callable[[], int], database_up: Callable[[], bool]) -> None:
        self._dropped = dropped
        self._pending = pending
        self._database_up = database_up

    def describe(self) -> Iterator[Metric]:
        yield from self._families(0, 0, True)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(self._dropped(), self._pending(), self._database_up())

    @staticmethod
    def _families(dropped: int, pending: int, up: bool) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "imagegateway_request_log_dropped",
            "Request log records lost: refused past IMAGEGW_REQUEST_LOG_BUFFER, or after shutdown began.",
            value=dropped,
        )
        yield GaugeMetricFamily(
            "imagegateway_request_log_pending",
            "Request log records accepted and not yet written to the database.",
            value=pending,
        )
        yield GaugeMetricFamily(
            "imagegateway_database_up", "1 while the database answers, 0 while it is unreachable.", value=int(up)
        )
