"""Vertex AI and the Gemini API through the gateway over real sockets: configs, virtual keys, Portkey's
headers, the OpenAI SDK and gRPC, safety filters moving a fallback chain on, service-account tokens.

The session's gateway talks to the Vertex emulator (project ``imagegw-test``; its ``/token`` endpoint
verifies the service account's signed assertion), the Gemini API emulator and the OpenAI emulator;
``custom_host`` points each target at its emulator, as Portkey's ``custom_host`` replaces
``https://{region}-aiplatform.googleapis.com`` and ``https://generativelanguage.googleapis.com/v1beta``.
The gateway lists 127.0.0.1 as an allowed upstream host, which is what lets the service account's
``token_uri`` be the emulator's.
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

from imagegateway import ImageGatewayClient, ImageGatewayError
from tests.conftest import (
    GEMINI_SECRET,
    OPENAI_SECRET,
    VERTEX_ACCESS_TOKEN,
    VERTEX_PROJECT,
    Emulators,
    ServiceAccount,
    eventually,
)
from tests.emulators import Fault, GeminiApiEmulator, VertexEmulator
from tests.gateway_sdk import HTTP_TIMEOUT, PNG_SIGNATURE, sdk, unique
from tests.harness import GatewayThread


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"google-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture
def clouds(
    google_emulators: tuple[VertexEmulator, GeminiApiEmulator], emulators: Emulators
) -> tuple[VertexEmulator, GeminiApiEmulator, Emulators]:
    vertex, gemini = google_emulators
    return vertex, gemini, emulators


def vertex_target(vertex: VertexEmulator, account: ServiceAccount | None, **fields: Any) -> dict[str, Any]:
    target: dict[str, Any] = {
        "provider": "vertex-ai",
        "vertex_project_id": VERTEX_PROJECT,
        "vertex_region": "us-central1",
        "custom_host": vertex.origin,
        "override_params": {"model": "imagen-4.0-fast-generate-001"},
    }
    if account is not None:
        target["vertex_service_account_json"] = account.key  # Portkey's configs give the key as an object
    else:
        target["api_key"] = VERTEX_ACCESS_TOKEN
    return {**target, **fields}


def chain(
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators], account: ServiceAccount | None
) -> dict[str, Any]:
    vertex, gemini, emulators = clouds
    return {
        "strategy": {"mode": "fallback"},
        "targets": [
            vertex_target(vertex, account),
            {
                "provider": "google",
                "api_key": GEMINI_SECRET,
                "custom_host": gemini.base_url,
                "override_params": {"model": "gemini-2.5-flash-image"},
            },
            {
                "provider": "openai",
                "api_key": OPENAI_SECRET,
                "custom_host": emulators.openai.base_url,
                "override_params": {"model": "dall-e-3"},
            },
        ],
    }


def test_the_sdk_falls_back_from_vertex_to_gemini_to_openai_on_safety_filters(
    gateway: GatewayThread,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, gemini, emulators = clouds
    vertex.inject(Fault.content_filter())  # Imagen drops every image
    gemini.inject(Fault.content_filter())  # Gemini stops with IMAGE_SAFETY
    config = json.dumps(chain(clouds, service_account))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", response_format="b64_json")
    result = raw.parse()
    assert result.data and base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    assert raw.headers["x-portkey-provider"] == "openai"
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[2]"
    assert [r.path.rsplit("/", 1)[-1] for r in vertex.requests] == [
        "token",
        "imagen-4.0-fast-generate-001:predict",
    ]
    assert [r.path for r in gemini.requests] == ["/v1beta/models/gemini-2.5-flash-image:generateContent"]
    assert len(emulators.openai.requests) == 1


def test_vertex_serves_through_the_sdk_with_a_cached_token(
    gateway: GatewayThread,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, gemini, emulators = clouds
    target = vertex_target(vertex, service_account, override_params={"model": "imagen-4.0-generate-001"})
    target["vertex_project_id"] = VERTEX_PROJECT
    config = json.dumps({"strategy": {"mode": "single"}, "targets": [target]})
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        first = client.images.with_raw_response.generate(prompt="a lighthouse", n=2, size="1792x1024")
        second = client.images.generate(prompt="a lighthouse", size="1024x1024", response_format="b64_json")
    data = first.parse().data
    assert data is not None and len(data) == 2 and second.data
    assert "size=1792x1024->16:9" in first.headers["x-imagegw-translated"]
    assert "image_size" not in first.headers["x-imagegw-translated"]  # 2K is made by imagen-4.0-generate-001
    predicts = [r for r in vertex.requests if r.path.endswith(":predict")]
    assert predicts[0].json["parameters"]["sampleImageSize"] == "2K"  # type: ignore[index]
    # One token for both requests (and for any earlier test of this account: the cache is per gateway).
    assert vertex.token_requests <= 1
    assert predicts[0].headers["authorization"] == predicts[1].headers["authorization"]
    assert not gemini.requests and not emulators.openai.requests


def test_an_expired_vertex_token_is_refreshed_once_through_the_gateway(
    gateway: GatewayThread,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, _, _ = clouds
    config = json.dumps({"strategy": {"mode": "single"}, "targets": [vertex_target(vertex, service_account)]})
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        client.images.generate(prompt="a lighthouse", response_format="b64_json")
        vertex.reset()
        vertex.expire_tokens()
        result = client.images.generate(prompt="a lighthouse", response_format="b64_json")
    assert result.data
    assert [r.path.rsplit("/", 1)[-1].rsplit(":", 1)[-1] for r in vertex.requests] == ["predict", "token", "predict"]


def test_a_saved_config_with_a_service_account_is_sealed_and_serves_over_grpc(
    admin: ImageGatewayClient,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, gemini, _ = clouds
    document = chain(clouds, service_account)
    document["targets"][0]["vertex_service_account_json"] = service_account.text  # the proto field is text
    created = admin.create_config(unique("vertex"), document)
    fetched = admin.get_config(created.id)
    shown = json_format.MessageToDict(fetched.config, preserving_proto_field_name=True)
    assert shown["targets"][0]["vertex_project_id"] == VERTEX_PROJECT
    assert "vertex_service_account_json" not in shown["targets"][0]
    assert service_account.key["private_key"] not in str(created) + str(fetched)
    vertex.drop_next_images(1)
    response = admin.generate_image(prompt="a lighthouse", n=3, config_id=created.id)
    assert len(response.images) == 2 and {image.provider for image in response.images} == {"vertex-ai"}
    vertex.inject(Fault.moderation_denied())  # Imagen's blocked prompt: a content-policy 400
    response = admin.generate_image(prompt="a lighthouse", config_id=created.id)
    assert response.images[0].provider == "google" and len(gemini.requests) == 1


def test_imagens_partial_answer_is_served_and_said(
    gateway: GatewayThread, generate_key: str, clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators]
) -> None:
    vertex, _, _ = clouds
    vertex.drop_next_images(1)
    config = json.dumps({"strategy": {"mode": "single"}, "targets": [vertex_target(vertex, None)]})
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", n=3, response_format="b64_json")
    assert len(raw.parse().data or []) == 2
    assert "n=3->2" in raw.headers["x-imagegw-translated"]
    assert vertex.requests[-1].headers["authorization"] == f"Bearer {VERTEX_ACCESS_TOKEN}"


def test_a_token_uri_off_googles_host_is_refused_before_any_call(
    gateway: GatewayThread,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, _, _ = clouds
    for token_uri in ("https://metadata.google.internal/computeMetadata/v1/token", "https://evil.example/token"):
        account = ServiceAccount("", {**service_account.key, "token_uri": token_uri})
        config = json.dumps({"strategy": {"mode": "single"}, "targets": [vertex_target(vertex, account)]})
        with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
            with pytest.raises(openai.BadRequestError) as refused:
                client.images.generate(prompt="a lighthouse")
        assert "token_uri" in str(refused.value) and refused.value.status_code == 400
    assert not vertex.requests


def test_a_virtual_key_with_vertex_fields_shows_only_the_public_ones(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, _, _ = clouds
    fields = {
        "vertex_project_id": VERTEX_PROJECT,
        "vertex_region": "europe-west4",
        "vertex_service_account_json": service_account.text,
    }
    vk = admin.create_virtual_key(unique("vertex-vk"), "vertex-ai", base_url=vertex.origin, credential_fields=fields)
    shown = admin.get_virtual_key(vk.id)
    assert dict(shown.public_credential_fields) == {
        "vertex_project_id": VERTEX_PROJECT,
        "vertex_region": "europe-west4",
    }
    assert service_account.key["private_key"] not in str(vk) + str(shown)
    with sdk(gateway, generate_key, **{"x-portkey-virtual-key": vk.id}) as client:
        result = client.images.generate(prompt="a lighthouse", model="gemini-3-pro-image-preview", size="1024x1024")
    assert result.data
    sent = vertex.requests[-1]
    assert sent.path == (
        "/v1/projects/imagegw-test/locations/europe-west4/publishers/google/models/gemini-3-pro-image-preview"
        ":generateContent"
    )
    with pytest.raises(ImageGatewayError) as refused:
        admin.create_virtual_key(
            unique("vertex-bad"),
            "vertex-ai",
            credential_fields={**fields, "vertex_service_account_json": json.dumps({"client_email": "a@b"})},
        )
    assert "credential_fields.vertex_service_account_json.private_key" in str(refused.value)


def test_portkeys_vertex_headers_route_a_bare_provider_and_win_over_the_sdks_bearer(
    gateway: GatewayThread,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, _, _ = clouds
    headers = {
        "x-portkey-api-key": generate_key,
        "x-portkey-provider": "vertex-ai",
        "x-portkey-vertex-project-id": VERTEX_PROJECT,
        "x-portkey-vertex-region": "us-central1",
        "x-portkey-custom-host": vertex.origin,
    }
    body = {"prompt": "a lighthouse", "model": "imagen-3.0-generate-002"}
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        keyed = {
            **headers,
            "x-portkey-vertex-service-account-json": service_account.text,
            "authorization": "Bearer sk-x",
        }
        answer = client.post("/images/generations", json=body, headers=keyed)
        assert answer.status_code == 200, answer.text
        assert vertex.requests[-1].headers["authorization"].startswith("Bearer ya29.emulator-")
        # Without a key header, the bearer is the access token itself.
        token = {**headers, "authorization": f"Bearer {VERTEX_ACCESS_TOKEN}"}
        assert client.post("/images/generations", json=body, headers=token).status_code == 200
        assert vertex.requests[-1].headers["authorization"] == f"Bearer {VERTEX_ACCESS_TOKEN}"
        missing = client.post("/images/generations", json=body, headers={**token, "x-portkey-vertex-region": ""})
    assert missing.status_code == 400 and "x-portkey-vertex-region" in missing.text  # the header, as Portkey names it


def test_portkeys_google_provider_takes_the_key_from_the_bearer(
    gateway: GatewayThread, generate_key: str, clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators]
) -> None:
    _, gemini, _ = clouds
    headers = {
        "x-portkey-api-key": generate_key,
        "x-portkey-provider": "google",
        "x-portkey-custom-host": gemini.base_url,
        "authorization": f"Bearer {GEMINI_SECRET}",
    }
    with httpx.Client(base_url=gateway.rest_base_url, timeout=HTTP_TIMEOUT) as client:
        answer = client.post(
            "/images/generations", json={"prompt": "a lighthouse", "model": "imagen-4.0-generate-001"}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        assert gemini.requests[-1].headers["x-goog-api-key"] == GEMINI_SECRET
        wrong = {**headers, "authorization": "Bearer AIzaSyWrong-0123456789abcdefghij"}
        refused = client.post("/images/generations", json={"prompt": "a lighthouse"}, headers=wrong)
        styled = client.post("/images/generations", json={"prompt": "a", "style": "vivid"}, headers=headers)
    assert refused.status_code == 401 and "AIzaSyWrong" not in refused.text
    assert styled.status_code == 400 and json.loads(styled.text)["error"]["param"] == "style"


def test_the_request_log_records_google_attempts_and_costs(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
) -> None:
    vertex, _, _ = clouds
    vertex.inject(Fault.rate_limited())
    trace_id = unique("google-log")
    config = json.dumps(chain(clouds, None))
    with sdk(gateway, generate_key, **{"x-portkey-config": config, "x-portkey-trace-id": trace_id}) as client:
        client.images.generate(prompt="a lighthouse", response_format="b64_json")
    logs = eventually(lambda: (page := admin.list_logs(trace_id=trace_id, page_size=10)).logs and page)
    (entry,) = logs.logs
    attempts = [(a.provider, a.status_code) for a in entry.attempts]
    assert attempts[:2] == [("vertex-ai", 429), ("google", 200)]
    assert entry.cost_usd == pytest.approx(0.039)


def test_the_cookbook_fallback_with_virtual_keys_runs_unchanged_through_the_sdk_and_grpc(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    generate_key: str,
    clouds: tuple[VertexEmulator, GeminiApiEmulator, Emulators],
    service_account: ServiceAccount,
) -> None:
    vertex, gemini, emulators = clouds
    vertex_vk = admin.create_virtual_key(
        unique("vertex"),
        "vertex-ai",
        base_url=vertex.origin,
        credential_fields={
            "vertex_project_id": VERTEX_PROJECT,
            "vertex_region": "us-central1",
            "vertex_service_account_json": service_account.text,
        },
    )
    google_vk = admin.create_virtual_key(unique("google"), "google", GEMINI_SECRET, base_url=gemini.base_url)
    openai_vk = admin.create_virtual_key(unique("openai"), "openai", OPENAI_SECRET, base_url=emulators.openai.base_url)
    cookbook = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {"virtual_key": vertex_vk.id, "override_params": {"model": "imagen-4.0-generate-001"}},
            {"virtual_key": google_vk.id, "override_params": {"model": "gemini-2.5-flash-image"}},
            {"virtual_key": openai_vk.id, "override_params": {"model": "dall-e-3"}},
        ],
    }
    config = admin.create_config(unique("cookbook"), cookbook)
    vertex.inject(Fault.status(503))
    trace_id = unique("cookbook")
    with sdk(gateway, generate_key, **{"x-portkey-config": config.id, "x-portkey-trace-id": trace_id}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", size="1024x1024")
    assert raw.headers["x-portkey-provider"] == "google" and raw.parse().data
    vertex.drop_next_images(1)
    response = admin.generate_image(prompt="a lighthouse", n=2, config_id=config.id)
    assert [image.provider for image in response.images] == ["vertex-ai"]
    logs = eventually(
        lambda: (page := admin.list_logs(config_id=config.id, page_size=10)).logs and len(page.logs) >= 2 and page
    )
    served = {entry.provider: entry for entry in logs.logs}
    assert [a.status_code for a in served["google"].attempts] == [503, 200]
    assert "n=2->1" in list(served["vertex-ai"].attempts[-1].translations)
