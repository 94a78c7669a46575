"""No AWS secret key or session token, nor a Bedrock API key, leaves the gateway, in anything it says or stores.

One gateway (in a thread, every logger captured at DEBUG, botocore's included) is driven through
every path that touches a Bedrock credential: virtual keys and saved configs with AWS fields
(created, rotated, read, listed, validated), generation signed with SigV4 and with a session token,
upstream errors that echo the secrets back, an expired session token, Portkey's ``x-portkey-aws-*``
headers and gRPC's ``provider_credential``, refusals of bad fields, the request log, the metrics and
the database file itself. Everything is searched for the secrets, whole and in telling fragments
(``tests/leak_scan.py`` has the transcript and the fragments).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from imagegateway import ImageGatewayClient
from tests.conftest import BEDROCK_REGION, eventually
from tests.emulators import BedrockEmulator, Fault
from tests.harness import GatewayThread, running_gateway
from tests.leak_scan import MASTER_KEY, TIMEOUT, Transcript

# Made fresh for this test, not shaped like any key format, so only exact scrubbing can hide them.
KEY_ID = "AKIALEAKTEST" + secrets.token_hex(4).upper()
SECRET_KEY = "awssecret/" + secrets.token_urlsafe(30)
TEMP_KEY_ID = "ASIALEAKTEST" + secrets.token_hex(4).upper()
TEMP_SECRET_KEY = "tempsecret+" + secrets.token_urlsafe(30)
SESSION_TOKEN = "sessiontoken" + secrets.token_urlsafe(60)
API_KEY = "bedrockapikey" + secrets.token_urlsafe(30)
ROTATED_SECRET_KEY = "rotatedsecret" + secrets.token_urlsafe(30)
SECRETS = {
    "secret key": SECRET_KEY,
    "temporary secret key": TEMP_SECRET_KEY,
    "session token": SESSION_TOKEN,
    "api key": API_KEY,
    "rotated secret key": ROTATED_SECRET_KEY,
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bedrock-leak")


@pytest.fixture(scope="module")
def leaky(data_dir: Path) -> Iterator[GatewayThread]:
    with running_gateway(data_dir, master_key=MASTER_KEY) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def aws() -> Iterator[BedrockEmulator]:
    with BedrockEmulator.running_in_thread(
        api_key=API_KEY, access_key_id=KEY_ID, secret_access_key=SECRET_KEY, region=BEDROCK_REGION
    ) as emulator:
        emulator.add_key_pair(TEMP_KEY_ID, TEMP_SECRET_KEY, SESSION_TOKEN)
        yield emulator


def echo(*secrets_: str) -> Fault:
    """A 403 whose message repeats the call's own secrets, as a careless upstream or proxy might."""
    message = "denied for " + " and ".join(secrets_)
    return Fault.status(403, {"message": message}, {"x-amzn-ErrorType": "AccessDeniedException"})


TEMPORARY_ECHO = (TEMP_SECRET_KEY, SESSION_TOKEN)


