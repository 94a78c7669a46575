"""Three gateway replicas on one Redis and one database, over real sockets, against the emulators.

The replicas share a SQLite file (WAL mode: each opens its own connections, SQLite serialises the
writers across them) and a master key, as replicas behind a load balancer share a database and a
secret. Each test uses its own keys, configs and prompts, so the replicas' shared state from one test
never answers for another.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from imagegateway import ImageGatewayClient
from imagegateway.v1 import health_pb2, keys_pb2
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway
from tests.redis_server import RedisServer, running_redis

GENERATIONS = "/images/generations"
TIMEOUT = 30.0
CACHE = {"mode": "simple", "max_age": 600}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def fleet_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of this module's own: one test kills it."""
    with running_redis(tmp_path_factory.mktemp("fleet-redis")) as server:
        if server.external:
            pytest.skip("IMAGEGW_TEST_REDIS_URL names a Redis the tests cannot kill")
        yield server


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, fleet_redis: RedisServer) -> Iterator[list[GatewayThread]]:
    root = tmp_path_factory.mktemp("fleet")
    shared = {
        "database_url": f"sqlite:///{root / 'shared.db'}",
        "master_key": secrets.token_urlsafe(32),
        "redis_url": fleet_redis.url,
        "redis_timeout_seconds": 0.5,
        # One failure opens a breaker, for the breaker test; its targets are its own.
        "breaker_consecutive_failures": 1,
        "breaker_cooldown_seconds": 120.0,
    }
    with (
        running_gateway(root / "a", **shared) as first,
        running_gateway(root / "b", **shared) as second,
        running_gateway(root / "c", **shared) as third,
    ):
        yield [first, second, third]


@pytest.fixture(scope="module")
def admins(fleet: list[GatewayThread]) -> Iterator[list[ImageGatewayClient]]:
    clients = [ImageGatewayClient(replica.grpc_target, api_key=replica.admin_key) for replica in fleet]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@pytest.fixture(scope="module")
def openai_vk(admins: list[ImageGatewayClient], openai_emulator: Any) -> str:
    return admins[0].create_virtual_key(unique("openai"), "openai", OPENAI_SECRET, base_url=openai_emulator.base_url).id


def post(replica: GatewayThread, key: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        replica.rest_base_url + GENERATIONS,
        json={"response_format": "b64_json", **body},
        headers={"x-portkey-api-key": key, **headers},
        timeout=TIMEOUT,
    )


def within_a_second(probe: Callable[[], bool]) -> float:
    """Polls ``probe`` until it holds; returns how long that took (fails past 1 s)."""
    started = time.monotonic()
    while not probe():
        if time.monotonic() - started > 1.0:
            raise AssertionError("not seen within 1 s")
        time.sleep(0.02)
    return time.monotonic() - started


def key_with(admin: ImageGatewayClient, **limits: Any) -> str:
    return admin.create_api_key(unique("key"), "generate", limits=keys_pb2.Limits(**limits)).key


# -- limits and budgets ---------------------------------------------------------------------------------


def test_a_rate_limit_is_one_limit_for_the_fleet(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], openai_vk: str, emulators: Emulators
) -> None:
    key = key_with(admins[0], requests_per_minute=3)
    statuses = [
        post(replica, key, {"prompt": unique("p"), "model": "dall-e-3"}, **{"x-portkey-virtual-key": openai_vk})
        for replica in fleet * 2
    ]
    assert sorted(r.status_code for r in statuses) == [200, 200, 200, 429, 429, 429]


def test_a_budget_spent_on_two_replicas_is_refused_on_the_third(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], openai_vk: str, emulators: Emulators
) -> None:
    key = key_with(admins[1], usd_per_day=0.1)  # DALL-E 3 at 1024x1024 is $0.04
    body = {"prompt": unique("p"), "model": "dall-e-3", "size": "1024x1024"}
    assert post(fleet[0], key, body, **{"x-portkey-virtual-key": openai_vk}).status_code == 200
    assert post(fleet[1], key, body, **{"x-portkey-virtual-key": openai_vk}).status_code == 200
    time.sleep(0.1)  # the spend is written after the answer
    refused = post(fleet[2], key, body, **{"x-portkey-virtual-key": openai_vk})
    assert refused.status_code == 429 and "budget" in refused.json()["error"]["message"]


# -- the response cache -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cached_config(admins: list[ImageGatewayClient], openai_vk: str) -> str:
    return (
        admins[0]
        .create_config(
            unique("cached"), {"virtual_key": openai_vk, "override_params": {"model": "dall-e-3"}, "cache": CACHE}
        )
        .id
    )


