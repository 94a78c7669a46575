"""Azure OpenAI through the gateway over real sockets: configs, virtual keys, Portkey's headers, secrets.

The session's gateway talks to the Azure OpenAI emulator (deployments ``dalle3`` and ``gpt-image``)
and the OpenAI emulator; ``custom_host`` (or a virtual key's base URL) points each target at its
emulator, as Portkey's ``custom_host`` replaces ``https://{resource}.openai.azure.com/openai``.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from google.protobuf import json_format

from imagegateway import ImageGatewayClient
from tests.conftest import AZURE_AD_TOKEN, AZURE_SECRET, OPENAI_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.gateway_sdk import HTTP_TIMEOUT, PNG_SIGNATURE, sdk, secret_check, unique
from tests.harness import GatewayThread

SECRETS = (AZURE_SECRET, AZURE_AD_TOKEN, OPENAI_SECRET)

assert_no_secret = secret_check(SECRETS)


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"azure-{uuid.uuid4().hex[:6]}", "generate").key


def azure_target(emulators: Emulators, **fields: str) -> dict[str, Any]:
    target = {
        "provider": "azure-openai",
        "api_key": AZURE_SECRET,
        "resource_name": "my-resource",
        "deployment_id": "dalle3",
        "custom_host": emulators.azure.base_url,
        **fields,
    }
    return {k: v for k, v in target.items() if v}


def fallback_config(emulators: Emulators, **azure_fields: str) -> dict[str, Any]:
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            azure_target(emulators, **azure_fields),
            {"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": emulators.openai.base_url},
        ],
    }


def test_a_config_falls_back_from_azures_content_filter_to_openai_through_the_sdk(
    gateway: GatewayThread, generate_key: str, emulators: Emulators
) -> None:
    emulators.azure.inject(Fault.content_filter())
    config = json.dumps(fallback_config(emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        result = client.images.generate(prompt="a lighthouse", model="dall-e-3", response_format="b64_json")
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    (azure,) = emulators.azure.requests
    assert azure.path == "/openai/deployments/dalle3/images/generations"
    assert azure.headers["api-key"] == AZURE_SECRET and "authorization" not in azure.headers
    assert len(emulators.openai.requests) == 1
    assert_no_secret("the answer", result.model_dump_json())


def test_azure_serves_a_config_through_the_sdk_and_the_answer_is_openais_shape(
    gateway: GatewayThread, generate_key: str, emulators: Emulators
) -> None:
    config = json.dumps(fallback_config(emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        result = client.images.generate(prompt="a lighthouse", model="dall-e-3", response_format="b64_json")
    assert result.data and result.data[0].revised_prompt
    assert "content_filter_results" not in result.model_dump_json()
    assert len(emulators.azure.requests) == 1 and not emulators.openai.requests


def test_a_saved_config_with_an_entra_token_is_sealed_and_serves_over_grpc(
    admin: ImageGatewayClient, emulators: Emulators
) -> None:
    document = fallback_config(emulators, api_key="", azure_ad_token=AZURE_AD_TOKEN, api_version="2024-10-21")
    created = admin.create_config(unique("azure"), document)
    fetched = admin.get_config(created.id)
    assert_no_secret("CreateConfig", created)
    assert_no_secret("GetConfig", fetched)
    shown = json_format.MessageToDict(fetched.config, preserving_proto_field_name=True)
    assert shown["targets"][0]["resource_name"] == "my-resource"
    assert shown["targets"][0]["deployment_id"] == "dalle3"
    assert "azure_ad_token" not in shown["targets"][0]
    emulators.azure.inject(Fault.content_filter())
    response = admin.generate_image(prompt="a lighthouse", model="dall-e-3", config_id=created.id)
    assert len(response.images) == 1 and response.images[0].provider == "openai"
    (azure,) = emulators.azure.requests
    assert azure.headers["authorization"] == f"Bearer {AZURE_AD_TOKEN}"
    assert azure.query == {"api-version": "2024-10-21"}
    emulators.azure.reset()
    emulators.openai.reset()
    response = admin.generate_image(prompt="a lighthouse", model="dall-e-3", config_id=created.id)
    assert response.images[0].provider == "azure-openai" and not emulators.openai.requests
    assert_no_secret("GenerateImage", response)


def test_a_virtual_key_with_azure_credential_fields_serves_the_sdk(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, emulators: Emulators
) -> None:
    vk = admin.create_virtual_key(
        unique("azure-vk"),
        "azure-openai",
        base_url=emulators.azure.base_url,
        credential_fields={"api_key": AZURE_SECRET, "resource_name": "my-resource", "deployment_id": "gpt-image"},
    )
    shown = admin.get_virtual_key(vk.id)
    assert_no_secret("GetVirtualKey", shown)
    assert dict(shown.public_credential_fields) == {"resource_name": "my-resource", "deployment_id": "gpt-image"}
    with sdk(gateway, generate_key, **{"x-portkey-virtual-key": vk.id}) as client:
        result = client.images.generate(prompt="a lighthouse", model="gpt-image-1", quality="low")
    # gpt-image without response_format answers b64_json, as OpenAI's does, with Azure's usage.
    assert result.data and result.data[0].url is None
    assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    assert result.usage is not None and result.usage.output_tokens > 0
    sent = emulators.azure.requests[-1]
    assert sent.path == "/openai/deployments/gpt-image/images/generations"
    assert sent.headers["api-key"] == AZURE_SECRET


def test_portkeys_azure_headers_route_a_bare_provider_with_custom_host(
    gateway: GatewayThread, generate_key: str, emulators: Emulators
) -> None:
    headers = {
        "x-portkey-api-key": generate_key,
        "x-portkey-provider": "azure-openai",
        "x-portkey-azure-resource-name": "my-resource",
        "x-portkey-azure-deployment-id": "dalle3",
        "x-portkey-azure-api-version": "2024-06-01",
        "x-portkey-custom-host": emulators.azure.base_url,
        "authorization": f"Bearer {AZURE_SECRET}",
    }
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        answer = client.post("/images/generations", json={"prompt": "a lighthouse"}, headers=headers)
        assert answer.status_code == 200, answer.text
        sent = emulators.azure.requests[-1]
        assert sent.headers["api-key"] == AZURE_SECRET and sent.query == {"api-version": "2024-06-01"}
        # An Entra token in Portkey's header wins over the SDK's bearer.
        entra = {**headers, "x-portkey-azure-ad-token": AZURE_AD_TOKEN, "authorization": "Bearer sk-redundant"}
        assert client.post("/images/generations", json={"prompt": "a cat"}, headers=entra).status_code == 200
        assert emulators.azure.requests[-1].headers["authorization"] == f"Bearer {AZURE_AD_TOKEN}"
        # A wrong key is Azure's 401, its message scrubbed of the key.
        wrong = {**headers, "authorization": "Bearer azure-wrong-key-0123456789"}
        refused = client.post("/images/generations", json={"prompt": "a cat"}, headers=wrong)
    assert refused.status_code == 401 and "azure-wrong-key-0123456789" not in refused.text
    assert_no_secret("REST answers", answer.text + refused.text)


def test_no_azure_secret_reaches_the_request_log(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, emulators: Emulators
) -> None:
    emulators.azure.inject(Fault.status(401))
    config = json.dumps(fallback_config(emulators, api_key="", azure_ad_token=AZURE_AD_TOKEN))
    trace_id = unique("azure-leak")
    with sdk(gateway, generate_key, **{"x-portkey-config": config, "x-portkey-trace-id": trace_id}) as c:
        c.images.generate(prompt="a lighthouse", model="dall-e-3", response_format="b64_json")
    # This request's record: the log is written off the response path, and other tests share the gateway.
    logs = eventually(lambda: (page := admin.list_logs(trace_id=trace_id, page_size=50)).logs and page)
    assert_no_secret("ListLogs", logs)
    assert any(attempt.provider == "azure-openai" for entry in logs.logs for attempt in entry.attempts)