def drive(gateway: GatewayThread, aws: BedrockEmulator, seen: Transcript) -> None:
    temporary = {
        "aws_access_key_id": TEMP_KEY_ID,
        "aws_secret_access_key": TEMP_SECRET_KEY,
        "aws_session_token": SESSION_TOKEN,
        "aws_region": BEDROCK_REGION,
    }
    rest = gateway.rest_base_url + "/images/generations"
    with ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin:
        # Virtual keys with AWS fields: made, read, rotated, listed, refused.
        seen.call(
            "CreateVirtualKey",
            lambda: admin.create_virtual_key(
                "leak-bedrock",
                "bedrock",
                base_url=aws.base_url,
                credential_fields={
                    "aws_access_key_id": KEY_ID,
                    "aws_secret_access_key": SECRET_KEY,
                    "aws_region": BEDROCK_REGION,
                },
            ),
        )
        seen.call(
            "CreateVirtualKey temporary",
            lambda: admin.create_virtual_key(
                "leak-bedrock-temp", "bedrock", base_url=aws.base_url, credential_fields=temporary
            ),
        )
        seen.call(
            "CreateVirtualKey api key",
            lambda: admin.create_virtual_key(
                "leak-bedrock-api",
                "bedrock",
                base_url=aws.base_url,
                credential_fields={"api_key": API_KEY, "aws_region": BEDROCK_REGION},
            ),
        )
        seen.call(
            "CreateVirtualKey bad region",
            lambda: admin.create_virtual_key(
                "leak-bedrock-bad",
                "bedrock",
                credential_fields={**temporary, "aws_region": SESSION_TOKEN},
            ),
        )
        seen.call(
            "CreateVirtualKey both",
            lambda: admin.create_virtual_key(
                "leak-bedrock-both",
                "bedrock",
                credential_fields={**temporary, "api_key": API_KEY},
            ),
        )
        seen.call("GetVirtualKey", lambda: admin.get_virtual_key("leak-bedrock-temp"))
        seen.call("ListVirtualKeys", lambda: admin.list_virtual_keys())
        seen.call("GenerateImage vk", lambda: admin.generate_image(prompt="p", virtual_key="leak-bedrock"))
        aws.inject(echo(SECRET_KEY))
        seen.call("GenerateImage vk echoed", lambda: admin.generate_image(prompt="p", virtual_key="leak-bedrock"))
        seen.call(
            "RotateVirtualKey",
            lambda: admin.rotate_virtual_key(
                "leak-bedrock",
                credential_fields={
                    "aws_access_key_id": KEY_ID,
                    "aws_secret_access_key": ROTATED_SECRET_KEY,
                    "aws_region": BEDROCK_REGION,
                },
            ),
        )
        seen.call(
            "GenerateImage rotated (wrong secret)", lambda: admin.generate_image(prompt="p", virtual_key="leak-bedrock")
        )
        seen.call("GenerateImage api key", lambda: admin.generate_image(prompt="p", virtual_key="leak-bedrock-api"))

        # Saved configs with inline AWS secrets.
        document = {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"provider": "bedrock", "custom_host": aws.base_url, **temporary},
                {"virtual_key": "leak-bedrock-api"},
            ],
        }
        config = seen.call("CreateConfig", lambda: admin.create_config("leak-bedrock", document))
        seen.call("UpdateConfig", lambda: admin.update_config(config.id, document))
        seen.call("GetConfig", lambda: admin.get_config(config.id))
        seen.call("ListConfigs", lambda: admin.list_configs())
        seen.call("ValidateConfig", lambda: admin.validate_config(document))
        bad = {"targets": [{"provider": "bedrock", **temporary, "aws_region": API_KEY}]}
        seen.call("ValidateConfig bad", lambda: admin.validate_config(bad))
        seen.call("GenerateImage config", lambda: admin.generate_image(prompt="p", config_id=config.id))
        aws.inject(echo(*TEMPORARY_ECHO))  # the config's first target, then its API-key fallback
        aws.inject(echo(API_KEY))
        seen.call("GenerateImage echoed", lambda: admin.generate_image(prompt="p", config_id=config.id))
        aws.expire_session_token(SESSION_TOKEN)
        seen.call("GenerateImage expired", lambda: admin.generate_image(prompt="p", config_id=config.id))
        aws.expire_session_token(SESSION_TOKEN, expired=False)

        # gRPC bare provider with provider_credential.
        seen.call(
            "GenerateImage bare",
            lambda: admin.generate_image(
                prompt="p",
                provider="bedrock",
                provider_credential=temporary,
                custom_host=aws.base_url,
            ),
        )
        aws.inject(echo(*TEMPORARY_ECHO))
        seen.call(
            "GenerateImage bare echoed",
            lambda: admin.generate_image(
                prompt="p",
                provider="bedrock",
                provider_credential=temporary,
                custom_host=aws.base_url,
            ),
        )
        seen.call(
            "GenerateImage bare refused",
            lambda: admin.generate_image(
                prompt="p",
                provider="bedrock",
                provider_credential={**temporary, "aws_region": TEMP_SECRET_KEY},
            ),
        )
        seen.call(
            "StreamGenerateImage",
            lambda: list(
                admin.stream_generate_image(
                    prompt="p",
                    provider="bedrock",
                    provider_credential=temporary,
                    custom_host=aws.base_url,
                )
            ),
        )
        key = admin.create_api_key("leak-bedrock-generate", "generate").key

        # REST with Portkey's headers.
        headers = {
            "x-portkey-api-key": key,
            "x-portkey-provider": "bedrock",
            "x-portkey-aws-access-key-id": TEMP_KEY_ID,
            "x-portkey-aws-secret-access-key": TEMP_SECRET_KEY,
            "x-portkey-aws-session-token": SESSION_TOKEN,
            "x-portkey-aws-region": BEDROCK_REGION,
            "x-portkey-custom-host": aws.base_url,
            "authorization": "Bearer sk-REDUNDANT",
        }
        with httpx.Client(timeout=TIMEOUT) as client:
            body = {"prompt": "p", "response_format": "b64_json"}
            seen.add("REST headers", client.post(rest, json=body, headers=headers))
            aws.inject(echo(*TEMPORARY_ECHO))
            seen.add("REST echoed", client.post(rest, json=body, headers=headers))
            seen.add(
                "REST bad region",
                client.post(rest, json=body, headers={**headers, "x-portkey-aws-region": SESSION_TOKEN}),
            )
            seen.add(
                "REST no key id",
                client.post(
                    rest, json=body, headers={k: v for k, v in headers.items() if k != "x-portkey-aws-access-key-id"}
                ),
            )
            api_headers = {
                "x-portkey-api-key": key,
                "x-portkey-provider": "bedrock",
                "x-portkey-aws-region": BEDROCK_REGION,
                "x-portkey-custom-host": aws.base_url,
                "authorization": f"Bearer {API_KEY}",
            }
            seen.add("REST api key", client.post(rest, json=body, headers=api_headers))
            seen.add(
                "REST inline config",
                client.post(
                    rest,
                    json=body,
                    headers={
                        "x-portkey-api-key": key,
                        "x-portkey-config": json.dumps(document),
                    },
                ),
            )

        logs = eventually(lambda: (page := admin.list_logs(page_size=200)).logs and len(page.logs) >= 10 and page)
        seen.add("ListLogs", logs)
        for entry in logs.logs:
            seen.call("GetLog", lambda e=entry: admin.get_log(e.id))  # type: ignore[misc]
        seen.call("ListTargetHealth", lambda: admin.list_target_health())
    seen.add("metrics", httpx.get(gateway.metrics_url, timeout=TIMEOUT).text)


def test_no_aws_secret_or_session_token_appears_in_anything_the_gateway_says_or_stores(
    leaky: GatewayThread, aws: BedrockEmulator, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen = Transcript()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("botocore").setLevel(logging.DEBUG)
        drive(leaky, aws, seen)
    seen.add_logs(caplog.records)
    database = b"".join(path.read_bytes() for path in sorted(data_dir.glob("imagegw.db*")))
    seen.add("database file", database.decode("latin-1"))

    # The secrets did reach Bedrock (signed with them, or sent), so the search looks for something real.
    sent = [request.headers for request in aws.requests]
    assert any(request.get("x-amz-security-token") == SESSION_TOKEN for request in sent)
    assert any(request.get("authorization") == f"Bearer {API_KEY}" for request in sent)
    assert any(TEMP_KEY_ID in request.get("authorization", "") for request in sent)
    assert len(database) > 10_000 and len(caplog.records) > 10
    assert sum(where.startswith("GenerateImage") for where, _ in seen.parts) >= 8

    leaks = seen.leaks(SECRETS)
    assert leaks == [], f"secrets found (secret, where): {sorted(set(leaks))}"