def test_an_answer_cached_by_one_replica_is_a_hit_on_another(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], cached_config: str, emulators: Emulators
) -> None:
    key = key_with(admins[0])
    body = {"prompt": unique("a lighthouse")}
    miss = post(fleet[0], key, body, **{"x-portkey-config": cached_config})
    hits = [post(replica, key, body, **{"x-portkey-config": cached_config}) for replica in fleet[1:]]
    assert miss.headers["x-portkey-cache-status"] == "MISS"
    assert [hit.headers["x-portkey-cache-status"] for hit in hits] == ["HIT", "HIT"]
    assert all(hit.json()["data"] == miss.json()["data"] for hit in hits)
    assert len(emulators.openai.requests) == 1


def test_identical_concurrent_requests_on_three_replicas_make_one_upstream_call(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], cached_config: str, emulators: Emulators
) -> None:
    key = key_with(admins[0])
    body = {"prompt": unique("a slow kite")}
    emulators.openai.inject(Fault.latency(800))
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda r: post(r, key, body, **{"x-portkey-config": cached_config}), fleet))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert sorted(a.headers["x-portkey-cache-status"] for a in answers) == ["HIT", "HIT", "MISS"]
    assert len(emulators.openai.requests) == 1


# -- breakers ---------------------------------------------------------------------------------------


def test_a_breaker_opened_on_one_replica_is_open_on_all(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], emulators: Emulators, stability_emulator: Any
) -> None:
    # A virtual key of its own (its own key fingerprint: its own breaker), in front of a fallback.
    emulators.openai.reset()
    breaking = (
        admins[0]
        .create_virtual_key(unique("breaking"), "openai", OPENAI_SECRET + "-b", base_url=emulators.openai.base_url)
        .id
    )
    stability = (
        admins[0]
        .create_virtual_key(unique("stability"), "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url)
        .id
    )
    config = (
        admins[0]
        .create_config(
            unique("fallback"),
            {
                "strategy": {"mode": "fallback"},
                "targets": [
                    {"virtual_key": breaking, "override_params": {"model": "dall-e-2"}},
                    {"virtual_key": stability, "override_params": {"model": "stable-diffusion-v1-6"}},
                ],
            },
        )
        .id
    )
    key = key_with(admins[0])
    # The emulator refuses the unknown secret (401 is not a breaker failure); a 500 is.
    emulators.openai.inject(Fault.status(500))
    assert post(fleet[0], key, {"prompt": unique("p")}, **{"x-portkey-config": config}).status_code == 200
    calls = len(emulators.openai.requests)

    def open_on(replica: int) -> bool:
        views = admins[replica].list_target_health("openai")
        return any(v.state == health_pb2.CIRCUIT_STATE_OPEN and v.model == "dall-e-2" for v in views)

    within_a_second(lambda: open_on(1) and open_on(2))
    for replica in fleet[1:]:
        served = post(replica, key, {"prompt": unique("p")}, **{"x-portkey-config": config})
        assert served.status_code == 200 and served.headers["x-portkey-provider"] == "stability-ai"
    assert len(emulators.openai.requests) == calls  # the open breaker skipped the target on every replica


# -- admin changes ----------------------------------------------------------------------------------


def test_a_revoked_api_key_is_refused_by_every_replica_within_a_second(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], openai_vk: str, emulators: Emulators
) -> None:
    created = admins[0].create_api_key(unique("revoked"), "generate")
    body = {"prompt": unique("p"), "model": "dall-e-3"}
    for replica in fleet:  # every replica has it cached now
        assert post(replica, created.key, body, **{"x-portkey-virtual-key": openai_vk}).status_code == 200
    admins[0].revoke_api_key(created.api_key.id)
    for replica in fleet[1:]:
        within_a_second(
            lambda r=replica: post(r, created.key, body, **{"x-portkey-virtual-key": openai_vk}).status_code == 401
        )


