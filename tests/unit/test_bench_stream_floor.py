"""The stream phase's floors (bench/stream_floor.py): both kinds answer over REST and gRPC through the
emulator, and the essential one refuses a wrong key, so `make bench` never times a path that fails."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import stream_first_image  # noqa: E402
from procs import EMULATOR_KEY, EmulatorControl, start_emulator, start_stream_floor  # noqa: E402
from stream_floor import ESSENTIAL_METHOD, FLOOR_KEY_HEADER, GRPC_METHOD  # noqa: E402


@pytest.fixture(scope="module")
def floor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    workdir = tmp_path_factory.mktemp("stream-floor")
    emulator = start_emulator(workdir)
    try:
        EmulatorControl(emulator.info["origin"]).every_request({**stream_first_image.emulator_fault(), "ms": 1.0})
        proc = start_stream_floor(workdir, emulator.info["origin"])
        try:
            yield proc.info
        finally:
            proc.stop()
    finally:
        emulator.stop()


def test_both_rest_paths_reach_the_first_partial_image(floor: dict[str, str]) -> None:
    with httpx.Client(timeout=30.0) as http:
        stack = stream_first_image._first_partial_over_http(
            http, floor["rest_url"], {"authorization": f"Bearer {EMULATOR_KEY}"}
        )
        essential = stream_first_image._first_partial_over_http(
            http, floor["essential_rest_url"], {FLOOR_KEY_HEADER: floor["key"]}
        )
    assert 0 < stack < 30 and 0 < essential < 30


def test_both_grpc_methods_answer_with_the_partial_image_first(floor: dict[str, str]) -> None:
    with grpc.insecure_channel(floor["grpc_target"]) as channel:
        stack = stream_first_image._first_partial_over_raw_grpc(
            channel.unary_stream(GRPC_METHOD), f"Bearer {EMULATOR_KEY}"
        )
        essential = stream_first_image._first_message_over_raw_grpc(
            channel.unary_stream(ESSENTIAL_METHOD), floor["key"]
        )
    assert 0 < stack < 30 and 0 < essential < 30


def test_the_essential_path_refuses_a_wrong_key(floor: dict[str, str]) -> None:
    with httpx.Client(timeout=30.0) as http:
        response = http.post(floor["essential_rest_url"], json={"prompt": "x"}, headers={FLOOR_KEY_HEADER: "wrong"})
    assert response.status_code == 500  # the bare ASGI app's error: no event was sent
