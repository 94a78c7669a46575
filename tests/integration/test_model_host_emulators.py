"""The model-host emulators over real sockets: they refuse what the real APIs refuse and answer their shapes.

These are the fakes the adapters are tested against, so each is checked on its own: auth, the body
rules the real API documents (Together's ``base64``, xAI's refusal of ``size``, Fireworks' 422 for an
extra field, Recraft's per-model sizes), answer shapes, the command line and the control API.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulators import Emulator, Fault, FireworksEmulator, RecraftEmulator, TogetherEmulator, XAIEmulator

KEY = "model-host-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SCHNELL = "black-forest-labs/FLUX.1-schnell"
FIREWORKS_SCHNELL = "/inference/v1/workflows/accounts/fireworks/models/flux-1-schnell-fp8/text_to_image"
REPO_ROOT = Path(__file__).resolve().parents[2]


async def started(emulator: Emulator) -> Emulator:
    await emulator.start()
    return emulator


@pytest.fixture
async def emus() -> AsyncIterator[dict[str, Any]]:
    running = {
        "together": await started(TogetherEmulator(api_key=KEY)),
        "fireworks": await started(FireworksEmulator(api_key=KEY)),
        "xai": await started(XAIEmulator(api_key=KEY)),
        "recraft": await started(RecraftEmulator(api_key=KEY)),
    }
    yield running
    for emulator in running.values():
        await emulator.stop()


async def post(emulator: Emulator, path: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=emulator.origin, timeout=10) as client:
        return await client.post(path, json=body, headers=AUTH if headers is None else headers)


async def test_together_takes_base64_and_refuses_openais_b64_json(emus: dict[str, Any]) -> None:
    together = emus["together"]
    ok = await post(together, "/v1/images/generations", {"prompt": "x", "model": SCHNELL, "response_format": "base64"})
    assert ok.status_code == 200
    item = ok.json()["data"][0]
    assert item["type"] == "b64_json" and base64.b64decode(item["b64_json"]).startswith(b"\xff\xd8\xff")
    refused = await post(
        together, "/v1/images/generations", {"prompt": "x", "model": SCHNELL, "response_format": "b64_json"}
    )
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "response_format"
    for body, param in (
        ({"prompt": "x", "model": SCHNELL, "size": "1024x1024"}, "size"),
        ({"prompt": "x", "model": SCHNELL, "width": 1000}, "width"),
        ({"prompt": "x", "model": "black-forest-labs/FLUX.1.1-pro", "width": 1792}, "width"),
        ({"prompt": "x", "model": SCHNELL, "n": 5}, "n"),
    ):
        answer = await post(together, "/v1/images/generations", body)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param
    assert (await post(together, "/v1/images/generations", {"prompt": "x", "model": SCHNELL}, {})).status_code == 401


async def test_fireworks_answers_raw_bytes_or_data_uris_and_refuses_extra_fields(emus: dict[str, Any]) -> None:
    fireworks = emus["fireworks"]
    raw = await post(
        fireworks, FIREWORKS_SCHNELL, {"prompt": "x", "aspect_ratio": "16:9"}, {**AUTH, "Accept": "image/jpeg"}
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/jpeg"
    assert raw.headers["finish-reason"] == "SUCCESS" and raw.content.startswith(b"\xff\xd8\xff")
    as_json = await post(fireworks, FIREWORKS_SCHNELL, {"prompt": "x"}, {**AUTH, "Accept": "application/json"})
    assert as_json.json()["base64"][0].startswith("data:image/png;base64,")
    extra = await post(fireworks, FIREWORKS_SCHNELL, {"prompt": "x", "negative_prompt": "y"})
    assert extra.status_code == 422 and extra.json()["detail"][0]["loc"] == ["body", "negative_prompt"]
    assert (await post(fireworks, FIREWORKS_SCHNELL, {"prompt": "x", "aspect_ratio": "7:3"})).status_code == 400
    missing = await post(fireworks, FIREWORKS_SCHNELL, {"prompt": "x"}, {})
    assert missing.status_code == 401 and "fault" in missing.json()
    kontext = "/inference/v1/workflows/accounts/fireworks/models/flux-kontext-pro/text_to_image"
    assert (await post(fireworks, kontext, {"prompt": "x"})).status_code == 404
    fireworks.inject(Fault.content_filter())
    filtered = await post(fireworks, FIREWORKS_SCHNELL, {"prompt": "x"})
    assert filtered.status_code == 200 and filtered.headers["finish-reason"] == "CONTENT_FILTERED"


async def test_xai_refuses_size_style_and_quality_and_a_wrong_key_with_400(emus: dict[str, Any]) -> None:
    xai = emus["xai"]
    for field, value in (("size", "1024x1024"), ("style", "vivid"), ("quality", "hd")):
        answer = await post(xai, "/v1/images/generations", {"prompt": "x", field: value})
        assert answer.status_code == 400 and answer.json()["error"] == f"Argument not supported: {field}"
    grok_2 = await post(xai, "/v1/images/generations", {"prompt": "x", "model": "grok-2-image", "aspect_ratio": "1:1"})
    assert grok_2.status_code == 400
    wrong = await post(xai, "/v1/images/generations", {"prompt": "x"}, {"Authorization": "Bearer xai-wrong-0000"})
    assert (
        wrong.status_code == 400
        and set(wrong.json()) == {"code", "error"}
        and "Incorrect API key" in wrong.json()["error"]
    )
    ok = await post(xai, "/v1/images/generations", {"prompt": "x", "n": 2, "aspect_ratio": "16:9", "resolution": "2k"})
    assert ok.status_code == 200 and len(ok.json()["data"]) == 2 and ok.json()["data"][0]["url"]


async def test_recraft_checks_sizes_per_model_and_answers_401_in_plain_text(emus: dict[str, Any]) -> None:
    recraft = emus["recraft"]
    assert (await post(recraft, "/v1/images/generations", {"prompt": "x", "size": "1344x768"})).status_code == 200
    assert (await post(recraft, "/v1/images/generations", {"prompt": "x", "size": "16:9"})).status_code == 200
    v3_size = await post(recraft, "/v1/images/generations", {"prompt": "x", "size": "1820x1024"})
    assert v3_size.status_code == 400 and v3_size.json()["code"] == "invalid_size"
    v4_style = await post(recraft, "/v1/images/generations", {"prompt": "x", "style": "icon"})
    assert v4_style.status_code == 400 and v4_style.json()["code"] == "style_not_supported"
    v3 = {"prompt": "x", "model": "recraftv3", "style": "icon", "size": "1820x1024", "response_format": "b64_json"}
    answer = await post(recraft, "/v1/images/generations", v3)
    assert answer.status_code == 200 and answer.json()["data"][0]["image_id"]
    unauthorized = await post(recraft, "/v1/images/generations", {"prompt": "x"}, {})
    assert (unauthorized.status_code, unauthorized.text) == (401, "Unauthorized")


@pytest.mark.parametrize("provider", ["together-ai", "fireworks-ai", "x-ai", "recraft-ai"])
async def test_each_runs_from_the_command_line_with_its_control_api(provider: str) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.emulators", provider, "--port", "0", "--api-key", KEY,
        cwd=REPO_ROOT, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        origin = line.strip().removeprefix("listening on ")
        async with httpx.AsyncClient(base_url=origin, timeout=10) as client:
            health = (await client.get("/_emulator/health")).json()
        assert health["provider"] == provider
    finally:
        process.terminate()
        await process.wait()
