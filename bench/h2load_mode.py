"""make bench's h2load mode: the gateway's hot path measured from outside, as a peer gateway would measure it.

    .venv/bin/python bench/run.py --h2load               # 3 rounds (~2.5 min), writes its section of RESULTS.md
    .venv/bin/python bench/run.py --h2load --quick       # 1 short round, writes nothing unless --output
    .venv/bin/python bench/run.py --h2load --profile     # then py-spy on the inline-config path (if installed)
    make bench BENCH_ARGS=--h2load

The load generator is h2load (nghttp2-client; C, HTTP/1.1 keep-alive with `--h1`), the upstream is
`bench/prebuilt_upstream.py` (answers from bytes built at start, never parses a request), so what is
measured is the gateway. The gateway is pinned to one core; the upstream and h2load share the others.
Each round starts a fresh upstream and gateway and measures, for a 1 KiB and a 1 MiB image, h2load
`-c1` (one request at a time) straight to the upstream and through the gateway routed two ways: an
inline `x-portkey-config` (fallback over one openai target with `custom_host` and an inline api_key)
and a virtual key. The three are interleaved in chunks, so drift on a noisy machine hits them alike.
Added p50 = p50(gateway) - p50(direct), from h2load's `--log-file` (its summary has no percentiles).
Then 256 KiB images at concurrency 32 on both routes: req/s, and the gateway's CPU per request from
/proc/PID/stat (utime + stime of all its threads, before and after, over the requests done).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pybase64
from hotspots import summarize
from load import REST_BODY, UPSTREAM_BODY, percentile
from procs import ADMIN_KEY, Placement, Proc, machine_busy_seconds, start_gateway, start_prebuilt_upstream

from imagegateway import ImageGatewayClient

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

INSTALL_HINT = (
    "h2load (from nghttp2) is not installed. On Debian or Ubuntu: `sudo apt-get update && sudo "
    "apt-get install -y nghttp2-client`; on macOS: `brew install nghttp2`. Then run this again."
)

SMALL, LARGE, THROUGHPUT_SIZE = "1k", "1m", "256k"
SIZES = f"{SMALL},{THROUGHPUT_SIZE},{LARGE}"
ROUTES = ("inline config", "virtual key")
DIRECT = "direct"
UPSTREAM_KEY = "sk-bench-prebuilt-0123456789"

# The targets of issue 9 ("the hot path, measured as a peer would measure it"), medians of the rounds.
TARGET_ADDED_P50_MS = {SMALL: 0.7, LARGE: 2.0}
TARGET_CPU_MS_PER_REQ = 1.0

SECTION_BEGIN = "<!-- h2load section: written by `bench/run.py --h2load`, kept when the rest is rewritten -->"
SECTION_END = "<!-- end of h2load section -->"
_NOTES_HEADING = "## Notes and findings"


def log(message: str) -> None:
    print(f"[bench h2load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- h2load --------------------------------------------------------------------------------------------


@dataclass
class H2loadRun:
    """One h2load invocation: its summary and every request's time (microseconds) from --log-file."""

    requests: int
    succeeded: int
    failed: int
    status_2xx: int
    seconds: float
    rps: float
    latencies_us: list[int]
    other_statuses: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.requests - self.status_2xx


