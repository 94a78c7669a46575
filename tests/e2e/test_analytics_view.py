"""The dashboard's Analytics view in Debian's headless Chromium, offline, on a gateway of its own.

A seeded mix through the REST front end (successes, fallbacks, a request every target failed, cache
hits; two users in ``_user`` metadata, two keys), then: every chart renders with data, hovering shows
exact values, the tables name the fallback pair and the failing targets, a chart's CSV downloads and
agrees with the request log and with ``imagegw analytics -o json`` for the same range; a generate
key's view holds its own request only. The admin view is saved as a screenshot, and also to
$IMAGEGW_ANALYTICS_SCREENSHOT when set, which is how docs/analytics.png is made:

    IMAGEGW_ANALYTICS_SCREENSHOT=docs/analytics.png .venv/bin/python -m pytest tests/e2e/test_analytics_view.py
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
import math
import os
import random
import shutil
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select

from imagegateway import ImageGatewayClient
from imagegateway.v1 import images_pb2
from imagegateway_server.cli import main as cli_main
from imagegateway_server.storage.records import LogRecord
from imagegateway_server.storage.sqlite import SqliteStore
from tests.conftest import Emulators, eventually
from tests.dashboard_client import DashboardClient, keeping_gateway, new_generate_key, origin
from tests.e2e.test_dashboard import (  # noqa: F401  (the browser fixture and the skip mark)
    browser,
    fetched_urls,
    log_in,
    pytestmark,
    wait,
)
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread

CHARTS = ("requests", "errors", "fallback-rate", "cache-hit-rate", "latency", "cost")


@dataclasses.dataclass(frozen=True)
class Seeded:
    gateway: GatewayThread
    alice_key: str
    alice_id: str
    requests: int


def ask(gateway: GatewayThread, key: str, config_id: str, prompt: str, user: str) -> int:
    headers = {
        "x-portkey-api-key": key,
        "x-portkey-config": config_id,
        "x-portkey-trace-id": f"analytics-{uuid.uuid4().hex[:10]}",
        "x-portkey-metadata": json.dumps({"_user": user}),
    }
    body = {
        "model": "stable-diffusion-v1-6",
        "prompt": prompt,
        "n": 1,
        "size": "1024x1024",
        "response_format": "b64_json",
    }
    return httpx.post(gateway.rest_base_url + "/images/generations", json=body, headers=headers, timeout=60).status_code


@pytest.fixture(scope="module")
def seeded(
    tmp_path_factory: pytest.TempPathFactory, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> Iterator[Seeded]:
    with keeping_gateway(tmp_path_factory.mktemp("analytics-e2e"), openai_emulator, stability_emulator) as (
        gateway,
        seed,
    ):
        cached = _cached_config(gateway, seed.stability_vk, seed.openai_vk)
        alice_id, alice = new_generate_key(gateway, "alice")
        admin_key = gateway.admin_key
        openai_emulator.reset()
        stability_emulator.reset()
        outcomes = [
            ask(gateway, admin_key, cached, "a red kite", "ann"),  # Stability serves
            ask(gateway, admin_key, cached, "a blue kite", "ann"),
            ask(gateway, alice, cached, "a green kite", "bob"),
            ask(gateway, admin_key, cached, "a red kite", "ann"),  # the same again: a cache hit
            ask(gateway, admin_key, cached, "a blue kite", "bob"),  # a cache hit for another user
        ]
        stability_emulator.inject(Fault.status(500), times=2)
        outcomes += [
            ask(gateway, admin_key, cached, "a kraken", "bob"),  # Stability fails, DALL-E 3 serves
            ask(gateway, admin_key, cached, "an owl", "ann"),
        ]
        stability_emulator.inject(Fault.status(503))
        openai_emulator.inject(Fault.status(502))
        outcomes.append(ask(gateway, admin_key, cached, "both down", "bob"))  # every target failed
        stability_emulator.reset()
        openai_emulator.reset()
        assert outcomes == [200, 200, 200, 200, 200, 200, 200, 502]
        with DashboardClient(gateway) as client:
            client.login(admin_key)
            eventually(lambda: len(client.logs()) >= len(outcomes))
        yield Seeded(gateway, alice, alice_id, len(outcomes))


def _cached_config(gateway: GatewayThread, stability_vk: str, openai_vk: str) -> str:
    """The cookbook's Stability-then-DALL-E-3 fallback with the response cache on."""
    routing = {
        "strategy": {"mode": "fallback"},
        "cache": {"mode": "simple", "max_age": 600},
        "targets": [
            {"virtual_key": stability_vk, "override_params": {"model": "stable-diffusion-v1-6"}},
            {"virtual_key": openai_vk, "override_params": {"model": "dall-e-3"}},
        ],
    }
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        return admin.create_config(f"cached-{uuid.uuid4().hex[:8]}", routing).id


