"""Who may call what: every RPC of the service descriptor and every REST route, with every kind of key.

The RPC list comes from ``service_pb2.DESCRIPTOR`` and the route list from the running REST app,
so a new RPC or route that is missing from the scope tables (``GRPC_METHOD_SCOPES``,
``REST_ROUTE_SCOPES``) fails here. Each is called with no key, a wrong key, a revoked key, a
``generate`` key and an ``admin`` key, and must answer as the table says: UNAUTHENTICATED (401)
for the first three, PERMISSION_DENIED (403) for a generate key on an admin operation, and
anything but those for the rest. Requests are empty, so allowed calls stop at validation or
NOT_FOUND and change nothing.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route

from imagegateway import ImageGatewayClient
from imagegateway.v1 import service_pb2
from imagegateway_server.api.auth import AUTH_FAILURE_REASONS, GRPC_METHOD_SCOPES, PUBLIC, REST_ROUTE_SCOPES, SESSION
from imagegateway_server.domain.scopes import Scope
from tests.harness import GatewayThread

SERVICE = service_pb2.DESCRIPTOR.services_by_name["ImageGateway"]
METHODS = list(SERVICE.methods)
KINDS = ("none", "wrong", "revoked", "generate", "admin")
REFUSALS = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}
DASHBOARD_HEADERS = {"x-imagegw-dashboard": "1"}
TIMEOUT = 30.0


class Keys:
    """One key of each kind (None for "none"), plus dashboard session cookies where a login works."""

    def __init__(self, admin: ImageGatewayClient, gateway: GatewayThread) -> None:
        suffix = uuid.uuid4().hex[:6]
        generate = admin.create_api_key(f"matrix-generate-{suffix}", "generate")
        revoked = admin.create_api_key(f"matrix-revoked-{suffix}", "generate")
        self.plain: dict[str, str | None] = {
            "none": None,
            "wrong": "igw_" + secrets.token_urlsafe(32),
            "revoked": revoked.key,
            "generate": generate.key,
            "admin": gateway.admin_key,
        }
        # Sessions are opened before the revoke, so the revoked key's session must die with it.
        self.cookies: dict[str, str | None] = {kind: self._login(gateway, key) for kind, key in self.plain.items()}
        admin.revoke_api_key(revoked.api_key.id)

    @staticmethod
    def _login(gateway: GatewayThread, key: str | None) -> str | None:
        if key is None:
            return None
        origin = gateway.rest_base_url.removesuffix("/v1")
        response = httpx.post(
            f"{origin}/dashboard/api/login", json={"key": key}, headers=DASHBOARD_HEADERS, timeout=TIMEOUT
        )
        return response.cookies.get("imagegw_session") if response.status_code == 200 else None

    def __getitem__(self, kind: str) -> str | None:
        return self.plain[kind]


@pytest.fixture(scope="module")
def keys(admin: ImageGatewayClient, gateway: GatewayThread) -> Keys:
    return Keys(admin, gateway)


@pytest.fixture(scope="module")
def channel(gateway: GatewayThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gateway.grpc_target) as ch:
        yield ch


def call(channel: grpc.Channel, method: MethodDescriptor, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    """Calls ``method`` with an empty request; the status it ended with."""
    request_class: Any = message_factory.GetMessageClass(method.input_type)
    response_class: Any = message_factory.GetMessageClass(method.output_type)
    path = f"/{SERVICE.full_name}/{method.name}"
    try:
        if method.server_streaming:
            stream = channel.unary_stream(
                path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            list(stream(request_class(), metadata=metadata, timeout=TIMEOUT))
        elif method.client_streaming:
            upload = channel.stream_unary(
                path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            upload(iter([request_class()]), metadata=metadata, timeout=TIMEOUT)
        else:
            unary = channel.unary_unary(
                path,
                request_serializer=request_class.SerializeToString,
                response_deserializer=response_class.FromString,
            )
            unary(request_class(), metadata=metadata, timeout=TIMEOUT)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return,attr-defined]
    return grpc.StatusCode.OK


def bearer(key: str | None) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")] if key else []


def expected_grpc(kind: str, scope: str) -> set[grpc.StatusCode] | None:
    """The refusal a kind of key must get, or None when the call must get past authorization."""
    if kind in ("none", "wrong", "revoked"):
        return {grpc.StatusCode.UNAUTHENTICATED}
    if kind == "generate" and scope == Scope.ADMIN:
        return {grpc.StatusCode.PERMISSION_DENIED}
    return None


# -- the tables cover everything --------------------------------------------------------------------


def test_every_rpc_of_the_service_has_a_scope_and_the_table_names_no_other() -> None:
    assert set(GRPC_METHOD_SCOPES) == {m.name for m in METHODS}
    assert set(GRPC_METHOD_SCOPES.values()) <= {Scope.ADMIN, Scope.GENERATE}


def rest_routes(gateway: GatewayThread) -> list[tuple[str, str]]:
    app = gateway.process._uvicorn.config.app  # type: ignore[union-attr]
    return [
        (route.path, method)
        for route in app.routes
        if isinstance(route, Route)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


def test_every_rest_route_has_an_entry_in_the_scope_table(gateway: GatewayThread) -> None:
    paths = {path for path, _ in rest_routes(gateway)}
    assert paths == set(REST_ROUTE_SCOPES)
    assert set(REST_ROUTE_SCOPES.values()) <= {Scope.ADMIN, Scope.GENERATE, PUBLIC, SESSION}


# -- gRPC -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.name)
def test_rpc_answers_each_kind_of_key_as_its_scope_says(
    channel: grpc.Channel, keys: Keys, method: MethodDescriptor, kind: str
) -> None:
    code = call(channel, method, bearer(keys[kind]))
    expected = expected_grpc(kind, GRPC_METHOD_SCOPES[method.name])
    if expected is None:
        assert code not in REFUSALS, f"{method.name} refused a {kind} key: {code}"
    else:
        assert code in expected, f"{method.name} with a {kind} key answered {code}"


def test_the_x_api_key_metadata_carries_a_key_as_well(channel: grpc.Channel, keys: Keys) -> None:
    list_configs = SERVICE.methods_by_name["ListConfigs"]
    assert call(channel, list_configs, [("x-api-key", str(keys["admin"]))]) is grpc.StatusCode.OK
    assert call(channel, list_configs, [("x-api-key", str(keys["generate"]))]) is grpc.StatusCode.PERMISSION_DENIED


def test_a_method_missing_from_the_table_is_refused_to_every_key(
    channel: grpc.Channel, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fail closed: an RPC added to the proto but not to the table opens to no one, admin included.
    monkeypatch.delitem(GRPC_METHOD_SCOPES, "ListConfigs")
    code = call(channel, SERVICE.methods_by_name["ListConfigs"], bearer(keys["admin"]))
    assert code is grpc.StatusCode.PERMISSION_DENIED


# -- REST -------------------------------------------------------------------------------------------


def rest_request(gateway: GatewayThread, keys: Keys, path: str, method: str, kind: str) -> httpx.Response:
    origin = gateway.rest_base_url.removesuffix("/v1")
    url = origin + path.replace("{log_id}", "log_" + uuid.uuid4().hex)
    scope = REST_ROUTE_SCOPES[path]
    headers = dict(DASHBOARD_HEADERS) if path.startswith("/dashboard") else {}
    cookies = {}
    if scope == SESSION:
        cookie = keys.cookies[kind]
        if cookie:
            cookies["imagegw_session"] = cookie
    key = keys[kind]
    if key:
        # Header keys go everywhere: they must open the routes that take them and no session route.
        headers["x-portkey-api-key"] = key
    with httpx.Client(timeout=TIMEOUT, cookies=cookies) as client:
        return client.request(method, url, headers=headers, json={} if method in ("POST", "PUT", "PATCH") else None)


@pytest.mark.parametrize("kind", KINDS)
def test_rest_route_answers_each_kind_of_key_as_its_scope_says(gateway: GatewayThread, keys: Keys, kind: str) -> None:
    for path, method in rest_routes(gateway):
        scope = REST_ROUTE_SCOPES[path]
        response = rest_request(gateway, keys, path, method, kind)
        status = response.status_code
        if scope == PUBLIC or kind == "admin" or (kind == "generate" and scope != Scope.ADMIN):
            assert status not in (401, 403), f"{method} {path} refused a {kind} key: {status} {response.text}"
        elif kind == "generate":
            assert status == 403, f"{method} {path} with a generate key: {status}"
        else:
            assert status == 401, f"{method} {path} with a {kind} key: {status} {response.text}"
        if status in (401, 403):
            error = response.json()["error"]
            assert set(error) >= {"message", "type", "param", "code"}


def test_dashboard_login_refuses_wrong_and_revoked_keys(gateway: GatewayThread, keys: Keys) -> None:
    assert keys.cookies["generate"] and keys.cookies["admin"]
    origin = gateway.rest_base_url.removesuffix("/v1")
    for kind in ("wrong", "revoked"):
        response = httpx.post(
            f"{origin}/dashboard/api/login", json={"key": keys[kind]}, headers=DASHBOARD_HEADERS, timeout=TIMEOUT
        )
        assert response.status_code == 401
        assert str(keys[kind]) not in response.text


# -- failures are metered and logged without the key ------------------------------------------------


def auth_failures(gateway: GatewayThread) -> dict[tuple[str, str], float]:
    text = httpx.get(gateway.metrics_url, timeout=TIMEOUT).text
    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name == "imagegateway_auth_failures":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[(sample.labels["transport"], sample.labels["reason"])] = sample.value
    return counts


def test_auth_failures_are_counted_by_transport_and_reason_and_logged_without_the_key(
    gateway: GatewayThread, channel: grpc.Channel, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    before = auth_failures(gateway)
    assert {(t, r) for t in ("grpc", "rest") for r in AUTH_FAILURE_REASONS} <= set(before)  # pre-created
    list_configs = SERVICE.methods_by_name["ListConfigs"]
    malformed = "not a key " + secrets.token_hex(8)
    with caplog.at_level(logging.WARNING):
        call(channel, list_configs, [])
        call(channel, list_configs, bearer(keys["wrong"]))
        call(channel, list_configs, bearer(keys["revoked"]))
        call(channel, list_configs, [("x-api-key", malformed)])
        call(channel, list_configs, bearer(keys["generate"]))
        httpx.post(
            gateway.rest_base_url + "/images/generations",
            json={},
            headers={"x-portkey-api-key": str(keys["wrong"])},
            timeout=TIMEOUT,
        )
    after = auth_failures(gateway)
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    assert delta[("grpc", "missing_key")] >= 1
    assert delta[("grpc", "invalid_key")] >= 2
    assert delta[("grpc", "malformed_key")] >= 1
    assert delta[("grpc", "insufficient_scope")] >= 1
    assert delta[("rest", "invalid_key")] >= 1
    refusals = [r for r in caplog.records if r.getMessage() == "gateway API key refused"]
    assert {getattr(r, "reason", None) for r in refusals} >= {
        "missing_key",
        "invalid_key",
        "malformed_key",
        "insufficient_scope",
    }
    assert any(getattr(r, "operation", "") == "ListConfigs" for r in refusals)
    everything = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for secret in (keys["wrong"], keys["revoked"], keys["generate"], malformed):
        assert secret is not None
        assert secret not in everything
        assert secret[4:14] not in everything  # not even a prefix past "igw_"
    assert not re.search(r"igw_[A-Za-z0-9_-]{6}", everything)
