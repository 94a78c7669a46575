"""Amazon Bedrock through the gateway over real sockets: the OpenAI SDK, Portkey's headers, gRPC, configs, keys.

The session's gateway talks to the Bedrock emulator, which re-checks every SigV4 signature with
botocore against its key pairs; ``custom_host`` (or a virtual key's base URL) points each target at
it, as Portkey's ``custom_host`` replaces ``https://bedrock-runtime.{region}.amazonaws.com``.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import openai
import pytest
from google.protobuf import json_format
from portkey_ai import createHeaders

from imagegateway import ImageGatewayClient, ImageGatewayError
from tests.conftest import (
    BEDROCK_ACCESS_KEY_ID,
    BEDROCK_API_KEY,
    BEDROCK_REGION,
    BEDROCK_SECRET_ACCESS_KEY,
    BEDROCK_SECRETS,
    BEDROCK_SESSION_TOKEN,
    BEDROCK_TEMP_ACCESS_KEY_ID,
    BEDROCK_TEMP_SECRET_ACCESS_KEY,
    OPENAI_SECRET,
    Emulators,
    eventually,
)
from tests.emulators import BedrockEmulator, Fault
from tests.gateway_sdk import HTTP_TIMEOUT, PNG_SIGNATURE, sdk, secret_check, unique
from tests.harness import GatewayThread

NOVA = "amazon.nova-canvas-v1:0"

assert_no_secret = secret_check(BEDROCK_SECRETS, "a Bedrock secret")


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"bedrock-{uuid.uuid4().hex[:6]}", "generate").key


def bedrock_target(emulator: BedrockEmulator, **fields: str) -> dict[str, Any]:
    target = {
        "provider": "bedrock",
        "aws_access_key_id": BEDROCK_TEMP_ACCESS_KEY_ID,
        "aws_secret_access_key": BEDROCK_TEMP_SECRET_ACCESS_KEY,
        "aws_session_token": BEDROCK_SESSION_TOKEN,
        "aws_region": BEDROCK_REGION,
        "custom_host": emulator.base_url,
        "override_params": {"model": NOVA},
        **fields,
    }
    return {k: v for k, v in target.items() if v}


def fallback_config(emulator: BedrockEmulator, emulators: Emulators, **fields: str) -> dict[str, Any]:
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            bedrock_target(emulator, **fields),
            {
                "provider": "openai",
                "api_key": OPENAI_SECRET,
                "custom_host": emulators.openai.base_url,
                "override_params": {"model": "dall-e-3"},
            },
        ],
    }


def signed_by(request: Any) -> str:
    return str(request.headers["authorization"]).split("Credential=")[1].split("/")[0]


def test_a_throttled_bedrock_target_falls_back_to_openai_through_the_sdk(
    gateway: GatewayThread, generate_key: str, emulators: Emulators, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.inject(Fault.rate_limited())
    config = json.dumps(fallback_config(bedrock_emulator, emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", response_format="b64_json")
    result = raw.parse()
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    (bedrock,) = bedrock_emulator.requests
    assert bedrock.path == "/model/amazon.nova-canvas-v1%3A0/invoke"
    assert signed_by(bedrock) == BEDROCK_TEMP_ACCESS_KEY_ID
    assert len(emulators.openai.requests) == 1
    assert_no_secret("the answer", raw.http_response.text)


def test_bedrock_serves_a_config_with_its_translations_through_the_sdk(
    gateway: GatewayThread, generate_key: str, emulators: Emulators, bedrock_emulator: BedrockEmulator
) -> None:
    config = json.dumps(fallback_config(bedrock_emulator, emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        result = client.images.generate(prompt="a lighthouse", size="1024x1024", quality="hd", n=2)
    assert len(result.data) == 2 and (result.data[0].url or "").startswith("data:image/png;base64,")
    body = bedrock_emulator.requests[-1].json
    assert body is not None and body["imageGenerationConfig"]["quality"] == "premium"
    assert body["imageGenerationConfig"]["numberOfImages"] == 2
    assert not emulators.openai.requests


def test_a_blocked_prompt_moves_the_chain_on_and_no_bedrock_image_is_served(
    gateway: GatewayThread, generate_key: str, emulators: Emulators, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.inject(Fault.content_filter())
    config = json.dumps(fallback_config(bedrock_emulator, emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", response_format="b64_json")
    assert raw.headers["x-portkey-provider"] == "openai"
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    assert len(emulators.openai.requests) == 1 and len(bedrock_emulator.requests) == 1


def test_portkeys_create_headers_for_bedrock_work_unchanged_against_the_shim(
    gateway: GatewayThread, generate_key: str, bedrock_emulator: BedrockEmulator
) -> None:
    headers = createHeaders(
        api_key=generate_key,
        provider="bedrock",
        aws_access_key_id=BEDROCK_ACCESS_KEY_ID,
        aws_secret_access_key=BEDROCK_SECRET_ACCESS_KEY,
        aws_region=BEDROCK_REGION,
    )
    with openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-REDUNDANT",
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={**headers, "x-portkey-custom-host": bedrock_emulator.base_url},
    ) as client:
        result = client.images.generate(
            prompt="a lighthouse", model="amazon.titan-image-generator-v2:0", size="512x512", response_format="b64_json"
        )
    assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    sent = bedrock_emulator.requests[-1]
    assert signed_by(sent) == BEDROCK_ACCESS_KEY_ID and "x-amz-security-token" not in sent.headers
    assert "sk-REDUNDANT" not in json.dumps(sent.headers)


def test_portkeys_headers_with_a_session_token_and_an_expired_one(
    gateway: GatewayThread, generate_key: str, bedrock_emulator: BedrockEmulator
) -> None:
    headers = {
        **createHeaders(
            api_key=generate_key,
            provider="bedrock",
            aws_access_key_id=BEDROCK_TEMP_ACCESS_KEY_ID,
            aws_secret_access_key=BEDROCK_TEMP_SECRET_ACCESS_KEY,
            aws_session_token=BEDROCK_SESSION_TOKEN,
            aws_region=BEDROCK_REGION,
        ),
        "x-portkey-custom-host": bedrock_emulator.base_url,
        "authorization": "Bearer sk-REDUNDANT",
    }
    body = {"prompt": "a fox", "model": "stability.stable-image-core-v1:1", "size": "1792x1024"}
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        served = client.post("/images/generations", json=body, headers=headers)
        assert served.status_code == 200, served.text
        assert bedrock_emulator.requests[-1].json == {"prompt": "a fox", "aspect_ratio": "16:9"}
        bedrock_emulator.expire_session_token(BEDROCK_SESSION_TOKEN)
        expired = client.post("/images/generations", json=body, headers=headers)
    assert expired.status_code == 401, expired.text
    assert "expired" in expired.json()["error"]["message"]
    assert_no_secret("REST answers", served.text + expired.text + json.dumps(dict(expired.headers)))


def test_a_bedrock_api_key_in_the_bearer_with_the_region_header(
    gateway: GatewayThread, generate_key: str, bedrock_emulator: BedrockEmulator
) -> None:
    headers = {
        "x-portkey-api-key": generate_key,
        "x-portkey-provider": "bedrock",
        "x-portkey-aws-region": BEDROCK_REGION,
        "x-portkey-custom-host": bedrock_emulator.base_url,
        "authorization": f"Bearer {BEDROCK_API_KEY}",
    }
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        served = client.post("/images/generations", json={"prompt": "a cat"}, headers=headers)
    assert served.status_code == 200, served.text
    assert bedrock_emulator.requests[-1].headers["authorization"] == f"Bearer {BEDROCK_API_KEY}"


@pytest.mark.parametrize(
    ("drop", "change", "param"),
    [
        ("x-portkey-aws-region", {}, "x-portkey-aws-region"),
        ("x-portkey-aws-access-key-id", {}, "x-portkey-aws-access-key-id"),
        ("", {"x-portkey-aws-region": "us-nowhere-9"}, "x-portkey-aws-region"),
    ],
)
def test_a_bad_portkey_aws_header_is_a_400_naming_the_header_before_any_call(
    gateway: GatewayThread,
    generate_key: str,
    bedrock_emulator: BedrockEmulator,
    drop: str,
    change: dict[str, str],
    param: str,
) -> None:
    headers = {
        **createHeaders(
            api_key=generate_key,
            provider="bedrock",
            aws_access_key_id=BEDROCK_ACCESS_KEY_ID,
            aws_secret_access_key=BEDROCK_SECRET_ACCESS_KEY,
            aws_region=BEDROCK_REGION,
        ),
        "x-portkey-custom-host": bedrock_emulator.base_url,
        **change,
    }
    headers.pop(drop, None)
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        refused = client.post("/images/generations", json={"prompt": "a cat"}, headers=headers)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["param"] == param
    assert not bedrock_emulator.requests
    assert_no_secret("the refusal", refused.text)


def test_grpc_routes_a_bare_bedrock_provider_with_provider_credential(
    admin: ImageGatewayClient, bedrock_emulator: BedrockEmulator
) -> None:
    credential = {
        "aws_access_key_id": BEDROCK_TEMP_ACCESS_KEY_ID,
        "aws_secret_access_key": BEDROCK_TEMP_SECRET_ACCESS_KEY,
        "aws_session_token": BEDROCK_SESSION_TOKEN,
        "aws_region": BEDROCK_REGION,
    }
    response = admin.generate_image(
        prompt="a lighthouse",
        model="stability.sd3-5-large-v1:0",
        n=2,
        size="1024x1024",
        provider="bedrock",
        provider_credential=credential,
        custom_host=bedrock_emulator.base_url,
    )
    assert len(response.images) == 2 and all(image.provider == "bedrock" for image in response.images)
    assert response.images[0].data.startswith(PNG_SIGNATURE)
    assert response.outcome.cost_usd == pytest.approx(0.16)
    assert {signed_by(r) for r in bedrock_emulator.requests} == {BEDROCK_TEMP_ACCESS_KEY_ID}
    assert_no_secret("GenerateImage", response)
    with pytest.raises(ImageGatewayError) as refused:
        admin.generate_image(
            prompt="a lighthouse",
            provider="bedrock",
            provider_credential={**credential, "aws_region": ""},
            custom_host=bedrock_emulator.base_url,
        )
    assert refused.value.code.name == "INVALID_ARGUMENT"
    assert "provider_credential.aws_region" in str(refused.value)
    assert_no_secret("the refusal", refused.value)


def test_a_saved_config_seals_the_aws_secrets_and_serves_over_grpc(
    admin: ImageGatewayClient, emulators: Emulators, bedrock_emulator: BedrockEmulator
) -> None:
    created = admin.create_config(unique("bedrock"), fallback_config(bedrock_emulator, emulators))
    fetched = admin.get_config(created.id)
    assert_no_secret("CreateConfig", created)
    assert_no_secret("GetConfig", fetched)
    shown = json_format.MessageToDict(fetched.config, preserving_proto_field_name=True)
    assert shown["targets"][0]["aws_access_key_id"] == BEDROCK_TEMP_ACCESS_KEY_ID
    assert shown["targets"][0]["aws_region"] == BEDROCK_REGION
    assert "aws_secret_access_key" not in shown["targets"][0] and "aws_session_token" not in shown["targets"][0]
    response = admin.generate_image(prompt="a lighthouse", config_id=created.id)
    assert response.images[0].provider == "bedrock" and response.images[0].model == NOVA
    assert bedrock_emulator.requests[-1].headers["x-amz-security-token"] == BEDROCK_SESSION_TOKEN
    # Throttled, the chain moves on to OpenAI; the attempt is recorded as Bedrock's 429.
    bedrock_emulator.inject(Fault.rate_limited())
    response = admin.generate_image(prompt="a lighthouse", config_id=created.id)
    assert response.images[0].provider == "openai" and response.outcome.fallback_used
    assert [(a.provider, a.status_code) for a in response.outcome.attempts] == [("bedrock", 429), ("openai", 200)]


def test_a_config_missing_the_region_is_refused_when_saved_naming_the_field(
    admin: ImageGatewayClient, emulators: Emulators, bedrock_emulator: BedrockEmulator
) -> None:
    document = fallback_config(bedrock_emulator, emulators, aws_region="")
    with pytest.raises(ImageGatewayError) as refused:
        admin.create_config(unique("bedrock-bad"), document)
    assert refused.value.code.name == "INVALID_ARGUMENT" and "targets[0].aws_region" in str(refused.value)
    assert_no_secret("CreateConfig refusal", refused.value)


def test_a_virtual_key_with_aws_fields_serves_the_sdk_and_shows_only_public_fields(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, bedrock_emulator: BedrockEmulator
) -> None:
    vk = admin.create_virtual_key(
        unique("bedrock-vk"),
        "bedrock",
        base_url=bedrock_emulator.base_url,
        credential_fields={
            "aws_access_key_id": BEDROCK_ACCESS_KEY_ID,
            "aws_secret_access_key": BEDROCK_SECRET_ACCESS_KEY,
            "aws_region": BEDROCK_REGION,
        },
    )
    shown = admin.get_virtual_key(vk.id)
    assert_no_secret("GetVirtualKey", shown)
    assert dict(shown.public_credential_fields) == {
        "aws_access_key_id": BEDROCK_ACCESS_KEY_ID,
        "aws_region": BEDROCK_REGION,
    }
    with sdk(gateway, generate_key, **{"x-portkey-virtual-key": vk.id}) as client:
        result = client.images.generate(prompt="a lighthouse", model=NOVA, size="1792x1024")
    assert result.data and (result.data[0].url or "").startswith("data:image/png;base64,")
    assert signed_by(bedrock_emulator.requests[-1]) == BEDROCK_ACCESS_KEY_ID


def test_the_request_log_records_bedrocks_cost_and_no_secret(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    generate_key: str,
    emulators: Emulators,
    bedrock_emulator: BedrockEmulator,
) -> None:
    trace_id = unique("bedrock-log")
    config = json.dumps(fallback_config(bedrock_emulator, emulators))
    with sdk(gateway, generate_key, **{"x-portkey-config": config, "x-portkey-trace-id": trace_id}) as client:
        client.images.generate(prompt="a lighthouse", size="1024x1024", quality="hd")
    logs = eventually(lambda: (page := admin.list_logs(trace_id=trace_id, page_size=50)).logs and page)
    assert_no_secret("ListLogs", logs)
    (entry,) = logs.logs
    assert entry.cost_usd == pytest.approx(0.06)
    assert [attempt.provider for attempt in entry.attempts] == ["bedrock"]