_FINISHED = re.compile(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s")
_REQUESTS = re.compile(r"requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed")
_STATUSES = re.compile(r"status codes: (\d+) 2xx")
_UNIT = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def find_h2load() -> str | None:
    return shutil.which("h2load")


def _pinned(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    return (lambda: os.sched_setaffinity(0, cpus)) if cpus else None


def run_h2load(
    h2load: str,
    url: str,
    *,
    requests: int,
    clients: int,
    body: Path,
    headers: list[str],
    cpus: frozenset[int] | None,
    log_file: Path,
) -> H2loadRun:
    """`h2load --h1` POSTing `body` `requests` times over `clients` kept-alive connections."""
    argv = [h2load, "--h1", "-n", str(requests), "-c", str(clients), "-d", str(body), "--log-file", str(log_file)]
    for header in headers:
        argv += ["-H", header]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=_pinned(cpus), timeout=600, check=False)
    run = parse_h2load(done.stdout, log_file.read_text() if log_file.exists() else "")
    if done.returncode != 0 or run is None:
        # Header values are left out: they hold the gateway key and the inline config's provider key.
        names = ", ".join(h.split(":", 1)[0] for h in headers)
        raise RuntimeError(
            f"h2load failed ({done.returncode}) on {url} with -n {requests} -c {clients}, "
            f"headers {names}:\n{done.stdout}{done.stderr}"
        )
    return run


def parse_h2load(summary: str, log_text: str) -> H2loadRun | None:
    """h2load's printed summary and its --log-file rows (start us, status, duration us); None if no summary."""
    finished, counted, statuses = _FINISHED.search(summary), _REQUESTS.search(summary), _STATUSES.search(summary)
    if not (finished and counted and statuses):
        return None
    latencies: list[int] = []
    others: dict[str, int] = {}
    for line in log_text.splitlines():
        columns = line.split("\t")
        if len(columns) < 3:
            continue
        status = columns[1]
        if status.startswith("2"):
            latencies.append(int(columns[2]))
        else:  # -1 is a failed stream
            others[status] = others.get(status, 0) + 1
    return H2loadRun(
        requests=int(counted.group(1)),
        succeeded=int(counted.group(2)),
        failed=int(counted.group(3)),
        status_2xx=int(statuses.group(1)),
        seconds=float(finished.group(1)) * _UNIT[finished.group(2)],
        rps=float(finished.group(3)),
        latencies_us=latencies,
        other_statuses=others,
    )


# -- one round -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where h2load sends and what: the upstream directly, or the gateway routed one way."""

    name: str
    url: str
    headers: list[str]
    body: Path


@dataclass
class Settings:
    rounds: int = 3
    small_requests: int = 4000
    large_requests: int = 1000
    warmup_requests: int = 100
    chunks: int = 4
    throughput_requests: int = 10000
    throughput_warmup: int = 1000
    concurrency: int = 32
    placement: str = "split"


class Round:
    """A fresh upstream and gateway, the routes to them, and the measurements of one round."""

    def __init__(
        self,
        h2load: str,
        settings: Settings,
        placement: Placement,
        workdir: Path,
        upstream: Proc,
        gateway: Proc,
        gateway_key: str,
    ) -> None:
        self.h2load, self.settings, self.placement, self.workdir = h2load, settings, placement, workdir
        self.upstream, self.gateway = upstream, gateway
        self._runs = 0
        direct_body, gateway_body = workdir / "direct.json", workdir / "gateway.json"
        direct_body.write_text(json.dumps(UPSTREAM_BODY))
        gateway_body.write_text(json.dumps(REST_BODY))
        json_type = "content-type: application/json"
        origin, rest = upstream.info["origin"], gateway.info["rest_base_url"]
        self.routes: dict[str, dict[str, Route]] = {}
        for size in (SMALL, THROUGHPUT_SIZE, LARGE):
            config = {
                "strategy": {"mode": "fallback"},
                "targets": [{"provider": "openai", "api_key": UPSTREAM_KEY, "custom_host": f"{origin}/{size}/v1"}],
            }
            common = [f"x-portkey-api-key: {gateway_key}", json_type]
            self.routes[size] = {
                DIRECT: Route(
                    DIRECT,
                    f"{origin}/{size}/v1/images/generations",
                    [f"authorization: Bearer {UPSTREAM_KEY}", "accept: application/json", json_type],
                    direct_body,
                ),
                "inline config": Route(
                    "inline config",
                    f"{rest}/images/generations",
                    [*common, "x-portkey-config: " + json.dumps(config, separators=(",", ":"))],
                    gateway_body,
                ),
                "virtual key": Route(
                    "virtual key",
                    f"{rest}/images/generations",
                    [*common, f"x-portkey-virtual-key: {virtual_key_id(size)}"],
                    gateway_body,
                ),
            }

    def h2load_run(self, route: Route, requests: int, clients: int) -> H2loadRun:
        self._runs += 1
        return run_h2load(
            self.h2load,
            route.url,
            requests=requests,
            clients=clients,
            body=route.body,
            headers=route.headers,
            cpus=self.placement.others,
            log_file=self.workdir / f"h2load-{self._runs}.log",
        )

    def check(self) -> None:
        """One untimed request per route and size: a 200 carrying the upstream's image, or stop here."""
        for size, routes in self.routes.items():
            want = self.upstream.info["png_bytes"][size]
            for route in routes.values():
                body = route.body.read_bytes()
                headers = dict(h.split(": ", 1) for h in route.headers)
                request = urllib.request.Request(route.url, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        payload = json.loads(response.read())
                except urllib.error.HTTPError as err:
                    raise RuntimeError(
                        f"{route.name} ({size}) answered HTTP {err.code}: {err.read()[:500].decode(errors='replace')}"
                    ) from None
                got = len(pybase64.b64decode(payload["data"][0]["b64_json"]))
                if got != want:
                    raise RuntimeError(f"{route.name} ({size}) returned a {got}-byte image, not {want}")

    def latency(self, size: str, requests: int) -> list[dict[str, Any]]:
        """Interleaved c=1 runs of direct and both gateway routes; one row per route."""
        routes = self.routes[size]
        s = self.settings
        for route in routes.values():
            self.h2load_run(route, s.warmup_requests, 1)
        latencies: dict[str, list[int]] = {name: [] for name in routes}
        errors: dict[str, int] = dict.fromkeys(routes, 0)
        gateway_cpu: dict[str, float] = dict.fromkeys(routes, 0.0)
        per_chunk = max(1, requests // s.chunks)
        for _ in range(s.chunks):
            for name, route in routes.items():
                cpu_before = self.gateway.cpu_seconds()
                run = self.h2load_run(route, per_chunk, 1)
                gateway_cpu[name] += self.gateway.cpu_seconds() - cpu_before
                latencies[name] += run.latencies_us
                errors[name] += run.errors
        direct = latencies[DIRECT]
        rows = []
        for name in routes:
            ms = [us / 1000 for us in latencies[name]]
            row: dict[str, Any] = {
                "size": size,
                "image_bytes": self.upstream.info["png_bytes"][size],
                "route": name,
                "requests": len(ms),
                "errors": errors[name],
                "p50_ms": percentile(ms, 50),
                "p99_ms": percentile(ms, 99),
                "gateway_cpu_ms_per_req": 1000 * gateway_cpu[name] / max(1, len(ms) + errors[name]),
            }
            if name != DIRECT:
                direct_ms = [us / 1000 for us in direct]
                row["added_p50_ms"] = row["p50_ms"] - percentile(direct_ms, 50)
                row["added_p99_ms"] = row["p99_ms"] - percentile(direct_ms, 99)
            rows.append(row)
        return rows

    def throughput(self, route_name: str) -> dict[str, Any]:
        """Closed loop of `concurrency` connections, 256 KiB images; req/s and gateway CPU per request."""
        s = self.settings
        route = self.routes[THROUGHPUT_SIZE][route_name]
        self.h2load_run(route, max(s.throughput_warmup, s.concurrency), s.concurrency)
        gateway_before, upstream_before = self.gateway.cpu_seconds(), self.upstream.cpu_seconds()
        machine_before, clock_before = machine_busy_seconds(), time.perf_counter()
        run = self.h2load_run(route, s.throughput_requests, s.concurrency)
        wall = time.perf_counter() - clock_before
        gateway_cpu = self.gateway.cpu_seconds() - gateway_before
        upstream_cpu = self.upstream.cpu_seconds() - upstream_before
        machine_cpu = machine_busy_seconds() - machine_before
        done = max(1, run.requests)
        ms = [us / 1000 for us in run.latencies_us]
        return {
            "route": route_name,
            "size": THROUGHPUT_SIZE,
            "image_bytes": self.upstream.info["png_bytes"][THROUGHPUT_SIZE],
            "concurrency": s.concurrency,
            "requests": run.requests,
            "errors": run.errors,
            "error_statuses": run.other_statuses,
            "seconds": run.seconds,
            "rps": run.rps,
            "p50_ms": percentile(ms, 50),
            "p99_ms": percentile(ms, 99),
            "gateway_cpu_ms_per_req": 1000 * gateway_cpu / done,
            "upstream_cpu_ms_per_req": 1000 * upstream_cpu / done,
            "gateway_cpu_util": gateway_cpu / wall,
            # h2load's own CPU and anything else on the machine (the upstream and the gateway taken out).
            "rest_cpu_util": max(0.0, (machine_cpu - gateway_cpu - upstream_cpu) / wall),
        }

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far: the machine, the gateway, the upstream, h2load (reaped children) and this process."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "machine": machine_busy_seconds(),
            "gateway": self.gateway.cpu_seconds(),
            "upstream": self.upstream.cpu_seconds(),
            "h2load": children.ru_utime + children.ru_stime,
            "self": time.process_time(),
            "clock": time.perf_counter(),
        }

    def profile(self, py_spy: str, out: Path, size: str, requests: int, clients: int) -> None:
        """The inline-config route under py-spy (raw collapsed stacks into `out`)."""
        route = self.routes[size]["inline config"]
        self.h2load_run(route, max(self.settings.warmup_requests, 10 * clients), clients)
        # Blocking sampling with --gil: in --nonblocking mode py-spy loses most Python frames of this
        # process on this VM (they show as `Runner.run`), and it cannot tell idle threads from busy ones
        # here, so only samples of the thread holding the GIL (the event loop's) are kept.
        spy = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(self.gateway.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--threads",
                "--gil",
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_pinned(self.placement.others),
        )
        try:
            time.sleep(1.0)  # py-spy attaches
            self.h2load_run(route, requests, clients)
        finally:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            _, err = spy.communicate(timeout=60)
        if not out.exists():
            raise RuntimeError(f"py-spy wrote no profile: {err.decode(errors='replace')[-500:]}")


def virtual_key_id(size: str) -> str:
    return f"bench-prebuilt-{size}"


@contextlib.contextmanager
def round_environment(h2load: str, settings: Settings, placement: Placement) -> Iterator[Round]:
    with tempfile.TemporaryDirectory(prefix="imagegw-h2load-") as tmp:
        workdir = Path(tmp)
        upstream = start_prebuilt_upstream(workdir, SIZES, placement.others)
        gateway: Proc | None = None
        try:
            gateway = start_gateway(workdir, cpus=placement.gateway)
            with ImageGatewayClient(gateway.info["grpc_target"], api_key=ADMIN_KEY) as admin:
                for size in (SMALL, THROUGHPUT_SIZE, LARGE):
                    admin.create_virtual_key(
                        virtual_key_id(size),
                        "openai",
                        UPSTREAM_KEY,
                        base_url=f"{upstream.info['origin']}/{size}/v1",
                        virtual_key_id=virtual_key_id(size),
                    )
                key = admin.create_api_key("bench-h2load", "generate").key
            yield Round(h2load, settings, placement, workdir, upstream, gateway, key)
        finally:
            for proc in (gateway, upstream):
                if proc is not None and proc.stop() not in (0, -15, None):
                    log(
                        f"{proc.name} exited with {proc.popen.returncode}; its output:\n"
                        f"{proc.log_path.read_text(errors='replace')[-2000:]}"
                    )


# -- rounds and their medians ----------------------------------------------------------------------------


@dataclass
class Results:
    machine: dict[str, Any]
    settings: dict[str, Any]
    rounds: list[dict[str, Any]] = field(default_factory=list)  # {"latency": [...], "throughput": [...]}
    profiles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        clean = [v for v in values if v == v]
        if not clean:
            return cls(float("nan"), float("nan"), float("nan"))
        return cls(statistics.median(clean), min(clean), max(clean))

    def text(self, fmt: str = "{:.2f}") -> str:
        if self.median != self.median:
            return "n/a"
        single = self.low == self.high
        return fmt.format(self.median) + ("" if single else f" ({fmt.format(self.low)} to {fmt.format(self.high)})")


def _rows(results: Results, kind: str, **match: str) -> list[dict[str, Any]]:
    return [row for r in results.rounds for row in r[kind] if all(row[k] == v for k, v in match.items())]


def latency_summary(results: Results) -> list[dict[str, Any]]:
    """Per size and route: medians (and ranges) over the rounds."""
    out = []
    for size in (SMALL, LARGE):
        for route in (DIRECT, *ROUTES):
            rows = _rows(results, "latency", size=size, route=route)
            if not rows:
                continue
            entry: dict[str, Any] = {
                "size": size,
                "route": route,
                "image_bytes": rows[0]["image_bytes"],
                "rounds": len(rows),
                "requests": sum(r["requests"] for r in rows),
                "errors": sum(r["errors"] for r in rows),
                "p50_ms": Spread.of([r["p50_ms"] for r in rows]),
                "p99_ms": Spread.of([r["p99_ms"] for r in rows]),
                "gateway_cpu_ms_per_req": Spread.of([r["gateway_cpu_ms_per_req"] for r in rows]),
            }
            if route != DIRECT:
                entry["added_p50_ms"] = Spread.of([r["added_p50_ms"] for r in rows])
                entry["added_p99_ms"] = Spread.of([r["added_p99_ms"] for r in rows])
                entry["target_ms"] = TARGET_ADDED_P50_MS[size]
                entry["met"] = entry["added_p50_ms"].median < entry["target_ms"] and entry["errors"] == 0
            out.append(entry)
    return out


def throughput_summary(results: Results) -> list[dict[str, Any]]:
    out = []
    for route in ROUTES:
        rows = _rows(results, "throughput", route=route)
        if not rows:
            continue
        cpu = Spread.of([r["gateway_cpu_ms_per_req"] for r in rows])
        errors = sum(r["errors"] for r in rows)
        out.append(
            {
                "route": route,
                "size": THROUGHPUT_SIZE,
                "image_bytes": rows[0]["image_bytes"],
                "concurrency": rows[0]["concurrency"],
                "rounds": len(rows),
                "requests": sum(r["requests"] for r in rows),
                "errors": errors,
                "rps": Spread.of([r["rps"] for r in rows]),
                "gateway_cpu_ms_per_req": cpu,
                "gateway_cpu_util": Spread.of([r["gateway_cpu_util"] for r in rows]),
                "rest_cpu_util": Spread.of([r["rest_cpu_util"] for r in rows]),
                "p50_ms": Spread.of([r["p50_ms"] for r in rows]),
                "p99_ms": Spread.of([r["p99_ms"] for r in rows]),
                "met": cpu.median <= TARGET_CPU_MS_PER_REQ and errors == 0,
            }
        )
    return out


# -- report --------------------------------------------------------------------------------------------


SIZE_LABELS = {SMALL: "1 KiB", THROUGHPUT_SIZE: "256 KiB", LARGE: "1 MiB"}


def _png(row: dict[str, Any]) -> str:
    return f"{SIZE_LABELS[row['size']]} ({row['image_bytes']:,} B)"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def section(results: Results) -> str:
    """The RESULTS.md section, between its markers."""
    m, s = results.machine, results.settings
    rounds = len(results.rounds)
    lines = [
        SECTION_BEGIN,
        "## As a peer measures it: h2load against a prebuilt upstream",
        "",
        f"Written by `bench/run.py --h2load{' ' + s['argv'] if s.get('argv') else ''}` on {m['date']}, commit "
        f"{m.get('commit') or 'unknown'}; {m['nproc']} CPUs, {m['cpu']}, Python {m['python']}. {rounds} round"
        f"{'s' if rounds != 1 else ''}, each with a fresh upstream and gateway; figures are the median over the "
        "rounds with the range in brackets. Other processes on the machine used "
        + ", ".join(f"{r.get('other_cpu_util', float('nan')):.2f}" for r in results.rounds)
        + " CPUs on average during the rounds (0 is a quiet machine; more makes the figures noisier).",
        "",
        f"- Load generator: {m.get('h2load', 'h2load')} `--h1` (HTTP/1.1 keep-alive). Upstream: "
        "`bench/prebuilt_upstream.py`, OpenAI's `b64_json` answer of a real PNG prebuilt at start, requests read "
        "by Content-Length and never parsed (about 30 us per 1 KiB request).",
        f"- Placement: {m['placement']}.",
        '- Routes: *inline config* sends `x-portkey-config: {"strategy":{"mode":"fallback"},"targets":'
        '[{"provider":"openai","api_key":"sk-...","custom_host":"http://127.0.0.1:PORT/SIZE/v1"}]}`; '
        "*virtual key* sends `x-portkey-virtual-key` of a key whose base URL is the same upstream. Both with a "
        "generate-scope gateway key, `POST /v1/images/generations` of dall-e-2 `b64_json`. *Direct* is h2load "
        "straight to the upstream with the body the gateway's OpenAI adapter sends.",
        f"- Added latency: h2load `-c1` (one request at a time), {s['small_requests']} requests (1 KiB) and "
        f"{s['large_requests']} (1 MiB) per route and round after {s['warmup_requests']} warm-up requests, in "
        f"{s['chunks']} chunks interleaving direct, inline config and virtual key; p50 from h2load's "
        "`--log-file`. Added = route p50 - direct p50 of the same round. *Gateway CPU* is the gateway process's "
        "utime + stime per request over those runs.",
        f"- Throughput: h2load `-c{s['concurrency']}`, {s['throughput_requests']} requests of 256 KiB images after "
        f"{s['throughput_warmup']} warm-up; gateway CPU per request from /proc/PID/stat before and after.",
        "",
        "| image | route | requests | errors | p50 ms | added p50 ms | added p99 ms | gateway CPU ms/req "
        "| target (added p50, median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in latency_summary(results):
        target = "" if row["route"] == DIRECT else f"< {row['target_ms']:g} ms: {_verdict(row['met'])}"
        added = row.get("added_p50_ms")
        added99 = row.get("added_p99_ms")
        lines.append(
            f"| {_png(row)} | {row['route']} | {row['requests']} | {row['errors']} | "
            f"{row['p50_ms'].text()} | {added.text('{:+.2f}') if added else ''} | "
            f"{added99.text('{:+.2f}') if added99 else ''} | "
            f"{row['gateway_cpu_ms_per_req'].text() if row['route'] != DIRECT else ''} | {target} |"
        )
    lines += [
        "",
        "| route | image | concurrency | requests | errors | req/s | gateway CPU ms/req | gateway CPU util "
        "| p50 ms | p99 ms | target (gateway CPU, median) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in throughput_summary(results):
        lines.append(
            f"| {row['route']} | {_png(row)} | {row['concurrency']} | {row['requests']} | "
            f"{row['errors']} | {row['rps'].text('{:.0f}')} | {row['gateway_cpu_ms_per_req'].text()} | "
            f"{row['gateway_cpu_util'].text('{:.0%}')} | {row['p50_ms'].text()} | {row['p99_ms'].text()} | "
            f"<= {TARGET_CPU_MS_PER_REQ:g} ms: {_verdict(row['met'])} |"
        )
    lines += [
        "",
        "Targets (issue 9): added p50 < 0.7 ms for a 1 KiB image and < 2 ms for 1 MiB, on the inline-config "
        "path and on virtual keys; about 1 ms of gateway CPU per 256 KiB request at concurrency 32.",
    ]
    if results.profiles:
        lines += ["", "### Where the gateway's time goes on the inline-config path (py-spy, 250 Hz)", ""]
        for label, path in results.profiles.items():
            shown = Path(path).relative_to(ROOT) if Path(path).is_relative_to(ROOT) else Path(path)
            lines += [
                f"{label}, raw collapsed stacks in `{shown}`:",
                "",
                "```",
                summarize(Path(path), top=15, brief=True, inclusive_top=25),
                "```",
                "",
            ]
    lines.append(SECTION_END)
    return "\n".join(lines)


def splice(text: str, new_section: str) -> str:
    """`text` with its h2load section replaced by `new_section`, or the section added before the notes."""
    begin, end = text.find(SECTION_BEGIN), text.find(SECTION_END)
    if begin >= 0 and end > begin:
        return text[:begin] + new_section + text[end + len(SECTION_END) :]
    notes = text.find(_NOTES_HEADING)
    if notes >= 0:
        return text[:notes] + new_section + "\n\n" + text[notes:]
    return text.rstrip("\n") + "\n\n" + new_section + "\n"


def carry_section(old_report: Path, new_text: str) -> str:
    """`new_text` (a fresh full report) keeping the h2load section the old file had, if any."""
    if not old_report.exists():
        return new_text
    old = old_report.read_text()
    begin, end = old.find(SECTION_BEGIN), old.find(SECTION_END)
    if begin < 0 or end < begin:
        return new_text
    return splice(new_text, old[begin : end + len(SECTION_END)])


def console_table(results: Results) -> str:
    out = [
        "",
        f"h2load, added latency at concurrency 1 (median of {len(results.rounds)} rounds, range)",
        f"  {'image':10} {'route':14} {'n':>6} {'err':>4} {'p50 ms':>8}  {'added p50 ms':24} {'gw CPU ms/req':>13}"
        "  target",
    ]
    for row in latency_summary(results):
        added = row.get("added_p50_ms")
        verdict = "" if row["route"] == DIRECT else f"< {row['target_ms']:g}: {'met' if row['met'] else 'MISSED'}"
        cpu = "" if row["route"] == DIRECT else f"{row['gateway_cpu_ms_per_req'].median:.2f}"
        out.append(
            f"  {SIZE_LABELS[row['size']]:10} {row['route']:14} {row['requests']:>6} {row['errors']:>4} "
            f"{row['p50_ms'].median:>8.2f}  {added.text('{:+.2f}') if added else '':24} {cpu:>13}  {verdict}"
        )
    out += [
        "",
        f"h2load, throughput (median of {len(results.rounds)} rounds, range)",
        f"  {'route':14} {'image':10} {'conc':>4} {'err':>4} {'req/s':22} {'gw CPU ms/req':24} target",
    ]
    for row in throughput_summary(results):
        out.append(
            f"  {row['route']:14} {SIZE_LABELS[row['size']]:10} {row['concurrency']:>4} {row['errors']:>4} "
            f"{row['rps'].text('{:.0f}'):22} {row['gateway_cpu_ms_per_req'].text():24} "
            f"<= {TARGET_CPU_MS_PER_REQ:g}: {'met' if row['met'] else 'MISSED'}"
        )
    return "\n".join(out)


# -- main ----------------------------------------------------------------------------------------------


def main(argv: list[str], machine: dict[str, Any], py_spy: Callable[[], str | None]) -> int:
    """`bench/run.py --h2load [options]`; `machine` describes the machine, `py_spy` finds py-spy."""
    parser = argparse.ArgumentParser(
        prog="bench/run.py --h2load", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Settings()
    parser.add_argument("--quick", action="store_true", help="one short round (smoke test)")
    parser.add_argument("--rounds", type=int, default=defaults.rounds)
    parser.add_argument(
        "--small-requests",
        type=int,
        default=defaults.small_requests,
        help="c=1 requests per route and round, 1 KiB images",
    )
    parser.add_argument(
        "--large-requests",
        type=int,
        default=defaults.large_requests,
        help="c=1 requests per route and round, 1 MiB images",
    )
    parser.add_argument("--warmup-requests", type=int, default=defaults.warmup_requests)
    parser.add_argument(
        "--chunks",
        type=int,
        default=defaults.chunks,
        help="c=1 runs are split in this many chunks, interleaving the routes",
    )
    parser.add_argument("--throughput-requests", type=int, default=defaults.throughput_requests)
    parser.add_argument("--throughput-warmup", type=int, default=defaults.throughput_warmup)
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument(
        "--placement",
        choices=["split", "shared"],
        default=defaults.placement,
        help="split (default): the gateway on a core of its own, the upstream and h2load on the "
        "others; shared: all float over every CPU",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, profile the gateway with py-spy on the inline-config path",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="report to splice the h2load section into (default: bench/RESULTS.md unless --quick)",
    )
    parser.add_argument("--json", type=Path, help="also write every round's figures as JSON here")
    args = parser.parse_args(argv)

    h2load = find_h2load()
    if h2load is None:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    spy = py_spy() if args.profile else None
    if args.profile and spy is None:
        parser.error("--profile needs py-spy (pip install py-spy, into the venv or anywhere on PATH)")
    settings = Settings(
        rounds=args.rounds,
        small_requests=args.small_requests,
        large_requests=args.large_requests,
        warmup_requests=args.warmup_requests,
        chunks=args.chunks,
        throughput_requests=args.throughput_requests,
        throughput_warmup=args.throughput_warmup,
        concurrency=args.concurrency,
        placement=args.placement,
    )
    if args.quick:
        settings.rounds, settings.small_requests, settings.large_requests = 1, 400, 100
        settings.warmup_requests, settings.chunks = 30, 2
        settings.throughput_requests, settings.throughput_warmup = 1500, 200
    if settings.throughput_requests < settings.concurrency:
        parser.error("--throughput-requests must be at least --concurrency (h2load's rule)")
    output = args.output or (None if args.quick else BENCH / "RESULTS.md")

    placement = Placement.choose(args.placement)
    version = subprocess.run([h2load, "--version"], capture_output=True, text=True, check=False).stdout.strip()
    machine = {
        **machine,
        "placement": placement.describe().replace("emulator and the load generator", "upstream and h2load"),
        "h2load": version or "h2load",
    }
    results = Results(machine=machine, settings={"argv": " ".join(argv), **asdict(settings)})
    if placement.others is not None:
        os.sched_setaffinity(0, placement.others)
    before = machine_busy_seconds()
    time.sleep(1.0)
    if (idle_busy := machine_busy_seconds() - before) > 0.25:
        log(f"warning: other processes keep {idle_busy:.1f} CPUs busy; figures will be noisy")
    started = time.monotonic()
    for number in range(1, settings.rounds + 1):
        with round_environment(h2load, settings, placement) as round_:
            round_.check()
            figures: dict[str, Any] = {"latency": [], "throughput": []}
            cpu_start = round_.cpu_snapshot()
            for size, requests in ((SMALL, settings.small_requests), (LARGE, settings.large_requests)):
                log(f"round {number}/{settings.rounds}: c=1, {size}, {requests} requests per route")
                figures["latency"] += round_.latency(size, requests)
            for route in ROUTES:
                log(f"round {number}/{settings.rounds}: c={settings.concurrency}, 256k, {route}")
                figures["throughput"].append(round_.throughput(route))
            cpu_end = round_.cpu_snapshot()
            used = {name: cpu_end[name] - cpu_start[name] for name in cpu_start}
            ours = used["gateway"] + used["upstream"] + used["h2load"] + used["self"]
            figures["other_cpu_util"] = max(0.0, (used["machine"] - ours) / used["clock"])
            if figures["other_cpu_util"] > 0.25:
                log(f"round {number}: other processes used {figures['other_cpu_util']:.2f} CPUs meanwhile")
            results.rounds.append(figures)
            if spy is not None and number == settings.rounds:
                out_dir = BENCH / "out"
                out_dir.mkdir(exist_ok=True)
                for label, size, requests, clients in (
                    ("1 KiB, c=1", SMALL, settings.small_requests, 1),
                    (
                        f"256 KiB, c={settings.concurrency}",
                        THROUGHPUT_SIZE,
                        settings.throughput_requests,
                        settings.concurrency,
                    ),
                ):
                    path = out_dir / f"profile-h2load-inline-{size}-c{clients}.txt"
                    log(f"profiling the inline-config path: {label}")
                    round_.profile(spy, path, size, requests, clients)
                    results.profiles[label] = str(path)
    results.settings["total_seconds"] = time.monotonic() - started
    print(console_table(results))
    if output is not None:
        text = output.read_text() if output.exists() else "# ImageGateway benchmark results\n"
        output.write_text(splice(text, section(results)))
        log(f"wrote the h2load section of {output}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(asdict(results), indent=2, default=str))
    log(f"done in {results.settings['total_seconds']:.0f} s")
    return 0
