"""One ``/metrics`` for a group of worker processes: the supervisor scrapes each worker's private
endpoint and serves the sum, so Prometheus sees the whole process group, never one random worker.

Counters, histograms and summaries add up across workers, as do gauges of amounts (requests in
flight); a gauge that reports a state shared by every worker (a circuit's state, whether a backend is
up) takes the worst value (``GAUGE_MERGE``), and ``*_created`` samples the earliest.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_SECONDS = 2.0
# Gauges that are a state every worker reports, not an amount each holds: the merged value is the
# worst any worker sees (a circuit open anywhere is open; a backend down anywhere is down).
GAUGE_MERGE: dict[str, Callable[[Iterable[float]], float]] = {
    "imagegateway_circuit_state": max,
    "imagegateway_state_backend_up": min,
}


def merge_families(expositions: Sequence[str]) -> list[Metric]:
    """The metric families of several workers' text expositions, merged sample by sample."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[float]]] = {}
    for text in expositions:
        for family in text_string_to_metric_families(text):
            if family.name not in merged:
                merged[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                values[family.name].setdefault(key, []).append(sample.value)
    for name, family in merged.items():
        combine = GAUGE_MERGE.get(name, sum) if family.type == "gauge" else sum
        for (sample_name, labels), observed in values[name].items():
            value = min(observed) if sample_name.endswith("_created") else combine(observed)
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


def scrape(port: int) -> str | None:
    """One worker's exposition, or None when it does not answer in time (it is starting or dying)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=SCRAPE_TIMEOUT_SECONDS) as answer:
            text: str = answer.read().decode("utf-8")
            return text
    except OSError as exc:
        log.warning("worker metrics on port %d did not answer: %s", port, exc)
        return None


class WorkerMetricsCollector(Collector):
    """A prometheus-client collector that yields the merged metrics of the live workers."""

    def __init__(self, ports: Callable[[], Sequence[int]], workers_gauge: Callable[[], int]) -> None:
        self._ports = ports
        self._workers = workers_gauge

    def collect(self) -> Iterator[Metric]:
        texts = [text for text in (scrape(port) for port in self._ports()) if text is not None]
        yield from merge_families(texts)
        live = Metric("imagegateway_workers", "Worker processes serving, of imagegw serve --workers.", "gauge")
        live.add_sample("imagegateway_workers", {}, float(self._workers()))
        yield live