def test_a_rotated_virtual_key_and_an_updated_config_reach_every_replica_within_a_second(
    fleet: list[GatewayThread], admins: list[ImageGatewayClient], emulators: Emulators, stability_emulator: Any
) -> None:
    key = key_with(admins[0])
    vk = (
        admins[0]
        .create_virtual_key(
            unique("rotating"), "openai", "sk-wrong-0123456789abcdef", base_url=emulators.openai.base_url
        )
        .id
    )
    config = admins[0].create_config(unique("moving"), {"virtual_key": vk, "override_params": {"model": "dall-e-2"}})
    body = {"prompt": unique("p")}

    def answer(replica: GatewayThread) -> httpx.Response:
        return post(replica, key, body, **{"x-portkey-config": config.id})

    for replica in fleet:  # each caches the key (with its wrong secret) and the config's version
        assert answer(replica).status_code == 401
    admins[0].rotate_virtual_key(vk, OPENAI_SECRET)
    for replica in fleet[1:]:
        within_a_second(lambda r=replica: answer(r).status_code == 200)

    stability = (
        admins[0]
        .create_virtual_key(unique("stability"), "stability-ai", STABILITY_SECRET, base_url=stability_emulator.base_url)
        .id
    )
    for replica in fleet:
        assert answer(replica).headers["x-portkey-provider"] == "openai"
    moved = {"virtual_key": stability, "override_params": {"model": "stable-diffusion-v1-6"}}
    admins[0].update_config(config.id, moved)
    for replica in fleet[1:]:
        within_a_second(lambda r=replica: answer(r).headers.get("x-portkey-provider") == "stability-ai")


# -- Redis away -------------------------------------------------------------------------------------


def test_killing_redis_under_load_fails_no_request_and_the_fleet_goes_back_to_it(
    fleet: list[GatewayThread],
    admins: list[ImageGatewayClient],
    cached_config: str,
    openai_vk: str,
    fleet_redis: RedisServer,
    emulators: Emulators,
) -> None:
    key = key_with(admins[0], requests_per_minute=100_000, usd_per_day=1000)
    stop = threading.Event()
    failures: list[str] = []
    served = [0]

    def load(replica: GatewayThread) -> None:
        with httpx.Client(base_url=replica.rest_base_url, timeout=TIMEOUT) as client:
            while not stop.is_set():
                response = client.post(
                    GENERATIONS,
                    json={"prompt": unique("p"), "model": "dall-e-3", "response_format": "b64_json"},
                    headers={"x-portkey-api-key": key, "x-portkey-virtual-key": openai_vk},
                )
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                served[0] += 1

    def backend_up(replica: GatewayThread) -> bool:
        return bool(httpx.get(replica.rest_base_url.removesuffix("/v1") + "/health").json()["state_backend"]["up"])

    workers = [threading.Thread(target=load, args=(replica,)) for replica in fleet for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        fleet_redis.kill()
        deadline = time.monotonic() + 10
        while any(backend_up(replica) for replica in fleet):
            assert time.monotonic() < deadline, "the replicas did not notice Redis was gone"
            time.sleep(0.05)
        during = served[0]
        time.sleep(0.5)
        assert served[0] > during  # serving on, from in-process state
        fleet_redis.start()
        deadline = time.monotonic() + 10
        while not all(backend_up(replica) for replica in fleet):
            assert time.monotonic() < deadline, "the replicas did not go back to Redis"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join(30)
    assert failures == []
    for replica in fleet:
        metrics = httpx.get(replica.metrics_url).text
        assert 'imagegateway_state_backend_up{backend="redis"} 1.0' in metrics
        health = httpx.get(replica.rest_base_url.removesuffix("/v1") + "/health").json()
        assert health["status"] == "ok" and health["state_backend"]["backend"] == "redis"


def test_health_details_never_show_a_redis_password(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis", password="hunter2-redis") as server:
        if server.external:
            pytest.skip("needs a Redis of its own")
        with running_gateway(tmp_path / "gw", redis_url=server.url) as replica:
            text = httpx.get(replica.rest_base_url.removesuffix("/v1") + "/health").text
            assert "hunter2" not in text and '"up":true' in text.replace(" ", "")


def test_a_request_its_limits_refuse_gives_back_the_shared_call_lock_its_look_up_took(
    fleet: list[GatewayThread],
    admins: list[ImageGatewayClient],
    cached_config: str,
    fleet_redis: RedisServer,
    emulators: Emulators,
) -> None:
    key = key_with(admins[0], requests_per_minute=1)
    assert post(fleet[0], key, {"prompt": unique("p")}, **{"x-portkey-config": cached_config}).status_code == 200
    refused = post(fleet[0], key, {"prompt": unique("p")}, **{"x-portkey-config": cached_config})
    assert refused.status_code == 429
    client = fleet_redis.client()

    def held_locks() -> list[bytes]:
        values = [client.get(name) for name in client.scan_iter("igw:flight:*")]
        return [value for value in values if value not in (None, b"kept", b"not_kept")]

    within_a_second(lambda: held_locks() == [])
