"""GetAnalytics end to end: requests through a real gateway and the emulators, then the numbers
through the client library and ``imagegw analytics -o json``, checked against the request log.
A generate key sees only its own requests, also when grouping by metadata."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest

from imagegateway import AsyncImageGatewayClient, ImageGatewayClient, ImageGatewayError, InvalidArgumentError
from imagegateway.types import AnalyticsGroupBy, AnalyticsRow, GetAnalyticsResponse
from imagegateway_server.cli import main as cli_main
from tests.conftest import Emulators, Seed, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread


@pytest.fixture(scope="module")
def clients(
    gateway: GatewayThread, admin: ImageGatewayClient
) -> Iterator[tuple[ImageGatewayClient, ImageGatewayClient, str]]:
    """Clients of two teams' generate keys, and the first key's plaintext (for the CLI)."""
    first = admin.create_api_key(f"analytics-a-{uuid.uuid4().hex[:8]}", "generate")
    second = admin.create_api_key(f"analytics-b-{uuid.uuid4().hex[:8]}", "generate")
    with (
        ImageGatewayClient(gateway.grpc_target, api_key=first.key) as team_a,
        ImageGatewayClient(gateway.grpc_target, api_key=second.key) as team_b,
    ):
        yield team_a, team_b, first.key


def by_group(response: GetAnalyticsResponse) -> dict[str, AnalyticsRow]:
    return {row.group: row for row in response.rows}


def test_analytics_agree_with_the_log_and_a_generate_key_sees_its_own(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    clients: tuple[ImageGatewayClient, ImageGatewayClient, str],
    seed: Seed,
    emulators: Emulators,
    capsys: pytest.CaptureFixture[str],
) -> None:
    team_a, team_b, team_a_key = clients
    run = f"run_{uuid.uuid4().hex[:10]}"  # a metadata key only this test's requests carry
    team_a.generate_image(prompt="a kite", config_id=seed.config_id, metadata={run: "ann"})
    emulators.stability.inject(Fault.status(503))
    team_a.generate_image(prompt="a kite", config_id=seed.config_id, metadata={run: "ann"})  # falls back
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(503))
    with pytest.raises(ImageGatewayError):
        team_a.generate_image(prompt="a kite", config_id=seed.config_id, metadata={run: "bob"})
    team_b.generate_image(prompt="a kite", config_id=seed.config_id, metadata={run: "ann"})

    def complete() -> GetAnalyticsResponse | None:
        response = admin.get_analytics(since=timedelta(hours=1), group_by="metadata", metadata_key=run)
        counted = sum(row.totals.requests for row in response.rows if row.group)
        return response if counted == 4 else None

    response = eventually(complete)
    ann, bob = by_group(response)["ann"], by_group(response)["bob"]
    assert (ann.totals.requests, ann.totals.successes, ann.totals.fallbacks, ann.totals.images) == (3, 3, 1, 3)
    assert [(p.from_target, p.to_target, p.count) for p in ann.totals.fallback_pairs] == [
        ("config.targets[0]", "config.targets[1]", 1)
    ]
    # Every target failed: an error, and not a fallback (nothing served).
    assert (bob.totals.requests, bob.totals.errors, bob.totals.fallbacks) == (1, 1, 0)
    assert bob.totals.attempts == 2 and bob.totals.failed_attempts == 2
    assert 30 <= len(ann.buckets) <= 31 and sum(b.counts.requests for b in ann.buckets) == 3  # 2-minute buckets

    # The same numbers as the request log.
    logs = [log for log in admin.iter_logs(start_time=response.start_time.ToDatetime()) if run in log.metadata]
    assert len(logs) == 4
    assert sum(1 for log in logs if log.fallback_used) == 1
    assert sum(log.cost_usd for log in logs if log.metadata[run] == "ann") == pytest.approx(ann.totals.cost_usd)

    # Team A through the CLI: its own requests only, whatever it groups by.
    base = ["--server", gateway.grpc_target, "--api-key", team_a_key, "-o", "json"]
    assert cli_main([*base, "analytics", "--since", "1h", "--group-by", f"metadata.{run}"]) == 0
    *grouped, overall = json.loads(capsys.readouterr().out)
    rows = {row["group"]: row for row in grouped}
    assert {row["group_by"] for row in grouped} == {f"metadata.{run}"}
    assert rows["ann"]["requests"] == 2 and rows["bob"]["requests"] == 1
    # The overall row last: every request of the key, under the same field names.
    assert (overall["group_by"], overall["group"]) == ("all", "")
    assert overall["requests"] == sum(row["requests"] for row in grouped)
    assert overall["cost_usd"] == pytest.approx(sum(row["cost_usd"] for row in grouped))
    assert set(overall) == set(rows["ann"]) and len(overall["buckets"]) == len(rows["ann"]["buckets"])
    assert [b["requests"] for b in overall["buckets"]] == [
        sum(row["buckets"][i]["requests"] for row in grouped) for i in range(len(overall["buckets"]))
    ]
    assert rows["bob"]["errors"] == 1 and rows["bob"]["errors_by_kind"]
    assert set(rows["ann"]) >= {"group", "requests", "errors", "fallbacks", "cache_hits", "images", "cost_usd"}
    assert {"p50_ms", "p95_ms", "p99_ms", "buckets"} <= set(rows["ann"])
    assert {"start", "requests", "p95_ms"} <= set(rows["ann"]["buckets"][0])
    assert rows["ann"]["buckets"][0]["start"].endswith("Z")
    assert cli_main([*base, "analytics", "--since", "1h", "--group-by", "key"]) == 0
    keys = json.loads(capsys.readouterr().out)
    assert [row["group_by"] for row in keys] == ["api_key", "all"]  # only its own key, then the overall row

    # A table with a sparkline for people.
    base[-1] = "table"
    assert cli_main([*base, "analytics", "--since", "1h", "--group-by", f"metadata.{run}"]) == 0
    table = capsys.readouterr().out
    assert "REQUESTS_OVER_TIME" in table and "ann" in table and "(all)" in table


def test_invalid_analytics_requests_name_the_field(admin: ImageGatewayClient) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        admin.get_analytics(since=timedelta(seconds=-5))
    assert "since" in str(info.value)
    with pytest.raises(InvalidArgumentError) as info:
        admin.get_analytics(since=timedelta(hours=1), group_by="metadata", metadata_key='bad"key')
    assert "metadata_key" in str(info.value)


async def test_the_async_client_gets_analytics_too(gateway: GatewayThread) -> None:
    async with AsyncImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as client:
        response = await client.get_analytics(since=timedelta(minutes=30), group_by="model", outcome="success")
    assert response.group_by == AnalyticsGroupBy.Value("ANALYTICS_GROUP_BY_MODEL")
    assert response.bucket_duration.ToTimedelta() == timedelta(minutes=1)
    assert all(len(row.buckets) in (30, 31) for row in response.rows)
    assert all(row.totals.errors == 0 for row in response.rows)
