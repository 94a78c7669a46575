"""The processes a benchmark runs against, each its own process: the OpenAI emulator (or, for the h2load
mode, `prebuilt_upstream.py`) and an `imagegw serve`.

Both bind port 0 (free ports) and say where they listen on their first lines of output; stdout and
stderr go to files in the run's temp dir (kept when a process fails to start, for the error message).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EMULATOR_KEY = "sk-bench-openai-0123456789"
ADMIN_KEY = "igw_bench_admin_key_0123456789abcdefghijklmnopqrstuv"
_START_TIMEOUT = 30.0
_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class Proc:
    """A child process and the log file that holds its output."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = _START_TIMEOUT) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace")
            match = pattern.search(text)
            if match:
                return match
            if self.popen.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start; its output:\n{self.log_path.read_text(errors='replace')}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode

    # /proc readers ---------------------------------------------------------------------------------

    def status_kb(self, field_name: str) -> int:
        """A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
        raise KeyError(field_name)

    def reset_peak_rss(self) -> bool:
        """Resets VmHWM to the current RSS (Linux >= 4.0: `echo 5 > /proc/PID/clear_refs`)."""
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        """User + system CPU time of every thread of the process so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / _CLK_TCK


@dataclass(frozen=True)
class Placement:
    """Which CPUs the gateway runs on and which the emulator and the load generator share.

    "split" gives the gateway a core of its own (the reference figure is "on one core") so the load
    generator and the emulator do not take CPU from it; "shared" lets all three float over every CPU.
    """

    name: str
    gateway: frozenset[int] | None
    others: frozenset[int] | None

    @classmethod
    def choose(cls, name: str) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if name == "shared" or len(cpus) < 2:
            return cls("shared", None, None)
        return cls("split", frozenset(cpus[:1]), frozenset(cpus[1:]))

    def describe(self) -> str:
        if self.gateway is None or self.others is None:
            return "shared: the gateway, the emulator and the load generator float over every CPU"
        return (
            f"split: the gateway is pinned to CPU {_cpu_list(self.gateway)} (one core); the emulator and "
            f"the load generator share CPU {_cpu_list(self.others)}"
        )


def _cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _spawn(
    name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None, cpus: frozenset[int] | None = None
) -> Proc:
    log_path = workdir / f"{name}.log"
    log_file = log_path.open("wb")
    # Affinity set before exec, so every thread the process starts (gRPC's, SQLite's) inherits it.
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    popen = subprocess.Popen(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=pin,
    )
    log_file.close()
    return Proc(name, popen, log_path)


def start_emulator(workdir: Path, cpus: frozenset[int] | None = None) -> Proc:
    """`python -m tests.emulators openai` on a free port; info: origin, base_url."""
    proc = _spawn(
        "emulator",
        [sys.executable, "-m", "tests.emulators", "openai", "--port", "0", "--api-key", EMULATOR_KEY],
        workdir,
        cpus=cpus,
    )
    match = proc.wait_for_line(re.compile(r"listening on (http://\S+)"))
    origin = match.group(1)
    proc.info.update(origin=origin, base_url=origin + "/v1")
    return proc


def start_prebuilt_upstream(workdir: Path, sizes: str, cpus: frozenset[int] | None = None) -> Proc:
    """`bench/prebuilt_upstream.py` on a free port; info: origin, png_bytes (size name -> PNG bytes)."""
    proc = _spawn(
        "upstream",
        [sys.executable, str(ROOT / "bench" / "prebuilt_upstream.py"), "--port", "0", "--sizes", sizes],
        workdir,
        cpus=cpus,
    )
    names = [name.strip().lower() for name in sizes.split(",") if name.strip()]
    proc.wait_for_line(re.compile(rf"prebuilt {re.escape(names[-1])}: "))
    text = proc.log_path.read_text()
    origin = re.search(r"listening on (http://\S+)", text)
    assert origin is not None
    png_bytes = {m.group(1): int(m.group(2)) for m in re.finditer(r"prebuilt (\S+): PNG (\d+) bytes", text)}
    proc.info.update(origin=origin.group(1), png_bytes=png_bytes)
    return proc


