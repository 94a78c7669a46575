"""A gateway on PostgreSQL while the database goes away and comes back (pg_ctl stop / start under load).

Generation goes on from the replica's cached API keys, virtual keys and configs (past every cache's
TTL, within IMAGEGW_STALE_CONFIG_MAX_AGE); admin writes answer UNAVAILABLE naming the database but
never its password; request-log records wait in memory and are all written once it is back, and
records past IMAGEGW_REQUEST_LOG_BUFFER are counted as dropped. Health stays SERVING throughout, its
details (REST /health, gRPC health's trailing metadata) saying the database is unreachable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from imagegateway import ImageGatewayClient
from imagegateway.errors import UnavailableError
from imagegateway_server.api.grpc_health import DETAILS_METADATA_KEY
from tests.conftest import OPENAI_SECRET, eventually
from tests.emulators import OpenAIEmulator
from tests.harness import GatewayThread, running_gateway
from tests.postgres_server import PASSWORD, PostgresServer

# Longer than the longest cache TTL (virtual keys, 10 s), so every look-up is served stale at least once.
OUTAGE_SECONDS = 11.0


@pytest.fixture
def managed_postgres(postgres_server: PostgresServer) -> PostgresServer:
    if not postgres_server.managed:
        pytest.skip("stops and starts the server: only one the tests started")
    return postgres_server


@pytest.fixture
def database(managed_postgres: PostgresServer) -> Iterator[str]:
    url = managed_postgres.fresh_database()
    yield url
    managed_postgres.drop_database(url)


def metric(gateway: GatewayThread, name: str) -> float:
    with urllib.request.urlopen(gateway.metrics_url, timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not exported")


def stored_logs(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM request_logs").fetchone()
    assert row is not None
    return int(row[0])


def setup_routes(gateway: GatewayThread, emulator: OpenAIEmulator) -> tuple[str, str]:
    """A virtual key, a saved config over it and a generate key; returns (config id, plaintext key)."""
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        key = admin.create_virtual_key("outage-openai", "openai", OPENAI_SECRET, base_url=emulator.base_url)
        config = admin.create_config("outage", {"virtual_key": key.id, "override_params": {"model": "dall-e-3"}})
        caller = admin.create_api_key("outage-caller")
    return config.id, caller.key


def test_generation_goes_on_through_a_database_outage_and_no_log_record_is_lost(
    managed_postgres: PostgresServer,
    database: str,
    openai_emulator: OpenAIEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with running_gateway(tmp_path / "gw", database_url=database, stale_config_max_age_seconds=120.0) as gateway:
        config_id, key = setup_routes(gateway, openai_emulator)
        served: list[str] = []
        failures: list[Exception] = []
        stop = threading.Event()
        with ImageGatewayClient(gateway.grpc_target, api_key=key) as caller:
            caller.generate_image(prompt="warm the caches", config_id=config_id)
            served.append("warm-up")

            def load() -> None:
                while not stop.is_set():
                    try:
                        response = caller.generate_image(prompt="a lighthouse at dusk", config_id=config_id)
                    except Exception as error:  # every failure is a finding
                        failures.append(error)
                    else:
                        served.append(response.outcome.log_id)
                    time.sleep(0.02)

            threads = [threading.Thread(target=load) for _ in range(2)]
            for thread in threads:
                thread.start()
            try:
                time.sleep(0.5)
                managed_postgres.stop()
                try:
                    served_before = len(served)
                    time.sleep(OUTAGE_SECONDS)
                    assert len(served) > served_before + 20, "generation stalled while the database was down"
                    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
                        with pytest.raises(UnavailableError) as raised:
                            admin.create_config("during-the-outage", {"provider": "openai", "api_key": "sk-x"})
                    assert "postgresql://imagegw@127.0.0.1:" in raised.value.message
                    assert PASSWORD not in raised.value.message
                    assert metric(gateway, "imagegateway_database_up") == 0
                    assert metric(gateway, "imagegateway_request_log_pending") > 0
                finally:
                    managed_postgres.start()
                time.sleep(1.0)  # load goes on while the database comes back
            finally:
                stop.set()
                for thread in threads:
                    thread.join(30)
        assert failures == []
        eventually(lambda: stored_logs(database) == len(served), timeout=30)
        assert metric(gateway, "imagegateway_request_log_dropped_total") == 0
        assert metric(gateway, "imagegateway_database_up") == 1
    # Said once each way, naming the database; the password is in no log line.
    assert len([r for r in caplog.records if "is unreachable:" in r.getMessage()]) == 1
    assert len([r for r in caplog.records if "is reachable again" in r.getMessage()]) == 1
    assert PASSWORD not in caplog.text


def test_records_past_the_buffer_are_dropped_and_counted(
    managed_postgres: PostgresServer, database: str, openai_emulator: OpenAIEmulator, tmp_path: Path
) -> None:
    buffer = 5
    with running_gateway(
        tmp_path / "gw", database_url=database, stale_config_max_age_seconds=120.0, request_log_buffer=buffer
    ) as gateway:
        config_id, key = setup_routes(gateway, openai_emulator)
        with ImageGatewayClient(gateway.grpc_target, api_key=key) as caller:
            caller.generate_image(prompt="warm the caches", config_id=config_id)
            eventually(lambda: stored_logs(database) == 1)
            managed_postgres.stop()
            try:
                for _ in range(buffer + 3):
                    caller.generate_image(prompt="a lighthouse at dusk", config_id=config_id)
                assert metric(gateway, "imagegateway_request_log_dropped_total") == 3
            finally:
                managed_postgres.start()
        eventually(lambda: stored_logs(database) == 1 + buffer, timeout=30)


def grpc_health(gateway: GatewayThread) -> tuple[int, dict[str, Any]]:
    """grpc.health.v1 Check's status and the details its trailing metadata carries."""
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        answer, call = health_pb2_grpc.HealthStub(channel).Check.with_call(health_pb2.HealthCheckRequest(), timeout=10)
    trailers = dict(call.trailing_metadata() or ())
    return answer.status, json.loads(trailers[DETAILS_METADATA_KEY])


