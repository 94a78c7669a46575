"""The supervisor of ``imagegw serve --workers N``: N full gateway processes on the same ports.

A Python process serves from one core, so a machine's cores are used by several processes, each a
complete replica (its own event loop, gRPC server, REST shim and upstream clients) listening on the
same gRPC and REST ports with SO_REUSEPORT: the kernel spreads new connections over them. Replicas
agree through the shared state they already use across machines (Redis for limits, breakers, cache and
sessions; the database for configs, keys and the log), so more than one worker needs
IMAGEGW_REDIS_URL; without it, each worker would keep its own rate limits and caches, and the start
is refused rather than served wrong.

The supervisor starts worker 0 alone first (it applies migrations and creates the bootstrap admin
key), then the rest; restarts a worker that dies (with a growing pause if it keeps dying at once);
gives up if a worker cannot start at all during the first boot (a bad setting would only loop);
forwards SIGTERM and SIGINT to every worker, which drain as a single process does, and kills those
still running after the grace period. It serves ``/metrics`` on IMAGEGW_METRICS_ADDR for the whole
group (``metrics_merge.py``); each worker's own endpoint is on a private loopback port.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server

from imagegateway_server.app import GatewayProcess, serve
from imagegateway_server.observability.logging import configure_logging
from imagegateway_server.settings import Settings
from imagegateway_server.workers.metrics_merge import WorkerMetricsCollector

log = logging.getLogger(__name__)

# A worker that dies sooner than this after starting counts as crashing at start: the next restart waits.
FAST_FAILURE_SECONDS = 10.0
MAX_RESTART_PAUSE_SECONDS = 30.0
# What a worker may take beyond the drain grace period before it is killed.
KILL_MARGIN_SECONDS = 10.0
POLL_SECONDS = 0.5


class WorkersNeedSharedState(ValueError):
    """More than one worker without IMAGEGW_REDIS_URL."""


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a host without brackets and a port number."""
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


def reserve_port(addr: str) -> tuple[str, socket.socket | None]:
    """``addr`` with a concrete port: port 0 is replaced by a free one, held by a bound (not listening)
    SO_REUSEPORT socket so that nothing else takes it while the workers bind it too."""
    host, port = split_addr(addr)
    if port != 0:
        return addr, None
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind((host, 0))
    chosen = holder.getsockname()[1]
    return (f"[{host}]:{chosen}" if ":" in host else f"{host}:{chosen}"), holder


def _worker_main(settings: Settings, index: int, report: Connection) -> None:
    """A worker process: a gateway that tells the supervisor its private metrics port once it serves."""
    os.environ["IMAGEGW_WORKER_INDEX"] = str(index)

    def started(process: GatewayProcess) -> None:
        report.send(process.metrics_port)
        report.close()

    sys.exit(serve(settings, reuse_port=True, on_started=started))


@dataclasses.dataclass
class _Slot:
    index: int
    process: Any  # multiprocessing's SpawnProcess
    report: Connection
    started_at: float
    metrics_port: int = 0
    serving: bool = False
    # Set once its exit has been dealt with (a restart scheduled), so it is dealt with exactly once.
    ended: bool = False


