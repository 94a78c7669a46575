"""Shutdown and restart of a real `imagegw serve` process under load.

SIGTERM: health turns NOT_SERVING at once, requests already accepted finish (or, if the upstream is
slower than IMAGEGW_SHUTDOWN_GRACE_SECONDS, are stopped at the deadline with a clear status: gRPC
UNAVAILABLE, REST 503 in OpenAI's envelope), every one of them is in the log after a restart, and the
process exits 0. SIGKILL in the middle of writes: everything the gateway acknowledged (configs, keys)
or had written (log records a listing had already shown) is there after a restart (SQLite WAL), and
the restarted gateway serves its first request.

How long a restart takes is not asserted: on a loaded 2-core machine the interpreter's imports alone
have taken over 10 s (the database's part, SQLite's WAL recovery included, stays under 50 ms; see
docs/postgresql.md, "Restarts after kill -9").
"""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegateway import ImageGatewayClient
from imagegateway.v1 import images_pb2, service_pb2_grpc
from tests.conftest import STABILITY_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.gateway_processes import ServeProcess

ADMIN_KEY = "igw_shutdown_admin_key_0123456789abcdefghijklm"
CALLERS = 6  # of each transport


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _serve(data_dir: Path, grace: float) -> ServeProcess:
    return ServeProcess(data_dir, ADMIN_KEY, {"IMAGEGW_SHUTDOWN_GRACE_SECONDS": str(grace)})


def _admin(served: ServeProcess) -> ImageGatewayClient:
    return ImageGatewayClient(f"127.0.0.1:{served.grpc_port}", api_key=ADMIN_KEY)


class Load:
    """Generation requests over REST and gRPC in threads; each outcome kept by trace id."""

    def __init__(self, served: ServeProcess, virtual_key: str, tag: str) -> None:
        self.outcomes: dict[str, object] = {}
        self.trace_ids = [
            f"{tag}-{kind}-{i}-{uuid.uuid4().hex[:6]}" for kind in ("rest", "grpc") for i in range(CALLERS)
        ]
        self._threads = [
            threading.Thread(target=self._rest if "-rest-" in t else self._grpc, args=(served, virtual_key, t))
            for t in self.trace_ids
        ]

    def _rest(self, served: ServeProcess, virtual_key: str, trace_id: str) -> None:
        try:
            self.outcomes[trace_id] = httpx.post(
                f"http://127.0.0.1:{served.http_port}/v1/images/generations",
                headers={
                    "x-portkey-api-key": ADMIN_KEY,
                    "x-portkey-virtual-key": virtual_key,
                    "x-portkey-trace-id": trace_id,
                },
                json={"prompt": "slow", "model": "stable-diffusion-v1-6", "response_format": "b64_json"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            self.outcomes[trace_id] = exc

    def _grpc(self, served: ServeProcess, virtual_key: str, trace_id: str) -> None:
        request = images_pb2.GenerateImageRequest(
            parameters=images_pb2.ImageParameters(prompt="slow", model="stable-diffusion-v1-6"),
            routing=images_pb2.Routing(virtual_key=virtual_key),
            trace_id=trace_id,
        )
        with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
            try:
                self.outcomes[trace_id] = service_pb2_grpc.ImageGatewayStub(channel).GenerateImage(
                    request, metadata=(("authorization", f"Bearer {ADMIN_KEY}"),), timeout=60
                )
            except grpc.RpcError as exc:
                self.outcomes[trace_id] = exc

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def join(self) -> None:
        for thread in self._threads:
            thread.join(60)
        assert len(self.outcomes) == len(self.trace_ids), "every caller got an answer"


class HealthWatch:
    """Follows grpc.health.v1 Watch, as a load balancer does, recording when each status arrived."""

    def __init__(self, served: ServeProcess) -> None:
        self.seen: list[tuple[float, int]] = []
        self._channel = grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}")
        self._stream = health_pb2_grpc.HealthStub(self._channel).Watch(health_pb2.HealthCheckRequest(), timeout=60)
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for message in self._stream:
                self.seen.append((time.monotonic(), message.status))
        except grpc.RpcError:
            pass  # the server went away: the stream ends

    @property
    def not_serving(self) -> list[float]:
        """When NOT_SERVING arrived (empty until it has)."""
        return [at for at, status in self.seen if status == health_pb2.HealthCheckResponse.NOT_SERVING]

    def close(self) -> None:
        self._stream.cancel()
        self._channel.close()


def _stop_under_load(served: ServeProcess, load: Load, emulators: Emulators) -> tuple[float, int, str, HealthWatch]:
    watch = HealthWatch(served)
    eventually(lambda: watch.seen)  # SERVING, before anything happens
    load.start()
    eventually(lambda: len(emulators.stability.requests) >= len(load.trace_ids), timeout=30)
    signalled = time.monotonic()
    served.process.send_signal(signal.SIGTERM)
    eventually(lambda: watch.not_serving, timeout=10)
    # A watcher that stays would hold gRPC's drain open for the whole grace period; a load balancer that
    # saw NOT_SERVING goes away, and so does this one.
    watch.close()
    code, output = served.wait_exit(60)
    load.join()
    return signalled, code, output, watch


def _logs_after_restart(data_dir: Path, trace_ids: list[str]) -> dict[str, object]:
    restarted = _serve(data_dir, 5)
    try:
        with _admin(restarted) as admin:
            return {t: admin.list_logs(trace_id=t).logs for t in trace_ids}
    finally:
        assert restarted.stop()[0] == 0


def test_sigterm_under_load_turns_health_not_serving_and_finishes_accepted_requests(
    data_dir: Path, emulators: Emulators
) -> None:
    served = _serve(data_dir, 10)
    with _admin(served) as admin:
        vk = admin.create_virtual_key(
            "drain", "stability-ai", STABILITY_SECRET, base_url=emulators.stability.base_url
        ).id
    emulators.stability.inject(Fault.latency(1_500), times=None)  # in flight when SIGTERM lands
    load = Load(served, vk, "drain")

    signalled, code, stderr, watch = _stop_under_load(served, load, emulators)

    assert code == 0, stderr
    assert watch.not_serving[0] - signalled < 1.0, "health turns NOT_SERVING at once, before the drain"
    for trace_id, outcome in load.outcomes.items():
        if isinstance(outcome, httpx.Response):
            assert outcome.status_code == 200, (trace_id, outcome.text)
        else:
            assert isinstance(outcome, images_pb2.GenerateImageResponse) and outcome.images, (trace_id, outcome)
    logs = _logs_after_restart(data_dir, load.trace_ids)
    assert all(len(entries) == 1 and entries[0].status_code == 200 for entries in logs.values()), logs  # type: ignore[attr-defined]


def test_requests_slower_than_the_grace_period_are_stopped_with_a_clear_status(
    data_dir: Path, emulators: Emulators
) -> None:
    grace = 2.0
    served = _serve(data_dir, grace)
    with _admin(served) as admin:
        vk = admin.create_virtual_key(
            "stuck", "stability-ai", STABILITY_SECRET, base_url=emulators.stability.base_url
        ).id
    emulators.stability.inject(Fault.latency(30_000), times=None)  # far longer than the grace period
    load = Load(served, vk, "stuck")

    signalled, code, stderr, _ = _stop_under_load(served, load, emulators)

    assert code == 0, stderr
    assert time.monotonic() - signalled < grace + 10, "stopped at the grace deadline, not the upstream's"
    for trace_id, outcome in load.outcomes.items():
        if isinstance(outcome, httpx.Response):
            assert outcome.status_code == 503, (trace_id, outcome.text)
            error = outcome.json()["error"]
            assert set(error) >= {"message", "type", "param", "code"}
            assert error["code"] == "shutting_down" and "shutting down" in error["message"]
        else:
            assert isinstance(outcome, grpc.RpcError), (trace_id, outcome)
            assert outcome.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)  # type: ignore[attr-defined]
    logs = _logs_after_restart(data_dir, load.trace_ids)
    for trace_id, entries in logs.items():
        (entry,) = entries  # type: ignore[misc]
        assert entry.status_code == 503, (trace_id, entry)
        assert entry.error_kind == images_pb2.ERROR_KIND_UNAVAILABLE


