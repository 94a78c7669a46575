"""Secrets never leave the gateway: not in responses, error messages, request logs, metrics or process logs.

One gateway (in a thread, every logger captured at DEBUG) is driven through every admin RPC, the
REST shim, the dashboard API, successes, upstream failures that echo the credential back and
refused gateway keys. Everything it said is collected as text, then searched for every provider
secret, gateway key and the master key, whole and in telling fragments. The responses allowed
to hold a secret are CreateApiKey's and RotateApiKey's (the new key, shown once); they are left out
on purpose.
"""

from __future__ import annotations

import json
import logging
import secrets
import traceback
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegateway import ImageGatewayClient
from imagegateway_server.security.vault import load_vault
from imagegateway_server.settings import Settings
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway
from tests.leak_scan import MASTER_KEY, TIMEOUT, Transcript

# Not shaped like "sk-...": only exact-secret scrubbing can hide these.
INLINE_SECRET = "inline" + secrets.token_urlsafe(24)
BARE_SECRET = "bare" + secrets.token_urlsafe(24)
ROTATED_SECRET = "rotated" + secrets.token_urlsafe(24)
FIELDS_SECRET = "fields" + secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def leaky(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(tmp_path_factory.mktemp("leak"), master_key=MASTER_KEY) as gateway:
        yield gateway


def drive(gateway: GatewayThread, emulators: Emulators, seen: Transcript) -> dict[str, str]:
    """Runs the gateway through everything that touches a secret; returns the gateway keys made."""
    openai_url, stability_url = emulators.openai.base_url, emulators.stability.origin
    rest = gateway.rest_base_url + "/images/generations"
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        # Admin RPCs: every response.
        seen.call(
            "CreateVirtualKey",
            lambda: admin.create_virtual_key("leak-openai", "openai", OPENAI_SECRET, base_url=openai_url),
        )
        seen.call(
            "CreateVirtualKey",
            lambda: admin.create_virtual_key(
                "leak-stability", "stability-ai", STABILITY_SECRET, base_url=stability_url
            ),
        )
        seen.call(
            "CreateVirtualKey",
            lambda: admin.create_virtual_key("leak-rotated", "openai", OPENAI_SECRET, base_url=openai_url),
        )
        seen.call("RotateVirtualKey", lambda: admin.rotate_virtual_key("leak-rotated", ROTATED_SECRET))
        seen.call("GetVirtualKey", lambda: admin.get_virtual_key("leak-rotated"))
        # A credential given as fields: created, refused for a field the provider does not have, rotated.
        seen.call(
            "CreateVirtualKey fields",
            lambda: admin.create_virtual_key(
                "leak-fields", "openai", base_url=openai_url, credential_fields={"api_key": OPENAI_SECRET}
            ),
        )
        seen.call(
            "CreateVirtualKey bad fields",
            lambda: admin.create_virtual_key(
                "leak-bad-fields", "openai", credential_fields={"api_key": FIELDS_SECRET, "region": FIELDS_SECRET}
            ),
        )
        seen.call(
            "RotateVirtualKey fields",
            lambda: admin.rotate_virtual_key("leak-fields", credential_fields={"api_key": FIELDS_SECRET}),
        )
        seen.call("GetVirtualKey fields", lambda: admin.get_virtual_key("leak-fields"))
        seen.call("ListVirtualKeys", lambda: admin.list_virtual_keys())
        config_json = {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "openai", "api_key": INLINE_SECRET, "custom_host": openai_url},
                {"virtual_key": "leak-stability"},
            ],
        }
        config = seen.call("CreateConfig", lambda: admin.create_config("leak", config_json))
        seen.call("UpdateConfig", lambda: admin.update_config(config.id, config_json))
        seen.call("GetConfig", lambda: admin.get_config(config.id))
        seen.call("GetConfig@1", lambda: admin.get_config(config.id, 1))
        seen.call("ListConfigs", lambda: admin.list_configs())
        seen.call("ValidateConfig", lambda: admin.validate_config(config_json))
        generate = admin.create_api_key("leak-generate", "generate")  # the one response that shows a key
        revoked = admin.create_api_key("leak-revoked", "generate")
        seen.call("RevokeApiKey", lambda: admin.revoke_api_key(revoked.api_key.id))
        rotated = admin.create_api_key("leak-rotated-key", "generate")
        renewed = admin.rotate_api_key(rotated.api_key.id)  # shows the new key once, like CreateApiKey
        seen.call(
            "RotateApiKey refused", lambda: admin.rotate_api_key(rotated.api_key.id, previous_key_valid_seconds=10**7)
        )
        seen.call("RotateApiKey revoked", lambda: admin.rotate_api_key(revoked.api_key.id))
        deleted = admin.create_api_key("leak-deleted", "generate")
        seen.call("DeleteApiKey", lambda: admin.delete_api_key(deleted.api_key.id))
        seen.call("ListApiKeys", lambda: admin.list_api_keys())
        keys = {
            "generate": generate.key,
            "revoked": revoked.key,
            "wrong": "igw_" + secrets.token_urlsafe(32),
            "rotated away": rotated.key,
            "rotated": renewed.key,
            "deleted": deleted.key,
        }
        with ImageGatewayClient(gateway.grpc_target, api_key=renewed.key) as renewed_client:
            seen.call("gRPC rotated key", lambda: renewed_client.list_logs(page_size=1))

        # Generation: success, fallback, upstream failures that echo credentials back.
        echo = {
            "error": {
                "message": f"Incorrect API key provided: {INLINE_SECRET} / {OPENAI_SECRET}",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }
        emulators.openai.inject(Fault.status(401, body=echo))
        seen.call("GenerateImage fallback", lambda: admin.generate_image(prompt="p", config_id=config.id))
        emulators.openai.inject(Fault.status(500, body=f"upstream crashed handling Bearer {INLINE_SECRET}"))
        emulators.stability.inject(
            Fault.status(403, body={"name": "forbidden", "errors": [f"key {STABILITY_SECRET} is not allowed"]})
        )
        seen.call("GenerateImage all failed", lambda: admin.generate_image(prompt="p", config_id=config.id))
        seen.call(
            "GenerateImage rotated",
            lambda: admin.generate_image(prompt="p", model="dall-e-2", virtual_key="leak-rotated"),
        )
        emulators.openai.inject(Fault.status(401, body={"error": {"message": f"bad key {FIELDS_SECRET}"}}))
        seen.call(
            "GenerateImage fields",
            lambda: admin.generate_image(prompt="p", model="dall-e-2", virtual_key="leak-fields"),
        )
        emulators.openai.inject(Fault.status(401, body={"error": {"message": f"bad key {BARE_SECRET}"}}))
        seen.call(
            "GenerateImage bare",
            lambda: admin.generate_image(
                prompt="p", provider="openai", provider_api_key=BARE_SECRET, custom_host=openai_url
            ),
        )
        seen.call("StreamGenerateImage", lambda: list(admin.stream_generate_image(prompt="p", config_id=config.id)))

        # REST: successes and every kind of refusal.
        with httpx.Client(timeout=TIMEOUT) as client:
            body = {"prompt": "p", "response_format": "b64_json"}
            seen.add(
                "REST config",
                client.post(
                    rest,
                    json=body,
                    headers={"x-portkey-api-key": keys["generate"], "x-portkey-config": json.dumps(config_json)},
                ),
            )
            emulators.openai.inject(Fault.status(401, body={"error": {"message": f"Incorrect key {BARE_SECRET}"}}))
            seen.add(
                "REST bare 401",
                client.post(
                    rest,
                    json=body,
                    headers={
                        "x-portkey-api-key": keys["generate"],
                        "x-portkey-provider": "openai",
                        "authorization": f"Bearer {BARE_SECRET}",
                        "x-portkey-custom-host": openai_url,
                    },
                ),
            )
            for kind in ("wrong", "revoked", "rotated away", "deleted"):
                seen.add(f"REST {kind} key", client.post(rest, json=body, headers={"x-portkey-api-key": keys[kind]}))
            seen.add(
                "REST gateway key as provider key",
                client.post(
                    rest,
                    json=body,
                    headers={
                        "x-portkey-api-key": keys["generate"],
                        "x-portkey-provider": "openai",
                        "authorization": f"Bearer {keys['generate']}",
                    },
                ),
            )
            seen.add(
                "REST bad JSON",
                client.post(
                    rest,
                    content=b"{" + BARE_SECRET.encode(),
                    headers={"x-portkey-api-key": keys["generate"], "content-type": "application/json"},
                ),
            )
            seen.add(
                "REST bad config header",
                client.post(
                    rest,
                    json=body,
                    headers={
                        "x-portkey-api-key": keys["generate"],
                        "x-portkey-config": '{"api_key": "' + INLINE_SECRET + '",',
                    },
                ),
            )
            # The dashboard: login and the logs it shows.
            origin = gateway.rest_base_url.removesuffix("/v1")
            dash = {"x-imagegw-dashboard": "1"}
            login = client.post(f"{origin}/dashboard/api/login", json={"key": gateway.admin_key}, headers=dash)
            seen.add("dashboard login", login)
            seen.add("dashboard logs", client.get(f"{origin}/dashboard/api/logs", headers=dash))

        # gRPC refusals.
        for kind in ("wrong", "revoked", "rotated away", "deleted"):
            with ImageGatewayClient(gateway.grpc_target, api_key=keys[kind]) as refused:
                seen.call(f"gRPC {kind} key", lambda c=refused: c.list_logs())  # type: ignore[misc]

        # Request logs, once written.
        logs = eventually(lambda: (page := admin.list_logs(page_size=200)).logs and len(page.logs) >= 7 and page)
        seen.add("ListLogs", logs)
        for entry in logs.logs:
            seen.call("GetLog", lambda e=entry: admin.get_log(e.id))  # type: ignore[misc]
        seen.call("ListTargetHealth", lambda: admin.list_target_health())
        seen.call("DeleteConfig", lambda: admin.delete_config(config.id))
        seen.call("DeleteVirtualKey", lambda: admin.delete_virtual_key("leak-rotated"))
    seen.add("metrics", httpx.get(gateway.metrics_url, timeout=TIMEOUT).text)
    seen.add("settings repr", repr(gateway.process.settings))
    return keys


def test_no_secret_appears_in_anything_the_gateway_says(
    leaky: GatewayThread, emulators: Emulators, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Transcript()
    with caplog.at_level(logging.DEBUG):
        keys = drive(leaky, emulators, seen)
    seen.add_logs(caplog.records)

    # The secrets did reach the providers, so the test is looking for something that exists.
    sent = [
        r.headers.get("authorization", "") + r.headers.get("authorization".title(), "")
        for r in (*emulators.openai.requests, *emulators.stability.requests)
    ]
    assert any(INLINE_SECRET in s for s in sent) and any(ROTATED_SECRET in s for s in sent)
    assert any(FIELDS_SECRET in s for s in sent)
    assert len(caplog.records) > 10 and any(w.startswith("GenerateImage") for w, _ in seen.parts)

    secrets_ = {
        "openai": OPENAI_SECRET,
        "stability": STABILITY_SECRET,
        "inline": INLINE_SECRET,
        "bare": BARE_SECRET,
        "rotated": ROTATED_SECRET,
        "fields": FIELDS_SECRET,
        "master key": MASTER_KEY,
        "admin key": leaky.admin_key,
        **{f"{k} gateway key": v for k, v in keys.items()},
    }
    leaks = seen.leaks(secrets_)
    assert leaks == [], f"secrets found (secret, where): {sorted(set(leaks))}"


def test_a_bad_master_key_setting_is_refused_without_echoing_it(tmp_path: Path) -> None:
    bad = "not-base64!" + secrets.token_hex(12)
    with pytest.raises(ValueError) as refused:
        load_vault(bad, [], tmp_path)
    assert bad not in str(refused.value) and bad[-10:] not in "".join(traceback.format_exception(refused.value))
    with pytest.raises(ValueError) as refused:
        load_vault(MASTER_KEY, [bad], tmp_path)
    assert bad not in str(refused.value)
    settings = Settings(master_key=bad, previous_master_keys=(bad,), admin_key=bad)
    assert bad not in repr(settings)
