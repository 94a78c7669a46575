"""make bench (asynchronous providers): 1,000 Black Forest Labs jobs in flight at once through the gateway.

    .venv/bin/python bench/async_jobs.py                      # 1,000 jobs of 5 s each (~15 s)
    .venv/bin/python bench/async_jobs.py --jobs 200 --job-seconds 2 --output bench/out/async.json

The BFL emulator (`python -m tests.emulators black-forest-labs`, jobs taking `--job-seconds`) and
`imagegw serve` each run as their own process; this process sends every request at once over REST
(a bare `bfl` provider pointed at the emulator) and samples the gateway's memory. Each job is a
submit, polls with backoff until it is ready, and the download of its result from the emulator's
delivery port. The check: no errors, and the gateway's peak RSS under 400 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

from procs import ADMIN_KEY, Proc, _spawn, start_gateway  # noqa: E402

BFL_KEY = "bfl-bench-key-0123456789abcdef"
TARGET_RSS_MB = 400.0
CALL_TIMEOUT = 120.0


def log(message: str) -> None:
    print(f"[bench async {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start_bfl_emulator(workdir: Path, job_seconds: float) -> Proc:
    """The BFL emulator on a free port; info: origin."""
    argv = [sys.executable, "-m", "tests.emulators", "black-forest-labs", "--port", "0"]
    argv += ["--api-key", BFL_KEY, "--job-seconds", str(job_seconds)]
    proc = _spawn("bfl-emulator", argv, workdir)
    proc.wait_for_line(re.compile(r"results on (http://\S+)"))
    origin = re.search(r"listening on (http://\S+)", proc.log_path.read_text())
    assert origin is not None
    proc.info.update(origin=origin.group(1))
    return proc


async def burst(gateway: Proc, emulator_origin: str, jobs: int) -> dict[str, Any]:
    """Sends ``jobs`` requests at once; the answers' outcomes and the gateway's RSS while they ran."""
    headers = {
        "x-portkey-api-key": ADMIN_KEY,
        "x-portkey-provider": "bfl",
        "x-portkey-custom-host": emulator_origin,
        "authorization": f"Bearer {BFL_KEY}",
        "content-type": "application/json",
    }
    body = json.dumps({"prompt": "a lighthouse at dusk", "model": "flux-2-pro", "response_format": "b64_json"})
    url = f"{gateway.info['rest_base_url']}/images/generations"
    errors: dict[str, int] = {}
    latencies: list[float] = []
    rss: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            rss.append(gateway.status_kb("VmRSS"))
            await asyncio.sleep(0.1)

    connector = aiohttp.TCPConnector(limit=jobs)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT), headers=headers
    ) as session:

        async def one() -> None:
            started = time.monotonic()
            try:
                async with session.post(url, data=body) as response:
                    payload = await response.read()
                    if response.status != 200:
                        key = f"HTTP {response.status}: {payload[:120].decode(errors='replace')}"
                        errors[key] = errors.get(key, 0) + 1
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            latencies.append(time.monotonic() - started)

        sampler = asyncio.create_task(sample())
        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(jobs)))
        wall = time.monotonic() - started
        done.set()
        await sampler
    return {"ok": len(latencies), "errors": errors, "wall_seconds": wall, "latencies": latencies, "rss_kb": rss}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--job-seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="imagegw-bench-async-") as tmp:
        workdir = Path(tmp)
        emulator = start_bfl_emulator(workdir, args.job_seconds)
        gateway = start_gateway(workdir)
        try:
            reset = gateway.reset_peak_rss()
            rss_before = gateway.status_kb("VmRSS") / 1024
            log(f"{args.jobs} BFL jobs at once, {args.job_seconds:g} s each")
            outcome = asyncio.run(burst(gateway, emulator.info["origin"], args.jobs))
            peak = (gateway.status_kb("VmHWM") if reset else max(outcome["rss_kb"] or [0])) / 1024
            rss_after = gateway.status_kb("VmRSS") / 1024
        finally:
            gateway.stop()
            emulator.stop()
    latencies = sorted(outcome["latencies"])
    figures = {
        "jobs": args.jobs,
        "job_seconds": args.job_seconds,
        "ok": outcome["ok"],
        "errors": outcome["errors"],
        "wall_seconds": round(outcome["wall_seconds"], 2),
        "p50_seconds": round(statistics.median(latencies), 2) if latencies else None,
        "max_seconds": round(latencies[-1], 2) if latencies else None,
        "rss_before_mb": round(rss_before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_after_mb": round(rss_after, 1),
        "peak_source": "VmHWM after reset" if reset else "VmRSS sampled every 0.1 s",
    }
    passed = not outcome["errors"] and outcome["ok"] == args.jobs and peak < TARGET_RSS_MB
    print(
        f"async jobs: {figures['ok']}/{args.jobs} ok, {sum(outcome['errors'].values())} errors, "
        f"wall {figures['wall_seconds']} s (p50 {figures['p50_seconds']} s, max {figures['max_seconds']} s), "
        f"gateway RSS {figures['rss_before_mb']} -> peak {figures['rss_peak_mb']} MB "
        f"(target < {TARGET_RSS_MB:g} MB): {'PASS' if passed else 'FAIL'}"
    )
    if outcome["errors"]:
        print(json.dumps(outcome["errors"], indent=2))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