def _keep_writing(
    served: ServeProcess, stop: threading.Event, acknowledged: dict[str, list[str]], virtual_key: str
) -> Callable[[], None]:
    def write() -> None:
        with _admin(served) as admin:
            while not stop.is_set():
                try:
                    name = f"kill-{uuid.uuid4().hex[:8]}"
                    config = admin.create_config(name, {"virtual_key": virtual_key}, timeout=5)
                    acknowledged["configs"].append(config.id)
                    key = admin.create_virtual_key(name, "stability-ai", STABILITY_SECRET, timeout=5)
                    acknowledged["virtual_keys"].append(key.id)
                    api_key = admin.create_api_key(name, "generate", timeout=5)
                    acknowledged["api_keys"].append(api_key.api_key.id)
                    trace_id = name
                    admin.generate_image(prompt="x", virtual_key=virtual_key, trace_id=trace_id, timeout=5)
                    acknowledged["generated"].append(trace_id)
                    # Records a listing shows are written; those must survive the kill.
                    for entry in admin.list_logs(page_size=50).logs:
                        acknowledged["logged"].append(entry.trace_id)
                except Exception:
                    if not stop.is_set():
                        raise
                    return  # the process was killed under us: that is the point

    return write


def test_kill_9_under_write_load_keeps_everything_acknowledged(data_dir: Path, emulators: Emulators) -> None:
    served = _serve(data_dir, 5)
    with _admin(served) as admin:
        vk = admin.create_virtual_key(
            "kill", "stability-ai", STABILITY_SECRET, base_url=emulators.stability.base_url
        ).id
    acknowledged: dict[str, list[str]] = {
        "configs": [],
        "virtual_keys": [],
        "api_keys": [],
        "generated": [],
        "logged": [],
    }
    stop = threading.Event()
    writers = [threading.Thread(target=_keep_writing(served, stop, acknowledged, vk)) for _ in range(3)]
    for writer in writers:
        writer.start()
    eventually(lambda: len(acknowledged["generated"]) >= 15 and acknowledged["logged"], timeout=60)
    stop.set()  # writers still mid-call are cut off by the kill; none starts another after it
    served.kill()  # SIGKILL: no shutdown path runs at all
    for writer in writers:
        writer.join(30)
    assert served.process.returncode == -signal.SIGKILL

    restarted = _serve(data_dir, 5)
    try:
        with _admin(restarted) as admin:
            # It serves at once: the first request after the restart succeeds.
            assert admin.generate_image(prompt="after", virtual_key=vk, timeout=10).images
            configs = {c.id for c in admin.iter_configs()}
            virtual_keys = {k.id for k in admin.iter_virtual_keys()}
            api_keys = {k.id for k in admin.iter_api_keys()}
            logged = {entry.trace_id for entry in admin.iter_logs(page_size=200)}
    finally:
        assert restarted.stop()[0] == 0
    assert set(acknowledged["configs"]) <= configs
    assert set(acknowledged["virtual_keys"]) <= virtual_keys
    assert set(acknowledged["api_keys"]) <= api_keys
    assert set(acknowledged["logged"]) <= logged
