"""The Recraft adapter over real sockets: sizes per model, style before V4, URLs, plain-text 401, errors.

The Recraft emulator validates sizes, styles and fields per model as Recraft documents.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.recraft.adapter import RecraftAdapter
from imagegateway_server.providers.registry import canonical_provider
from tests.adapter_failures import generate_fails
from tests.credentials import api_key
from tests.emulators import Fault, RecraftEmulator
from tests.model_host_emulators import RECRAFT_SECRET, Hosts, host_emulators, hosts

__all__ = ["host_emulators", "hosts"]

TARGET = UpstreamTarget(credential=api_key(RECRAFT_SECRET, "recraft-ai"))


@pytest.fixture
def emu(hosts: Hosts) -> RecraftEmulator:
    return hosts.recraft


@pytest.fixture
async def recraft(emu: RecraftEmulator) -> AsyncIterator[RecraftAdapter]:
    adapter = RecraftAdapter(base_url=emu.base_url)
    yield adapter
    await adapter.aclose()


async def fails(adapter: RecraftAdapter, request: ImageRequest, target: UpstreamTarget = TARGET) -> ProviderError:
    return await generate_fails(adapter, request, target)


def test_portkeys_spelling_resolves() -> None:
    assert {canonical_provider(n) for n in ("recraft-ai", "recraft")} == {"recraft-ai"}


async def test_the_default_model_takes_a_size_from_its_list(recraft: RecraftAdapter, emu: RecraftEmulator) -> None:
    result = await recraft.generate(ImageRequest(prompt="a fox", size="1792x1024", n=2), TARGET)
    sent = emu.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {RECRAFT_SECRET}"
    assert sent.json == {
        "prompt": "a fox",
        "model": "recraftv4_1",
        "n": 2,
        "size": "1344x768",
        "response_format": "b64_json",
    }
    assert result.translations == ("size=1792x1024->1344x768",)
    assert [image.size for image in result.images] == ["1344x768", "1344x768"]
    assert result.images[0].provider == "recraft-ai" and result.images[0].model == "recraftv4_1"


async def test_v3_takes_style_and_negative_prompt(recraft: RecraftAdapter, emu: RecraftEmulator) -> None:
    request = ImageRequest(prompt="a fox", model="recraftv3", style="digital_illustration", negative_prompt="text")
    await recraft.generate(request, TARGET)
    sent = emu.requests[-1].json
    assert sent is not None and (sent["style"], sent["negative_prompt"]) == ("digital_illustration", "text")


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", style="digital_illustration"), "style"),  # V4 has no style
        (ImageRequest(prompt="x", model="recraftv3", style="vivid"), "style"),
        (ImageRequest(prompt="x", quality="hd"), "quality"),
        (ImageRequest(prompt="x", seed=3), "seed"),
        (ImageRequest(prompt="x", n=7), "n"),
        (ImageRequest(prompt="x", model="recraftv4_vector"), "model"),
    ],
)
async def test_what_recraft_cannot_take_is_refused_before_any_call(
    recraft: RecraftAdapter, emu: RecraftEmulator, request_: ImageRequest, param: str
) -> None:
    error = await fails(recraft, request_)
    assert (error.kind, error.param) == (ErrorKind.BAD_REQUEST, param)
    assert emu.requests == []


async def test_urls_that_expire_are_handed_on_when_wanted(recraft: RecraftAdapter, emu: RecraftEmulator) -> None:
    result = await recraft.generate(ImageRequest(prompt="x", response_format=ResponseFormat.URL), TARGET)
    assert emu.requests[-1].json is not None and emu.requests[-1].json["response_format"] == "url"
    assert result.images[0].url and result.images[0].data is None and result.images[0].size == "1024x1024"


async def test_a_plain_text_401_is_authentication(recraft: RecraftAdapter) -> None:
    wrong = "recraft-wrong-token-9876543210"
    error = await fails(recraft, ImageRequest(prompt="x"), UpstreamTarget(credential=api_key(wrong, "recraft-ai")))
    assert (error.kind, error.status_code) == (ErrorKind.AUTHENTICATION, 401)
    assert "Unauthorized" in error.message and wrong not in error.message


async def test_moderation_is_a_content_policy_failure(recraft: RecraftAdapter, emu: RecraftEmulator) -> None:
    emu.inject(Fault.content_filter())
    error = await fails(recraft, ImageRequest(prompt="x"))
    assert (error.kind, error.code) == (ErrorKind.CONTENT_POLICY, "nsfw_content")


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (Fault.rate_limited(), ErrorKind.RATE_LIMITED),
        (Fault.status(500), ErrorKind.UNAVAILABLE),
        (Fault.malformed(), ErrorKind.UPSTREAM_BUG),
        (Fault.status(400, {"code": "invalid_size", "message": "size is bad"}), ErrorKind.BAD_REQUEST),
    ],
)
async def test_faults_are_classified(
    recraft: RecraftAdapter, emu: RecraftEmulator, fault: Fault, kind: ErrorKind
) -> None:
    emu.inject(fault)
    assert (await fails(recraft, ImageRequest(prompt="x"))).kind is kind