class WorkerGroup:
    """Starts, watches, restarts and stops the worker processes."""

    def __init__(self, settings: Settings, count: int) -> None:
        self._settings = settings
        self._count = count
        # spawn, not fork: a worker must not inherit the supervisor's threads or a half-made gRPC state.
        self._context = multiprocessing.get_context("spawn")
        self._slots: dict[int, _Slot] = {}
        self._fast_failures: dict[int, int] = {}
        self._restart_at: dict[int, float] = {}
        self.stop_requested = False
        self._stopping_since: float | None = None

    def metrics_ports(self) -> list[int]:
        return [slot.metrics_port for slot in list(self._slots.values()) if slot.serving and slot.process.is_alive()]

    def serving_count(self) -> int:
        return len(self.metrics_ports())

    def _start(self, index: int) -> _Slot:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main, args=(self._settings, index, send), name=f"imagegw-worker-{index}"
        )
        process.start()
        send.close()  # the worker holds the only writing end: its exit reads as EOF here
        slot = _Slot(index, process, receive, time.monotonic())
        self._slots[index] = slot
        return slot

    def _await_serving(self, slot: _Slot) -> bool:
        """Waits for a worker's first report; False when it exits (or a stop comes) before serving."""
        while not self.stop_requested:
            ready = wait([slot.report, slot.process.sentinel], timeout=POLL_SECONDS)
            if slot.report in ready and self._read_report(slot):
                return True
            if slot.process.sentinel in ready and not slot.process.is_alive():
                return False
        return False

    def _read_report(self, slot: _Slot) -> bool:
        try:
            slot.metrics_port = int(slot.report.recv())
        except (EOFError, OSError):
            return False
        slot.serving = True
        return True

    def run(self) -> int:
        """Serves until a stop is requested and every worker has exited; the process exit code."""
        exit_code = 0
        # Worker 0 first, alone: it migrates the database and makes the bootstrap admin key once.
        for index in range(self._count):
            slot = self._start(index)
            if not self._await_serving(slot):
                if not self.stop_requested:
                    slot.process.join()
                    log.error("worker %d could not start (exit code %s); stopping", index, slot.process.exitcode)
                    self.stop_requested, exit_code = True, 1
                break
        else:
            log.info("%d workers serving", self.serving_count())
        while True:
            self._step()
            if self.stop_requested and not any(slot.process.is_alive() for slot in self._slots.values()):
                return exit_code

    def _step(self) -> None:
        if self.stop_requested:
            self._stop_all()
        waitables: list[Any] = []
        for slot in self._slots.values():
            if not slot.ended:
                waitables.append(slot.process.sentinel)
            if not slot.serving and not slot.report.closed:
                waitables.append(slot.report)
        ready = wait(waitables, timeout=POLL_SECONDS) if waitables else []
        now = time.monotonic()
        for slot in list(self._slots.values()):
            if slot.report in ready and not slot.serving:
                if not self._read_report(slot):
                    slot.report.close()
            # Asked of every worker, not only those whose sentinel woke the wait: one that died between
            # two waits is noticed here just the same.
            if not slot.ended and not self.stop_requested and not slot.process.is_alive():
                slot.ended = True
                self._on_death(slot, now)
        for index, when in list(self._restart_at.items()):
            if now >= when and not self.stop_requested:
                del self._restart_at[index]
                log.info("restarting worker %d", index)
                self._start(index)

    def _on_death(self, slot: _Slot, now: float) -> None:
        slot.process.join()
        if not slot.report.closed:
            slot.report.close()
        fast = now - slot.started_at < FAST_FAILURE_SECONDS
        failures = self._fast_failures.get(slot.index, 0) + 1 if fast else 0
        self._fast_failures[slot.index] = failures
        pause = min(MAX_RESTART_PAUSE_SECONDS, 0.5 * 2**failures) if failures else 0.0
        log.error("worker %d exited with code %s; restarting in %.1f s", slot.index, slot.process.exitcode, pause)
        self._restart_at[slot.index] = now + pause
        # The dead worker's slot stays until its replacement starts; it no longer counts as serving.
        slot.serving = False

    def _stop_all(self) -> None:
        now = time.monotonic()
        if self._stopping_since is None:
            self._stopping_since = now
            self._restart_at.clear()
            for slot in self._slots.values():
                if slot.process.is_alive():
                    os.kill(slot.process.pid, signal.SIGTERM)
            return
        if now - self._stopping_since > self._settings.shutdown_grace_seconds + KILL_MARGIN_SECONDS:
            for slot in self._slots.values():
                if slot.process.is_alive():
                    log.error("worker %d still running after the grace period; killing it", slot.index)
                    slot.process.kill()


def supervise(settings: Settings) -> int:
    """``imagegw serve``: one gateway in this process, or ``settings.workers`` under a supervisor."""
    if settings.workers <= 1:
        return serve(settings)
    if not settings.redis_url:
        raise WorkersNeedSharedState(
            f"--workers {settings.workers} needs IMAGEGW_REDIS_URL: workers are separate processes, and "
            "without shared state each would keep its own rate limits, budgets, breakers and cache"
        )
    configure_logging(settings.log_level, settings.log_format)
    grpc_addr, grpc_holder = reserve_port(settings.grpc_addr)
    http_addr, http_holder = reserve_port(settings.http_addr)
    worker_settings = dataclasses.replace(
        settings, grpc_addr=grpc_addr, http_addr=http_addr, metrics_addr="127.0.0.1:0", workers=1
    )
    group = WorkerGroup(worker_settings, settings.workers)
    registry = CollectorRegistry()
    registry.register(WorkerMetricsCollector(group.metrics_ports, group.serving_count))
    metrics_host, metrics_port = split_addr(settings.metrics_addr)
    metrics_server, _thread = start_http_server(metrics_port, addr=metrics_host, registry=registry)

    def request_stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping %d workers", settings.workers, extra={"signal": signal.Signals(signum).name})
        group.stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    print(
        f"imagegw supervising {settings.workers} workers: gRPC on {grpc_addr}, REST on {http_addr}, "
        f"metrics on :{metrics_server.server_port}/metrics",
        file=sys.stderr,
        flush=True,
    )
    try:
        return group.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        metrics_server.shutdown()
        metrics_server.server_close()
        for holder in (grpc_holder, http_holder):
            if holder is not None:
                holder.close()
