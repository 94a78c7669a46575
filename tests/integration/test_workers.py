"""`imagegw serve --workers 2` as a user runs it: two real worker processes on one Redis, sharing the
gRPC and REST ports, one /metrics for the group, a killed worker restarted, SIGTERM draining all."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from imagegateway import ImageGatewayClient
from tests.conftest import OPENAI_SECRET, Emulators, eventually
from tests.gateway_processes import IMAGEGW, Supervised, free_port, serve_environment

ADMIN_KEY = "igw_workers_test_admin_key_0123456789abcdefghijkl"


@pytest.fixture
def two_workers(tmp_path: Path, redis_url: str) -> Iterator[Supervised]:
    supervised = Supervised(tmp_path / "data", ADMIN_KEY, redis_url, 2)
    try:
        yield supervised
    finally:
        if supervised.process.poll() is None:
            supervised.process.kill()
            supervised.process.wait(10)


def _generate(base: str, config: str) -> int:
    # A new connection each time: SO_REUSEPORT spreads connections, not requests, over the workers.
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post(
            "/images/generations",
            headers={"x-portkey-api-key": ADMIN_KEY, "x-portkey-config": config},
            json={"prompt": "a lighthouse", "size": "256x256", "response_format": "b64_json"},
        )
    return answer.status_code


def test_two_workers_share_the_ports_restart_when_killed_and_drain_on_sigterm(
    two_workers: Supervised, emulators: Emulators
) -> None:
    workers = eventually(lambda: w if len(w := two_workers.workers()) == 2 else None, timeout=30)
    eventually(lambda: two_workers.metric("imagegateway_workers") == 2, timeout=30)
    with ImageGatewayClient(two_workers.grpc_target, api_key=ADMIN_KEY) as admin:
        assert admin.is_serving()
        config = admin.create_config(
            "workers-openai",
            {
                "strategy": {"mode": "single"},
                "targets": [
                    {
                        "provider": "openai",
                        "api_key": OPENAI_SECRET,
                        "custom_host": emulators.openai.base_url,
                        "override_params": {"model": "dall-e-2"},
                    }
                ],
            },
        ).id
    statuses = [_generate(two_workers.rest_base, config) for _ in range(24)]
    assert statuses == [200] * 24
    # One /metrics for the group: the requests of both workers, counted once each.
    eventually(lambda: two_workers.metric("imagegateway_requests_total") == 24, timeout=15)
    served = {pid: _served_requests(two_workers, pid) for pid in workers}
    assert sum(served.values()) == 24 and all(served.values()), f"the kernel spreads connections: {served}"

    os.kill(workers[1], signal.SIGKILL)
    try:
        replaced = eventually(
            lambda: w if len(w := two_workers.workers()) == 2 and workers[1] not in w else None, timeout=60
        )
        eventually(lambda: two_workers.metric("imagegateway_workers") == 2, timeout=60)
    except AssertionError:
        said = two_workers.log_tail()
        raise AssertionError(f"no worker replaced the killed one; the supervisor said:\n{said}") from None
    assert [_generate(two_workers.rest_base, config) for _ in range(6)] == [200] * 6
    assert two_workers.stop() == 0
    for pid in replaced:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def _served_requests(supervised: Supervised, pid: int) -> float:
    """The requests worker ``pid`` served, from its own private metrics endpoint (found with ss)."""
    shared = {supervised.grpc_target.rsplit(":", 1)[1], supervised.rest_base.rsplit(":", 1)[1].split("/")[0]}
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, timeout=10, check=True).stdout
    ports = {line.split()[3].rsplit(":", 1)[1] for line in listening.splitlines() if f"pid={pid}," in line} - shared
    total = 0.0
    for port in ports:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        total += sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "imagegateway_requests_total"
        )
    return total


def test_more_than_one_worker_without_redis_is_refused_with_the_reason(tmp_path: Path) -> None:
    env = serve_environment(tmp_path / "data", free_port(), free_port(), free_port())
    done = subprocess.run(
        [IMAGEGW, "serve", "--workers", "2"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "needs IMAGEGW_REDIS_URL" in done.stderr and "Traceback" not in done.stderr
