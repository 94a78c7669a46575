"""`imagegw serve` on each event loop: uvloop by default, the standard loop with IMAGEGW_EVENT_LOOP=asyncio.

The rest of the suite runs on uvloop (the harness uses the production default); this proves the
standard loop still serves both ports and shuts down cleanly, and that the start log says which runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from imagegateway import ImageGatewayClient
from tests.conftest import Emulators
from tests.gateway_processes import ServeProcess

ADMIN_KEY = "igw_event_loop_admin_key_0123456789abcdefghijk"


def serving_line(stderr: str) -> dict[str, object]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    (serving,) = [line for line in lines if line.get("msg") == "imagegateway serving"]
    return serving


@pytest.mark.parametrize(("setting", "expected"), [(None, "uvloop"), ("asyncio", "asyncio")])
def test_serve_runs_on_the_chosen_loop_and_serves_both_ports(
    tmp_path: Path, emulators: Emulators, setting: str | None, expected: str
) -> None:
    served = ServeProcess(tmp_path / "data", ADMIN_KEY, {"IMAGEGW_EVENT_LOOP": setting} if setting else None)
    try:
        with ImageGatewayClient(f"127.0.0.1:{served.grpc_port}", api_key=ADMIN_KEY) as client:
            client.create_virtual_key(
                "loop-openai", "openai", "sk-test-openai-0123456789abcdef", base_url=emulators.openai.base_url
            )
            streamed = list(
                client.stream_generate_image(prompt="a loop", virtual_key="loop-openai", model="dall-e-2", n=2)
            )
            assert len(streamed) == 2
        response = httpx.post(
            f"http://127.0.0.1:{served.http_port}/v1/images/generations",
            headers={"x-portkey-api-key": ADMIN_KEY, "x-portkey-virtual-key": "loop-openai"},
            json={"prompt": "a loop", "model": "dall-e-2", "response_format": "b64_json"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"][0]["b64_json"]
    finally:
        code, stderr = served.stop()
    assert code == 0, stderr
    serving = serving_line(stderr)
    assert serving["event_loop"] == expected
    # Where the start's time went: the start itself, and the whole age of the process (imports included).
    assert 0 < serving["start_seconds"] <= serving["since_launch_seconds"]  # type: ignore[operator]
