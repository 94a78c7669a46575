"""Prometheus metrics: gRPC server metrics named as go-grpc-middleware does, plus imagegateway_*.

Labels are bounded: provider, model family, outcome, transport, route, gRPC method and code;
never prompts, keys or trace ids.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from collections.abc import Iterable

    from imagegateway_server.domain.errors import RequestFailed
    from imagegateway_server.domain.result import AttemptRecord
    from imagegateway_server.routing.router import RoutedResult

# Image generation takes seconds to minutes; buckets reach 300 s.
UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 180, 300)
GRPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def go_code_name(code: grpc.StatusCode) -> str:
    """grpc.StatusCode.INVALID_ARGUMENT -> "InvalidArgument" (the Go spelling dashboards expect)."""
    special = {grpc.StatusCode.OK: "OK"}
    if code in special:
        return special[code]
    return "".join(part.capitalize() for part in code.name.split("_"))


class Metrics:
    """Every metric of one gateway process, on its own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.grpc_started = Counter("grpc_server_started_total", "RPCs started on the server.",
                                    ["grpc_type", "grpc_service", "grpc_method"], registry=r)
        self.grpc_handled = Counter("grpc_server_handled_total", "RPCs completed on the server, by code.",
                                    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"], registry=r)
        self.grpc_seconds = Histogram("grpc_server_handling_seconds", "RPC handling time.",
                                      ["grpc_type", "grpc_service", "grpc_method"], buckets=GRPC_BUCKETS,
                                      registry=r)
        self.http_requests = Counter("imagegateway_http_requests_total", "REST shim requests.",
                                     ["route", "status"], registry=r)
        self.requests = Counter("imagegateway_requests_total", "Generation requests by outcome.",
                                ["transport", "outcome"], registry=r)
        self.attempts = Counter("imagegateway_attempts_total", "Upstream attempts by provider and outcome.",
                                ["provider", "outcome"], registry=r)
        self.fallbacks = Counter("imagegateway_fallbacks_total", "Requests served by a fallback target.",
                                 ["from_provider", "to_provider"], registry=r)
        self.upstream_seconds = Histogram("imagegateway_upstream_request_duration_seconds",
                                          "Upstream call latency.", ["provider", "outcome"],
                                          buckets=UPSTREAM_BUCKETS, registry=r)
        self.images = Counter("imagegateway_images_generated_total", "Images served.", ["provider"], registry=r)
        self.in_flight = Gauge("imagegateway_in_flight_requests", "Generation requests in progress.", registry=r)

    def init_grpc_methods(self, service: str, methods: dict[str, str]) -> None:
        """Pre-creates the gRPC series at zero so dashboards see every method and code."""
        for method, grpc_type in methods.items():
            self.grpc_started.labels(grpc_type, service, method)
            self.grpc_seconds.labels(grpc_type, service, method)
            for code in grpc.StatusCode:
                self.grpc_handled.labels(grpc_type, service, method, go_code_name(code))

    def _attempts(self, attempts: Iterable[AttemptRecord]) -> None:
        for attempt in attempts:
            outcome = "success" if attempt.error_kind is None else attempt.error_kind.value.lower()
            provider = attempt.provider or "unknown"
            self.attempts.labels(provider, outcome).inc()
            self.upstream_seconds.labels(provider, outcome).observe(attempt.latency_ms / 1000)

    def observe_success(self, transport: str, routed: RoutedResult) -> None:
        self.requests.labels(transport, "success").inc()
        self._attempts(routed.attempts)
        self.images.labels(routed.provider).inc(len(routed.result.images))
        if routed.fallback_used and routed.attempts:
            self.fallbacks.labels(routed.attempts[0].provider or "unknown", routed.provider).inc()

    def observe_failure(self, transport: str, failure: RequestFailed) -> None:
        self.requests.labels(transport, "failure").inc()
        self._attempts(failure.attempts)
