"""grpc_code label values are Go's names, as go-grpc-middleware exports them (stock dashboards match on them)."""

from __future__ import annotations

import grpc
from prometheus_client import CollectorRegistry

from imagegateway_server.observability.metrics import Metrics, go_code_name

GO_NAMES = {
    "OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
    "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
    "Internal", "Unavailable", "DataLoss", "Unauthenticated",
}  # fmt: skip


def test_every_code_has_its_go_name() -> None:
    assert {go_code_name(code) for code in grpc.StatusCode} == GO_NAMES


def test_cancelled_is_spelled_as_go_spells_it() -> None:
    assert go_code_name(grpc.StatusCode.CANCELLED) == "Canceled"
    assert go_code_name(grpc.StatusCode.OK) == "OK"


def test_handled_series_exist_at_zero_under_go_names() -> None:
    metrics = Metrics(CollectorRegistry())
    series = metrics.grpc_method("unary", "imagegateway.v1.ImageGateway", "GenerateImage")
    series.handled[grpc.StatusCode.CANCELLED].inc()
    samples = {
        sample.labels["grpc_code"]: sample.value
        for family in metrics.registry.collect()
        if family.name == "grpc_server_handled"
        for sample in family.samples
        if sample.name == "grpc_server_handled_total"
    }
    assert set(samples) == GO_NAMES
    assert samples["Canceled"] == 1
    assert "Cancelled" not in samples
