"""The Bedrock adapter over real sockets: URL, SigV4 and Bearer auth, bodies per model, sizes, filters, errors.

The Bedrock emulator (tests/emulators) recomputes each SigV4 signature with botocore from the
request as it arrived, checks bodies per model as Bedrock does, and records what the adapter sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import unquote

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, InvalidArgument, ProviderError
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.bedrock.adapter import BedrockAdapter
from imagegateway_server.providers.bedrock.errors import classify_error
from imagegateway_server.providers.bedrock.models import NOVA_SIZE_RULE, TITAN_SIZE_RULE
from imagegateway_server.providers.bedrock.signing import BedrockAuth
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.transport import UpstreamResponse
from imagegateway_server.providers.registry import PROVIDER_SPECS
from tests.adapter_failures import generate_fails
from tests.conftest import (
    BEDROCK_ACCESS_KEY_ID,
    BEDROCK_API_KEY,
    BEDROCK_REGION,
    BEDROCK_SECRET_ACCESS_KEY,
    BEDROCK_SECRETS,
    BEDROCK_SESSION_TOKEN,
    BEDROCK_TEMP_ACCESS_KEY_ID,
    BEDROCK_TEMP_SECRET_ACCESS_KEY,
)
from tests.emulators import BedrockEmulator, Fault
from tests.emulators.bedrock import EXPIRED_TOKEN_MESSAGE

SCHEMA = PROVIDER_SPECS["bedrock"].credentials
NOVA = "amazon.nova-canvas-v1:0"
TITAN = "amazon.titan-image-generator-v2:0"
SD35 = "stability.sd3-5-large-v1:0"
CORE = "stability.stable-image-core-v1:1"
ULTRA = "stability.stable-image-ultra-v1:1"


def key_pair(**fields: str) -> Credential:
    raw = {
        "aws_access_key_id": BEDROCK_ACCESS_KEY_ID,
        "aws_secret_access_key": BEDROCK_SECRET_ACCESS_KEY,
        "aws_region": BEDROCK_REGION,
        **fields,
    }
    return SCHEMA.parse({k: v for k, v in raw.items() if v}, provider="bedrock")


def temporary() -> Credential:
    return key_pair(
        aws_access_key_id=BEDROCK_TEMP_ACCESS_KEY_ID,
        aws_secret_access_key=BEDROCK_TEMP_SECRET_ACCESS_KEY,
        aws_session_token=BEDROCK_SESSION_TOKEN,
    )


def api_key() -> Credential:
    return SCHEMA.parse({"api_key": BEDROCK_API_KEY, "aws_region": BEDROCK_REGION}, provider="bedrock")


MakeFn = Callable[..., BedrockAdapter]


@pytest.fixture
async def make(bedrock_emulator: BedrockEmulator) -> AsyncIterator[MakeFn]:
    adapters: list[BedrockAdapter] = []

    def factory(**kwargs: Any) -> BedrockAdapter:
        adapter = BedrockAdapter(base_url=kwargs.pop("base_url", bedrock_emulator.base_url), **kwargs)
        adapters.append(adapter)
        return adapter

    yield factory
    for adapter in adapters:
        await adapter.aclose()


def target(credential: Credential | None = None, **kwargs: Any) -> UpstreamTarget:
    return UpstreamTarget(credential=credential or key_pair(), **kwargs)


async def fails(adapter: BedrockAdapter, request: ImageRequest, where: UpstreamTarget) -> ProviderError:
    return await generate_fails(adapter, request, where, *BEDROCK_SECRETS)


# -- the call -------------------------------------------------------------------------------------


async def test_nova_canvas_is_invoked_signed_with_sigv4_and_its_text_image_body(
    make: MakeFn, bedrock_emulator: BedrockEmulator
) -> None:
    request = ImageRequest(
        prompt="a lighthouse", model=NOVA, n=2, size="1280x720", quality="hd", style="PHOTOREALISM", seed=7
    )
    result = await make().generate(request, target())
    sent = bedrock_emulator.requests[-1]
    assert sent.path == "/model/amazon.nova-canvas-v1%3A0/invoke"
    assert sent.headers["authorization"].startswith(
        f"AWS4-HMAC-SHA256 Credential={BEDROCK_ACCESS_KEY_ID}/{time.strftime('%Y%m%d', time.gmtime())}/"
        f"{BEDROCK_REGION}/bedrock/aws4_request, SignedHeaders=accept;content-type;host;x-amz-date, Signature="
    )
    assert "x-amz-security-token" not in sent.headers
    assert sent.json == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a lighthouse", "style": "PHOTOREALISM"},
        "imageGenerationConfig": {"numberOfImages": 2, "width": 1280, "height": 720, "quality": "premium", "seed": 7},
    }
    assert len(result.images) == 2 and result.model == NOVA
    assert all((image.provider, image.model, image.size) == ("bedrock", NOVA, "1280x720") for image in result.images)
    assert result.translations == ("quality=hd->premium",)
    assert result.provider_request_id


async def test_temporary_credentials_send_and_sign_the_session_token(
    make: MakeFn, bedrock_emulator: BedrockEmulator
) -> None:
    await make().generate(ImageRequest(prompt="a cat", model=TITAN), target(temporary()))
    sent = bedrock_emulator.requests[-1]
    assert sent.headers["x-amz-security-token"] == BEDROCK_SESSION_TOKEN
    assert "x-amz-security-token" in sent.headers["authorization"].split("SignedHeaders=")[1].split(",")[0]


async def test_a_bedrock_api_key_is_sent_as_a_bearer(make: MakeFn, bedrock_emulator: BedrockEmulator) -> None:
    await make().generate(ImageRequest(prompt="a cat"), target(api_key()))
    sent = bedrock_emulator.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {BEDROCK_API_KEY}"
    assert "x-amz-date" not in sent.headers
    assert unquote(sent.path) == f"/model/{NOVA}/invoke"  # the default model


def test_without_an_override_the_url_is_the_regional_bedrock_runtime_host() -> None:
    adapter = BedrockAdapter()
    url = adapter.endpoint(target(key_pair(aws_region="eu-central-1")), TITAN)
    assert url == "https://bedrock-runtime.eu-central-1.amazonaws.com/model/amazon.titan-image-generator-v2%3A0/invoke"


def test_custom_host_replaces_the_regional_base() -> None:
    url = BedrockAdapter().endpoint(target(base_url="https://proxy.example/bedrock/"), SD35)
    assert url == "https://proxy.example/bedrock/model/stability.sd3-5-large-v1%3A0/invoke"


async def test_titan_takes_its_size_list_and_no_style(make: MakeFn, bedrock_emulator: BedrockEmulator) -> None:
    adapter = make()
    result = await adapter.generate(
        ImageRequest(prompt="a cat", model=TITAN, size="1792x1024", negative_prompt="blur"), target()
    )
    body = bedrock_emulator.requests[-1].json
    assert body is not None
    assert body["imageGenerationConfig"] == {"numberOfImages": 1, "width": 1152, "height": 640}
    assert body["textToImageParams"] == {"text": "a cat", "negativeText": "blur"}
    assert result.translations == ("size=1792x1024->1152x640",)
    assert (result.images[0].width, result.images[0].height) == (1152, 640)
    refused = await fails(adapter, ImageRequest(prompt="a cat", model=TITAN, style="vivid"), target())
    assert refused.kind is ErrorKind.BAD_REQUEST and refused.param == "style"


async def test_stability_models_fan_n_out_one_image_per_call_with_stepped_seeds(
    make: MakeFn, bedrock_emulator: BedrockEmulator
) -> None:
    request = ImageRequest(prompt="a fox", model=SD35, n=3, size="1792x1024", seed=10, output_format="jpeg")
    result = await make().generate(request, target())
    bodies = sorted((r.json or {}).get("seed", 0) for r in bedrock_emulator.requests)
    assert bodies == [10, 11, 12]
    first = bedrock_emulator.requests[0].json
    assert first is not None
    assert {k: v for k, v in first.items() if k != "seed"} == {
        "prompt": "a fox",
        "mode": "text-to-image",
        "aspect_ratio": "16:9",
        "output_format": "jpeg",
    }
    assert len(result.images) == 3 and all(image.mime_type == "image/jpeg" for image in result.images)
    assert set(result.translations) == {"n=3->3x1", "size=1792x1024->16:9"}


async def test_stable_image_core_and_ultra_get_no_mode(make: MakeFn, bedrock_emulator: BedrockEmulator) -> None:
    adapter = make()
    for model in (CORE, ULTRA):
        await adapter.generate(ImageRequest(prompt="a fox", model=model, aspect_ratio="2:3"), target())
        assert bedrock_emulator.requests[-1].json == {"prompt": "a fox", "aspect_ratio": "2:3"}


# -- sizes and refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("1024x1024", (1024, 1024)),
        ("1000x1000", (1008, 1008)),
        ("2048x2048", (2032, 2032)),
        ("4096x512", (2880, 720)),
        ("300x300", (320, 320)),
    ],
)
def test_nova_sizes_are_multiples_of_16_within_its_pixel_and_ratio_limits(size: str, expected: tuple[int, int]) -> None:
    width, height = (int(side) for side in size.split("x"))
    chosen = NOVA_SIZE_RULE.nearest(width, height)
    assert chosen[0] % 16 == 0 and chosen[1] % 16 == 0
    assert chosen[0] * chosen[1] < 4_194_304 and max(chosen) <= 4 * min(chosen)
    assert chosen == expected


def test_titan_sizes_are_its_fixed_list() -> None:
    assert TITAN_SIZE_RULE.allows(1173, 640) and not TITAN_SIZE_RULE.allows(1024, 768)
    assert TITAN_SIZE_RULE.nearest(1024, 1792) == (768, 1408)


async def test_strict_mode_refuses_a_size_the_model_does_not_make(make: MakeFn) -> None:
    refused = await fails(make(), ImageRequest(prompt="a cat", model=TITAN, size="1000x1000"), target(strict=True))
    assert refused.kind is ErrorKind.BAD_REQUEST and refused.param == "size"


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="a cat", model=NOVA, user="u1"), "user"),
        (ImageRequest(prompt="a cat", model=NOVA, background="transparent"), "background"),
        (ImageRequest(prompt="a cat", model=NOVA, style="vivid"), "style"),
        (ImageRequest(prompt="a cat", model=NOVA, aspect_ratio="16:9"), "aspect_ratio"),
        (ImageRequest(prompt="a cat", model=NOVA, seed=900_000_000), "seed"),
        (ImageRequest(prompt="a cat", model=NOVA, cfg_scale=12.0), "cfg_scale"),
        (ImageRequest(prompt="a cat", model=NOVA, output_format="jpeg"), "output_format"),
        (ImageRequest(prompt="a cat", model=NOVA, n=6), "n"),
        (ImageRequest(prompt="x" * 1025, model=NOVA), "prompt"),
        (ImageRequest(prompt="x" * 513, model=TITAN), "prompt"),
        (ImageRequest(prompt="a cat", model=SD35, cfg_scale=5.0), "cfg_scale"),
        (ImageRequest(prompt="a cat", model=SD35, quality="hd"), "quality"),
        (ImageRequest(prompt="a cat", model=CORE, style_preset="anime"), "style_preset"),
        (ImageRequest(prompt="a cat", model=CORE, aspect_ratio="7:3"), "aspect_ratio"),
        (ImageRequest(prompt="a cat", model="amazon.titan-image-generator-v1"), "model"),
    ],
)
async def test_parameters_a_model_lacks_are_refused_by_name_before_any_call(
    make: MakeFn, bedrock_emulator: BedrockEmulator, request_: ImageRequest, param: str
) -> None:
    refused = await fails(make(), request_, target())
    assert (refused.kind, refused.status_code, refused.param) == (ErrorKind.BAD_REQUEST, 400, param)
    assert not bedrock_emulator.requests


# -- authentication, as the emulator checks it ----------------------------------------------------


async def test_a_wrong_secret_key_fails_the_signature_check_as_an_auth_failure(make: MakeFn) -> None:
    wrong = key_pair(aws_secret_access_key="not/the+right-secret-0123456789")
    error = await fails(make(), ImageRequest(prompt="a cat"), target(wrong))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.AUTHENTICATION, 401, "InvalidSignatureException")
    assert "not/the+right-secret-0123456789" not in str(error)


async def test_an_unknown_access_key_id_and_a_wrong_region_are_auth_failures(make: MakeFn) -> None:
    unknown = await fails(
        make(), ImageRequest(prompt="a cat"), target(key_pair(aws_access_key_id="AKIAUNKNOWN000000001"))
    )
    assert (unknown.kind, unknown.code) == (ErrorKind.AUTHENTICATION, "UnrecognizedClientException")
    elsewhere = await fails(make(), ImageRequest(prompt="a cat"), target(key_pair(aws_region="eu-west-1")))
    assert (elsewhere.kind, elsewhere.code) == (ErrorKind.AUTHENTICATION, "InvalidSignatureException")


async def test_an_expired_session_token_is_an_auth_failure(make: MakeFn, bedrock_emulator: BedrockEmulator) -> None:
    bedrock_emulator.expire_session_token(BEDROCK_SESSION_TOKEN)
    error = await fails(make(), ImageRequest(prompt="a cat"), target(temporary()))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.AUTHENTICATION, 401, "ExpiredTokenException")
    assert EXPIRED_TOKEN_MESSAGE in str(error)


async def test_a_wrong_api_key_is_an_auth_failure_and_is_not_echoed(make: MakeFn) -> None:
    wrong = SCHEMA.parse({"api_key": "ABSK-wrong-key-0123456789", "aws_region": BEDROCK_REGION}, provider="bedrock")
    error = await fails(make(), ImageRequest(prompt="a cat"), target(wrong))
    assert error.kind is ErrorKind.AUTHENTICATION and "ABSK-wrong-key-0123456789" not in str(error)


async def test_the_emulator_refuses_a_request_without_authentication(bedrock_emulator: BedrockEmulator) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{bedrock_emulator.base_url}/model/{NOVA}/invoke", json={"taskType": "TEXT_IMAGE"})
    assert answer.status_code == 403
    assert answer.headers["x-amzn-errortype"].startswith("MissingAuthenticationTokenException")


async def test_a_body_changed_after_signing_fails_the_signature_check(bedrock_emulator: BedrockEmulator) -> None:
    import httpx

    url = f"{bedrock_emulator.base_url}/model/amazon.nova-canvas-v1%3A0/invoke"
    signed = BedrockAuth().headers(key_pair(), url, b'{"taskType":"TEXT_IMAGE"}')
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, content=b'{"taskType":"TEXT_IMAGE" }', headers=signed)
    assert answer.status_code == 403 and answer.json()["message"].startswith("The request signature we calculated")


# -- content filters and errors -------------------------------------------------------------------


async def test_novas_blocked_content_validation_exception_is_a_content_policy_failure(
    make: MakeFn, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.inject(Fault.content_filter())
    error = await fails(make(), ImageRequest(prompt="a cat", model=NOVA), target())
    assert (error.kind, error.status_code, error.code) == (ErrorKind.CONTENT_POLICY, 400, "content_policy_violation")


async def test_every_image_blocked_in_a_200_is_a_content_policy_failure(
    make: MakeFn, bedrock_emulator: BedrockEmulator
) -> None:
    bedrock_emulator.inject(Fault.moderation_denied())
    error = await fails(make(), ImageRequest(prompt="a cat", model=TITAN, n=2), target())
    assert error.kind is ErrorKind.CONTENT_POLICY


async def test_some_images_blocked_serves_the_rest(
    make: MakeFn, bedrock_emulator: BedrockEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    import base64

    from tests.emulators.images import solid_image

    image = base64.b64encode(solid_image(1024, 1024)).decode()
    some = "Some of the generated images have been blocked by our content filters."
    bedrock_emulator.inject(Fault.status(200, {"images": [image], "error": some}))
    result = await make().generate(ImageRequest(prompt="a cat", model=NOVA, n=3), target())
    assert len(result.images) == 1
    assert "1 of 3 images" in caplog.text


@pytest.mark.parametrize("fault", [Fault.content_filter(), Fault.moderation_denied()])
async def test_stabilitys_filter_reasons_are_content_policy_failures_and_no_image_is_kept(
    make: MakeFn, bedrock_emulator: BedrockEmulator, fault: Fault
) -> None:
    bedrock_emulator.inject(fault)
    error = await fails(make(), ImageRequest(prompt="a cat", model=ULTRA, n=2), target())
    assert error.kind is ErrorKind.CONTENT_POLICY


@pytest.mark.parametrize(
    ("fault", "kind", "status", "code"),
    [
        (Fault.rate_limited(), ErrorKind.RATE_LIMITED, 429, "ThrottlingException"),
        (Fault.status(503), ErrorKind.UNAVAILABLE, 503, "ServiceUnavailableException"),
        (Fault.status(408), ErrorKind.TIMEOUT, 408, "ModelTimeoutException"),
        (Fault.status(403), ErrorKind.PERMISSION_DENIED, 403, "AccessDeniedException"),
        (Fault.status(424), ErrorKind.UNAVAILABLE, 502, "ModelErrorException"),
        (Fault.status(500), ErrorKind.UNAVAILABLE, 500, "InternalServerException"),
        (Fault.status(400), ErrorKind.BAD_REQUEST, 400, "ValidationException"),
        (
            Fault.status(403, {"message": EXPIRED_TOKEN_MESSAGE}, {"x-amzn-ErrorType": "ExpiredTokenException"}),
            ErrorKind.AUTHENTICATION,
            401,
            "ExpiredTokenException",
        ),
    ],
)
async def test_aws_error_types_are_classified(
    make: MakeFn, bedrock_emulator: BedrockEmulator, fault: Fault, kind: ErrorKind, status: int, code: str
) -> None:
    bedrock_emulator.inject(fault)
    error = await fails(make(), ImageRequest(prompt="a cat"), target())
    assert (error.kind, error.status_code, error.code) == (kind, status, code)


def test_the_error_type_is_read_from_the_body_when_the_header_is_missing() -> None:
    from multidict import CIMultiDict, CIMultiDictProxy

    body = b'{"__type": "com.amazon.coral.service#ThrottlingException", "message": "slow down"}'
    response = UpstreamResponse(429, CIMultiDictProxy(CIMultiDict()), body)
    error = classify_error(response, secret=())
    assert (error.kind, error.code) == (ErrorKind.RATE_LIMITED, "ThrottlingException")


async def test_a_broken_answer_is_an_upstream_bug(make: MakeFn, bedrock_emulator: BedrockEmulator) -> None:
    bedrock_emulator.inject(Fault.malformed())
    error = await fails(make(), ImageRequest(prompt="a cat"), target())
    assert error.kind is ErrorKind.UPSTREAM_BUG


# -- the credential -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"aws_access_key_id": BEDROCK_ACCESS_KEY_ID, "aws_secret_access_key": "s"}, "aws_region"),
        ({"aws_secret_access_key": "s", "aws_region": "us-east-1"}, "aws_access_key_id"),
        ({"aws_access_key_id": BEDROCK_ACCESS_KEY_ID, "aws_region": "us-east-1"}, "api_key"),
        ({"api_key": "k", "aws_secret_access_key": "s", "aws_region": "us-east-1"}, "aws_secret_access_key"),
        ({"api_key": "k", "aws_session_token": "t", "aws_region": "us-east-1"}, "aws_access_key_id"),
        ({"api_key": "k", "aws_region": "us-east-42"}, "aws_region"),
        ({"api_key": "k", "aws_region": "us-east-1", "resource_name": "r"}, "resource_name"),
        (
            {"aws_access_key_id": "akia-lower", "aws_secret_access_key": "s", "aws_region": "us-east-1"},
            "aws_access_key_id",
        ),
    ],
)
def test_a_bad_credential_is_refused_naming_the_field(fields: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        SCHEMA.parse(fields, provider="bedrock", param_prefix="targets[0]")
    assert caught.value.param == f"targets[0].{param}"
    assert "s" not in {caught.value.message} and "akia-lower" not in caught.value.message


def test_the_secret_fields_are_sealed_and_the_key_id_and_region_readable() -> None:
    credential = temporary()
    assert set(credential.secret_fields()) == {"aws_secret_access_key", "aws_session_token"}
    assert dict(credential.public_fields()) == {
        "aws_access_key_id": BEDROCK_TEMP_ACCESS_KEY_ID,
        "aws_region": BEDROCK_REGION,
    }
    assert BEDROCK_SESSION_TOKEN not in repr(credential) and BEDROCK_TEMP_SECRET_ACCESS_KEY not in repr(credential)


def test_one_signer_is_kept_per_credential() -> None:
    auth = BedrockAuth(max_signers=2)
    url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/invoke"
    first = auth.headers(key_pair(), url, b"{}")
    assert auth._signer(key_pair()) is auth._signer(key_pair())
    for region in ("eu-west-1", "eu-west-2", "eu-west-3"):
        auth.headers(key_pair(aws_region=region), url, b"{}")
    assert len(auth._signers) == 2
    assert first["Authorization"].startswith("AWS4-HMAC-SHA256 ")


async def test_concurrent_calls_of_two_accounts_are_each_signed_with_their_own_keys(
    make: MakeFn, bedrock_emulator: BedrockEmulator
) -> None:
    adapter = make()
    results = await asyncio.gather(
        *(adapter.generate(ImageRequest(prompt="a cat"), target(c)) for c in (key_pair(), temporary()) * 3)
    )
    assert all(len(result.images) == 1 for result in results)
    assert len(bedrock_emulator.requests) == 6


def test_breaker_and_cache_identity_tell_key_pairs_and_regions_apart_without_a_secret() -> None:
    from imagegateway_server.routing.cache_key import credential_identity
    from imagegateway_server.state.breakers import TargetIdentity

    east = TargetIdentity.of("bedrock", None, key_pair(), NOVA)
    west = TargetIdentity.of("bedrock", None, key_pair(aws_region="us-west-2"), NOVA)
    other = TargetIdentity.of("bedrock", None, temporary(), NOVA)
    assert len({east.key_fingerprint, west.key_fingerprint, other.key_fingerprint}) == 3
    assert east == TargetIdentity.of("bedrock", None, key_pair(), NOVA)
    for identity in (repr(east), repr(other), credential_identity(temporary())):
        assert all(secret not in identity for secret in BEDROCK_SECRETS)
