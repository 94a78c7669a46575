"""make bench-analytics: analytics over 30 days of 1,000,000 requests on SQLite, from the rollups.

    .venv/bin/python bench/analytics_rollup.py                 # 1,000,000 requests (seeding takes a few minutes)
    .venv/bin/python bench/analytics_rollup.py --requests 100000 --keep /tmp/analytics.db
    .venv/bin/python bench/analytics_rollup.py --reuse /tmp/analytics.db   # time again, no seeding

Seeds a SQLite store in a temp dir with requests spread evenly over the last 30 days, shaped like a
team's traffic: 20 gateway keys, each with one saved config (or inline routing) and 10 users sent as
``_user`` metadata (200 users), an ``env`` metadata key; 91 % served by the first target, 5 % after
a fallback, 2 % cache hits, 2 % failures of three kinds; latencies of 0.4-30 s. Then it rolls the
log up the way the store's background job does, and times ``aggregate_logs`` (the call behind
GetAnalytics, ``imagegw analytics`` and the dashboard) for the ranges and groupings people ask for,
as an admin and as one generate key. Each query runs five times; the table shows the median and
the slowest. The raw-log time of the first query (before any rollup) is printed for comparison.

Last, the dashboard's Analytics view end to end: an ``imagegw serve`` on the seeded file, logged in
as admin, loads the view's data for the last 30 days the way the page does (one
``/dashboard/api/analytics/view`` call: the chart by provider with buckets and the top tables by
key, ``_user`` and target), timed from the request to the parsed JSON, with the gateway's CPU time
per load; beside it, the four parallel calls the page made before, for comparison.

    .venv/bin/python bench/analytics_rollup.py --cache ~/.cache/imagegw/analytics-1m.db
    (seeds the file on the first run, reuses it after)
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT), str(ROOT / "server"), str(ROOT / "clients")]

import httpx  # noqa: E402
from procs import ADMIN_KEY, start_gateway  # noqa: E402

from imagegateway_server.storage.analytics import AnalyticsQuery, GroupBy, bucket_size_for  # noqa: E402
from imagegateway_server.storage.postgres import PostgresStore  # noqa: E402
from imagegateway_server.storage.records import LogFilter, LogRecord  # noqa: E402
from imagegateway_server.storage.sqlite import SqliteStore  # noqa: E402

DAYS = 30
KEYS = 20
USERS_PER_KEY = 10
# (config id, [(target, provider, model, cost)] in order): the first serves unless it fails.
ROUTES = [
    (
        "cfg-dalle-first",
        [("config.targets[0]", "openai", "dall-e-3", 0.04), ("config.targets[1]", "stability-ai", "sd3", 0.035)],
    ),
    (
        "cfg-sd-first",
        [("config.targets[0]", "stability-ai", "sd3", 0.035), ("config.targets[1]", "openai", "dall-e-3", 0.04)],
    ),
    (
        "cfg-azure",
        [("config.targets[0]", "azure-openai", "dall-e-3", 0.04), ("config.targets[1]", "openai", "dall-e-2", 0.02)],
    ),
    ("", [("provider", "openai", "gpt-image-1", 0.011)]),
]
ERROR_KINDS = ("ERROR_KIND_TIMEOUT", "ERROR_KIND_RATE_LIMITED", "ERROR_KIND_UPSTREAM_UNAVAILABLE")


def _timestamp(when: datetime) -> str:
    return when.isoformat(timespec="microseconds").replace("+00:00", "Z")


def make_record(number: int, when: datetime, rng: random.Random) -> LogRecord:
    key = number % KEYS
    config_id, route = ROUTES[key % len(ROUTES)]
    user = f"user-{key:02d}-{rng.randrange(USERS_PER_KEY)}"
    roll = rng.random()
    latency = int(rng.lognormvariate(8.3, 0.6))  # median about 4 s
    attempt = lambda target, error="": {  # noqa: E731
        "target": target[0], "provider": target[1], "model": target[2],
        "status_code": 504 if error else 200, **({"error_kind": error} if error else {}),
    }  # fmt: skip
    doc: dict[str, object] = {
        "id": f"log_{number:08d}",
        "trace_id": f"trace-{number:08d}",
        "create_time": _timestamp(when),
        "caller_key_id": f"key-{key:02d}",
        "config_id": config_id,
        "metadata": {"_user": user, "env": "prod" if key % 3 else "staging"},
        "latency_ms": str(latency),
    }
    served = route[0]
    status, cost = 200, served[3]
    if roll < 0.02:  # a cache hit: no upstream call, nothing billed
        doc.update(cache_status="CACHE_STATUS_HIT", latency_ms="3")
        cost = 0.0
    elif roll < 0.04 and len(route) > 1:  # every target failed
        kind = ERROR_KINDS[number % len(ERROR_KINDS)]
        doc.update(
            attempts=[attempt(route[0], kind), attempt(route[1], kind)], error_kind=kind, error="upstream failed"
        )
        status, cost, served = 504, 0.0, route[1]
    elif roll < 0.09 and len(route) > 1:  # the first target failed, the second served
        served = route[1]
        doc.update(attempts=[attempt(route[0], "ERROR_KIND_TIMEOUT"), attempt(served)], fallback_used=True)
        cost = served[3]
    else:
        doc.update(attempts=[attempt(served)])
    doc.update(status_code=status, provider=served[1], model=served[2], cost_usd=cost)
    if status == 200:
        doc.update(served_target=served[0], images=[{"sha256": "00" * 32, "width": 1024, "height": 1024}])
    return LogRecord(
        id=str(doc["id"]),
        trace_id=str(doc["trace_id"]),
        create_time=when,
        status_code=status,
        provider=served[1],
        model=served[2],
        caller_key_id=f"key-{key:02d}",
        config_id=config_id,
        fallback_used=bool(doc.get("fallback_used")),
        payload=json.dumps(doc, separators=(",", ":")),
        cost_usd=cost,
    )


async def seed(store: SqliteStore | PostgresStore, requests: int, now: datetime) -> None:
    rng = random.Random(14)
    start = now - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / requests
    batch: list[LogRecord] = []
    began = time.perf_counter()
    for number in range(requests):
        batch.append(make_record(number, start + step * number, rng))
        if len(batch) == 20_000:
            await store.append_logs(batch)
            batch = []
            if number % 200_000 < 20_000:
                print(f"  seeded {number + 1:,} requests ({time.perf_counter() - began:.0f} s)", flush=True)
    await store.append_logs(batch)


async def timed(store: SqliteStore | PostgresStore, query: AnalyticsQuery, runs: int = 5) -> tuple[float, float, int]:
    times = []
    requests = 0
    for _ in range(runs):
        began = time.perf_counter()
        result = await store.aggregate_logs(query)
        times.append(time.perf_counter() - began)
        requests = sum(row.totals.requests for row in result.rows)
    return statistics.median(times), max(times), requests


DASHBOARD_HEADER = {"x-imagegw-dashboard": "1"}
# The page's calls before /dashboard/api/analytics/view: (group_by, detail), all at once.
FOUR_CALLS = (("provider", "buckets"), ("api_key", "totals"), ("metadata._user", "totals"), ("target", "totals"))


def time_the_page_over_http(database_url: str, label: str, start: datetime, end: datetime, runs: int) -> None:
    """The Analytics view's data load from a real gateway on ``database_url``, as the page asks for it."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-analytics-http-"))
    # The database's rollups are complete; the gateway's own job finds nothing to do.
    # PYTHONPATH: the gateway runs this tree's code, as the store timings above do.
    tree = os.pathsep.join(str(ROOT / part) for part in ("server", "clients"))
    settings = {
        "IMAGEGW_DATABASE_URL": database_url,
        "PYTHONPATH": tree,
        # Retention off: the gateway would prune the seeded month as it ages, and a cached file with it.
        "IMAGEGW_LOG_RETENTION_DAYS": "0",
        "IMAGEGW_LOG_RETENTION_MAX_RECORDS": "0",
    }
    gateway = start_gateway(workdir, settings=settings)
    try:
        origin = gateway.info["rest_base_url"].removesuffix("/v1")
        pinned = {"start_time": _timestamp(start), "end_time": _timestamp(end)}
        with httpx.Client(base_url=origin, headers=DASHBOARD_HEADER, timeout=120) as client:
            client.post("/dashboard/api/login", json={"key": ADMIN_KEY}).raise_for_status()

            def view() -> int:
                response = client.get("/dashboard/api/analytics/view", params={**pinned, "group_by": "provider"})
                response.raise_for_status()
                body = response.json()
                return int(body["main"]["overall"]["totals"]["requests"]) + len(body["users"]["rows"])

            def one_of_four(call: tuple[str, str]) -> int:
                response = client.get(
                    "/dashboard/api/analytics", params={**pinned, "group_by": call[0], "detail": call[1]}
                )
                response.raise_for_status()
                return len(response.json()["rows"])

            def four_calls() -> int:
                with concurrent.futures.ThreadPoolExecutor(len(FOUR_CALLS)) as pool:
                    return sum(pool.map(one_of_four, FOUR_CALLS))

            print()
            print(f"the dashboard's Analytics view over HTTP, 30 d, a gateway on {label} ({runs} loads each)")
            print("| page data load | median s | slowest s | gateway CPU s per load |")
            print("|---|---:|---:|---:|")
            for label, load in (("one view call (now)", view), ("four parallel calls (before)", four_calls)):
                load()  # warm: the page cache holds the file's pages, the connection is open
                times = []
                cpu_before = gateway.cpu_seconds()
                for _ in range(runs):
                    began = time.perf_counter()
                    load()
                    times.append(time.perf_counter() - began)
                cpu = (gateway.cpu_seconds() - cpu_before) / runs
                print(f"| {label} | {statistics.median(times):.3f} | {max(times):.3f} | {cpu:.3f} |", flush=True)
        print(f"load average while timing: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    finally:
        gateway.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="keep the seeded database at this path")
    parser.add_argument("--reuse", type=Path, help="time the queries on a database a --keep run left")
    parser.add_argument("--cache", type=Path, help="--keep at this path the first time, --reuse it after")
    parser.add_argument("--http-runs", type=int, default=5, help="page loads over HTTP to time (0: none)")
    parser.add_argument(
        "--postgres", action="store_true", help="on PostgreSQL instead: a temp server (tests/postgres_server.py)"
    )
    args = parser.parse_args()
    if args.postgres:
        from tests.postgres_server import running_postgres

        with running_postgres() as server:
            url = server.fresh_database()
            asyncio.run(run(PostgresStore(url, rollup_interval=0), url, "PostgreSQL", args, reuse=False))
        return
    if args.cache is not None:
        if args.cache.exists():
            args.reuse = args.cache
        else:
            args.cache.parent.mkdir(parents=True, exist_ok=True)
            args.keep = args.cache
    with tempfile.TemporaryDirectory() as folder:
        path = args.reuse or args.keep or Path(folder) / "analytics.db"
        # Rolled up below, in the open, to time it.
        store = SqliteStore(path, rollup_interval=0)
        asyncio.run(run(store, f"sqlite:///{path}", path.name, args, reuse=args.reuse is not None))


