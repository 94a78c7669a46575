"""Runs a real gateway process (gRPC, REST shim, metrics) on its own loop in a thread, for tests.

Tests reach it only over sockets, like any client; sync clients (the OpenAI SDK, the CLI) and
async ones work alike because the gateway's loop is not the test's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from imagegateway_server.app import GatewayProcess
from imagegateway_server.event_loop import loop_factory
from imagegateway_server.settings import Settings

TEST_ADMIN_KEY = "igw_test_admin_key_0123456789abcdefghijklmnopqrstu"


class GatewayThread:
    """A started GatewayProcess; ``grpc_target``, ``rest_base_url`` and ``metrics_url`` reach it."""

    def __init__(self, data_dir: Path, **overrides: object) -> None:
        fields = {
            "grpc_addr": "127.0.0.1:0",
            "http_addr": "127.0.0.1:0",
            "metrics_addr": "127.0.0.1:0",
            "data_dir": data_dir,
            "admin_key": TEST_ADMIN_KEY,
            "allowed_upstream_hosts": ("127.0.0.1",),
            "shutdown_grace_seconds": 5.0,
            "log_format": "text",
            # Breakers off: the suite's gateway is shared, and one test's injected failures must not
            # open a circuit that later tests expect to call. tests/integration/test_breakers.py
            # turns them on in its own gateway.
            "breaker_consecutive_failures": 0,
            "breaker_failure_rate": 0.0,
        }
        fields.update(overrides)
        self.settings = Settings(**fields)  # type: ignore[arg-type]
        self.admin_key = TEST_ADMIN_KEY
        # The loop production runs (uvloop unless the settings say asyncio), so tests see what users get.
        self._loop = loop_factory(self.settings.event_loop)()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway", daemon=True)
        self.process = GatewayProcess(self.settings)

    def _call(self, coro: object, timeout: float = 60) -> object:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)  # type: ignore[arg-type]

    def start(self) -> GatewayThread:
        self._thread.start()
        self._call(self.process.start())
        return self

    def stop(self) -> None:
        try:
            self._call(self.process.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.process.grpc_port}"

    @property
    def rest_base_url(self) -> str:
        return f"http://127.0.0.1:{self.process.http_port}/v1"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.process.metrics_port}/metrics"


@contextlib.contextmanager
def running_gateway(data_dir: Path, **overrides: object) -> Iterator[GatewayThread]:
    gateway = GatewayThread(data_dir, **overrides).start()
    try:
        yield gateway
    finally:
        gateway.stop()