def open_analytics(driver: webdriver.Chrome, group_by: str = "provider", range_choice: str = "1h") -> None:
    driver.find_element(By.CSS_SELECTOR, "nav#views button[data-view=analytics]").click()
    view = wait(
        driver,
        lambda d: (
            d.find_element(By.ID, "analytics-view") if d.find_element(By.ID, "analytics-view").is_displayed() else None
        ),
    )
    Select(driver.find_element(By.NAME, "range")).select_by_value(range_choice)
    Select(driver.find_element(By.NAME, "group_by")).select_by_value(group_by)
    driver.find_element(By.ID, "analytics-apply").click()
    requested = view.get_attribute("data-requested")  # set as the click's load starts
    wait(
        driver,
        lambda d: (
            view.get_attribute("data-loaded") == requested
            and len(d.find_elements(By.CSS_SELECTOR, "section.chart[data-rendered='1']")) == len(CHARTS)
        ),
    )


def chart_totals(driver: webdriver.Chrome) -> dict[str, float]:
    return {
        card.get_attribute("data-chart"): float(card.get_attribute("data-total"))
        for card in driver.find_elements(By.CSS_SELECTOR, "section.chart")
    }


def painted_pixels(driver: webdriver.Chrome, chart: str) -> int:
    painted: int = driver.execute_script(
        """
        const canvas = document.querySelector(`section.chart[data-chart='${arguments[0]}'] canvas`);
        const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let painted = 0;
        for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
        return painted;
        """,
        chart,
    )
    return painted


def download_csv(driver: webdriver.Chrome, folder: Path, chart: str) -> list[dict[str, str]]:
    before = set(folder.iterdir())
    driver.find_element(By.CSS_SELECTOR, f"section.chart[data-chart='{chart}'] button.csv").click()
    found = wait(
        driver,
        lambda d: [p for p in set(folder.iterdir()) - before if p.suffix == ".csv" and p.stat().st_size > 0],
    )
    return list(csv.DictReader(io.StringIO(found[0].read_text())))


