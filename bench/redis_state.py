"""What keeping the state in Redis adds to a request: two gateways side by side, one in process, one on Redis.

    .venv/bin/python bench/redis_state.py                 # 400 rounds per scenario (~1 min on 2 cores)
    .venv/bin/python bench/redis_state.py --rounds 100    # quicker
    .venv/bin/python bench/redis_state.py --pause-ms 2    # each gateway's after-answer work done alone

One OpenAI emulator, one redis-server (started here in a temp dir, no persistence) and two
`imagegw serve` processes, identical but for IMAGEGW_REDIS_URL. Requests go over REST at
concurrency 1, alternating between the two gateways so both see the same machine; each scenario's
p50 on Redis is compared with the p50 in process. Scenarios:

* limits: a gateway key with a rate limit and a daily budget, through a virtual key (breakers on):
  the limits' one Lua round trip; breakers cost no round trip while closed.
* cache hit: a cached config, the same prompt each time: one GET.
* cache miss: a cached config, a new prompt each time: the look-up and the shared-call claim (one
  script), then the answer's store and the call's end, sent once the caller has its answer.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import httpx  # noqa: E402
from procs import ADMIN_KEY, EMULATOR_KEY, start_emulator, start_gateway  # noqa: E402

from imagegateway import ImageGatewayClient  # noqa: E402
from imagegateway.v1 import keys_pb2  # noqa: E402
from tests.redis_server import running_redis  # noqa: E402

TARGET_ADDED_P50_MS = 0.5
SCENARIOS = ("limits", "cache hit", "cache miss")


def log(message: str) -> None:
    print(f"[redis bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Gateway:
    """One gateway's REST client, with a limited key, a virtual key and a cached config."""

    def __init__(self, rest_base_url: str, grpc_target: str, emulator_base_url: str) -> None:
        with ImageGatewayClient(grpc_target, api_key=ADMIN_KEY) as admin:
            admin.create_virtual_key("bench-openai", "openai", EMULATOR_KEY, base_url=emulator_base_url)
            limits = keys_pb2.Limits(requests_per_minute=1_000_000, usd_per_day=1_000_000)
            self.key = admin.create_api_key("bench-limited", "generate", limits=limits).key
            cached = {"virtual_key": "bench-openai", "override_params": {"model": "dall-e-2"}}
            self.config = admin.create_config(
                "bench-cached", {**cached, "cache": {"mode": "simple", "max_age": 3600}}
            ).id
        self.client = httpx.Client(base_url=rest_base_url, timeout=60)

    def call(self, scenario: str) -> None:
        headers = {"x-portkey-api-key": self.key}
        body = {"model": "dall-e-2", "response_format": "b64_json", "prompt": "a kraken, redis bench"}
        if scenario == "limits":
            headers["x-portkey-virtual-key"] = "bench-openai"
        else:
            headers["x-portkey-config"] = self.config
            if scenario == "cache miss":
                body["prompt"] = f"a kraken {uuid.uuid4().hex}"
        response = self.client.post("/images/generations", json=body, headers=headers)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        if scenario == "cache hit" and response.headers.get("x-portkey-cache-status") == "MISS":
            return  # the first call fills the cache
        expected = {"cache hit": "HIT", "cache miss": "MISS"}.get(scenario)
        if expected and response.headers.get("x-portkey-cache-status") != expected:
            raise RuntimeError(f"{scenario}: cache status {response.headers.get('x-portkey-cache-status')}")


def timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=400, help="timed requests per scenario and gateway")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per scenario and gateway first")
    parser.add_argument(
        "--pause-ms",
        type=float,
        default=0.0,
        help="pause after each request, so that what a gateway does after its answer (a miss's store) is not "
        "timed on the other gateway's request",
    )
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="imagegw-redis-bench-") as temp,
        running_redis(Path(temp) / "redis") as redis,
    ):
        root = Path(temp)
        procs = [start_emulator(root)]
        try:
            emulator = procs[0]
            gateways = {}
            gateway_procs = {}
            for mode, url in (("in process", ""), ("redis", redis.url)):
                workdir = root / ("gateway-" + mode.replace(" ", "-"))
                workdir.mkdir()
                proc = start_gateway(workdir, settings={"IMAGEGW_REDIS_URL": url})
                procs.append(proc)
                gateway_procs[mode] = proc
                gateways[mode] = Gateway(
                    proc.info["rest_base_url"], proc.info["grpc_target"], emulator.info["base_url"]
                )
            rows = []
            for scenario in SCENARIOS:
                samples: dict[str, list[float]] = {mode: [] for mode in gateways}
                cpu: dict[str, float] = {}
                log(f"{scenario}: {args.warmup} warm-up + {args.rounds} rounds per gateway, alternating")
                for round_number in range(args.warmup + args.rounds):
                    if round_number == args.warmup:
                        cpu = {mode: proc.cpu_seconds() for mode, proc in gateway_procs.items()}
                    for mode, gateway in gateways.items():
                        seconds = timed(lambda g=gateway, s=scenario: g.call(s))  # type: ignore[misc]
                        time.sleep(args.pause_ms / 1000)
                        if round_number >= args.warmup:
                            samples[mode].append(seconds)
                # CPU per request does not depend on how busy the machine is, as wall-clock times do.
                cpu_ms = {
                    mode: (proc.cpu_seconds() - cpu[mode]) / args.rounds * 1000 for mode, proc in gateway_procs.items()
                }
                p50 = {mode: statistics.median(values) * 1000 for mode, values in samples.items()}
                rows.append(
                    (
                        scenario,
                        p50["in process"],
                        p50["redis"],
                        p50["redis"] - p50["in process"],
                        cpu_ms["redis"] - cpu_ms["in process"],
                    )
                )
        finally:
            for proc in reversed(procs):
                proc.stop()
    print(
        f"| scenario | p50 in process (ms) | p50 on Redis (ms) | added p50 (ms; target <= {TARGET_ADDED_P50_MS}) "
        "| added gateway CPU per request (ms) |"
    )
    print("|---|---:|---:|---:|---:|")
    for scenario, local, shared, added, added_cpu in rows:
        verdict = "met" if added <= TARGET_ADDED_P50_MS else "MISSED"
        print(f"| {scenario} | {local:.2f} | {shared:.2f} | {added:+.2f} ({verdict}) | {added_cpu:+.2f} |")
    print(f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
