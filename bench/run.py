"""make bench: added latency, throughput, memory and a 10,000-in-flight soak of the gateway.

    .venv/bin/python bench/run.py               # full run (1.5-4 min on 2 cores), writes bench/RESULTS.md
    .venv/bin/python bench/run.py --quick       # smoke run (~30 s), writes nothing unless --output
    .venv/bin/python bench/run.py --no-soak     # skip the 10,000-in-flight check
    .venv/bin/python bench/run.py --phases soak --soak-transport rest   # one phase only
    .venv/bin/python bench/run.py --profile     # also profile the gateway under load with py-spy (if installed)
    .venv/bin/python bench/run.py --report-from bench/out/results.json # re-render RESULTS.md (+ NOTES.md)
    .venv/bin/python bench/run.py --h2load      # the hot path measured with h2load (see bench/h2load_mode.py)
    .venv/bin/python bench/run.py --phases stream   # time to first partial image only (bench/stream_first_image.py)

The OpenAI emulator and `imagegw serve` each run as their own process on free loopback ports; this
process is the load generator. On a small machine all three share the CPUs, which RESULTS.md says.
The h2load mode has its own options (`--h2load --help`) and its own section of RESULTS.md, which a
full run here keeps.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import h2load_mode  # noqa: E402
import stream_first_image  # noqa: E402
from hotspots import summarize  # noqa: E402
from load import AsyncCaller, LatencyProbe, Targets, burst, closed_loop, percentile  # noqa: E402
from procs import (  # noqa: E402
    ADMIN_KEY,
    EMULATOR_KEY,
    EmulatorControl,
    Placement,
    Proc,
    machine_busy_seconds,
    metric_value,
    start_emulator,
    start_gateway,
    start_stream_floor,
)

from imagegateway import ImageGatewayClient  # noqa: E402

KIB = 1024
MIB = 1024 * 1024
VIRTUAL_KEY = "bench-openai"

# The targets of the performance brief.
TARGET_ADDED_P50_SMALL_MS = 1.0
TARGET_ADDED_P50_LARGE_MS = 3.0
TARGET_RPS = 255.0  # 3x the 85 req/s reference, 256 KiB images
TARGET_SOAK_RSS_MB = 1000.0


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Run:
    """Everything measured, as plain data (also written as JSON)."""

    machine: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    latency: list[dict[str, Any]] = field(default_factory=list)
    # Time to first partial image (bench/stream_first_image.py), one row per path.
    stream: list[dict[str, Any]] = field(default_factory=list)
    throughput: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    soak: list[dict[str, Any]] = field(default_factory=list)
    profiles: dict[str, str] = field(default_factory=dict)


# -- machine -------------------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_total = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_total = f"{int(line.split()[1]) // 1024} MiB"
    commit = ""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "server", "clients"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        commit += " (server/clients modified)" if dirty else ""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory": mem_total,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "commit": commit,
    }


# -- setup ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def environment(
    workdir: Path, gateway_wrapper: list[str] | None = None, placement: Placement | None = None
) -> Iterator[tuple[Proc, Proc, Targets]]:
    """Emulator + gateway processes, a virtual key for the emulator and a generate-scope API key."""
    placement = placement or Placement.choose("shared")
    if placement.others is not None:
        os.sched_setaffinity(0, placement.others)  # the load generator (this process)
    emulator = start_emulator(workdir, placement.others)
    gateway: Proc | None = None
    try:
        gateway = start_gateway(workdir, gateway_wrapper, placement.gateway)
        with ImageGatewayClient(gateway.info["grpc_target"], api_key=ADMIN_KEY) as admin:
            admin.create_virtual_key(
                VIRTUAL_KEY, "openai", EMULATOR_KEY, base_url=emulator.info["base_url"], virtual_key_id=VIRTUAL_KEY
            )
            key = admin.create_api_key("bench", "generate").key
        targets = Targets(
            emulator.info["base_url"],
            EMULATOR_KEY,
            gateway.info["rest_base_url"],
            gateway.info["grpc_target"],
            key,
            VIRTUAL_KEY,
        )
        yield emulator, gateway, targets
    finally:
        for proc in (gateway, emulator):
            if proc is not None:
                code = proc.stop()
                if code not in (0, -15, None):
                    log(f"{proc.name} exited with {code}; see {proc.log_path}")


# -- phases --------------------------------------------------------------------------------------------


def latency_phase(
    run: Run,
    targets: Targets,
    control: EmulatorControl,
    label: str,
    image_bytes: int | None,
    requests: int,
    warmup: int,
) -> None:
    control.image_bytes(image_bytes)
    probe = LatencyProbe(targets)
    try:
        log(f"latency, {label}: {warmup} warm-up + {requests} rounds of direct/REST/gRPC at concurrency 1")
        samples = probe.run(requests, warmup)
    finally:
        probe.close()
    direct = samples["direct"].seconds
    for path in LatencyProbe.PATHS:
        s = samples[path]
        row: dict[str, Any] = {
            "size": label,
            "path": path,
            "image_bytes": s.image_bytes,
            "requests": len(s.seconds),
            "errors": sum(s.errors.values()),
            "error_kinds": dict(s.errors),
            "p50_ms": percentile(s.seconds, 50) * 1000,
            "p99_ms": percentile(s.seconds, 99) * 1000,
            "mean_ms": statistics.fmean(s.seconds) * 1000 if s.seconds else float("nan"),
        }
        if path != "direct":
            row["added_p50_ms"] = row["p50_ms"] - percentile(direct, 50) * 1000
            row["added_p99_ms"] = row["p99_ms"] - percentile(direct, 99) * 1000
        run.latency.append(row)


def throughput_phase(
    run: Run,
    transport: str,
    targets: Targets,
    control: EmulatorControl,
    gateway: Proc,
    emulator: Proc,
    image_bytes: int,
    concurrency: int,
    duration: float,
    warmup: float,
    channels: int,
    profile_to: Path | None = None,
) -> None:
    control.image_bytes(image_bytes)
    log(
        f"throughput, {transport}: concurrency {concurrency}, {image_bytes // KIB} KiB images, "
        f"{warmup:g} s warm-up + {duration:g} s" + (" (under py-spy)" if profile_to else "")
    )

    async def go() -> dict[str, Any]:
        caller = AsyncCaller(transport, targets, connections=concurrency, channels=channels)
        cpu: dict[str, float] = {}

        async def snapshot_cpu() -> None:
            # CPU of every process at the start and at the end of the measured window.
            await asyncio.sleep(warmup)
            for edge in ("start", "end"):
                cpu[f"gateway_{edge}"], cpu[f"emulator_{edge}"] = gateway.cpu_seconds(), emulator.cpu_seconds()
                cpu[f"machine_{edge}"], cpu[f"client_{edge}"] = machine_busy_seconds(), time.process_time()
                cpu[f"clock_{edge}"] = time.perf_counter()
                if edge == "start":
                    await asyncio.sleep(duration)

        async def spy_on_window() -> None:
            await asyncio.sleep(warmup)
            assert profile_to is not None
            spy = await asyncio.create_subprocess_exec(
                py_spy(),
                "record",
                "--pid",
                str(gateway.pid),
                "--rate",
                "250",
                "--format",
                "raw",
                "--threads",
                "--duration",
                str(int(duration)),
                "--output",
                str(profile_to),
                "--nonblocking",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            _, err = await spy.communicate()
            if spy.returncode != 0:
                log(f"py-spy failed: {err.decode(errors='replace')[-500:]}")

        snap = asyncio.create_task(snapshot_cpu())
        spying = asyncio.create_task(spy_on_window()) if profile_to else None
        try:
            result = await closed_loop(caller, concurrency, duration, warmup)
        finally:
            await caller.aclose()
        await snap
        if spying is not None:
            await spying

        def used(name: str) -> float:
            return cpu[f"{name}_end"] - cpu[f"{name}_start"]

        window = used("clock")
        gateway_cpu, emulator_cpu, client_cpu = used("gateway"), used("emulator"), used("client")
        # Everything else the machine did meanwhile (other processes; py-spy when profiling).
        other_cpu = used("machine") - gateway_cpu - emulator_cpu - client_cpu
        done = max(1, result.completed)
        return {
            "transport": transport,
            "concurrency": concurrency,
            "image_bytes": image_bytes,
            "seconds": result.window_seconds,
            "completed": result.completed,
            "rps": result.rps,
            "errors": sum(result.errors.values()),
            "error_kinds": dict(result.errors),
            "p50_ms": percentile(result.latencies, 50) * 1000,
            "p99_ms": percentile(result.latencies, 99) * 1000,
            "gateway_cpu_ms_per_req": 1000 * gateway_cpu / done,
            "emulator_cpu_ms_per_req": 1000 * emulator_cpu / done,
            "client_cpu_ms_per_req": 1000 * client_cpu / done,
            "gateway_cpu_util": gateway_cpu / window,
            "other_cpu_util": max(0.0, other_cpu / window),
            "profiled": profile_to is not None,
        }

    row = asyncio.run(go())
    if profile_to is not None:
        run.profiles[transport] = str(profile_to)
        row["transport"] += " (profiled)"
    run.throughput.append(row)


def soak_phase(
    run: Run,
    transport: str,
    targets: Targets,
    control: EmulatorControl,
    gateway: Proc,
    requests: int,
    latency_ms: int,
    channels: int,
) -> None:
    control.every_request({"kind": "latency", "ms": latency_ms})
    log(f"soak, {transport}: {requests} requests at once against a {latency_ms} ms upstream")
    reset = gateway.reset_peak_rss()
    rss_before = gateway.status_kb("VmRSS")
    rss_samples: list[int] = []
    in_flight: list[float] = []
    last_metric = [0.0]

    async def sample() -> None:
        rss_samples.append(gateway.status_kb("VmRSS"))
        if time.monotonic() - last_metric[0] >= 1.0:
            last_metric[0] = time.monotonic()
            value = await asyncio.to_thread(
                metric_value, gateway.info["metrics_url"], "imagegateway_in_flight_requests"
            )
            if value is not None:
                in_flight.append(value)

    async def go() -> tuple[int, Any, float, list[float]]:
        caller = AsyncCaller(transport, targets, connections=requests, channels=channels)
        try:
            return await burst(caller, requests, sample)
        finally:
            await caller.aclose()

    ok, errors, wall, latencies = asyncio.run(go())
    control.clear()
    hwm = gateway.status_kb("VmHWM")
    run.soak.append(
        {
            "transport": transport,
            "requests": requests,
            "upstream_latency_ms": latency_ms,
            "ok": ok,
            "errors": sum(errors.values()),
            "error_kinds": dict(errors),
            "wall_seconds": wall,
            "p50_s": percentile(latencies, 50),
            "max_s": max(latencies) if latencies else float("nan"),
            "rss_before_mb": rss_before / 1024,
            "rss_peak_mb": (hwm if reset else max(rss_samples or [0])) / 1024,
            "rss_peak_sampled_mb": max(rss_samples or [0]) / 1024,
            "rss_after_mb": gateway.status_kb("VmRSS") / 1024,
            "peak_source": "VmHWM after reset" if reset else "VmRSS sampled every 0.1 s",
            "max_in_flight_metric": max(in_flight) if in_flight else None,
        }
    )


def py_spy() -> str:
    found = Path(sys.executable).parent / "py-spy"
    return str(found) if found.exists() else (shutil.which("py-spy") or "py-spy")


def installed_py_spy() -> str | None:
    found = py_spy()
    return found if Path(found).exists() or shutil.which(found) else None


# -- report --------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f}"


def _signed(value: float) -> str:
    return "n/a" if value != value else f"{value:+.2f}"


def _size(n: int) -> str:
    return f"{n / MIB:.2f} MiB" if n >= MIB else f"{n / KIB:.1f} KiB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def report(run: Run) -> str:
    m = run.machine
    s = run.settings
    lines = [
        "# ImageGateway benchmark results",
        "",
        f"Written by `make bench` (`bench/run.py`{' ' + s['argv'] if s.get('argv') else ''}) on {m['date']}.",
        "",
        "## Machine",
        "",
        f"- {m['nproc']} CPUs (`nproc`; {m['affinity']} usable), {m['cpu']}, {m['memory']} RAM, Linux {m['kernel']}",
        f"- Python {m['python']}; commit {m['commit'] or 'unknown'}",
        f"- Other processes on the machine (not the gateway, the emulator or the load generator) used "
        f"{m.get('other_cpu_util', float('nan')):.2f} CPUs on average during the measurements (load average "
        f"{m.get('loadavg_start', '?')}, {m.get('other_cpu_before', float('nan')):.2f} CPUs busy just before the "
        "start"
        + ("; py-spy counts here when profiling" if run.profiles else "")
        + "); figures taken on a busy machine are noisier and lower.",
        f"- CPU placement: {m.get('placement', 'shared')}. The load generator (this script, pure Python), the "
        "OpenAI emulator and the gateway are separate processes; the gateway is one asyncio loop, so it uses "
        "about one core for Python work (plus gRPC's and SQLite's own threads). The *gateway CPU ms per "
        "request* column is the machine-independent cost.",
        "- Gateway: `imagegw serve`, SQLite in a temp dir, `IMAGEGW_LOG_LEVEL=warning`; upstream: "
        "`python -m tests.emulators openai` (dall-e-2, `response_format=b64_json`, 1024x1024 PNG; "
        "large images are random-noise PNGs made by the emulator's `image_bytes` fault).",
        "",
        "## Added latency (concurrency 1)",
        "",
        f"{s['small_requests']} small and {s['large_requests']} large sequential rounds after "
        f"{s['warmup_requests']} warm-up rounds; each round calls direct, REST and gRPC once, interleaved, "
        "on kept-alive connections (sync httpx, the project's sync gRPC client). *Direct* is httpx straight to "
        "the emulator with the body the gateway's OpenAI adapter sends; *REST* is `POST /v1/images/generations` "
        "with `x-portkey-virtual-key` (b64_json back); *gRPC* is `GenerateImage` (raw bytes back). "
        "Added = path minus direct, at the same percentile.",
        "",
        "| image | path | requests | errors | p50 ms | p99 ms | added p50 ms | added p99 ms | target (added p50) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in run.latency:
        target = TARGET_ADDED_P50_SMALL_MS if row["size"] == "small" else TARGET_ADDED_P50_LARGE_MS
        verdict = "" if row["path"] == "direct" else f"< {target:g} ms: {_verdict(row['added_p50_ms'] < target)}"
        lines.append(
            f"| {row['size']} ({_size(row['image_bytes'])}) | {row['path']} | {row['requests']} | {row['errors']} | "
            f"{_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | {_signed(row.get('added_p50_ms', float('nan')))} | "
            f"{_signed(row.get('added_p99_ms', float('nan')))} | {verdict} |"
        )
    if run.stream:
        lines += ["", *stream_first_image.report_lines(run.stream)]
    lines += [
        "",
        "## Throughput",
        "",
        f"Closed loop: {s['concurrency']} workers call back to back; {s['warmup_seconds']:g} s warm-up, then "
        f"completions in a {s['duration']:g} s window. REST: one `aiohttp.ClientSession` with {s['concurrency']} "
        f"connections; gRPC: grpc.aio, {s['channels']} channels (one TCP connection each). CPU columns: CPU time "
        "of each process during the window divided by the requests completed.",
        "",
        "| transport | concurrency | image | requests | req/s | errors | p50 ms | p99 ms | gateway CPU ms/req "
        "| gateway CPU util | emulator CPU ms/req | load-gen CPU ms/req | other CPU util | target |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in run.throughput:
        verdict = "" if row["profiled"] else f">= {TARGET_RPS:g} req/s: {_verdict(row['rps'] >= TARGET_RPS)}"
        lines.append(
            f"| {row['transport']} | {row['concurrency']} | {_size(row['image_bytes'])} | {row['completed']} | "
            f"{row['rps']:.1f} | {row['errors']} | {_ms(row['p50_ms'])} | {_ms(row['p99_ms'])} | "
            f"{row['gateway_cpu_ms_per_req']:.2f} | {100 * row['gateway_cpu_util']:.0f}% | "
            f"{row['emulator_cpu_ms_per_req']:.2f} | {row['client_cpu_ms_per_req']:.2f} | "
            f"{100 * row['other_cpu_util']:.0f}% | {verdict} |"
        )
    if any(row["profiled"] for row in run.throughput):
        lines += [
            "",
            "Rows marked *(profiled)* repeat the run with py-spy attached to the gateway (250 Hz); py-spy's "
            "own CPU shows as *other CPU util* and slows the gateway, so those rows are for the profile below, "
            "not for the targets.",
        ]
    mem = run.memory
    lines += [
        "",
        "## Memory",
        "",
        f"- Gateway peak RSS (VmHWM) after the latency and throughput runs: **{mem['hwm_mb']:.1f} MB** "
        f"(RSS now {mem['rss_mb']:.1f} MB; {mem['rss_start_mb']:.1f} MB right after start).",
    ]
    lines += ["", f"## {run.soak[0]['requests'] if run.soak else 0:,} requests in flight", ""]
    if run.soak:
        lines += [
            "All requests are started at once against an upstream that answers every request after a fixed "
            "delay (emulator `latency` fault); small images. Peak RSS is the gateway's VmHWM reset just before "
            "the burst (`/proc/PID/clear_refs`), so it is this step's own peak.",
            "",
            "| transport | requests | upstream latency | ok | errors | wall s | p50 s | max s "
            "| in flight (metric, max) | RSS before MB | RSS peak MB | RSS after MB | target |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in run.soak:
            ok = row["errors"] == 0 and row["rss_peak_mb"] < TARGET_SOAK_RSS_MB
            in_flight = "n/a" if row["max_in_flight_metric"] is None else f"{row['max_in_flight_metric']:.0f}"
            lines.append(
                f"| {row['transport']} | {row['requests']} | {row['upstream_latency_ms'] / 1000:g} s | {row['ok']} | "
                f"{row['errors']} | {row['wall_seconds']:.1f} | {row['p50_s']:.2f} | {row['max_s']:.2f} | "
                f"{in_flight} | {row['rss_before_mb']:.1f} | {row['rss_peak_mb']:.1f} | {row['rss_after_mb']:.1f} | "
                f"no errors, RSS < {TARGET_SOAK_RSS_MB:g} MB: {_verdict(ok)} |"
            )
        ideal = run.soak[0]["upstream_latency_ms"] / 1000
        lines += [
            "",
            f"Wall time above the upstream's {ideal:g} s is time requests spent inside the gateway "
            "(queues, CPU) rather than waiting on the upstream together; see the notes below.",
        ]
    else:
        lines.append("Not run (`--no-soak`).")
    errors = [r for r in (*run.latency, *run.throughput, *run.soak) if r.get("error_kinds")]
    if errors:
        lines += ["", "## Errors seen", ""]
        for row in errors:
            name = f"{row.get('size', '')} {row.get('path', row.get('transport'))}".strip()
            lines.append(f"- {name}: " + ", ".join(f"{k} x{v}" for k, v in row["error_kinds"].items()))
    lines += [
        "",
        "## Targets (from the performance brief)",
        "",
        f"- Added p50 latency < {TARGET_ADDED_P50_SMALL_MS:g} ms for small images and < "
        f"{TARGET_ADDED_P50_LARGE_MS:g} ms for 1 MiB images.",
        f"- Throughput >= {TARGET_RPS:g} req/s of 256 KiB images (3x the 85 req/s reference).",
        f"- 10,000 requests in flight with gateway RSS < {TARGET_SOAK_RSS_MB:g} MB and no errors (issue 13).",
    ]
    if run.profiles:
        lines += ["", "## Profiles", ""]
        for transport, path in run.profiles.items():
            lines += [
                f"py-spy ({transport}, raw collapsed stacks in `{Path(path).relative_to(ROOT)}`):",
                "",
                "```",
                summarize(Path(path), top=12, brief=True),
                "```",
                "",
            ]
        lines.append("Full summaries: `python bench/hotspots.py bench/out/profile-*.txt`.")
    extra = BENCH / "NOTES.md"
    if extra.exists():
        lines += ["", extra.read_text().strip()]
    return "\n".join(lines) + "\n"


def console_table(run: Run) -> str:
    """The same figures, compact, for stdout."""
    out = [
        "",
        "added latency (concurrency 1)",
        f"  {'image':18} {'path':6} {'n':>5} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'+p50':>7} {'+p99':>7}",
    ]
    for row in run.latency:
        out.append(
            f"  {row['size'] + ' ' + _size(row['image_bytes']):18} {row['path']:6} {row['requests']:>5} "
            f"{row['errors']:>4} {_ms(row['p50_ms']):>8} {_ms(row['p99_ms']):>8} "
            f"{_signed(row.get('added_p50_ms', float('nan'))):>7} "
            f"{_signed(row.get('added_p99_ms', float('nan'))):>7}"
        )
    for row in run.stream:
        paired = _signed(row.get("added_paired_p50_ms", float("nan")))
        added = f", added {paired} ms paired ({_signed(row['added_p50_ms'])} ms p50s)" if "added_p50_ms" in row else ""
        out.append(f"first partial image, {row['path']}: p50 {row['p50_ms']:.2f} ms{added}")
    out += [
        "",
        "throughput",
        f"  {'transport':16} {'conc':>4} {'image':>10} {'req/s':>7} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'gw CPU ms/req':>13}",
    ]
    for row in run.throughput:
        out.append(
            f"  {row['transport']:16} {row['concurrency']:>4} {_size(row['image_bytes']):>10} "
            f"{row['rps']:>7.1f} {row['errors']:>4} {_ms(row['p50_ms']):>8} {_ms(row['p99_ms']):>8} "
            f"{row['gateway_cpu_ms_per_req']:>13.2f}"
        )
    mem = run.memory
    out += ["", f"gateway peak RSS after latency+throughput: {mem['hwm_mb']:.1f} MB"]
    for row in run.soak:
        out.append(
            f"soak {row['transport']}: {row['requests']} at once, {row['upstream_latency_ms']} ms upstream: "
            f"ok {row['ok']}, errors {row['errors']}, wall {row['wall_seconds']:.1f} s, "
            f"RSS peak {row['rss_peak_mb']:.1f} MB"
        )
    return "\n".join(out)


# -- main ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--h2load" in argv:
        rest = [arg for arg in argv if arg != "--h2load"]
        return h2load_mode.main(rest, machine_info(), installed_py_spy)
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts and short windows (smoke test)")
    parser.add_argument("--small-requests", type=int, default=500)
    parser.add_argument("--large-requests", type=int, default=150)
    parser.add_argument("--warmup-requests", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--duration", type=float, default=12.0, help="seconds per throughput window")
    parser.add_argument("--warmup-seconds", type=float, default=2.0)
    parser.add_argument("--channels", type=int, default=2, help="gRPC channels for the load")
    parser.add_argument("--throughput-bytes", type=int, default=256 * KIB)
    parser.add_argument("--large-bytes", type=int, default=MIB)
    parser.add_argument("--no-soak", action="store_true", help="skip the 10,000-in-flight check")
    parser.add_argument(
        "--phases",
        default="latency,stream,throughput,soak",
        help="comma-separated subset of latency,stream,throughput,soak (default: all)",
    )
    parser.add_argument("--soak-requests", type=int, default=10_000)
    parser.add_argument("--soak-latency-ms", type=int, default=5000)
    parser.add_argument("--soak-transport", choices=["grpc", "rest", "both"], default="both")
    parser.add_argument(
        "--profile", action="store_true", help="after the measurements, repeat each throughput run with py-spy attached"
    )
    parser.add_argument(
        "--placement",
        choices=["split", "shared"],
        default="split",
        help="split (default): the gateway on a core of its own, the emulator and the load "
        "generator on the others; shared: all three float over every CPU",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="report path (default: bench/RESULTS.md for a full run, none for --quick or --phases)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures as JSON here")
    parser.add_argument(
        "--report-from",
        type=Path,
        metavar="JSON",
        help="only re-render the report from a --json file of an earlier run",
    )
    parser.add_argument(
        "--h2load",
        action="store_true",
        help="instead: the h2load mode (bench/h2load_mode.py; `--h2load --help` for its options)",
    )
    args = parser.parse_args(argv)
    if args.report_from:
        run = Run(**json.loads(args.report_from.read_text()))
        target = args.output or BENCH / "RESULTS.md"
        target.write_text(h2load_mode.carry_section(target, report(run)))
        print(console_table(run))
        return 0
    if args.quick:
        args.small_requests, args.large_requests, args.warmup_requests = 60, 20, 5
        args.duration, args.warmup_seconds = 4.0, 1.0
        args.soak_requests, args.soak_latency_ms = 400, 1000
    phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if args.no_soak:
        phases.discard("soak")
    if unknown := phases - {"latency", "stream", "throughput", "soak"}:
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    full = not args.quick and {"latency", "throughput"} <= phases
    output = args.output or (BENCH / "RESULTS.md" if full else None)
    if args.profile and installed_py_spy() is None:
        parser.error("--profile needs py-spy (pip install py-spy into the venv)")

    run = Run(machine=machine_info())
    placement = Placement.choose(args.placement)
    run.machine["placement"] = placement.describe()
    run.settings = {
        "argv": " ".join(argv),
        "small_requests": args.small_requests,
        "large_requests": args.large_requests,
        "warmup_requests": args.warmup_requests,
        "concurrency": args.concurrency,
        "duration": args.duration,
        "warmup_seconds": args.warmup_seconds,
        "channels": args.channels,
    }
    before = machine_busy_seconds()
    time.sleep(1.0)
    idle_busy = machine_busy_seconds() - before
    if idle_busy > 0.25:
        log(f"warning: other processes keep {idle_busy:.1f} CPUs busy; figures will be noisy and low")
    run.machine["other_cpu_before"] = idle_busy
    started = time.monotonic()
    busy_at_start = machine_busy_seconds()
    run.machine["loadavg_start"] = Path("/proc/loadavg").read_text().split()[0]
    with tempfile.TemporaryDirectory(prefix="imagegw-bench-") as tmp:
        workdir = Path(tmp)
        with environment(workdir, placement=placement) as (emulator, gateway, targets):
            control = EmulatorControl(emulator.info["origin"])
            run.memory["rss_start_mb"] = gateway.status_kb("VmRSS") / 1024
            ours_at_start = gateway.cpu_seconds() + emulator.cpu_seconds() + time.process_time()
            if "latency" in phases:
                latency_phase(run, targets, control, "small", None, args.small_requests, args.warmup_requests)
                latency_phase(
                    run, targets, control, "1 MiB", args.large_bytes, args.large_requests, args.warmup_requests
                )
            if "stream" in phases:
                rounds = 20 if args.quick else 200
                log(f"stream: {rounds} rounds of time to first partial image, direct/REST/gRPC and the stack's floor")
                control.every_request(stream_first_image.emulator_fault())
                # The stack alone, on the gateway's CPUs, timed in the same rounds (bench/stream_floor.py).
                floor = start_stream_floor(workdir, emulator.info["origin"], placement.gateway)
                try:
                    run.stream = stream_first_image.measure(targets, rounds, warmup=5, floor=floor.info)
                finally:
                    floor.stop()
                    control.clear()
            for transport in ("rest", "grpc") if "throughput" in phases else ():
                throughput_phase(
                    run,
                    transport,
                    targets,
                    control,
                    gateway,
                    emulator,
                    args.throughput_bytes,
                    args.concurrency,
                    args.duration,
                    args.warmup_seconds,
                    args.channels,
                )
            run.memory["hwm_mb"] = gateway.status_kb("VmHWM") / 1024
            run.memory["rss_mb"] = gateway.status_kb("VmRSS") / 1024
            if args.profile and "throughput" in phases:
                out_dir = BENCH / "out"
                out_dir.mkdir(exist_ok=True)
                for transport in ("rest", "grpc"):
                    throughput_phase(
                        run,
                        transport,
                        targets,
                        control,
                        gateway,
                        emulator,
                        args.throughput_bytes,
                        args.concurrency,
                        args.duration,
                        args.warmup_seconds,
                        args.channels,
                        profile_to=out_dir / f"profile-{transport}.txt",
                    )
            if "soak" in phases:
                transports = ["grpc", "rest"] if args.soak_transport == "both" else [args.soak_transport]
                for transport in transports:
                    soak_phase(
                        run,
                        transport,
                        targets,
                        control,
                        gateway,
                        args.soak_requests,
                        args.soak_latency_ms,
                        max(args.channels, 4),
                    )
            ours = gateway.cpu_seconds() + emulator.cpu_seconds() + time.process_time() - ours_at_start
            elapsed = time.monotonic() - started
            run.machine["other_cpu_util"] = max(0.0, (machine_busy_seconds() - busy_at_start - ours) / elapsed)
    run.settings["total_seconds"] = time.monotonic() - started
    print(console_table(run))
    if output is not None:
        output.write_text(h2load_mode.carry_section(output, report(run)))
        log(f"wrote {output}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(run.__dict__, indent=2, default=str))
    log(f"done in {run.settings['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
