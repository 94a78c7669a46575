"""A real redis-server for tests, started in a temp dir on a free port (no persistence), or the one
``IMAGEGW_TEST_REDIS_URL`` names (then ``kill``/``start`` are not available and those tests skip).

``kill`` stops it with SIGKILL and ``start`` brings it back on the same port, empty, as a Redis
restart in production would.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from tests.certificates import Issued, TestCA

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
TEST_URL_VARIABLE = "IMAGEGW_TEST_REDIS_URL"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process (or an external server); ``url`` reaches it."""

    def __init__(
        self, directory: Path | None, *, password: str = "", tls: TestCA | None = None, external_url: str = ""
    ) -> None:
        self._directory = directory
        self.password = password
        self.port = 0 if external_url else _free_port()
        self._tls: Issued | None = None
        self._tls_ca = tls
        credentials = f":{password}@" if password else ""
        self.url = external_url or f"redis://{credentials}127.0.0.1:{self.port}/0"
        if tls is not None:
            # TLS only: the plain port is off, and the client checks the server against the test CA.
            self._tls = tls.issue("redis", ips=("127.0.0.1",))
            self.url = f"rediss://{credentials}127.0.0.1:{self.port}/0?ssl_ca_certs={tls.cert_file}"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def external(self) -> bool:
        return self._directory is None

    def start(self) -> None:
        assert self._directory is not None, "an external Redis cannot be started by the tests"
        self._directory.mkdir(parents=True, exist_ok=True)
        ports = ["--port", str(self.port)]
        if self._tls is not None and self._tls_ca is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self._tls.cert_file)]
            ports += ["--tls-key-file", str(self._tls.key_file), "--tls-ca-cert-file", str(self._tls_ca.cert_file)]
            ports += ["--tls-auth-clients", "no"]
        arguments = [
            REDIS_SERVER,
            *ports,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._directory),
            "--daemonize",
            "no",
        ]
        if self.password:
            arguments += ["--requirepass", self.password]
        self._process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client().ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, nothing saved."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
            self._process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2)

    def flush(self) -> None:
        with contextlib.closing(self.client()) as client:
            client.flushdb()


@contextlib.contextmanager
def running_redis(directory: Path, *, password: str = "", tls: TestCA | None = None) -> Iterator[RedisServer]:
    """A started server (or the external one, unless a password or TLS is asked for), stopped afterwards."""
    external = os.environ.get(TEST_URL_VARIABLE, "")
    if external and not password and tls is None:
        yield RedisServer(None, external_url=external)
        return
    server = RedisServer(directory, password=password, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