def test_the_analytics_view_charts_the_log_and_its_csv_agrees_with_the_log_and_the_cli(
    seeded: Seeded,
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    emulators: Emulators,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = seeded.gateway
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    log_in(browser, gateway, gateway.admin_key)
    started = time.monotonic()
    open_analytics(browser)
    with capsys.disabled():
        print(f"\nanalytics view drawn in {time.monotonic() - started:.2f} s (selenium round trips included)")

    totals = chart_totals(browser)
    assert totals["requests"] == seeded.requests and totals["errors"] == 1
    assert totals["fallback-rate"] > 0 and totals["cache-hit-rate"] > 0 and totals["latency"] > 0
    assert totals["cost"] > 0
    for chart in CHARTS:
        assert painted_pixels(browser, chart) > 500, chart
    tiles = {t.get_attribute("data-tile"): t.text for t in browser.find_elements(By.CSS_SELECTOR, ".tile")}
    assert tiles["Requests"].endswith(str(seeded.requests)) and "2" in tiles["Cache hits"]

    # Hovering over a bucket shows its exact numbers in the chart's legend.
    over = browser.find_element(By.CSS_SELECTOR, "section.chart[data-chart='requests'] .u-over")
    ActionChains(browser).move_to_element_with_offset(over, over.size["width"] // 2 - 2, 0).perform()
    legend = browser.find_element(By.CSS_SELECTOR, "section.chart[data-chart='requests'] .u-legend").text
    assert "stability-ai" in legend and "openai" in legend

    tables = {t.get_attribute("data-table"): t.text for t in browser.find_elements(By.CSS_SELECTOR, "[data-table]")}
    assert "config.targets[0] → config.targets[1]" in tables["fallback-pairs"] and " 2" in tables["fallback-pairs"]
    assert "config.targets[0]" in tables["failing-targets"]
    assert "ann" in tables["users"] and "bob" in tables["users"]

    view = browser.find_element(By.ID, "analytics-view")
    start, end = view.get_attribute("data-start-time"), view.get_attribute("data-end-time")
    lines = download_csv(browser, downloads, "requests")
    assert {line["group_by"] for line in lines} == {"provider", "all"}
    assert all(line["bucket_start"].endswith("Z") for line in lines)
    # The request log over the same range, counted by hand.
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        logs = list(admin.iter_logs(start_time=datetime.fromisoformat(start), end_time=datetime.fromisoformat(end)))
    by_provider = Counter(log.provider for log in logs)
    csv_requests: dict[str, int] = defaultdict(int)
    for line in lines:
        if line["group_by"] == "provider":
            csv_requests[line["group"]] += int(line["requests"])
    assert dict(csv_requests) == dict(by_provider)
    assert sum(int(line["requests"]) for line in lines if line["group_by"] == "all") == len(logs) == seeded.requests

    cost_lines = download_csv(browser, downloads, "cost")
    csv_cost: dict[str, float] = defaultdict(float)
    for line in cost_lines:
        if line["group_by"] == "provider":
            csv_cost[line["group"]] += float(line["cost_usd"])

    # imagegw analytics -o json for the same range: the same rows, bucket by bucket.
    base = ["--server", gateway.grpc_target, "--api-key", gateway.admin_key, "-o", "json"]
    assert cli_main([*base, "analytics", "--from", start, "--to", end, "--group-by", "provider"]) == 0
    *grouped, overall = json.loads(capsys.readouterr().out)
    rows = {row["group"]: row for row in grouped}
    assert {group: row["requests"] for group, row in rows.items()} == dict(by_provider)
    # The overall row: every request of the range, as the CSV's "all" lines have it.
    assert (overall["group_by"], overall["requests"]) == ("all", len(logs))
    assert [(bucket["start"], bucket["requests"]) for bucket in overall["buckets"]] == [
        (line["bucket_start"], int(line["requests"])) for line in lines if line["group_by"] == "all"
    ]
    for group, row in rows.items():
        per_bucket = [
            (line["bucket_start"], int(line["requests"]))
            for line in lines
            if line["group_by"] == "provider" and line["group"] == group
        ]
        assert per_bucket == [(bucket["start"], bucket["requests"]) for bucket in row["buckets"]]
        assert csv_cost[group] == pytest.approx(row["cost_usd"], abs=1e-9)
        assert row["cost_usd"] == pytest.approx(sum(log.cost_usd for log in logs if log.provider == group), abs=1e-9)
        served = [log for log in logs if log.provider == group]
        assert row["errors"] == sum(1 for log in served if not 200 <= log.status_code < 300)
        assert row["fallbacks"] == sum(1 for log in served if log.fallback_used)
        assert row["cache_hits"] == sum(1 for log in served if log.cache_status == images_pb2.CACHE_STATUS_HIT)
        assert row["images"] == sum(len(log.images) for log in served)

    screenshot_of_view(browser, tmp_path / "analytics.png")
    # Nothing came from anywhere but the gateway (uPlot and the view's script are its own assets),
    # besides the browser's own pages (chrome: for its new tab).
    urls = fetched_urls(browser)
    assert any(url.endswith("/dashboard/assets/uplot-1.6.32.min.js") for url in urls)
    local = (origin(gateway), "blob:", "data:", "chrome:")
    assert all(url.startswith(local) for url in urls), urls

    # Grouped by a metadata key (the field offers _user) the same numbers split by user.
    open_analytics(browser, group_by="metadata")
    assert chart_totals(browser)["requests"] == seeded.requests
    legend = browser.find_element(By.CSS_SELECTOR, "section.chart[data-chart='requests'] .u-legend").text
    assert "ann" in legend and "bob" in legend


def screenshot_of_view(driver: webdriver.Chrome, path: Path) -> None:
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1440, "height": min(height, 4000), "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        time.sleep(0.3)  # let uPlot redraw at the new size
        assert driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    assert path.read_bytes().startswith(b"\x89PNG")


def test_a_generate_keys_analytics_hold_its_own_request_only(
    seeded: Seeded,
    browser: webdriver.Chrome,  # noqa: F811
    emulators: Emulators,
) -> None:
    log_in(browser, seeded.gateway, seeded.alice_key)
    open_analytics(browser, group_by="api_key")
    assert chart_totals(browser)["requests"] == 1
    tables = {t.get_attribute("data-table"): t.text for t in browser.find_elements(By.CSS_SELECTOR, "[data-table]")}
    assert seeded.alice_id in tables["keys"] and "ann" not in tables["users"]
    assert "No fallbacks" in tables["fallback-pairs"]
    assert origin(seeded.gateway) in browser.current_url


def a_day_of_traffic(now: datetime, keys: list[str]) -> list[LogRecord]:
    """About 3,000 requests over the last 24 hours with a daily rhythm: three providers behind
    fallback configs, twelve users, some fallbacks, failures and cache hits."""
    rng = random.Random(14)
    first, second = "config.targets[0]", "config.targets[1]"
    routes = [
        ("cfg-sd", [(first, "stability-ai", "sd3", 0.035), (second, "openai", "dall-e-3", 0.04)]),
        ("cfg-az", [(first, "azure-openai", "dall-e-3", 0.04), (second, "openai", "dall-e-2", 0.02)]),
        ("", [("provider", "openai", "gpt-image-1", 0.011)]),
    ]
    records = []
    for minute in range(1, 24 * 60):  # from a minute into the range the view asks for
        when = now - timedelta(minutes=24 * 60 - minute)
        rhythm = 1.2 + math.sin((when.hour + when.minute / 60 - 9) / 24 * 2 * math.pi)
        for _ in range(int(rng.random() * 2.2 * rhythm + 0.5)):
            number = len(records)
            key = keys[number % len(keys)]
            config_id, route = routes[rng.randrange(len(routes)) if number % 5 else 0]
            tried, served = route[0], route[0]
            roll = rng.random()
            doc: dict[str, Any] = {
                "id": f"log_day{number:06d}",
                "trace_id": f"day-{number}",
                "create_time": (when + timedelta(seconds=rng.randrange(60))).isoformat().replace("+00:00", "Z"),
                "caller_key_id": key,
                "config_id": config_id,
                "metadata": {"_user": f"user-{rng.randrange(12):02d}"},
                "latency_ms": str(int(rng.lognormvariate(8.0, 0.5))),
            }
            call = lambda target, error="": {  # noqa: E731
                "target": target[0], "provider": target[1], "model": target[2], "status_code": 503 if error else 200,
                **({"error_kind": error} if error else {}),
            }  # fmt: skip
            status, cost = 200, served[3]
            if roll < 0.05:
                doc.update(cache_status="CACHE_STATUS_HIT", latency_ms="4")
                cost = 0.0
            elif roll < 0.08 and len(route) > 1:
                served = route[1]
                doc.update(
                    attempts=[call(tried, "ERROR_KIND_UPSTREAM_UNAVAILABLE"), call(served, "ERROR_KIND_TIMEOUT")]
                )
                doc.update(error_kind="ERROR_KIND_TIMEOUT", error="upstream timed out")
                status, cost = 504, 0.0
            elif roll < 0.16 and len(route) > 1:
                served = route[1]
                doc.update(attempts=[call(tried, "ERROR_KIND_RATE_LIMITED"), call(served)], fallback_used=True)
                cost = served[3]
            else:
                doc.update(attempts=[call(tried)], cache_status="CACHE_STATUS_MISS")
            doc.update(status_code=status, provider=served[1], model=served[2], cost_usd=cost)
            if status == 200:
                doc.update(served_target=served[0], images=[{"sha256": "00" * 32, "width": 1024, "height": 1024}])
            records.append(
                LogRecord(
                    id=doc["id"],
                    trace_id=doc["trace_id"],
                    create_time=datetime.fromisoformat(doc["create_time"]),
                    status_code=status,
                    provider=served[1],
                    model=served[2],
                    caller_key_id=key,
                    config_id=config_id,
                    fallback_used=bool(doc.get("fallback_used")),
                    payload=json.dumps(doc),
                    cost_usd=cost,
                )
            )
    return records


def test_a_day_of_traffic_stacks_the_largest_groups_and_sums_the_rest(
    seeded: Seeded,
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    emulators: Emulators,
) -> None:
    gateway = seeded.gateway
    records = a_day_of_traffic(datetime.now(UTC) - timedelta(minutes=1), [seeded.alice_id, "key-team-b", "key-team-c"])

    async def append() -> None:  # beside the running gateway, as a second process on the file would
        store = SqliteStore(gateway.settings.data_dir / "imagegw.db", rollup_interval=0)
        await store.open()
        try:
            await store.append_logs(records)
        finally:
            await store.close()

    asyncio.run(append())
    log_in(browser, gateway, gateway.admin_key)
    open_analytics(browser, group_by="provider", range_choice="24h")
    assert chart_totals(browser)["requests"] == len(records) + seeded.requests
    assert browser.find_element(By.CSS_SELECTOR, "section.chart[data-chart='requests']").get_attribute(
        "data-points"
    ) in ("24", "25")
    path = tmp_path / "analytics-day.png"
    screenshot_of_view(browser, path)
    published = os.environ.get("IMAGEGW_ANALYTICS_SCREENSHOT")
    if published:
        shutil.copyfile(path, published)

    open_analytics(browser, group_by="metadata", range_choice="24h")
    legend = browser.find_element(By.CSS_SELECTOR, "section.chart[data-chart='requests'] .u-legend").text
    assert "other (" in legend  # twelve users and the seeded ones: the eight largest, then the rest summed
    assert chart_totals(browser)["requests"] == len(records) + seeded.requests
