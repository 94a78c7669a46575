"""No Google secret leaves the gateway: not the Gemini API key, not a Vertex access token, not the service
account's private key, nor the tokens exchanged for it; in no response, error, request log, metric,
process log or database page.

One gateway of its own (a known master key, every logger captured at DEBUG) is driven through the
admin RPCs, the SDK-shaped REST shim and gRPC with both providers' credentials, with successes and
upstream failures that echo the credentials back. Everything it said, and the bytes of its database
files, are then searched for each secret (``tests/leak_scan.py``'s ``Transcript``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegateway import ImageGatewayClient
from tests.conftest import (
    GEMINI_SECRET,
    VERTEX_ACCESS_TOKEN,
    VERTEX_PROJECT,
    ServiceAccount,
    eventually,
)
from tests.emulators import Fault, GeminiApiEmulator, VertexEmulator
from tests.harness import GatewayThread, running_gateway
from tests.leak_scan import MASTER_KEY, TIMEOUT, Transcript


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("google-leak")


@pytest.fixture(scope="module")
def leaky(data_dir: Path) -> Iterator[GatewayThread]:
    with running_gateway(data_dir, master_key=MASTER_KEY) as gateway:
        yield gateway


def key_body(account: ServiceAccount) -> str:
    """The private key's base64 without its PEM frame or line breaks: what identifies it."""
    lines = account.key["private_key"].strip().splitlines()
    return "".join(line for line in lines if "-----" not in line)


def google_error(code: int, status: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "status": status, "message": message}}


def drive(
    gateway: GatewayThread, vertex: VertexEmulator, gemini: GeminiApiEmulator, account: ServiceAccount, seen: Transcript
) -> None:
    rest = gateway.rest_base_url + "/images/generations"
    vertex_fields = {
        "vertex_project_id": VERTEX_PROJECT,
        "vertex_region": "us-central1",
        "vertex_service_account_json": account.text,
    }
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        seen.call(
            "CreateVirtualKey vertex",
            lambda: admin.create_virtual_key(
                "leak-vertex", "vertex-ai", base_url=vertex.origin, credential_fields=vertex_fields
            ),
        )
        seen.call(
            "CreateVirtualKey google",
            lambda: admin.create_virtual_key("leak-google", "google", GEMINI_SECRET, base_url=gemini.base_url),
        )
        seen.call(
            "CreateVirtualKey vertex refused",
            lambda: admin.create_virtual_key(
                "leak-vertex-bad",
                "vertex-ai",
                credential_fields={
                    **vertex_fields,
                    "vertex_service_account_json": account.text.replace("client_email", "x"),
                },
            ),
        )
        seen.call("GetVirtualKey", lambda: admin.get_virtual_key("leak-vertex"))
        seen.call("ListVirtualKeys", lambda: admin.list_virtual_keys())
        document = {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "vertex-ai", "custom_host": vertex.origin, **vertex_fields},
                {
                    "provider": "vertex-ai",
                    "custom_host": vertex.origin,
                    "api_key": VERTEX_ACCESS_TOKEN,
                    "vertex_project_id": VERTEX_PROJECT,
                    "vertex_region": "global",
                },
                {"provider": "google", "api_key": GEMINI_SECRET, "custom_host": gemini.base_url},
            ],
        }
        config = seen.call("CreateConfig", lambda: admin.create_config("leak-google", document))
        seen.call("GetConfig", lambda: admin.get_config(config.id))
        seen.call("ListConfigs", lambda: admin.list_configs())
        seen.call("ValidateConfig", lambda: admin.validate_config(document))
        generate = admin.create_api_key("leak-google-generate", "generate").key

        # Generation: successes, and failures whose bodies echo the credential each upstream was sent.
        # (The private key never leaves the gateway, so no upstream can echo it.)
        seen.call("GenerateImage vertex", lambda: admin.generate_image(prompt="p", config_id=config.id))
        vertex.inject(Fault.status(401), times=2)  # the service account's call, and again after the refresh
        vertex.inject(Fault.status(401, google_error(401, "UNAUTHENTICATED", f"bad token {VERTEX_ACCESS_TOKEN}")))
        gemini.inject(Fault.status(400, google_error(400, "INVALID_ARGUMENT", f"bad key {GEMINI_SECRET}")))
        seen.call("GenerateImage all failed", lambda: admin.generate_image(prompt="p", config_id=config.id))
        seen.call("GenerateImage vk", lambda: admin.generate_image(prompt="p", virtual_key="leak-vertex"))
        vertex.inject_token_fault(Fault.status(400, {"error": "invalid_grant", "error_description": "Invalid JWT"}))
        # Another key id: another account to the cache, so its token is fetched, and refused.
        other = json.dumps({**account.key, "private_key_id": "other"})
        seen.call(
            "CreateVirtualKey vertex other",
            lambda: admin.create_virtual_key(
                "leak-vertex-other",
                "vertex-ai",
                base_url=vertex.origin,
                credential_fields={**vertex_fields, "vertex_service_account_json": other},
            ),
        )
        seen.call(
            "GenerateImage token refused", lambda: admin.generate_image(prompt="p", virtual_key="leak-vertex-other")
        )

        with httpx.Client(timeout=TIMEOUT) as client:
            headers = {
                "x-portkey-api-key": generate,
                "x-portkey-provider": "vertex-ai",
                "x-portkey-vertex-project-id": VERTEX_PROJECT,
                "x-portkey-vertex-region": "us-central1",
                "x-portkey-vertex-service-account-json": account.text,
                "x-portkey-custom-host": vertex.origin,
                "authorization": "Bearer sk-redundant",
            }
            seen.add("REST vertex headers", client.post(rest, json={"prompt": "p"}, headers=headers))
            token_headers = {
                **{k: v for k, v in headers.items() if k != "x-portkey-vertex-service-account-json"},
                "authorization": f"Bearer {VERTEX_ACCESS_TOKEN}",
            }
            vertex.inject(Fault.status(500, f"upstream crashed on Bearer {VERTEX_ACCESS_TOKEN}"))
            seen.add("REST vertex 500", client.post(rest, json={"prompt": "p"}, headers=token_headers))
            gemini.inject(
                Fault.status(400, google_error(400, "INVALID_ARGUMENT", f"API key {GEMINI_SECRET} not valid"))
            )
            bare = {
                "x-portkey-api-key": generate,
                "x-portkey-provider": "google",
                "x-portkey-custom-host": gemini.base_url,
                "authorization": f"Bearer {GEMINI_SECRET}",
            }
            seen.add("REST google echo", client.post(rest, json={"prompt": "p"}, headers=bare))
            seen.add("REST google", client.post(rest, json={"prompt": "p"}, headers=bare))
            seen.add(
                "REST config",
                client.post(
                    rest,
                    json={"prompt": "p", "response_format": "b64_json"},
                    headers={"x-portkey-api-key": generate, "x-portkey-config": json.dumps(document)},
                ),
            )
        logs = eventually(lambda: (page := admin.list_logs(page_size=100)).logs and len(page.logs) >= 8 and page)
        seen.add("ListLogs", logs)
        for entry in logs.logs:
            seen.call("GetLog", lambda e=entry: admin.get_log(e.id))  # type: ignore[misc]
        seen.call("ListTargetHealth", lambda: admin.list_target_health())
    seen.add("metrics", httpx.get(gateway.metrics_url, timeout=TIMEOUT).text)


