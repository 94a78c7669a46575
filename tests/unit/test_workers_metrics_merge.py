"""The supervisor's /metrics: several workers' expositions merged into one process group's."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from imagegateway_server.settings import Settings
from imagegateway_server.workers.metrics_merge import merge_families
from imagegateway_server.workers.supervisor import WorkersNeedSharedState, reserve_port, split_addr, supervise


def _worker(requests: int, in_flight: int, circuit: int, latencies: list[float]) -> str:
    registry = CollectorRegistry()
    counter = Counter("imagegateway_requests", "Requests.", ["provider"], registry=registry)
    counter.labels("openai").inc(requests)
    Gauge("imagegateway_in_flight_requests", "In flight.", registry=registry).set(in_flight)
    Gauge("imagegateway_circuit_state", "Circuit.", ["provider"], registry=registry).labels("openai").set(circuit)
    histogram = Histogram("imagegateway_upstream_seconds", "Latency.", buckets=(0.1, 1.0), registry=registry)
    for value in latencies:
        histogram.observe(value)
    return generate_latest(registry).decode()


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_counters_histograms_and_amount_gauges_add_up_and_state_gauges_take_the_worst() -> None:
    merged_registry = CollectorRegistry()

    class Merged:
        def collect(self):  # type: ignore[no-untyped-def]
            return merge_families([_worker(3, 1, 0, [0.05, 2.0]), _worker(4, 2, 2, [0.5])])

    merged_registry.register(Merged())  # type: ignore[arg-type]
    samples = _samples(generate_latest(merged_registry).decode())
    assert samples[("imagegateway_requests_total", (("provider", "openai"),))] == 7
    assert samples[("imagegateway_in_flight_requests", ())] == 3
    assert samples[("imagegateway_circuit_state", (("provider", "openai"),))] == 2  # open somewhere: open
    assert samples[("imagegateway_upstream_seconds_count", ())] == 3
    assert samples[("imagegateway_upstream_seconds_bucket", (("le", "0.1"),))] == 1
    assert samples[("imagegateway_upstream_seconds_bucket", (("le", "1.0"),))] == 2
    assert samples[("imagegateway_upstream_seconds_sum", ())] == 2.55


def test_more_than_one_worker_without_redis_is_refused_with_the_reason() -> None:
    try:
        supervise(Settings(workers=2))
    except WorkersNeedSharedState as exc:
        assert "IMAGEGW_REDIS_URL" in str(exc) and "rate limits" in str(exc)
    else:
        raise AssertionError("two workers on process-local state must be refused")


def test_port_zero_is_reserved_as_a_concrete_port_the_workers_can_share() -> None:
    addr, holder = reserve_port("127.0.0.1:0")
    assert holder is not None
    try:
        host, port = split_addr(addr)
        assert host == "127.0.0.1" and port > 0
    finally:
        holder.close()
    assert reserve_port("0.0.0.0:50051") == ("0.0.0.0:50051", None)
    assert split_addr("[::1]:8787") == ("::1", 8787)


def test_auto_means_the_cpus_this_process_may_use() -> None:
    import os

    assert Settings.load(environ={"IMAGEGW_WORKERS": "auto"}).workers == len(os.sched_getaffinity(0))
    assert Settings.load(environ={"IMAGEGW_WORKERS": "3"}).workers == 3
