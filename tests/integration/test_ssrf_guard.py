"""The SSRF guard end to end: what no key (admin included) can point the gateway at, in any path.

A gateway with an empty IMAGEGW_ALLOWED_UPSTREAM_HOSTS refuses the emulators on 127.0.0.1 in
every spelling, from saved configs, inline configs, the custom-host header and virtual-key base
URLs, at save time and again at send time for rows saved under an older, wider list. The session
gateway (127.0.0.1 listed) shows that redirects are not followed and that an upstream error
quoting our credential back is redacted before the caller or the log sees it.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegateway import ImageGatewayClient, InvalidArgumentError
from tests.conftest import OPENAI_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway

TIMEOUT = 30.0
LOOPBACK_SPELLINGS = (
    "127.0.0.1",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "127.1",
    "[::ffff:127.0.0.1]",
    "localhost",
    "localhost.",
)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    """A gateway whose allow list is empty: only public https hosts are reachable."""
    with running_gateway(tmp_path_factory.mktemp("strict"), allowed_upstream_hosts=()) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def strict_admin(strict: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(strict.grpc_target, api_key=strict.admin_key) as client:
        yield client


@pytest.fixture(scope="module")
def strict_generate_key(strict_admin: ImageGatewayClient) -> str:
    return strict_admin.create_api_key("ssrf-generate", "generate").key


def param_of(error: InvalidArgumentError) -> str:
    info = error.error_info
    return info.metadata["param"] if info is not None else ""


def spelled(emulators: Emulators, host: str, scheme: str = "http") -> str:
    return f"{scheme}://{host}:{emulators.openai.port}/v1"


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS)
def test_admin_cannot_save_a_virtual_key_or_config_pointing_at_loopback(
    strict_admin: ImageGatewayClient, emulators: Emulators, host: str, scheme: str
) -> None:
    url = spelled(emulators, host, scheme)
    with pytest.raises(InvalidArgumentError) as refused:
        strict_admin.create_virtual_key(f"vk-{uuid.uuid4().hex[:8]}", "openai", OPENAI_SECRET, base_url=url)
    assert param_of(refused.value) == "base_url"
    config = {
        "strategy": {"mode": "fallback"},
        "targets": [{"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": url}],
    }
    with pytest.raises(InvalidArgumentError) as refused:
        strict_admin.create_config("loopback", config)
    assert param_of(refused.value) == "targets[0].custom_host"
    assert emulators.openai.requests == []


@pytest.mark.parametrize("host", ["169.254.169.254", "10.0.0.1", "[fd00:ec2::254]", "[fe80::1]"])
def test_private_and_link_local_custom_hosts_are_refused_to_generate_keys_inline(
    strict: GatewayThread, strict_generate_key: str, host: str
) -> None:
    url = f"https://{host}/v1"
    inline = {"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": url}
    with ImageGatewayClient(strict.grpc_target, api_key=strict_generate_key) as client:
        with pytest.raises(InvalidArgumentError) as refused:
            client.validate_config(inline)
        assert param_of(refused.value) == "custom_host"
        with pytest.raises(InvalidArgumentError):
            client.generate_image(prompt="x", provider="openai", provider_api_key=OPENAI_SECRET, custom_host=url)
    response = httpx.post(
        strict.rest_base_url + "/images/generations",
        json={"prompt": "x"},
        timeout=TIMEOUT,
        headers={"x-portkey-api-key": strict_generate_key, "x-portkey-config": json.dumps(inline)},
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "custom_host"
    response = httpx.post(
        strict.rest_base_url + "/images/generations",
        json={"prompt": "x"},
        timeout=TIMEOUT,
        headers={
            "x-portkey-api-key": strict_generate_key,
            "x-portkey-provider": "openai",
            "authorization": f"Bearer {OPENAI_SECRET}",
            "x-portkey-custom-host": url,
        },
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "custom_host"


def test_rows_saved_under_a_wider_list_are_bound_by_the_current_one(tmp_path: Path, emulators: Emulators) -> None:
    data_dir = tmp_path / "data"
    with running_gateway(data_dir, allowed_upstream_hosts=("127.0.0.1",)) as wide:
        with ImageGatewayClient(wide.grpc_target, api_key=wide.admin_key) as admin:
            admin.create_virtual_key("emulator", "openai", OPENAI_SECRET, base_url=emulators.openai.base_url)
            config = admin.create_config(
                "custom-host",
                {"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": emulators.openai.base_url},
            )
            admin.generate_image(prompt="allowed today", model="dall-e-2", virtual_key="emulator")
    assert len(emulators.openai.requests) == 1

    with running_gateway(data_dir, allowed_upstream_hosts=()) as narrow:
        with ImageGatewayClient(narrow.grpc_target, api_key=narrow.admin_key) as admin:
            # The saved config is compiled again under the new list: refused, naming the field.
            with pytest.raises(InvalidArgumentError) as refused:
                admin.generate_image(prompt="x", model="dall-e-2", config_id=config.id)
            assert param_of(refused.value) == "custom_host"
        # The stored base URL is checked again when the request is sent: nothing reaches upstream.
        response = httpx.post(
            narrow.rest_base_url + "/images/generations",
            json={"prompt": "x"},
            timeout=TIMEOUT,
            headers={"x-portkey-api-key": narrow.admin_key, "x-portkey-virtual-key": "emulator"},
        )
        assert response.status_code == 502
        assert "not allowed" in response.json()["error"]["message"]
    assert len(emulators.openai.requests) == 1


def test_an_upstream_redirect_is_a_502_and_is_never_followed(
    gateway: GatewayThread, admin: ImageGatewayClient, emulators: Emulators
) -> None:
    key = f"redirect-{uuid.uuid4().hex[:8]}"
    admin.create_virtual_key(key, "openai", OPENAI_SECRET, base_url=emulators.openai.base_url)
    target = f"{emulators.stability.origin}/v2beta/stable-image/generate/core"
    emulators.openai.inject(Fault.status(302, body="", headers={"location": target}))
    response = httpx.post(
        gateway.rest_base_url + "/images/generations",
        json={"prompt": "x"},
        timeout=TIMEOUT,
        headers={"x-portkey-api-key": gateway.admin_key, "x-portkey-virtual-key": key},
    )
    assert response.status_code == 502, response.text
    assert len(emulators.openai.requests) == 1
    assert emulators.stability.requests == []


def test_an_upstream_error_quoting_our_credential_is_redacted_for_the_caller_and_the_log(
    gateway: GatewayThread, admin: ImageGatewayClient, emulators: Emulators, caplog: pytest.LogCaptureFixture
) -> None:
    # Not shaped like "sk-...": only the exact-secret redaction can catch it.
    credential = "Zq" + secrets.token_urlsafe(24)
    echo = {
        "error": {
            "message": f"Incorrect API key provided: {credential}. Check {credential[:12]}...",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    emulators.openai.inject(Fault.status(401, body=echo), times=2)
    headers = {
        "x-portkey-api-key": gateway.admin_key,
        "x-portkey-provider": "openai",
        "authorization": f"Bearer {credential}",
        "x-portkey-custom-host": emulators.openai.base_url,
    }
    with caplog.at_level(logging.DEBUG):
        response = httpx.post(
            gateway.rest_base_url + "/images/generations", json={"prompt": "x"}, headers=headers, timeout=TIMEOUT
        )
        with pytest.raises(Exception) as grpc_failure:
            admin.generate_image(
                prompt="x", provider="openai", provider_api_key=credential, custom_host=emulators.openai.base_url
            )
    assert emulators.openai.requests[0].headers["authorization"] == f"Bearer {credential}"  # it was sent
    assert response.status_code == 401
    assert "Incorrect API key provided" in response.text
    assert credential not in response.text
    assert credential not in str(grpc_failure.value) and credential not in repr(grpc_failure.value)
    log_id = response.headers["x-imagegw-log-id"]
    stored = eventually(
        lambda: next(
            (
                entry
                for entry in admin.list_logs(trace_id=response.headers["x-portkey-trace-id"]).logs
                if entry.id == log_id
            ),
            None,
        )
    )
    assert credential not in str(stored)
    assert credential not in "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