FLOOR_KEY = "igw_bench_floor_key_0123456789abcdefghijklmnop"


def start_stream_floor(workdir: Path, upstream_origin: str, cpus: frozenset[int] | None = None) -> Proc:
    """`bench/stream_floor.py` (the gateway's stack with no gateway work, and with only the essential
    work) in front of ``upstream_origin``; info: rest_url and essential_rest_url (generations URLs),
    grpc_target, key (what the essential paths take)."""
    argv = [sys.executable, str(ROOT / "bench" / "stream_floor.py"), "--upstream", upstream_origin]
    proc = _spawn("stream-floor", [*argv, "--upstream-key", EMULATOR_KEY, "--key", FLOOR_KEY], workdir, cpus=cpus)
    match = proc.wait_for_line(re.compile(r"floor rest (http://\S+) grpc (\S+)"))
    origin = match.group(1)
    proc.info.update(
        rest_url=origin + "/v1/images/generations",
        essential_rest_url=origin + "/essential/v1/images/generations",
        grpc_target=match.group(2),
        key=FLOOR_KEY,
    )
    return proc


def imagegw_command() -> list[str]:
    """The `imagegw` console script next to this interpreter (the venv), else on PATH."""
    local = Path(sys.executable).parent / "imagegw"
    if local.exists():
        return [str(local)]
    found = shutil.which("imagegw")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from imagegateway_server.cli import main; sys.exit(main())"]


def start_gateway(
    workdir: Path,
    wrapper: list[str] | None = None,
    cpus: frozenset[int] | None = None,
    settings: dict[str, str] | None = None,
) -> Proc:
    """`imagegw serve` on free ports with a temp data dir; info: grpc_target, rest_base_url, metrics_url.
    ``settings``: IMAGEGW_* variables set over the defaults (IMAGEGW_REDIS_URL, say)."""
    data_dir = workdir / "data"
    env = {
        **os.environ,
        "IMAGEGW_GRPC_ADDR": "127.0.0.1:0",
        "IMAGEGW_HTTP_ADDR": "127.0.0.1:0",
        "IMAGEGW_METRICS_ADDR": "127.0.0.1:0",
        "IMAGEGW_DATA_DIR": str(data_dir),
        "IMAGEGW_DATABASE_URL": "",
        "IMAGEGW_REDIS_URL": "",
        "IMAGEGW_ADMIN_KEY": ADMIN_KEY,
        "IMAGEGW_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="),
        "IMAGEGW_ALLOWED_UPSTREAM_HOSTS": "127.0.0.1",
        "IMAGEGW_LOG_LEVEL": "warning",
        "IMAGEGW_SHUTDOWN_GRACE_SECONDS": "5",
        **(settings or {}),
    }
    proc = _spawn("gateway", [*(wrapper or []), *imagegw_command(), "serve"], workdir, env, cpus=cpus)
    match = proc.wait_for_line(
        re.compile(r"serving gRPC on (\S+?):(\d+), REST on (http://\S+/v1), metrics on :(\d+)/metrics")
    )
    host, port, rest, metrics_port = match.groups()
    proc.info.update(
        grpc_target=f"{host}:{port}", rest_base_url=rest, metrics_url=f"http://{host}:{metrics_port}/metrics"
    )
    return proc


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs spent not idle since boot (/proc/stat), to spot other load on the machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLK_TCK


class EmulatorControl:
    """The emulator's `/_emulator/*` HTTP control API."""

    def __init__(self, origin: str) -> None:
        self._origin = origin

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self._origin}/_emulator/{path}", data=data, method=method, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"null")

    def clear(self) -> None:
        self._call("POST", "reset")

    def every_request(self, *faults: dict[str, Any]) -> None:
        """Replaces the schedule with `faults` applied to every request (times=null)."""
        self.clear()
        if faults:
            self._call("POST", "faults", {"faults": list(faults), "times": None})

    def image_bytes(self, n: int | None) -> None:
        """Every answer carries an image of about `n` bytes; None: the default small PNG."""
        self.every_request(*([{"kind": "image_bytes", "n": n}] if n else []))


def metric_value(metrics_url: str, name: str) -> float | None:
    """One unlabelled sample from the gateway's Prometheus endpoint."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None