def rest_health(gateway: GatewayThread) -> dict[str, Any]:
    answer = httpx.get(gateway.rest_base_url.removesuffix("/v1") + "/health", timeout=10)
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    return body


def test_health_stays_serving_and_says_the_database_is_unreachable_while_it_is_down(
    managed_postgres: PostgresServer, database: str, tmp_path: Path
) -> None:
    with running_gateway(tmp_path / "gw", database_url=database, stale_config_max_age_seconds=120.0) as gateway:
        status, details = grpc_health(gateway)
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert details["database"]["backend"] == "postgresql" and details["database"]["up"] is True
        assert rest_health(gateway)["database"]["up"] is True
        # No request touches the database while it is down: the watch's own check must notice.
        managed_postgres.stop()
        try:
            down = eventually(lambda: (h := rest_health(gateway))["database"]["up"] is False and h, timeout=15)
            assert down["status"] == "ok", "generation goes on from cached configs: the replica still serves"
            assert "unreachable" in down["database"]["serving_from"]
            assert down["database"]["database"].startswith("postgresql://imagegw@127.0.0.1:")
            status, details = grpc_health(gateway)
            assert status == health_pb2.HealthCheckResponse.SERVING and details["database"]["up"] is False
            assert PASSWORD not in json.dumps(down) + json.dumps(details)
        finally:
            managed_postgres.start()
        eventually(lambda: rest_health(gateway)["database"]["up"] is True, timeout=15)
        assert grpc_health(gateway)[1]["database"]["up"] is True


def test_health_names_a_sqlite_database_up(tmp_path: Path) -> None:
    with running_gateway(tmp_path / "gw") as gateway:
        status, details = grpc_health(gateway)
        assert status == health_pb2.HealthCheckResponse.SERVING
        assert details["database"]["backend"] == "sqlite" and details["database"]["up"] is True
        assert rest_health(gateway)["database"] == details["database"]
