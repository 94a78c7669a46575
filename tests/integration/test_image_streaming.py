"""Streamed image generation over real sockets: OpenAI's server-sent events through the REST shim,
StreamGenerateImage's progress and partial images over gRPC, and ``imagegw generate``'s status line.

The OpenAI SDK's ``images.generate(stream=True)`` iterates the gateway's events against the OpenAI and
Azure emulators: partial images pass through as the provider sends them, a fallback moves on only
before the first event reached the caller, a failure after it is OpenAI's error event (and the log
says the stream was cut), and a provider that cannot stream answers as one completed event only
when the caller sends ``x-imagegw-stream-fallback: complete``.
"""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from imagegateway import (
    AsyncImageGatewayClient,
    FinalImage,
    ImageGatewayClient,
    ImageGatewayError,
    InvalidArgumentError,
    PartialImage,
    Progress,
)
from imagegateway_server.cli import main as cli_main
from imagegateway_server.cli.status_line import StatusLine
from tests.conftest import AZURE_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread
from tests.image_fixtures import fallback, openai_target, stability_target

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTTP_TIMEOUT = 30.0


def sdk(gateway: GatewayThread, key: str, config: dict[str, Any], **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key, "x-portkey-config": json.dumps(config), **headers},
    )


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"stream-{uuid.uuid4().hex[:6]}", "generate").key


def logged(admin: ImageGatewayClient, trace_id: str) -> Any:
    return eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))


