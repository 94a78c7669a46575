"""The dashboard's JSON API over real sockets: cookie sessions, the CSRF header, per-key visibility,
filters, paging and kept images, read from the same request log the gRPC API serves."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from imagegateway import ImageGatewayClient
from imagegateway_server.api.auth import Authenticator
from imagegateway_server.api.dashboard import Dashboard
from imagegateway_server.security.api_keys import ApiKeyService
from imagegateway_server.storage.sqlite import SqliteStore
from tests.conftest import Emulators, Seed, eventually
from tests.dashboard_client import (
    DASHBOARD_HEADER,
    DashboardClient,
    generate,
    keeping_gateway,
    new_generate_key,
    origin,
)
from tests.emulators import Fault, OpenAIEmulator, StabilityEmulator
from tests.harness import GatewayThread

Keeping = tuple[GatewayThread, Seed]


@pytest.fixture(scope="module")
def keeping(
    tmp_path_factory: pytest.TempPathFactory, openai_emulator: OpenAIEmulator, stability_emulator: StabilityEmulator
) -> Iterator[Keeping]:
    with keeping_gateway(tmp_path_factory.mktemp("dashboard-api"), openai_emulator, stability_emulator) as pair:
        yield pair


def trace(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


def wait_for(client: DashboardClient, trace_id: str) -> dict[str, object]:
    (record,) = eventually(lambda: client.logs(trace_id=trace_id))
    return record


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    name_value, *attributes = [part.strip() for part in set_cookie.split(";")]
    parsed = {"": name_value}
    for attribute in attributes:
        key, _, value = attribute.partition("=")
        parsed[key.lower()] = value
    return parsed


# --- sessions ----------------------------------------------------------------------------------


def test_login_sets_an_httponly_samesite_strict_cookie_holding_a_session_id_not_the_key(keeping: Keeping) -> None:
    gateway, _ = keeping
    response = httpx.post(
        origin(gateway) + "/dashboard/api/login", json={"key": gateway.admin_key}, headers=DASHBOARD_HEADER
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "admin"
    (set_cookie,) = response.headers.get_list("set-cookie")
    attributes = cookie_attributes(set_cookie)
    name, _, value = attributes[""].partition("=")
    assert name == "imagegw_session" and len(value) >= 43
    assert gateway.admin_key not in set_cookie and hashlib.sha256(gateway.admin_key.encode()).hexdigest() != value
    assert "httponly" in attributes
    assert attributes["samesite"].lower() == "strict"
    assert attributes["path"] == "/dashboard"
    assert int(attributes["max-age"]) > 0
    assert "secure" not in attributes  # plain HTTP here; see the HTTPS test below
    assert gateway.admin_key not in response.text


def test_a_bad_key_gets_401_and_is_never_logged(keeping: Keeping, caplog: pytest.LogCaptureFixture) -> None:
    gateway, _ = keeping
    bad_key = "igw_" + "Wrong0Key" * 5
    with caplog.at_level(logging.DEBUG):
        response = httpx.post(origin(gateway) + "/dashboard/api/login", json={"key": bad_key}, headers=DASHBOARD_HEADER)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert bad_key not in response.text and bad_key[:10] not in response.text
    refusals = [r for r in caplog.records if r.getMessage() == "gateway API key refused"]
    assert refusals and vars(refusals[-1]).get("operation") == "/dashboard/api/login"
    everything_logged = caplog.text + "".join(str(vars(record)) for record in caplog.records)
    assert bad_key not in everything_logged and bad_key[4:14] not in everything_logged


def test_the_api_refuses_calls_without_the_dashboard_header(keeping: Keeping) -> None:
    gateway, _ = keeping
    with DashboardClient(gateway) as client:
        client.login(gateway.admin_key)
        assert client.http.get("/dashboard/api/session").status_code == 200
        bare = client.http.get("/dashboard/api/session", headers={"x-imagegw-dashboard": ""})
        assert bare.status_code == 403
        assert bare.json()["error"]["param"] == "x-imagegw-dashboard"
    cross_site = httpx.post(origin(gateway) + "/dashboard/api/login", json={"key": gateway.admin_key})
    assert cross_site.status_code == 403 and "set-cookie" not in cross_site.headers
    # What a plain HTML form posts: refused too, and the key is not echoed.
    form = httpx.post(
        origin(gateway) + "/dashboard/api/login", data={"key": gateway.admin_key}, headers=DASHBOARD_HEADER
    )
    assert form.status_code == 415 and gateway.admin_key not in form.text
    missing = httpx.post(origin(gateway) + "/dashboard/api/login", json={}, headers=DASHBOARD_HEADER)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "key"


def test_without_a_live_session_the_api_answers_401(keeping: Keeping) -> None:
    gateway, _ = keeping
    base = origin(gateway)
    assert httpx.get(base + "/dashboard/api/logs", headers=DASHBOARD_HEADER).status_code == 401
    forged = httpx.get(base + "/dashboard/api/logs", headers=DASHBOARD_HEADER, cookies={"imagegw_session": "A" * 43})
    assert forged.status_code == 401
    # The key itself is no credential here: the dashboard authenticates by session only.
    as_header = httpx.get(
        base + "/dashboard/api/logs", headers={**DASHBOARD_HEADER, "x-imagegw-api-key": gateway.admin_key}
    )
    assert as_header.status_code == 401


def test_logout_clears_the_cookie_and_ends_the_session(keeping: Keeping) -> None:
    gateway, _ = keeping
    with DashboardClient(gateway) as client:
        client.login(gateway.admin_key)
        session = client.http.cookies["imagegw_session"]
        response = client.http.post("/dashboard/api/logout")
        assert response.status_code == 204
        attributes = cookie_attributes(response.headers["set-cookie"])
        assert attributes[""] == 'imagegw_session=""' or attributes[""] == "imagegw_session="
        assert attributes["max-age"] == "0" and attributes["path"] == "/dashboard"
        assert "imagegw_session" not in client.http.cookies
    replayed = httpx.get(
        origin(gateway) + "/dashboard/api/session", headers=DASHBOARD_HEADER, cookies={"imagegw_session": session}
    )
    assert replayed.status_code == 401


def test_revoking_a_key_ends_its_dashboard_sessions(keeping: Keeping) -> None:
    gateway, _ = keeping
    key_id, key = new_generate_key(gateway, "revoked")
    with DashboardClient(gateway) as client:
        assert client.login(key).json() == {"key_id": key_id, "scope": "generate", "expires_in": 8 * 3600}
        assert client.http.get("/dashboard/api/session").status_code == 200
        with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
            admin.revoke_api_key(key_id)
        assert client.http.get("/dashboard/api/logs").status_code == 401
        assert client.http.post("/dashboard/api/login", json={"key": key}).status_code == 401


async def test_the_cookie_is_secure_when_the_dashboard_is_served_over_https(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "gateway.db")
    await store.open()
    try:
        api_keys = ApiKeyService(store)
        _, key = await api_keys.create("https", "generate")
        app = Starlette(routes=Dashboard(store, Authenticator(api_keys)).routes())
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="https://gateway.test", headers=DASHBOARD_HEADER
        ) as client:
            response = await client.post("/dashboard/api/login", json={"key": key})
            assert response.status_code == 200
            assert "secure" in cookie_attributes(response.headers["set-cookie"])
            assert (await client.get("/dashboard/api/session")).json()["scope"] == "generate"
            logout = await client.post("/dashboard/api/logout")
            assert "secure" in cookie_attributes(logout.headers["set-cookie"])
    finally:
        await store.close()


# --- what each key sees ------------------------------------------------------------------------


def test_a_generate_key_sees_only_its_own_requests_and_an_admin_sees_all(
    keeping: Keeping, emulators: Emulators
) -> None:
    gateway, seed = keeping
    alice_id, alice = new_generate_key(gateway, "alice")
    bob_id, bob = new_generate_key(gateway, "bob")
    alice_trace, bob_trace = trace("alice"), trace("bob")
    assert generate(gateway, alice, seed.config_id, trace_id=alice_trace, keep=True).status_code == 200
    assert generate(gateway, bob, seed.config_id, trace_id=bob_trace, keep=True).status_code == 200

    with DashboardClient(gateway) as admin:
        admin.login(gateway.admin_key)
        bobs_record = wait_for(admin, bob_trace)
        wait_for(admin, alice_trace)
        both = {r["trace_id"] for r in admin.logs(page_size="200")}
        assert {alice_trace, bob_trace} <= both
        assert [r["trace_id"] for r in admin.logs(caller_key_id=bob_id)] == [bob_trace]
        health = admin.http.get("/dashboard/api/health").json()
        assert health["source"] == "breakers"  # breaker state is for admin keys, as ListTargetHealth is
        assert ("stability-ai", "stable-diffusion-v1-6", "closed") in {
            (t["provider"], t["model"], t["state"]) for t in health["targets"]
        }
        assert admin.http.get("/dashboard/api/session").json()["breaker_health"] is True
    with DashboardClient(gateway) as client:
        client.login(alice)
        mine = client.logs(page_size="200")
        assert [r["trace_id"] for r in mine] == [alice_trace]
        assert all(r["caller_key_id"] == alice_id for r in mine)
        assert client.logs(trace_id=bob_trace) == []
        refused = client.http.get("/dashboard/api/logs", params={"caller_key_id": bob_id})
        assert refused.status_code == 403 and refused.json()["error"]["param"] == "caller_key_id"
        for path in (f"/dashboard/api/logs/{bobs_record['id']}", f"/dashboard/api/logs/{bobs_record['id']}/image"):
            hidden = client.http.get(path)
            assert hidden.status_code == 404 and bob_id not in hidden.text
        assert client.http.get("/dashboard/api/health").json() == {"source": "none", "targets": []}
        assert client.http.get("/dashboard/api/session").json()["breaker_health"] is False


def test_filters_find_the_request_that_fell_back_and_its_attempts(keeping: Keeping, emulators: Emulators) -> None:
    gateway, seed = keeping
    fell_back, served_first = trace("fell-back"), trace("first")
    emulators.stability.inject(Fault.status(500))
    assert generate(gateway, gateway.admin_key, seed.config_id, trace_id=fell_back).status_code == 200
    assert generate(gateway, gateway.admin_key, seed.config_id, trace_id=served_first).status_code == 200

    with DashboardClient(gateway) as client:
        client.login(gateway.admin_key)
        record = wait_for(client, fell_back)
        wait_for(client, served_first)
        assert record["fallback_used"] is True and record["served_target"] == "config.targets[1]"
        assert [(a["target"], a["provider"], a["model"], a["status_code"]) for a in record["attempts"]] == [
            ("config.targets[0]", "stability-ai", "stable-diffusion-v1-6", 500),
            ("config.targets[1]", "openai", "dall-e-3", 200),
        ]
        assert record["attempts"][0]["error"] and record["attempts"][0]["circuit_open"] is False
        assert client.http.get(f"/dashboard/api/logs/{record['id']}").json()["log"] == record

        def traces(**params: str) -> set[str]:
            return {r["trace_id"] for r in client.logs(page_size="200", **params)}

        assert fell_back in traces(fallback_used="true") and served_first not in traces(fallback_used="true")
        assert served_first in traces(fallback_used="false") and fell_back not in traces(fallback_used="false")
        assert fell_back in traces(model="dall-e-3") and served_first not in traces(model="dall-e-3")
        assert fell_back in traces(provider="openai") and served_first in traces(provider="stabilityai")
        assert {fell_back, served_first} <= traces(outcome="success", status_code="200")
        assert not {fell_back, served_first} & traces(outcome="failure")
        assert traces(start_time="2999-01-01T00:00:00Z") == set()
        assert {fell_back, served_first} <= traces(config_id=seed.config_id)
        assert traces(config_id="pc-no-such-config") == set()
        assert fell_back in traces(end_time="2999-01-01T00:00:00Z")
        bad = client.http.get("/dashboard/api/logs", params={"fallback_used": "sometimes"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "fallback_used"


def test_a_request_where_every_target_failed_is_listed_as_a_failure(keeping: Keeping, emulators: Emulators) -> None:
    gateway, seed = keeping
    failed = trace("all-failed")
    emulators.stability.inject(Fault.status(503))
    emulators.openai.inject(Fault.status(502))
    assert generate(gateway, gateway.admin_key, seed.config_id, trace_id=failed).status_code == 502
    with DashboardClient(gateway) as client:
        client.login(gateway.admin_key)
        (record,) = eventually(lambda: client.logs(trace_id=failed, outcome="failure"))
        assert record["status_code"] == 502 and record["error"]
        assert [a["status_code"] for a in record["attempts"]] == [503, 502]
        assert client.logs(trace_id=failed, outcome="success") == []


def test_pages_run_newest_first_and_resume_where_the_last_one_ended_under_every_filter(
    keeping: Keeping, emulators: Emulators
) -> None:
    gateway, seed = keeping
    key_id, key = new_generate_key(gateway, "pager")
    traces = [trace(f"page{i}") for i in range(5)]
    for i, trace_id in enumerate(traces):
        if i % 2 == 0:
            emulators.stability.inject(Fault.status(500))  # 0, 2 and 4 fall back
        assert generate(gateway, key, seed.config_id, trace_id=trace_id).status_code == 200
    with DashboardClient(gateway) as client:
        client.login(key)
        eventually(lambda: len(client.logs()) == 5)

        def walk(**params: str) -> list[str]:
            seen: list[str] = []
            token = ""
            while True:
                page = client.http.get(
                    "/dashboard/api/logs",
                    params={**params, "page_size": "1", **({"page_token": token} if token else {})},
                )
                assert page.status_code == 200
                body = page.json()
                assert len(body["logs"]) <= 1
                seen += [r["trace_id"] for r in body["logs"]]
                token = body["next_page_token"]
                if not token:
                    return seen

        assert walk() == traces[::-1]
        assert walk(fallback_used="true") == [traces[4], traces[2], traces[0]]
        assert walk(fallback_used="false", model="stable-diffusion-v1-6") == [traces[3], traces[1]]
        assert key_id


# --- kept images -------------------------------------------------------------------------------


def test_a_kept_image_is_served_to_its_owner_and_an_admin_only(keeping: Keeping, emulators: Emulators) -> None:
    gateway, seed = keeping
    _, owner = new_generate_key(gateway, "owner")
    _, other = new_generate_key(gateway, "other")
    kept, not_kept = trace("kept"), trace("not-kept")
    response = generate(gateway, owner, seed.config_id, trace_id=kept, keep=True)
    image = base64.b64decode(response.json()["data"][0]["b64_json"])
    assert generate(gateway, owner, seed.config_id, trace_id=not_kept).status_code == 200
    with DashboardClient(gateway) as client:
        client.login(owner)
        record = wait_for(client, kept)
        assert record["has_image"] is True and wait_for(client, not_kept)["has_image"] is False
        served = client.http.get(f"/dashboard/api/logs/{record['id']}/image")
        assert served.status_code == 200 and served.content == image
        assert served.headers["content-type"] == "image/png"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "no-store" in served.headers["cache-control"]
        missing = client.http.get(f"/dashboard/api/logs/{wait_for(client, not_kept)['id']}/image")
        assert missing.status_code == 404
    with DashboardClient(gateway) as client:
        client.login(other)
        assert client.http.get(f"/dashboard/api/logs/{record['id']}/image").status_code == 404
    with DashboardClient(gateway) as client:
        client.login(gateway.admin_key)
        assert client.http.get(f"/dashboard/api/logs/{record['id']}/image").content == image
    assert len(list((gateway.settings.data_dir / "kept-images").iterdir())) >= 1


def test_images_are_not_kept_unless_the_setting_is_on(gateway: GatewayThread, seed: Seed, emulators: Emulators) -> None:
    trace_id = trace("setting-off")
    assert generate(gateway, gateway.admin_key, seed.config_id, trace_id=trace_id, keep=True).status_code == 200
    with DashboardClient(gateway) as client:
        client.login(gateway.admin_key)
        record = wait_for(client, trace_id)
        assert record["has_image"] is False
        assert client.http.get(f"/dashboard/api/logs/{record['id']}/image").status_code == 404
    assert not (gateway.settings.data_dir / "kept-images").exists()


# --- the page ----------------------------------------------------------------------------------


def test_the_page_loads_only_the_gateways_own_assets_and_its_csp_allows_nothing_else(keeping: Keeping) -> None:
    gateway, _ = keeping
    response = httpx.get(origin(gateway) + "/dashboard")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    (script,) = re.findall(r"<script>(.*?)</script>", html, re.S)
    markup = html.replace(script, "")
    urls = re.findall(r'<[^>]*\b(?:src|href|srcset|data)\s*=\s*"([^"]*)"', markup)
    assert sorted(urls) == [
        "/dashboard/assets/analytics-2.js",
        "/dashboard/assets/uplot-1.6.32.min.css",
        "/dashboard/assets/uplot-1.6.32.min.js",
    ]
    assert "http://" not in html and "https://" not in html and "@import" not in html and "url(" not in html
    csp = response.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp and "connect-src 'self'" in csp
    assert 'method="post"' in html  # without script, the login form still never puts the key in a URL
    for url in urls:
        asset = httpx.get(origin(gateway) + url)
        assert asset.status_code == 200 and asset.headers["x-content-type-options"] == "nosniff"
        kind = "text/css" if url.endswith(".css") else "text/javascript"
        assert asset.headers["content-type"].startswith(kind) and len(asset.content) > 1000
        assert b"http://" not in asset.content.replace(b"http://www.w3.org/2000/svg", b"")  # loads nothing remote
    assert httpx.get(origin(gateway) + "/dashboard/assets/../dashboard_page.html").status_code == 404
    assert httpx.get(origin(gateway) + "/dashboard/assets/LICENSE").status_code == 404


def test_analytics_json_counts_a_generate_keys_own_requests_only(keeping: Keeping, emulators: Emulators) -> None:
    gateway, seed = keeping
    alice_id, alice = new_generate_key(gateway, "alice-analytics")
    bob_id, bob = new_generate_key(gateway, "bob-analytics")
    alice_trace, bob_trace = trace("alice-analytics"), trace("bob-analytics")
    assert generate(gateway, alice, seed.config_id, trace_id=alice_trace).status_code == 200
    assert generate(gateway, bob, seed.config_id, trace_id=bob_trace).status_code == 200

    with DashboardClient(gateway) as admin:
        admin.login(gateway.admin_key)
        wait_for(admin, alice_trace)
        wait_for(admin, bob_trace)
        body = admin.http.get("/dashboard/api/analytics", params={"since": "1h", "group_by": "api_key"}).json()
        rows = {row["group"]: row for row in body["rows"]}
        assert rows[alice_id]["totals"]["requests"] == 1 and rows[bob_id]["totals"]["requests"] == 1
        assert body["bucket_duration"] == "120s" and body["start_time"].endswith("Z")
        assert body["overall"]["group"] == "" and body["overall"]["totals"]["requests"] >= 2
        assert sum(b["counts"]["requests"] for b in rows[alice_id]["buckets"]) == 1
        params = {"start_time": body["start_time"], "end_time": body["end_time"], "group_by": "api_key"}
        totals = admin.http.get("/dashboard/api/analytics", params={**params, "detail": "totals"}).json()
        assert {row["group"]: row["totals"]["requests"] for row in totals["rows"]} == {
            group: row["totals"]["requests"] for group, row in rows.items()
        }
        assert all(row["buckets"] == [] for row in totals["rows"]) and totals["overall"]["buckets"] == []
        refused = admin.http.get("/dashboard/api/analytics", params={**params, "detail": "some"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "detail"
    with DashboardClient(gateway) as client:
        client.login(alice)
        body = client.http.get("/dashboard/api/analytics", params={"since": "1h", "group_by": "api_key"}).json()
        assert [row["group"] for row in body["rows"]] == [alice_id]
        assert body["overall"]["totals"]["requests"] == 1  # the overall row is hers alone too
        table = client.http.get(
            "/dashboard/api/analytics.csv", params={"since": "1h", "group_by": "metadata._user", "columns": "requests"}
        )
        assert table.status_code == 200 and table.headers["content-type"].startswith("text/csv")
        lines = table.text.splitlines()
        assert lines[0] == "bucket_start,group_by,group,requests"
        assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:] if ",all," not in line) == 1
        assert len(lines) == 1 + 2 * len(body["overall"]["buckets"])  # her one group and the overall row
        for params, field in (
            ({"since": "soon"}, "since"),
            ({"since": "1h", "group_by": "colour"}, "group_by"),
            ({"since": "1h", "page_size": "5"}, "page_size"),
            ({"since": "1h", "caller_key_id": bob_id}, "caller_key_id"),
        ):
            refused = client.http.get("/dashboard/api/analytics", params=params)
            assert refused.status_code in (400, 403) and refused.json()["error"]["param"] == field, params
        refused = client.http.get("/dashboard/api/analytics.csv", params={"since": "1h", "columns": "requests,secret"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "columns"
        bob_csv = client.http.get("/dashboard/api/analytics.csv", params={"since": "1h", "caller_key_id": bob_id})
        assert bob_csv.status_code == 403 and bob_csv.json()["error"]["param"] == "caller_key_id"


def without_latencies(answer: dict[str, Any]) -> dict[str, Any]:
    """A detail=totals answer as the view's tables carry it: no percentiles in any row."""
    latency = ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms")
    for row in (*answer["rows"], answer["overall"]):
        row["totals"] = {name: value for name, value in row["totals"].items() if name not in latency}
    return answer


