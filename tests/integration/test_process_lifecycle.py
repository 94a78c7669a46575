"""The `imagegw serve` process: first-start admin key, graceful SIGTERM drain, state kept across restarts."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegateway import ImageGatewayClient
from tests.conftest import Emulators, eventually
from tests.gateway_processes import IMAGEGW, ServeProcess, free_port, serve_environment


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "data"


def test_first_start_prints_an_admin_key_once_and_it_works(data_dir: Path) -> None:
    first = ServeProcess(data_dir, admin_key=None)
    code, stderr = first.stop()
    assert code == 0
    (line,) = [line for line in stderr.splitlines() if "admin API key" in line]
    key = line.rsplit(" ", 1)[-1]
    assert key.startswith("igw_")
    assert oct((data_dir).stat().st_mode & 0o777) == "0o700"

    second = ServeProcess(data_dir, admin_key=None)
    try:
        with ImageGatewayClient(f"127.0.0.1:{second.grpc_port}", api_key=key) as client:
            assert [k.scope for k in client.iter_api_keys()] == [1]
    finally:
        code, stderr = second.stop()
    assert code == 0 and "admin API key" not in stderr and key not in stderr


def test_sigterm_drains_in_flight_requests_and_flushes_the_log(data_dir: Path, emulators: Emulators) -> None:
    admin_key = "igw_lifecycle_admin_key_0123456789abcdefghijk"
    served = ServeProcess(data_dir, admin_key)
    with ImageGatewayClient(f"127.0.0.1:{served.grpc_port}", api_key=admin_key) as client:
        client.create_virtual_key(
            "slow-stability",
            "stability-ai",
            "sk-test-stability-0123456789abcdef",
            base_url=emulators.stability.base_url,
        )
    from tests.emulators import Fault

    emulators.stability.inject(Fault.latency(1500))
    result: dict[str, httpx.Response] = {}

    def call() -> None:
        result["response"] = httpx.post(
            f"http://127.0.0.1:{served.http_port}/v1/images/generations",
            headers={
                "x-portkey-api-key": admin_key,
                "x-portkey-virtual-key": "slow-stability",
                "x-portkey-trace-id": "drain-me",
            },
            json={"prompt": "slow", "model": "stable-diffusion-v1-6", "response_format": "b64_json"},
            timeout=30,
        )

    caller = threading.Thread(target=call)
    caller.start()
    eventually(lambda: emulators.stability.requests)  # the request reached the provider
    code, stderr = served.stop()
    caller.join(30)
    assert code == 0, stderr
    assert result["response"].status_code == 200
    assert "sk-test-stability" not in stderr

    restarted = ServeProcess(data_dir, admin_key)
    try:
        with ImageGatewayClient(f"127.0.0.1:{restarted.grpc_port}", api_key=admin_key) as client:
            (entry,) = client.list_logs(trace_id="drain-me").logs
            assert entry.status_code == 200
            assert client.get_virtual_key("slow-stability").provider == "stability-ai"
    finally:
        assert restarted.stop()[0] == 0


def test_an_open_health_watch_does_not_hold_shutdown_for_the_grace_period(data_dir: Path) -> None:
    served = ServeProcess(data_dir, admin_key="igw_watch_admin_key_0123456789abcdefghijklm")
    seen: list[int] = []
    ended = threading.Event()

    def watch() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
            try:
                for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60):
                    seen.append(reply.status)
            except grpc.RpcError:
                pass
        ended.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    eventually(lambda: seen)  # SERVING arrived: the stream is open
    started = time.monotonic()
    code, stderr = served.stop()
    assert code == 0, stderr
    assert time.monotonic() - started < 8  # the grace period is 10 s; an open watch must not use it up
    assert ended.wait(10)
    assert seen[0] == health_pb2.HealthCheckResponse.SERVING
    assert seen[-1] == health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.mark.parametrize(
    ("setting", "url", "message"),
    [
        (
            "IMAGEGW_REDIS_URL",
            "http://:hunter2@cache.internal:6379/0",
            "IMAGEGW_REDIS_URL must start with redis://, rediss:// or unix://",
        ),
        (
            "IMAGEGW_DATABASE_URL",
            "postgresql://igw:hunter2@127.0.0.1:1/igw?connect_timeout=2",
            "cannot open the database postgresql://igw@127.0.0.1:1/igw",
        ),
    ],
)
def test_a_state_backend_that_is_not_available_yet_stops_the_start_with_one_line(
    data_dir: Path, setting: str, url: str, message: str
) -> None:
    env = serve_environment(data_dir, free_port(), free_port(), free_port())
    env[setting] = url
    finished = subprocess.run([IMAGEGW, "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 1, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], finished.stderr
    assert "hunter2" not in finished.stderr and "Traceback" not in finished.stderr


def test_a_url_that_cannot_be_redis_is_refused_before_anything_is_created(data_dir: Path) -> None:
    env = serve_environment(data_dir, free_port(), free_port(), free_port())
    env["IMAGEGW_REDIS_URL"] = "127.0.0.1:6379"
    assert subprocess.run([IMAGEGW, "serve"], env=env, capture_output=True, timeout=60).returncode == 1
    assert not data_dir.exists()


def test_serve_help_names_the_redis_and_postgresql_url_forms() -> None:
    shown = subprocess.run([IMAGEGW, "serve", "--help"], capture_output=True, text=True, timeout=60, check=True)
    text = " ".join(shown.stdout.split())
    assert "redis://" in text and "rediss://" in text and "IMAGEGW_REDIS_TIMEOUT_SECONDS" in text
    assert "postgresql://USER:PASSWORD@HOST:PORT/DB" in text
    assert "not supported yet" not in text