async def run(
    store: SqliteStore | PostgresStore, database_url: str, label: str, args: argparse.Namespace, reuse: bool
) -> None:
    now = datetime.now(UTC)
    await store.open()
    try:
        if reuse:
            newest = (await store._read("SELECT max(create_time) FROM request_logs"))[0][0]
            now = datetime.fromtimestamp(newest / 1e6, UTC) + timedelta(seconds=1)
        else:
            print(f"seeding {args.requests:,} requests over {DAYS} days into {label}", flush=True)
            await seed(store, args.requests, now)

        month = now - timedelta(days=DAYS)

        def query(
            since: timedelta, group_by: GroupBy, metadata_key: str = "", key: str | None = None
        ) -> AnalyticsQuery:
            start = now - since
            return AnalyticsQuery(
                start, now, bucket_size_for(start, now), group_by, metadata_key, LogFilter(caller_key_id=key)
            )

        if not reuse:
            raw_median, _, raw_requests = await timed(store, query(now - month, GroupBy.PROVIDER), runs=1)
            print(f"raw log, 30 d by provider (nothing rolled up): {raw_median:.2f} s over {raw_requests:,} requests")

        began = time.perf_counter()
        rolled = 0
        while (chunk := await store.roll_up_logs(50_000)) > 0:
            rolled += chunk
        rollup_seconds = time.perf_counter() - began
        cells = (await store._read("SELECT count(*) FROM request_log_rollups"))[0][0]
        print(
            f"rolled up {rolled:,} requests into {cells:,} cells (hours, 6 h, days; with and without metadata) "
            f"in {rollup_seconds:.0f} s"
        )

        cases = [
            ("30 d", "provider", query(now - month, GroupBy.PROVIDER)),
            ("30 d", "api_key", query(now - month, GroupBy.API_KEY)),
            ("30 d", "target", query(now - month, GroupBy.TARGET)),
            ("30 d", "metadata._user", query(now - month, GroupBy.METADATA, "_user")),
            ("30 d", "provider, one generate key", query(now - month, GroupBy.PROVIDER, key="key-07")),
            ("30 d", "metadata._user, one generate key", query(now - month, GroupBy.METADATA, "_user", key="key-07")),
            ("7 d", "model", query(timedelta(days=7), GroupBy.MODEL)),
            ("24 h", "config", query(timedelta(hours=24), GroupBy.CONFIG)),
            ("1 h", "provider (raw, exact percentiles)", query(timedelta(hours=1), GroupBy.PROVIDER)),
        ]
        print()
        print("| range | group by | requests | median s | slowest s |")
        print("|---|---|---:|---:|---:|")
        for span_label, grouping, case in cases:
            median, slowest, requests = await timed(store, case)
            print(f"| {span_label} | {grouping} | {requests:,} | {median:.3f} | {slowest:.3f} |", flush=True)
    finally:
        await store.close()
    if args.http_runs > 0:
        # In a thread: the gateway is timed from outside while this loop waits.
        await asyncio.to_thread(time_the_page_over_http, database_url, label, month, now, args.http_runs)


if __name__ == "__main__":
    main()