def test_the_analytics_view_answers_the_chart_and_the_top_tables_in_one_call(
    keeping: Keeping, emulators: Emulators
) -> None:
    gateway, seed = keeping
    carol_id, carol = new_generate_key(gateway, "carol-view")
    carol_trace, admin_trace = trace("carol-view"), trace("admin-view")
    user = {"_user": "carol-the-user"}
    assert generate(gateway, carol, seed.config_id, trace_id=carol_trace, metadata=user).status_code == 200
    assert generate(gateway, gateway.admin_key, seed.config_id, trace_id=admin_trace).status_code == 200

    with DashboardClient(gateway) as admin:
        admin.login(gateway.admin_key)
        wait_for(admin, carol_trace)
        wait_for(admin, admin_trace)
        first = admin.http.get("/dashboard/api/analytics", params={"since": "1h"}).json()
        pinned = {"start_time": first["start_time"], "end_time": first["end_time"]}
        view = admin.http.get("/dashboard/api/analytics/view", params={**pinned, "group_by": "model"}).json()
        assert set(view) == {"main", "keys", "users", "targets"}
        # Each part is what its own call answers for the same instants (no request is written in between).
        assert view["main"] == admin.http.get("/dashboard/api/analytics", params={**pinned, "group_by": "model"}).json()
        for name, group_by in (("keys", "api_key"), ("users", "metadata._user"), ("targets", "target")):
            alone = admin.http.get(
                "/dashboard/api/analytics", params={**pinned, "group_by": group_by, "detail": "totals"}
            ).json()
            assert view[name] == without_latencies(alone), name
        users = {row["group"]: row["totals"]["requests"] for row in view["users"]["rows"]}
        assert users["carol-the-user"] == 1
        refused = admin.http.get("/dashboard/api/analytics/view", params={**pinned, "group_by": "colour"})
        assert refused.status_code == 400 and refused.json()["error"]["param"] == "group_by"
    with DashboardClient(gateway) as client:
        client.login(carol)
        view = client.http.get("/dashboard/api/analytics/view", params={"since": "1h"}).json()
        # A generate key's view is its own requests only, in the chart and in every table.
        assert view["main"]["overall"]["totals"]["requests"] == 1
        assert [row["group"] for row in view["keys"]["rows"]] == [carol_id]
        assert [row["group"] for row in view["users"]["rows"]] == ["carol-the-user"]
        assert sum(row["totals"]["requests"] for row in view["targets"]["rows"]) == 1
        refused = client.http.get("/dashboard/api/analytics/view", params={"since": "1h", "caller_key_id": "another"})
        assert refused.status_code == 403 and refused.json()["error"]["param"] == "caller_key_id"
