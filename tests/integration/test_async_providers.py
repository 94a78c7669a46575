"""The asynchronous providers (Black Forest Labs, fal) through the gateway, over real sockets.

The session's gateway (127.0.0.1 on its allow list) talks to the BFL and fal emulators, whose
results come from a second port each (their delivery hosts), and to the OpenAI emulator. Each
job's polls are one attempt in the log, with its poll count and the time it waited.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest

from imagegateway import FinalImage, GenerationEvent, ImageGatewayClient, ImageGatewayError, Progress
from imagegateway.v1 import logs_pb2
from imagegateway_server.cli import main as cli_main
from tests.conftest import OPENAI_SECRET, Emulators, eventually
from tests.emulators import BFLEmulator, FalEmulator, JobFault
from tests.gateway_sdk import HTTP_TIMEOUT, sdk
from tests.harness import GatewayThread

BFL_SECRET = "bfl-test-key-0123456789abcdef"
FAL_SECRET = "fal-test-key-0123456789:abcdef"
# The gateway's promise: a caller's deadline is kept to within 100 ms.
DEADLINE_SLACK_MS = 100


@pytest.fixture(scope="module")
def bfl() -> Iterator[BFLEmulator]:
    with BFLEmulator.running_in_thread(api_key=BFL_SECRET, job_seconds=0.3) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def fal() -> Iterator[FalEmulator]:
    with FalEmulator.running_in_thread(api_key=FAL_SECRET, job_seconds=0.3) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean(bfl: BFLEmulator, fal: FalEmulator, emulators: Emulators) -> Iterator[None]:
    bfl.reset()
    fal.reset()
    yield
    bfl.reset()
    fal.reset()


@pytest.fixture(scope="module")
def generate_key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"async-{uuid.uuid4().hex[:6]}", "generate").key


def bfl_target(bfl: BFLEmulator, **fields: Any) -> dict[str, Any]:
    return {"provider": "bfl", "api_key": BFL_SECRET, "custom_host": bfl.base_url, **fields}


def fal_target(fal: FalEmulator, **fields: Any) -> dict[str, Any]:
    return {"provider": "fal", "api_key": FAL_SECRET, "custom_host": fal.base_url, **fields}


def openai_target(emulators: Emulators) -> dict[str, Any]:
    return {
        "provider": "openai",
        "api_key": OPENAI_SECRET,
        "custom_host": emulators.openai.base_url,
        "override_params": {"model": "dall-e-3"},
    }


def fallback(*targets: dict[str, Any]) -> dict[str, Any]:
    return {"strategy": {"mode": "fallback"}, "targets": list(targets)}


def logged(admin: ImageGatewayClient, log_id: str) -> logs_pb2.RequestLog:
    return eventually(lambda: _get_log(admin, log_id))


def _get_log(admin: ImageGatewayClient, log_id: str) -> logs_pb2.RequestLog | None:
    try:
        return admin.get_log(log_id)
    except ImageGatewayError:
        return None


def test_a_moderated_flux_task_falls_back_to_openai_through_the_openai_sdk_and_its_polls_are_logged(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, bfl: BFLEmulator, emulators: Emulators
) -> None:
    bfl.fail_next_jobs(JobFault.CONTENT_MODERATED)
    config = json.dumps(fallback(bfl_target(bfl, override_params={"model": "flux-2-pro"}), openai_target(emulators)))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        raw = client.images.with_raw_response.generate(prompt="a lighthouse", response_format="b64_json")
    result = raw.parse()
    assert result.data and result.data[0].b64_json
    assert raw.headers["x-portkey-last-used-option-index"] == "config.targets[1]"
    record = logged(admin, raw.headers["x-imagegw-log-id"])
    first, second = record.attempts
    assert (first.provider, first.status_code, first.error_kind) == ("black-forest-labs", 400, 5)
    assert first.poll_count >= 1 and first.poll_wait_ms >= 300
    assert first.poll_count == bfl.jobs[0].polls
    assert (second.provider, second.poll_count, second.poll_wait_ms) == ("openai", 0, 0)
    assert not bfl.delivery.requests


def test_a_flux_task_serves_the_sdk_and_the_key_never_reaches_the_delivery_host(
    gateway: GatewayThread, generate_key: str, bfl: BFLEmulator
) -> None:
    headers = {"x-portkey-provider": "bfl", "x-portkey-custom-host": bfl.base_url}
    with openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key=BFL_SECRET,  # a bare provider: Authorization carries the provider's key
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": generate_key, **headers},
    ) as client:
        raw = client.images.with_raw_response.generate(
            prompt="a lighthouse", model="flux-pro-1.1", size="1792x1024", n=2, response_format="b64_json"
        )
    assert len(raw.parse().data or []) == 2
    assert raw.headers["x-imagegw-translated"] == "n=2->2x1, size=1792x1024->1344x768"
    assert all(r.headers["x-key"] == BFL_SECRET for r in bfl.requests)
    assert len(bfl.delivery.requests) == 2
    for request in bfl.delivery.requests:
        assert BFL_SECRET not in json.dumps(request.headers)


def test_a_task_that_never_finishes_falls_back_when_its_request_timeout_passes_over_grpc(
    admin: ImageGatewayClient, bfl: BFLEmulator, emulators: Emulators
) -> None:
    bfl.fail_next_jobs(JobFault.NEVER_FINISHES)
    config = fallback(bfl_target(bfl, request_timeout=800), openai_target(emulators))
    response = admin.generate_image(prompt="a lighthouse", config=config)
    assert response.images[0].provider == "openai"
    first, second = response.outcome.attempts
    assert (first.provider, first.status_code) == ("black-forest-labs", 408)
    assert 790 <= first.latency_ms <= 800 + DEADLINE_SLACK_MS  # uvloop timers are millisecond-coarse
    assert first.poll_count >= 1 and first.poll_wait_ms >= 700
    assert second.provider == "openai" and second.status_code == 200


def test_the_callers_deadline_cuts_a_job_that_never_finishes_within_100_ms(
    gateway: GatewayThread, admin: ImageGatewayClient, generate_key: str, bfl: BFLEmulator
) -> None:
    bfl.fail_next_jobs(JobFault.NEVER_FINISHES)
    config = json.dumps(bfl_target(bfl))
    started = time.monotonic()
    response = httpx.post(
        f"{gateway.rest_base_url}/images/generations",
        json={"prompt": "a lighthouse", "model": "flux-2-pro"},
        headers={"x-portkey-api-key": generate_key, "x-portkey-config": config, "x-portkey-request-timeout": "1000"},
        timeout=HTTP_TIMEOUT,
    )
    answered = time.monotonic()
    assert response.status_code == 504
    (failed,) = response.json()["error"]["attempts"]
    assert failed["provider"] == "black-forest-labs" and failed["poll_count"] >= 1 and failed["poll_wait_ms"] >= 900
    record = logged(admin, response.headers["x-imagegw-log-id"])
    assert 990 <= record.latency_ms <= 1000 + DEADLINE_SLACK_MS
    (attempt,) = record.attempts
    assert attempt.poll_count >= 1 and attempt.poll_count == bfl.jobs[0].polls
    polls = len(bfl.requests)
    time.sleep(0.5)
    assert len(bfl.requests) == polls, "polling went on after the deadline"
    assert answered - started < 1.0 + 0.5  # the client saw it too (generously: the suite runs under load)


def test_a_fal_request_is_cancelled_on_the_queue_when_the_grpc_callers_deadline_passes(
    admin: ImageGatewayClient, fal: FalEmulator
) -> None:
    fal.fail_next_jobs(JobFault.NEVER_FINISHES)
    with pytest.raises(ImageGatewayError) as raised:
        admin.generate_image(prompt="a lighthouse", config=fal_target(fal), timeout=1.0)
    assert raised.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
    job_id = eventually(lambda: fal.jobs and fal.jobs[0].id)
    eventually(lambda: job_id in fal.cancellations)
    (cancel,) = [r for r in fal.requests if r.method == "PUT"]
    assert cancel.headers["authorization"] == f"Key {FAL_SECRET}"


def test_fal_serves_over_grpc_with_the_images_fetched_from_its_media_host(
    admin: ImageGatewayClient, fal: FalEmulator
) -> None:
    response = admin.generate_image(prompt="a lighthouse", n=2, size="1024x1024", config=fal_target(fal))
    assert [image.provider for image in response.images] == ["fal-ai", "fal-ai"]
    assert response.images[0].data.startswith(b"\xff\xd8\xff")
    (attempt,) = response.outcome.attempts
    assert attempt.poll_count >= 1 and attempt.poll_wait_ms >= 300
    assert len(fal.delivery.requests) == 2
    assert all("authorization" not in r.headers for r in fal.delivery.requests)


@pytest.mark.parametrize("fault", [JobFault.POLLING_URL_ELSEWHERE, JobFault.RESULT_URL_ELSEWHERE])
def test_a_job_url_pointing_elsewhere_is_refused_and_the_chain_moves_on(
    admin: ImageGatewayClient, bfl: BFLEmulator, emulators: Emulators, fault: JobFault
) -> None:
    bfl.fail_next_jobs(fault)
    response = admin.generate_image(prompt="a lighthouse", config=fallback(bfl_target(bfl), openai_target(emulators)))
    assert response.images[0].provider == "openai"
    first = response.outcome.attempts[0]
    assert first.status_code == 502 and "images.attacker.example" in first.error
    assert "it was not fetched" in first.error and BFL_SECRET not in first.error
    assert not bfl.delivery.requests
    if fault is JobFault.POLLING_URL_ELSEWHERE:
        assert [r.method for r in bfl.requests] == ["POST"]


def test_a_caller_asking_for_urls_gets_the_signed_delivery_url(
    gateway: GatewayThread, generate_key: str, bfl: BFLEmulator
) -> None:
    config = json.dumps(bfl_target(bfl))
    with sdk(gateway, generate_key, **{"x-portkey-config": config}) as client:
        result = client.images.generate(prompt="a lighthouse", response_format="url")
    assert result.data and (result.data[0].url or "").startswith(bfl.delivery.origin)
    assert not bfl.delivery.requests
    fetched = httpx.get(result.data[0].url or "", timeout=HTTP_TIMEOUT)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\xff\xd8\xff")


def test_the_grpc_stream_reports_progress_before_the_images(
    admin: ImageGatewayClient, bfl: BFLEmulator, fal: FalEmulator, emulators: Emulators
) -> None:
    bfl.fail_next_jobs(JobFault.CONTENT_MODERATED)
    fal.job_seconds = 1.0
    try:
        config = fallback(bfl_target(bfl), fal_target(fal))
        events = list(admin.generate_events(prompt="a lighthouse", config=config))
    finally:
        fal.job_seconds = 0.3
    steps = [e for e in events if isinstance(e, Progress)]
    images = [e for e in events if isinstance(e, FinalImage)]
    assert len(images) == 1 and images[0].image.provider == "fal-ai" and images[0].outcome is not None
    assert events[-1] is images[-1]  # progress comes first, the images last
    kinds = [step.kind for step in steps]
    assert kinds[0] == "attempt_started" and steps[0].provider == "black-forest-labs"
    failed = kinds.index("attempt_failed")
    assert "running" in kinds[:failed] and steps[failed].error_kind == "content_policy"
    assert kinds[failed + 1] == "fallback" and steps[failed + 1].next_target == "config.targets[1]"
    assert kinds[failed + 2] == "attempt_started" and steps[failed + 2].provider == "fal-ai"
    queued = [step for step in steps if step.kind == "queued"]
    assert queued and all(step.queue_position is not None for step in queued)
    polls = [step.poll_count for step in steps[failed + 2 :] if step.poll_count]
    assert polls == sorted(polls) and polls[-1] == images[0].outcome.attempts[-1].poll_count


def test_without_progress_the_stream_carries_only_images(admin: ImageGatewayClient, bfl: BFLEmulator) -> None:
    messages = list(admin.stream_generate_image(prompt="a lighthouse", config=bfl_target(bfl)))
    assert [m.HasField("image") for m in messages] == [True] and not messages[0].HasField("progress")


def test_a_failed_request_still_ends_with_its_error_after_its_progress(
    admin: ImageGatewayClient, bfl: BFLEmulator
) -> None:
    bfl.fail_next_jobs(JobFault.REQUEST_MODERATED)
    seen: list[GenerationEvent] = []
    with pytest.raises(ImageGatewayError) as raised:
        for event in admin.generate_events(prompt="a lighthouse", config=bfl_target(bfl)):
            seen.append(event)
    assert raised.value.code is grpc.StatusCode.INVALID_ARGUMENT  # content policy
    last = seen[-1]
    assert isinstance(last, Progress) and last.kind == "attempt_failed"
    assert raised.value.attempts and raised.value.attempts[0].poll_count >= 1


def test_imagegw_generate_shows_the_progress_of_a_fallback(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    bfl: BFLEmulator,
    emulators: Emulators,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bfl.fail_next_jobs(JobFault.REQUEST_MODERATED)
    config = admin.create_config(f"flux-{uuid.uuid4().hex[:6]}", fallback(bfl_target(bfl), openai_target(emulators)))
    base = ["--server", gateway.grpc_target, "--api-key", gateway.admin_key]
    out = tmp_path / "image.png"
    assert cli_main([*base, "generate", "--prompt", "a lighthouse", "--config", config.id, "--out", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    progress = capsys.readouterr().err.splitlines()  # not a terminal here: plain lines
    assert progress[0].endswith("calling black-forest-labs flux-2-pro (config.targets[0])")
    assert any("black-forest-labs flux-2-pro failed (content_policy)" in line for line in progress)
    assert progress[-1].endswith("calling openai dall-e-3 (config.targets[1])")
