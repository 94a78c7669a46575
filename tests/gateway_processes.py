"""Real `imagegw serve` processes for the process-level tests: free ports, an environment without the
caller's IMAGEGW_ settings, a started server that is known to serve (``ServeProcess``), and a
supervisor of N workers (``Supervised``).

Each process writes its stdout and stderr to one file beside its data directory, never to a pipe
nobody reads: a gateway logging a request per line would otherwise block on a full pipe buffer.

A start is over when the process prints its "imagegw serving" line, then one health Check confirms
it. The Check's channel reconnects quickly and has subchannels of its own: a channel with grpc's
defaults that first tried before the port was open waits out a reconnect backoff (1 s, growing 1.6x
per failure, and shared by every channel to the same address through grpc's global subchannel
pool), which on a loaded machine added up to 60% to a restart's measured time (a gateway serving
after 10 s was seen after 16 s).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

IMAGEGW = str(Path(sys.executable).with_name("imagegw"))
SERVING_LINE = "imagegw serving gRPC on "
# Generous: the interpreter's imports alone take over 10 s on a 2-core machine under full load.
START_TIMEOUT = 90.0
# A channel that polls a port which may not be open yet: short reconnect backoff, its own subchannels.
FAST_RECONNECT = (
    ("grpc.initial_reconnect_backoff_ms", 50),
    ("grpc.min_reconnect_backoff_ms", 50),
    ("grpc.max_reconnect_backoff_ms", 250),
    ("grpc.use_local_subchannel_pool", 1),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_environment(data_dir: Path, grpc_port: int, http_port: int, metrics_port: int) -> dict[str, str]:
    """This process's environment without any IMAGEGW_ setting, plus the ports and data dir of one server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEGW_")}
    env.update(
        {
            "IMAGEGW_GRPC_ADDR": f"127.0.0.1:{grpc_port}",
            "IMAGEGW_HTTP_ADDR": f"127.0.0.1:{http_port}",
            "IMAGEGW_METRICS_ADDR": f"127.0.0.1:{metrics_port}",
            "IMAGEGW_DATA_DIR": str(data_dir),
            "IMAGEGW_ALLOWED_UPSTREAM_HOSTS": "127.0.0.1",
            "IMAGEGW_SHUTDOWN_GRACE_SECONDS": "10",
            "IMAGEGW_LOG_FORMAT": "json",
        }
    )
    return env


def is_serving(grpc_target: str, timeout: float = 1.0) -> bool:
    """One grpc.health.v1 Check on a fresh fast-reconnecting channel: SERVING or not."""
    with grpc.insecure_channel(grpc_target, options=FAST_RECONNECT) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


class ServeProcess:
    """`imagegw serve` on free loopback ports; the constructor returns once it serves (``wait=False``:
    call ``wait_serving``, so that several processes can start at once)."""

    def __init__(
        self, data_dir: Path, admin_key: str | None, extra_env: dict[str, str] | None = None, *, wait: bool = True
    ) -> None:
        self.data_dir = data_dir
        self.grpc_port, self.http_port, self.metrics_port = free_port(), free_port(), free_port()
        env = serve_environment(data_dir, self.grpc_port, self.http_port, self.metrics_port)
        if admin_key:
            env["IMAGEGW_ADMIN_KEY"] = admin_key
        env.update(extra_env or {})
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.output_path = data_dir.parent / f"{data_dir.name}-{self.grpc_port}.out"
        self.started = time.monotonic()
        self.serving_after: float | None = None  # seconds from launch to the serving line
        with self.output_path.open("wb") as output:
            self.process = subprocess.Popen([IMAGEGW, "serve"], env=env, stdout=output, stderr=subprocess.STDOUT)
        if wait:
            self.wait_serving()

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/v1"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/health"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def output(self) -> str:
        """Everything the process printed so far (its log, the admin key line, ...)."""
        return self.output_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = START_TIMEOUT) -> None:
        deadline = self.started + timeout
        while self.serving_after is None:
            if SERVING_LINE in self.output():
                self.serving_after = time.monotonic() - self.started
            elif self.process.poll() is not None:
                raise AssertionError(f"imagegw exited early ({self.process.returncode}): {self.output()[-4000:]}")
            elif time.monotonic() > deadline:
                raise AssertionError(f"imagegw did not start serving in {timeout:.0f} s: {self.output()[-4000:]}")
            else:
                time.sleep(0.05)
        while not is_serving(self.grpc_target):
            if time.monotonic() > deadline:
                raise AssertionError("imagegw said it serves but its gRPC health is not SERVING")
            time.sleep(0.05)

    def wait_exit(self, timeout: float = 60) -> tuple[int, str]:
        """The exit code and everything printed, once the process has ended."""
        code = self.process.wait(timeout)
        return code, self.output()

    def stop(self) -> tuple[int, str]:
        """SIGTERM (a graceful drain), then the exit code and everything printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(30)

    def kill(self) -> None:
        """SIGKILL: no shutdown path runs at all."""
        self.process.kill()
        self.process.wait(30)


SUPERVISOR_LINE = re.compile(r"supervising (\d+) workers: gRPC on (\S+), REST on (\S+), metrics on :(\d+)/metrics")


class Supervised:
    """`imagegw serve --workers N` in a subprocess, with its addresses read from what it prints."""

    def __init__(self, data_dir: Path, admin_key: str | None, redis_url: str, workers: int) -> None:
        env = serve_environment(data_dir, free_port(), free_port(), free_port())
        env.update(IMAGEGW_REDIS_URL=redis_url, IMAGEGW_SHUTDOWN_GRACE_SECONDS="5")
        if admin_key:
            env["IMAGEGW_ADMIN_KEY"] = admin_key
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        # Every worker's log too: a failing test can show what the supervisor and its workers said.
        self.log_path = data_dir.parent / "supervisor.log"
        with self.log_path.open("wb") as output:
            self.process = subprocess.Popen(
                [IMAGEGW, "serve", "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL, stderr=output
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not (match := SUPERVISOR_LINE.search(self.log_path.read_text(errors="replace"))):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"imagegw serve --workers exited with {self.process.returncode}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"the supervisor never said where it serves: {self.log_tail()}")
            time.sleep(0.05)
        self.grpc_target, self.rest_base = match.group(2), f"http://{match.group(3)}/v1"
        self.metrics_url = f"http://127.0.0.1:{match.group(4)}/metrics"

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def workers(self) -> list[int]:
        """The worker processes' pids (the supervisor's children that serve)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return [int(pid) for pid in children if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text()]

    def metric(self, name: str) -> float:
        """``name``'s samples summed, from the group's one /metrics."""
        text = httpx.get(self.metrics_url, timeout=10).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == name
        )

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)
