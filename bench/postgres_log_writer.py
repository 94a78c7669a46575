"""Does the request-log writer keep up with 2,000 records/s on PostgreSQL without a growing backlog?

    .venv/bin/python bench/postgres_log_writer.py                      # 2,000/s for 20 s on a temp server
    .venv/bin/python bench/postgres_log_writer.py --rate 5000 --seconds 10
    IMAGEGW_TEST_POSTGRES_URL=postgresql://... .venv/bin/python bench/postgres_log_writer.py

It starts a PostgreSQL cluster in a temp dir as the tests do (tests/postgres_server.py; or uses
the server IMAGEGW_TEST_POSTGRES_URL names), opens the PostgreSQL store on a fresh database, and
submits records shaped like the gateway's (two attempts, a served image, metadata, ~1 KB of JSON)
to the gateway's own ``RequestLogWriter`` at a steady rate, from the same event loop, as requests
would. Every second it samples the writer's backlog (records accepted and not yet written). The
writer keeps up when the backlog stays bounded (within a few batches) instead of growing with time,
and every record is in the database at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "server"), str(ROOT / "clients")]

from imagegateway_server.observability.request_log import RequestLogWriter  # noqa: E402
from imagegateway_server.storage.postgres import PostgresStore  # noqa: E402
from imagegateway_server.storage.records import LogRecord  # noqa: E402
from tests.postgres_server import running_postgres  # noqa: E402


def record(number: int) -> LogRecord:
    log_id = f"log_{uuid.uuid4().hex}"
    payload = {
        "id": log_id,
        "trace_id": uuid.uuid4().hex,
        "status_code": 200,
        "provider": "openai",
        "model": "dall-e-3",
        "latency_ms": str(900 + number % 400),
        "cache_status": "CACHE_STATUS_MISS",
        "served_target": "targets[1]",
        "metadata": {"_user": f"user-{number % 50}", "team": "design"},
        "request": {"prompt": "a lighthouse on a cliff at dusk, oil painting, " * 3, "size": "1024x1024", "n": 1},
        "images": [{"sha256": uuid.uuid4().hex * 2, "mime_type": "image/png", "width": 1024, "height": 1024}],
        "attempts": [
            {"target": "targets[0]", "provider": "stability-ai", "status_code": 503, "latency_ms": "120",
             "error_kind": "ERROR_KIND_UPSTREAM_UNAVAILABLE", "error_message": "upstream unavailable"},
            {"target": "targets[1]", "provider": "openai", "status_code": 200, "latency_ms": "880"},
        ],
        "fallback_used": True,
        "cost_usd": 0.04,
    }  # fmt: skip
    return LogRecord(
        id=log_id,
        trace_id=payload["trace_id"],  # type: ignore[arg-type]
        create_time=datetime.now(UTC),
        status_code=200,
        provider="openai",
        model="dall-e-3",
        caller_key_id=f"key-{number % 5}",
        config_id="pc-bench",
        fallback_used=True,
        payload=json.dumps(payload),
        virtual_key_id="vk-openai",
        cost_usd=0.04,
    )


async def run(url: str, rate: int, seconds: float) -> dict[str, float]:
    store = PostgresStore(url)
    await store.open()
    writer = RequestLogWriter(store)
    await writer.start()
    loop = asyncio.get_running_loop()
    backlog: list[int] = []
    submitted = 0
    started = loop.time()
    next_sample = started + 1.0
    tick = 0.01  # submit in 10 ms slices, as a steady stream of requests would
    while (now := loop.time()) - started < seconds:
        due = int((now - started) * rate)
        while submitted < due:
            writer.submit(record(submitted))
            submitted += 1
        if now >= next_sample:
            backlog.append(writer.pending)
            next_sample += 1.0
        await asyncio.sleep(tick)
    drain_started = loop.time()
    await writer.flush()
    drain_seconds = loop.time() - drain_started
    await writer.close()
    async with store._connection() as connection:
        cursor = await connection.execute("SELECT count(*) FROM request_logs")
        row = await cursor.fetchone()
    await store.close()
    assert row is not None
    stored = int(row[0])
    half = len(backlog) // 2
    return {
        "rate": rate,
        "seconds": seconds,
        "submitted": submitted,
        "stored": stored,
        "dropped": writer.dropped,
        "backlog_max": max(backlog, default=0),
        "backlog_first_half_mean": statistics.fmean(backlog[:half]) if half else 0.0,
        "backlog_second_half_mean": statistics.fmean(backlog[half:]) if backlog[half:] else 0.0,
        "drain_seconds": drain_seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2000, help="records per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    options = parser.parse_args()
    with running_postgres() as server:
        url = server.fresh_database()
        started = time.perf_counter()
        result = asyncio.run(run(url, options.rate, options.seconds))
        elapsed = time.perf_counter() - started
    print(json.dumps(result, indent=2))
    keeps_up = (
        result["stored"] == result["submitted"]
        and result["dropped"] == 0
        and result["backlog_second_half_mean"] <= max(2 * result["backlog_first_half_mean"], options.rate * 0.5)
    )
    print(
        f"{options.rate} records/s for {options.seconds:.0f} s: {result['stored']} stored of {result['submitted']}, "
        f"backlog max {result['backlog_max']:.0f}, mean {result['backlog_first_half_mean']:.0f} -> "
        f"{result['backlog_second_half_mean']:.0f} records, drained in {result['drain_seconds']:.2f} s "
        f"({elapsed:.1f} s in all): {'keeps up' if keeps_up else 'FALLS BEHIND'}"
    )
    return 0 if keeps_up else 1


if __name__ == "__main__":
    sys.exit(main())