def test_the_sdk_iterates_partial_images_then_the_completed_event(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client:
        events = list(
            client.images.generate(
                prompt="an otter", model="gpt-image-1.5", stream=True, partial_images=2, size="1024x1024"
            )
        )
    assert [event.type for event in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    first, second, done = events
    assert (first.partial_image_index, second.partial_image_index) == (0, 1)  # type: ignore[union-attr]
    assert base64.b64decode(first.b64_json).startswith(PNG_SIGNATURE)
    assert (first.size, first.quality, first.background, first.output_format) == ("1024x1024", "high", "opaque", "png")
    assert first.created_at > 0
    assert base64.b64decode(done.b64_json).startswith(PNG_SIGNATURE)
    assert done.usage.output_tokens > 0 and done.usage.input_tokens_details.text_tokens > 0  # type: ignore[union-attr]
    sent = emulators.openai.requests[-1].json or {}
    assert sent["stream"] is True and sent["partial_images"] == 2


def test_a_fallback_moves_on_when_the_primary_fails_before_the_first_event(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    trace = f"stream-before-{uuid.uuid4().hex[:8]}"
    config = fallback(openai_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1-mini"}))
    with sdk(gateway, key, config, **{"x-portkey-trace-id": trace}) as client:
        events = list(client.images.generate(prompt="a kite", model="gpt-image-1.5", stream=True, partial_images=1))
    assert [event.type for event in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert [r.json["model"] for r in emulators.openai.requests if r.json] == ["gpt-image-1.5", "gpt-image-1-mini"]
    record = logged(admin, trace)
    assert record.fallback_used and [a.status_code for a in record.attempts] == [503, 200]
    assert all(a.stream_events == 0 for a in record.attempts)


@pytest.mark.parametrize("fault", [Fault.stream_reset(), Fault.stream_error()], ids=["reset", "error-event"])
def test_a_failure_after_the_first_event_ends_the_stream_with_an_error_event_and_no_fallback(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators, fault: Fault
) -> None:
    emulators.openai.inject(fault)
    trace = f"stream-cut-{uuid.uuid4().hex[:8]}"
    config = fallback(openai_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1-mini"}))
    seen: list[str] = []
    with sdk(gateway, key, config, **{"x-portkey-trace-id": trace}) as client:
        stream = client.images.generate(prompt="a kite", model="gpt-image-1.5", stream=True, partial_images=3)
        with pytest.raises(openai.APIError) as raised:
            for event in stream:
                seen.append(event.type)
    assert seen == ["image_generation.partial_image"]
    assert raised.value.body is not None and raised.value.code  # OpenAI's envelope: message, type, param, code
    assert len([r for r in emulators.openai.requests if r.json]) == 1  # no fallback once the caller had an event
    record = logged(admin, trace)
    assert not record.fallback_used and len(record.attempts) == 1
    assert record.attempts[0].stream_events == 1 and record.attempts[0].status_code >= 500


def test_a_stall_after_the_first_partial_image_reaches_the_caller_before_the_attempt_times_out(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.stream_stall())
    trace = f"stream-stall-{uuid.uuid4().hex[:8]}"
    with sdk(gateway, key, openai_target(emulators, request_timeout=1500), **{"x-portkey-trace-id": trace}) as client:
        started = time.monotonic()
        stream = client.images.generate(prompt="a kite", model="gpt-image-1.5", stream=True, partial_images=2)
        first = next(iter(stream))
        first_after = time.monotonic() - started
        with pytest.raises(openai.APIError):
            list(stream)
    assert first.type == "image_generation.partial_image"
    assert first_after < 1.5  # passed on as it arrived, not held back until the upstream ended
    record = logged(admin, trace)
    assert record.attempts[0].status_code == 408 and record.attempts[0].stream_events == 1


def test_the_final_image_before_every_requested_partial_is_passed_on_as_it_came(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    # partial_images=3 asked, yet a small image may complete first: OpenAI then sends fewer partials.
    with sdk(gateway, key, openai_target(emulators)) as client:
        events = list(client.images.generate(prompt="a dot", model="gpt-image-1.5", stream=True, partial_images=0))
    assert [event.type for event in events] == ["image_generation.completed"]


@pytest.mark.parametrize("value", [4, -1])
def test_partial_images_out_of_range_is_a_400_naming_it_before_any_call(
    gateway: GatewayThread, key: str, emulators: Emulators, value: int
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client, pytest.raises(openai.BadRequestError) as raised:
        list(client.images.generate(prompt="x", model="gpt-image-1.5", stream=True, partial_images=value))
    assert raised.value.param == "partial_images"
    assert not emulators.openai.requests


def test_stream_on_a_model_that_cannot_stream_is_a_400_naming_stream_before_any_call(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with sdk(gateway, key, openai_target(emulators)) as client, pytest.raises(openai.BadRequestError) as raised:
        list(client.images.generate(prompt="x", model="dall-e-3", stream=True))
    assert raised.value.param == "stream" and "x-imagegw-stream-fallback" in raised.value.message
    with sdk(gateway, key, stability_target(emulators)) as client, pytest.raises(openai.BadRequestError) as raised:
        list(client.images.generate(prompt="x", stream=True, partial_images=1))
    assert raised.value.param == "stream"
    assert not emulators.openai.requests and not emulators.stability.requests


def test_a_provider_that_cannot_stream_answers_as_one_completed_event_with_the_switch(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    trace = f"stream-complete-{uuid.uuid4().hex[:8]}"
    config = fallback(stability_target(emulators), openai_target(emulators))
    headers = {"x-imagegw-stream-fallback": "complete", "x-portkey-trace-id": trace}
    with sdk(gateway, key, config, **headers) as client:
        events = list(client.images.generate(prompt="a fox", stream=True, partial_images=2))
    assert [event.type for event in events] == ["image_generation.completed"]
    assert base64.b64decode(events[0].b64_json)[:4] in (
        PNG_SIGNATURE[:4],
        b"RIFF",
        b"\xff\xd8\xff\xe0"[:4],
        b"\xff\xd8\xff\xdb",
    )
    assert emulators.stability.requests and not emulators.openai.requests
    assert logged(admin, trace).attempts[0].provider == "stability-ai"


def test_without_the_switch_a_provider_that_cannot_stream_is_skipped_as_an_attempt(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    trace = f"stream-skip-{uuid.uuid4().hex[:8]}"
    config = fallback(stability_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1.5"}))
    with sdk(gateway, key, config, **{"x-portkey-trace-id": trace}) as client:
        events = list(client.images.generate(prompt="a fox", stream=True, partial_images=1))
    assert [event.type for event in events] == ["image_generation.partial_image", "image_generation.completed"]
    assert not emulators.stability.requests
    record = logged(admin, trace)
    assert [a.provider for a in record.attempts] == ["stability-ai", "openai"]
    assert record.attempts[0].status_code == 400 and "cannot stream" in record.attempts[0].error


def test_azure_streams_partial_images_as_openai_does(gateway: GatewayThread, key: str, emulators: Emulators) -> None:
    target = {
        "provider": "azure-openai",
        "api_key": AZURE_SECRET,
        "resource_name": "unused",
        "deployment_id": "gpt-image",
        "custom_host": emulators.azure.base_url,
    }
    with sdk(gateway, key, target) as client:
        events = list(client.images.generate(prompt="a bay", model="gpt-image-1", stream=True, partial_images=1))
    assert [event.type for event in events] == ["image_generation.partial_image", "image_generation.completed"]


def test_the_wire_is_openais_event_stream(gateway: GatewayThread, key: str, emulators: Emulators) -> None:
    headers = {"x-portkey-api-key": key, "x-portkey-config": json.dumps(openai_target(emulators))}
    body = {"prompt": "a dot", "model": "gpt-image-1.5", "stream": True, "partial_images": 1}
    response = httpx.post(
        f"{gateway.rest_base_url}/images/generations", json=body, headers=headers, timeout=HTTP_TIMEOUT
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    blocks = [block for block in response.text.split("\n\n") if block]
    names = [block.split("\n")[0] for block in blocks]
    assert names == ["event: image_generation.partial_image", "event: image_generation.completed"]
    for block in blocks:
        name, data = block.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


# -- gRPC: StreamGenerateImage's progress and partial images -----------------------------------------


def grpc_client(gateway: GatewayThread, key: str) -> ImageGatewayClient:
    return ImageGatewayClient(gateway.grpc_target, api_key=key)


def test_grpc_streams_progress_then_partial_images_then_the_images_in_order(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    config = fallback(openai_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1-mini"}))
    with grpc_client(gateway, key) as client:
        events = list(client.generate_events(prompt="a heron", model="gpt-image-1.5", config=config, partial_images=2))
    kinds = [type(e).__name__ + (f":{e.kind}" if isinstance(e, Progress) else "") for e in events]
    assert kinds == [
        "Progress:attempt_started",
        "Progress:attempt_failed",
        "Progress:fallback",
        "Progress:attempt_started",
        "PartialImage",
        "PartialImage",
        "FinalImage",
    ]
    first, failed, fell_back, second = events[0], events[1], events[2], events[3]
    assert isinstance(first, Progress) and (first.target, first.provider, first.model) == (
        "config.targets[0]",
        "openai",
        "gpt-image-1.5",
    )
    assert isinstance(failed, Progress) and failed.error_kind == "unavailable" and failed.error
    assert isinstance(fell_back, Progress) and fell_back.next_target == "config.targets[1]" and fell_back.error
    assert isinstance(second, Progress) and second.model == "gpt-image-1-mini"
    partials = [e for e in events if isinstance(e, PartialImage)]
    assert [p.index for p in partials] == [0, 1]
    assert partials[0].data.startswith(PNG_SIGNATURE) and partials[0].mime_type == "image/png"
    final = events[-1]
    assert isinstance(final, FinalImage) and final.last and final.outcome is not None
    assert final.outcome.fallback_used and final.image.data.startswith(PNG_SIGNATURE)


def test_grpc_without_partial_images_still_reports_progress_and_any_model_serves(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with grpc_client(gateway, key) as client:
        events = list(client.generate_events(prompt="a heron", model="dall-e-3", config=openai_target(emulators)))
    assert [type(e).__name__ for e in events] == ["Progress", "FinalImage"]
    assert "stream" not in (emulators.openai.requests[-1].json or {})


def test_grpc_partial_images_limits_and_the_stream_switch(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with grpc_client(gateway, key) as client:
        with pytest.raises(InvalidArgumentError) as raised:
            list(
                client.generate_events(
                    prompt="x", model="gpt-image-1.5", config=openai_target(emulators), partial_images=4
                )
            )
        assert "partial_images" in str(raised.value)
        with pytest.raises(InvalidArgumentError) as raised:
            list(
                client.generate_events(prompt="x", model="dall-e-3", config=openai_target(emulators), partial_images=1)
            )
        assert "stream" in str(raised.value)
        assert not emulators.openai.requests
        events = list(
            client.generate_events(
                prompt="x",
                model="dall-e-3",
                config=openai_target(emulators),
                partial_images=1,
                stream_fallback="complete",
            )
        )
    assert [type(e).__name__ for e in events] == ["Progress", "FinalImage"]


def test_unary_generate_image_builds_no_progress(gateway: GatewayThread, key: str, emulators: Emulators) -> None:
    with grpc_client(gateway, key) as client:
        response = client.generate_image(prompt="a heron", model="gpt-image-1.5", config=openai_target(emulators))
    assert response.images and "stream" not in (emulators.openai.requests[-1].json or {})


# -- the CLI's status line -----------------------------------------------------------------------------


def test_imagegw_generate_prints_plain_progress_lines_when_not_a_terminal(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    key: str,
    emulators: Emulators,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulators.openai.inject(Fault.status(503))
    config = fallback(openai_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1-mini"}))
    config_id = admin.create_config(f"stream-{uuid.uuid4().hex[:6]}", config).id
    out = tmp_path / "heron.png"
    capsys.readouterr()
    code = cli_main(
        [
            "generate",
            "--server",
            gateway.grpc_target,
            "--api-key",
            key,
            "--config",
            config_id,
            "--model",
            "gpt-image-1.5",
            "--prompt",
            "a heron",
            "--partial-images",
            "1",
            "--out",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0 and out.read_bytes().startswith(PNG_SIGNATURE)
    lines = captured.err.splitlines()
    words = [line.split("] ", 1)[1].split(" ")[0] for line in lines]
    assert words == ["calling", "openai", "falling", "calling", "partial"]
    assert all(line.startswith("[") and "s] " in line for line in lines) and "\r" not in captured.err
    assert "failed (unavailable)" in lines[1] and lines[2].endswith("to config.targets[1]")
    assert "openai" in captured.out  # the outcome, as before, on stdout


def test_the_status_line_is_rewritten_in_place_on_a_terminal() -> None:
    screen = io.StringIO()
    status = StatusLine(screen, live=True)
    status.report(Progress("queued", "config.targets[0]", "black-forest-labs", "flux-2-pro", queue_position=3))
    status.close()
    text = screen.getvalue()
    assert "\n" not in text and text.count("\r\x1b[K") >= 3
    assert "black-forest-labs flux-2-pro: queued, position 3 (0 polls)" in text
    assert text.endswith("\r\x1b[K")  # erased, so the outcome prints on a clean line


def test_grpc_a_failure_after_a_partial_image_ends_the_call_with_its_status_and_no_fallback(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.stream_reset())
    trace = f"grpc-cut-{uuid.uuid4().hex[:8]}"
    config = fallback(openai_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1-mini"}))
    seen: list[str] = []
    with grpc_client(gateway, key) as client, pytest.raises(ImageGatewayError):
        for event in client.generate_events(
            prompt="a heron", model="gpt-image-1.5", config=config, partial_images=2, trace_id=trace
        ):
            seen.append(type(event).__name__)
    assert seen == ["Progress", "PartialImage", "Progress"]  # started, a partial image, failed
    assert len([r for r in emulators.openai.requests if r.json]) == 1
    record = logged(admin, trace)
    assert [(a.stream_events, a.status_code) for a in record.attempts] == [(1, 502)]


def test_a_caller_that_leaves_mid_stream_is_logged_as_cancelled(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.stream_stall())
    trace = f"stream-left-{uuid.uuid4().hex[:8]}"
    with sdk(gateway, key, openai_target(emulators), **{"x-portkey-trace-id": trace}) as client:
        stream = client.images.generate(prompt="a kite", model="gpt-image-1.5", stream=True, partial_images=2)
        assert next(iter(stream)).type == "image_generation.partial_image"
        stream.close()
    record = logged(admin, trace)
    assert record.status_code == 499 and [a.status_code for a in record.attempts] == [499]


async def test_the_async_client_yields_the_same_typed_events(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    async with AsyncImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        kinds = [
            type(event).__name__
            async for event in client.generate_events(
                prompt="a heron", model="gpt-image-1.5", config=openai_target(emulators), partial_images=1
            )
        ]
    assert kinds == ["Progress", "PartialImage", "FinalImage"]