def test_no_google_secret_appears_in_anything_the_gateway_says_or_stores(
    leaky: GatewayThread,
    data_dir: Path,
    google_emulators: tuple[VertexEmulator, GeminiApiEmulator],
    service_account: ServiceAccount,
    caplog: pytest.LogCaptureFixture,
) -> None:
    vertex, gemini = google_emulators
    seen = Transcript()
    with caplog.at_level(logging.DEBUG):
        drive(leaky, vertex, gemini, service_account, seen)
    seen.add_logs(caplog.records)
    for path in sorted(data_dir.iterdir()):
        if path.is_file() and path.name != "master.key":
            seen.add(f"database file {path.name}", path.read_bytes().decode("latin-1"))

    # The secrets did reach the providers, so the scan looks for something that exists.
    issued = [
        r.headers["authorization"].removeprefix("Bearer ")
        for r in vertex.requests
        if r.headers.get("authorization", "").startswith("Bearer ya29.emulator-")
    ]
    assert issued and any(r.headers.get("x-goog-api-key") == GEMINI_SECRET for r in gemini.requests)
    assert any(r.headers.get("authorization") == f"Bearer {VERTEX_ACCESS_TOKEN}" for r in vertex.requests)
    assert len(caplog.records) > 10 and any(where.startswith("database file") for where, _ in seen.parts)

    body = key_body(service_account)
    secrets_ = {
        "gemini api key": GEMINI_SECRET,
        "vertex access token": VERTEX_ACCESS_TOKEN,
        **{f"exchanged token {i}": token for i, token in enumerate(dict.fromkeys(issued))},
    }
    leaks = seen.leaks(secrets_)
    # The private key: its whole base64 body, and pieces of it from the start, middle and end.
    key_pieces = [body, body[:40], body[len(body) // 2 : len(body) // 2 + 40], body[-40:]]
    leaks += [("private key", where) for piece in key_pieces for where, text in seen.parts if piece in text]
    assert leaks == [], f"secrets found (secret, where): {sorted(set(leaks))}"
