"""Throughput of `imagegw serve --workers 2` against one worker, measured from outside with h2load.

    .venv/bin/python bench/workers_scaling.py [--rounds 3] [--requests 6000] [--concurrency 32]
    make bench-workers

Issue 13's target: on a 2-core machine, two workers serve at least 1.7x the 256 KiB throughput of
one. Both runs use the same shared state (a real redis-server started here, as workers need), the
same prebuilt upstream (bench/prebuilt_upstream.py: answers from bytes built at start, so it is
light) and h2load (C, HTTP/1.1 keep-alive, `--h1`) over `--concurrency` connections, which the
kernel spreads over the workers (SO_REUSEPORT). Nothing is pinned: the workers need both cores, and
the upstream and h2load take what is left. Rounds alternate one and two workers, so drift on a busy
machine hits both; the figure is the median ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT), str(ROOT / "server"), str(ROOT / "clients")]

from h2load_mode import THROUGHPUT_SIZE, UPSTREAM_KEY, find_h2load, run_h2load  # noqa: E402
from load import REST_BODY  # noqa: E402
from procs import ADMIN_KEY, start_gateway, start_prebuilt_upstream  # noqa: E402

from imagegateway import ImageGatewayClient  # noqa: E402
from tests.redis_server import running_redis  # noqa: E402

TARGET_RATIO = 1.7
VIRTUAL_KEY = "bench-workers-256k"


def _wait_for_workers(log_path: Path, workers: int, timeout: float = 60.0) -> None:
    """Until every worker printed that it serves (the supervisor starts them one after another)."""
    deadline = time.monotonic() + timeout
    while log_path.read_text(errors="replace").count("imagegw serving gRPC on") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers did not all start; see {log_path}")
        time.sleep(0.1)


def measure(workdir: Path, upstream_origin: str, redis_url: str, workers: int, args: argparse.Namespace) -> float:
    """Requests per second of one gateway with ``workers`` workers, after a warm-up."""
    run_dir = workdir / f"workers-{workers}-{time.monotonic_ns()}"
    run_dir.mkdir()
    gateway = start_gateway(run_dir, settings={"IMAGEGW_WORKERS": str(workers), "IMAGEGW_REDIS_URL": redis_url})
    try:
        _wait_for_workers(gateway.log_path, workers)
        with ImageGatewayClient(gateway.info["grpc_target"], api_key=ADMIN_KEY) as admin:
            admin.create_virtual_key(
                VIRTUAL_KEY,
                "openai",
                UPSTREAM_KEY,
                base_url=f"{upstream_origin}/{THROUGHPUT_SIZE}/v1",
                virtual_key_id=VIRTUAL_KEY,
            )
            key = admin.create_api_key("bench-workers", "generate").key
        body = run_dir / "body.json"
        body.write_text(json.dumps(REST_BODY))
        headers = [
            f"x-portkey-api-key: {key}",
            "content-type: application/json",
            f"x-portkey-virtual-key: {VIRTUAL_KEY}",
        ]
        url = f"{gateway.info['rest_base_url']}/images/generations"

        def h2load(requests: int, log_name: str) -> float:
            run = run_h2load(
                args.h2load,
                url,
                requests=requests,
                clients=args.concurrency,
                body=body,
                headers=headers,
                cpus=None,
                log_file=run_dir / log_name,
            )
            if run.errors:
                raise RuntimeError(f"{run.errors} errors with {workers} worker(s): {run.other_statuses}")
            return run.rps

        h2load(max(args.concurrency * 10, args.requests // 5), "warmup.log")
        return h2load(args.requests, "run.log")
    finally:
        gateway.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/workers_scaling.py", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args(argv)
    args.h2load = find_h2load()
    if args.h2load is None:
        print("h2load is not installed (Debian: apt-get install nghttp2-client)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="imagegw-workers-") as tmp:
        workdir = Path(tmp)
        upstream = start_prebuilt_upstream(workdir, THROUGHPUT_SIZE)
        try:
            with running_redis(workdir / "redis") as redis:
                rows: list[tuple[float, float]] = []
                for round_index in range(args.rounds):
                    one = measure(workdir, upstream.info["origin"], redis.url, 1, args)
                    two = measure(workdir, upstream.info["origin"], redis.url, 2, args)
                    rows.append((one, two))
                    print(
                        f"round {round_index + 1}: 1 worker {one:7.1f} req/s, 2 workers {two:7.1f} req/s, "
                        f"ratio {two / one:.2f}",
                        flush=True,
                    )
        finally:
            upstream.stop()
    ratio = statistics.median(two / one for one, two in rows)
    verdict = "met" if ratio >= TARGET_RATIO else "missed"
    print(
        f"256 KiB, c={args.concurrency}, h2load: 1 worker {statistics.median(r[0] for r in rows):.1f} req/s, "
        f"2 workers {statistics.median(r[1] for r in rows):.1f} req/s; median ratio {ratio:.2f} "
        f"(target >= {TARGET_RATIO}: {verdict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
