"""The Grafana dashboard in the repo queries only metrics and labels the gateway exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.observability.metrics import Metrics
from tests.unit.test_metrics_accounting import FIRST, SECOND, attempt, served

DASHBOARD = Path(__file__).parents[2] / "server/imagegateway_server/observability/grafana-dashboard.json"
_METRIC = re.compile(r"\b((?:imagegateway|grpc_server)_[a-z_]+)")
_BY = re.compile(r"\bby \(([^)]*)\)")
_MATCHER = re.compile(r"\{([^}]*)\}")


def exported() -> dict[str, set[str]]:
    """Sample names a gateway exposes once every metric has moved, with their label names."""
    metrics = Metrics()
    metrics.set_known_models(["dall-e-3"])
    metrics.init_grpc_methods("imagegateway.v1.ImageGateway", {"GenerateImage": "unary"})
    metrics.watch_circuits(lambda: [("openai", "dall-e-3", "closed")])
    metrics.observe_success(
        "rest",
        served(
            attempt(FIRST, "stability-ai", "core", ErrorKind.UNAVAILABLE),
            attempt(SECOND, "openai", "dall-e-3", ErrorKind.RATE_LIMITED),
            attempt(SECOND, "openai", "dall-e-3", retry_index=1),
        ),
        config="cfg",
        cost_usd=0.04,
    )
    metrics.http_requests.labels("/v1/images/generations", "200").inc()
    metrics.auth_failures.labels("rest", "missing").inc()
    names: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", ())]


def test_the_dashboard_is_valid_json_with_panels_on_a_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "imagegateway" and dashboard["panels"]
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    assert len(expressions()) >= 15


def test_every_metric_the_dashboard_queries_is_exported_with_the_labels_it_uses() -> None:
    available = exported()
    for expr in expressions():
        used = set(_METRIC.findall(expr))
        assert used, expr
        for name in used:
            assert name in available, f"{name} (in {expr}) is not exported"
        labels = {label.strip() for group in _BY.findall(expr) for label in group.split(",")} - {"le"}
        labels |= {m.split("=")[0].rstrip("!~") for group in _MATCHER.findall(expr) for m in group.split(",")}
        known = set().union(*(available[name] for name in used))
        assert labels <= known, f"{expr} uses labels {labels - known}"


def test_the_issue_names_are_on_the_dashboard() -> None:
    text = " ".join(expressions())
    for name in (
        "imagegateway_fallbacks_total",
        "imagegateway_upstream_request_duration_seconds_bucket",
        "imagegateway_http_requests_total",
        "imagegateway_cost_usd_total",
    ):
        assert name in text
