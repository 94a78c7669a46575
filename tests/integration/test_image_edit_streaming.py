"""Streamed image edits over real sockets: OpenAI's ``image_edit.*`` events through the REST shim,
StreamEditImage over gRPC (stub, client, ``imagegw edit --partial-images``).

The OpenAI SDK's ``images.edit(stream=True)`` iterates the gateway's events against the OpenAI and
Azure emulators, through a saved fallback config whose primary fails: partial images pass through as
the provider sends them, a fallback moves on only before the first event reached the caller, a
failure after it is OpenAI's error event (the log's attempt says how many events the caller had),
and a target that cannot stream edits is skipped, or answers as one completed event when the caller
sends ``x-imagegw-stream-fallback: complete``. One log record per request, every attempt in it.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

import grpc
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
from imagegateway.v1 import images_pb2, service_pb2_grpc
from imagegateway_server.cli import main as cli_main
from tests.conftest import AZURE_SECRET, OPENAI_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread
from tests.image_fixtures import fallback, mask_png, openai_target, png, stability_target

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HTTP_TIMEOUT = 30.0
EDIT_EVENT_FIELDS = {"type", "b64_json", "created_at", "size", "quality", "background", "output_format"}


def failing_primary(emulators: Emulators) -> dict[str, Any]:
    """gpt-image-1.5, then gpt-image-2 when it fails."""
    return fallback(
        openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
        openai_target(emulators, override_params={"model": "gpt-image-2"}),
    )


def sdk(gateway: GatewayThread, key: str, config: str, **headers: str) -> openai.OpenAI:
    """The OpenAI SDK on the shim; ``config`` is a saved config's id or inline JSON."""
    return openai.OpenAI(
        base_url=gateway.rest_base_url,
        api_key="sk-unused-by-the-gateway",
        max_retries=0,
        timeout=HTTP_TIMEOUT,
        default_headers={"x-portkey-api-key": key, "x-portkey-config": config, **headers},
    )


@pytest.fixture(scope="module")
def key(admin: ImageGatewayClient) -> str:
    return admin.create_api_key(f"edit-stream-{uuid.uuid4().hex[:6]}", "generate").key


def saved(admin: ImageGatewayClient, config: dict[str, Any]) -> str:
    return admin.create_config(f"edit-stream-{uuid.uuid4().hex[:8]}", config).id


def logged(admin: ImageGatewayClient, trace_id: str) -> Any:
    return eventually(lambda: next(iter(admin.list_logs(trace_id=trace_id).logs), None))


def edit_calls(emulators: Emulators) -> list[Any]:
    return [r for r in emulators.openai.requests if r.path.endswith("/images/edits")]


def trace_header(name: str) -> dict[str, str]:
    return {"x-portkey-trace-id": f"{name}-{uuid.uuid4().hex[:8]}"}


# -- REST: the OpenAI SDK's images.edit(stream=True) ---------------------------------------------------


def test_the_sdk_iterates_edit_events_through_a_saved_config_whose_primary_fails(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(500))
    headers = trace_header("edit-stream")
    first, second, mask = png(64, 64), png(64, 64, (10, 200, 10)), mask_png(64, 64)
    with sdk(gateway, key, saved(admin, failing_primary(emulators)), **headers) as client:
        events = list(
            client.images.edit(
                image=[("a.png", first, "image/png"), ("b.png", second, "image/png")],
                mask=("m.png", mask, "image/png"),
                prompt="put a hat on the cat",
                stream=True,
                partial_images=2,
                size="1024x1024",
                quality="low",
            )
        )
    assert [event.type for event in events] == [
        "image_edit.partial_image",
        "image_edit.partial_image",
        "image_edit.completed",
    ]
    one, two, done = events
    assert isinstance(one, openai.types.ImageEditPartialImageEvent)
    assert isinstance(two, openai.types.ImageEditPartialImageEvent)
    assert isinstance(done, openai.types.ImageEditCompletedEvent)
    assert (one.partial_image_index, two.partial_image_index) == (0, 1)
    assert (one.size, one.quality, one.background, one.output_format) == ("1024x1024", "low", "opaque", "png")
    assert one.created_at > 0 and base64.b64decode(one.b64_json).startswith(PNG_SIGNATURE)
    assert base64.b64decode(done.b64_json).startswith(PNG_SIGNATURE)
    assert done.usage.input_tokens_details.image_tokens > 0 and done.usage.output_tokens > 0
    calls = edit_calls(emulators)
    assert [c.form["model"] for c in calls] == ["gpt-image-1.5", "gpt-image-2"]
    sent = calls[-1]
    assert sent.form["stream"] == "true" and sent.form["partial_images"] == "2"
    assert sent.headers.get("accept") == "text/event-stream"
    assert [name for name, _ in sent.file_parts] == ["image[]", "image[]", "mask"]
    record = logged(admin, headers["x-portkey-trace-id"])
    assert record.operation == "edit" and record.fallback_used
    assert [(a.status_code, a.stream_events) for a in record.attempts] == [(500, 0), (200, 0)]


def test_the_wire_is_openais_edit_event_stream_with_its_exact_fields(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    headers = {"x-portkey-api-key": key, "x-portkey-config": json.dumps(openai_target(emulators))}
    response = httpx.post(
        f"{gateway.rest_base_url}/images/edits",
        headers=headers,
        files=[("image", ("a.png", png(32, 32), "image/png"))],
        data={"prompt": "a dot", "model": "gpt-image-1.5", "stream": "true", "partial_images": "1"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    blocks = [block.split("\n") for block in response.text.split("\n\n") if block]
    assert [name for name, _ in blocks] == ["event: image_edit.partial_image", "event: image_edit.completed"]
    partial, completed = (json.loads(data.removeprefix("data: ")) for _, data in blocks)
    assert set(partial) == EDIT_EVENT_FIELDS | {"partial_image_index"}
    assert set(completed) == EDIT_EVENT_FIELDS | {"usage"}
    assert partial["type"] == "image_edit.partial_image" and completed["type"] == "image_edit.completed"
    assert set(completed["usage"]) >= {"input_tokens", "input_tokens_details", "output_tokens", "total_tokens"}


@pytest.mark.parametrize("fault", [Fault.stream_reset(), Fault.stream_error()], ids=["reset", "error-event"])
def test_a_failure_after_the_first_edit_event_is_an_error_event_and_no_fallback(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators, fault: Fault
) -> None:
    emulators.openai.inject(fault)
    headers = trace_header("edit-cut")
    seen: list[str] = []
    with sdk(gateway, key, json.dumps(failing_primary(emulators)), **headers) as client:
        stream = client.images.edit(
            image=("a.png", png(32, 32), "image/png"), prompt="a hat", stream=True, partial_images=3
        )
        with pytest.raises(openai.APIError) as raised:
            for event in stream:
                seen.append(event.type)
    assert seen == ["image_edit.partial_image"]
    assert raised.value.body is not None and raised.value.code  # OpenAI's envelope: message, type, param, code
    assert len(edit_calls(emulators)) == 1  # no fallback once the caller had an event
    record = logged(admin, headers["x-portkey-trace-id"])
    assert not record.fallback_used and len(record.attempts) == 1
    assert record.attempts[0].stream_events == 1 and record.attempts[0].status_code >= 500


def test_a_stall_after_the_first_edit_event_ends_as_a_timed_out_attempt(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.stream_stall())
    headers = trace_header("edit-stall")
    config = json.dumps(openai_target(emulators, request_timeout=1500))
    with sdk(gateway, key, config, **headers) as client:
        stream = client.images.edit(
            image=("a.png", png(32, 32), "image/png"),
            prompt="a hat",
            model="gpt-image-1.5",
            stream=True,
            partial_images=2,
        )
        events = iter(stream)
        assert next(events).type == "image_edit.partial_image"
        with pytest.raises(openai.APIError):
            list(events)
    record = logged(admin, headers["x-portkey-trace-id"])
    assert [(a.status_code, a.stream_events) for a in record.attempts] == [(408, 1)]


def test_a_target_that_cannot_stream_edits_is_skipped_without_the_switch(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    headers = trace_header("edit-skip")
    config = fallback(stability_target(emulators), openai_target(emulators, override_params={"model": "gpt-image-1.5"}))
    with sdk(gateway, key, json.dumps(config), **headers) as client:
        events = list(
            client.images.edit(image=("a.png", png(64, 64), "image/png"), prompt="a fox", stream=True, partial_images=1)
        )
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    assert not emulators.stability.requests
    record = logged(admin, headers["x-portkey-trace-id"])
    assert [a.provider for a in record.attempts] == ["stability-ai", "openai"]
    assert record.attempts[0].status_code == 400 and "cannot stream" in record.attempts[0].error


def test_a_target_that_cannot_stream_edits_answers_as_one_completed_event_with_the_switch(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    headers = {**trace_header("edit-complete"), "x-imagegw-stream-fallback": "complete"}
    config = fallback(stability_target(emulators), openai_target(emulators))
    with sdk(gateway, key, json.dumps(config), **headers) as client:
        events = list(
            client.images.edit(image=("a.png", png(64, 64), "image/png"), prompt="a fox", stream=True, partial_images=2)
        )
    assert [event.type for event in events] == ["image_edit.completed"]
    assert emulators.stability.requests and not emulators.openai.requests
    assert logged(admin, headers["x-portkey-trace-id"]).attempts[0].provider == "stability-ai"


def test_stream_on_an_edit_model_that_cannot_stream_is_a_400_naming_stream(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    with (
        sdk(gateway, key, json.dumps(openai_target(emulators))) as client,
        pytest.raises(openai.BadRequestError) as raised,
    ):
        list(client.images.edit(image=("a.png", png(64, 64), "image/png"), prompt="x", model="dall-e-2", stream=True))
    assert raised.value.param == "stream" and "x-imagegw-stream-fallback" in raised.value.message
    assert not emulators.openai.requests


def test_azure_streams_edits_as_openai_does(gateway: GatewayThread, key: str, emulators: Emulators) -> None:
    target = {
        "provider": "azure-openai",
        "api_key": AZURE_SECRET,
        "resource_name": "unused",
        "deployment_id": "gpt-image",
        "custom_host": emulators.azure.base_url,
    }
    with sdk(gateway, key, json.dumps(target)) as client:
        events = list(
            client.images.edit(
                image=("a.png", png(32, 32), "image/png"),
                prompt="a bay",
                model="gpt-image-1",
                stream=True,
                partial_images=1,
            )
        )
    assert [event.type for event in events] == ["image_edit.partial_image", "image_edit.completed"]
    sent = emulators.azure.requests[-1]
    assert sent.path.endswith("/images/edits") and sent.form is not None and sent.form["stream"] == "true"


# -- gRPC: StreamEditImage through the generated stub, the client and the CLI -------------------------


def grpc_client(gateway: GatewayThread, key: str) -> ImageGatewayClient:
    return ImageGatewayClient(gateway.grpc_target, api_key=key)


def test_the_generated_stub_streams_an_edit_partial_images_then_the_image_with_the_outcome(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    request = images_pb2.StreamEditImageRequest(
        parameters=images_pb2.ImageParameters(prompt="a hat", size="1024x1024"),
        routing=images_pb2.Routing(config_id=saved(admin, failing_primary(emulators))),
        images=[images_pb2.InputImage(data=png(64, 64), filename="a.png")],
        mask=images_pb2.InputImage(data=mask_png(64, 64), filename="m.png"),
        partial_images=2,
    )
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        messages = list(stub.StreamEditImage(request, metadata=(("authorization", f"Bearer {key}"),), timeout=30))
    kinds = [_kind(message) for message in messages]
    assert kinds == ["partial_image", "partial_image", "image"]
    assert [m.partial_image.index for m in messages[:2]] == [0, 1]
    assert messages[0].partial_image.data.startswith(PNG_SIGNATURE) and messages[0].partial_image.model == "gpt-image-2"
    last = messages[-1]
    assert last.image.data.startswith(PNG_SIGNATURE) and last.outcome.fallback_used
    assert [a.status_code for a in last.outcome.attempts] == [503, 200]
    assert last.report.usage.input_image_tokens > 0
    sent = edit_calls(emulators)[-1]
    assert sent.form["stream"] == "true" and [name for name, _ in sent.file_parts] == ["image", "mask"]


def _kind(message: images_pb2.StreamEditImageResponse) -> str:
    for name in ("progress", "partial_image", "image"):
        if message.HasField(name):
            return name
    return ""


def test_the_client_yields_an_edits_progress_partial_images_and_final_image(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.status(503))
    trace = f"grpc-edit-stream-{uuid.uuid4().hex[:8]}"
    with grpc_client(gateway, key) as client:
        events = list(
            client.edit_events(
                [("a.png", png(64, 64)), ("b.png", png(64, 64, (0, 0, 200)))],
                prompt="a heron",
                config=failing_primary(emulators),
                partial_images=1,
                trace_id=trace,
            )
        )
    kinds = [type(e).__name__ + (f":{e.kind}" if isinstance(e, Progress) else "") for e in events]
    assert kinds == [
        "Progress:attempt_started",
        "Progress:attempt_failed",
        "Progress:fallback",
        "Progress:attempt_started",
        "PartialImage",
        "FinalImage",
    ]
    partial, final = events[4], events[5]
    assert isinstance(partial, PartialImage) and partial.mime_type == "image/png" and partial.provider == "openai"
    assert isinstance(final, FinalImage) and final.last and final.outcome is not None and final.outcome.fallback_used
    record = logged(admin, trace)
    assert record.operation == "edit" and [a.status_code for a in record.attempts] == [503, 200]


def test_grpc_a_failure_after_an_edit_partial_image_ends_the_call_with_its_status_and_no_fallback(
    gateway: GatewayThread, admin: ImageGatewayClient, key: str, emulators: Emulators
) -> None:
    emulators.openai.inject(Fault.stream_error())
    trace = f"grpc-edit-cut-{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    with grpc_client(gateway, key) as client, pytest.raises(ImageGatewayError):
        for event in client.edit_events(
            [png(32, 32)], prompt="a heron", config=failing_primary(emulators), partial_images=2, trace_id=trace
        ):
            seen.append(type(event).__name__)
    assert seen == ["Progress", "PartialImage", "Progress"]  # started, a partial image, failed
    assert len(edit_calls(emulators)) == 1
    record = logged(admin, trace)
    assert [(a.stream_events, a.status_code >= 500) for a in record.attempts] == [(1, True)]


def test_grpc_edit_partial_images_limits_and_the_stream_switch(
    gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    target = openai_target(emulators)
    with grpc_client(gateway, key) as client:
        with pytest.raises(InvalidArgumentError) as raised:
            list(client.edit_events([png(64, 64)], prompt="x", model="gpt-image-1.5", config=target, partial_images=4))
        assert "partial_images" in str(raised.value)
        with pytest.raises(InvalidArgumentError) as raised:
            list(client.edit_events([png(64, 64)], prompt="x", model="dall-e-2", config=target, partial_images=1))
        assert "stream" in str(raised.value)
        assert not emulators.openai.requests
        events = list(
            client.edit_events(
                [png(64, 64)], prompt="x", model="dall-e-2", config=target, partial_images=1, stream_fallback="complete"
            )
        )
    assert [type(e).__name__ for e in events] == ["Progress", "FinalImage"]
    assert "stream" not in (edit_calls(emulators)[-1].form or {})


async def test_the_async_client_streams_an_edit_too(gateway: GatewayThread, key: str, emulators: Emulators) -> None:
    async with AsyncImageGatewayClient(gateway.grpc_target, api_key=key) as client:
        kinds = [
            type(event).__name__
            async for event in client.edit_events(
                [png(32, 32)],
                prompt="a heron",
                model="gpt-image-1.5",
                config=openai_target(emulators),
                partial_images=1,
            )
        ]
    assert kinds == ["Progress", "PartialImage", "FinalImage"]


def test_imagegw_edit_with_partial_images_prints_progress_lines_as_generate_does(
    gateway: GatewayThread,
    admin: ImageGatewayClient,
    key: str,
    emulators: Emulators,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emulators.openai.inject(Fault.status(503))
    image, out = tmp_path / "cat.png", tmp_path / "edited.png"
    image.write_bytes(png(64, 64))
    capsys.readouterr()
    code = cli_main(
        [
            "edit",
            "--server",
            gateway.grpc_target,
            "--api-key",
            key,
            "--config",
            saved(admin, failing_primary(emulators)),
            "--image",
            str(image),
            "--prompt",
            "a hat",
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
    assert "openai" in captured.out  # the outcome, as before, on stdout
    assert edit_calls(emulators)[-1].form["partial_images"] == "1"


def test_imagegw_edit_stream_usage_errors_exit_2_without_calling(
    gateway: GatewayThread, key: str, emulators: Emulators, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(png(16, 16))
    common = ["edit", "--server", gateway.grpc_target, "--api-key", key, "--image", str(image), "--prompt", "x"]
    out = ["--out", str(tmp_path / "edited.png")]
    assert cli_main([*common, "--stream-fallback", "complete", *out]) == 2
    assert "--stream-fallback needs --partial-images" in capsys.readouterr().err
    assert cli_main([*common, "--partial-images", "4", *out]) == 2
    assert "--partial-images" in capsys.readouterr().err
    assert not emulators.openai.requests and not (tmp_path / "edited.png").exists()


# -- the emulator itself -------------------------------------------------------------------------------


def emulator_edit(emulators: Emulators, **data: str) -> httpx.Response:
    return httpx.post(
        f"{emulators.openai.base_url}/images/edits",
        headers={"authorization": f"Bearer {OPENAI_SECRET}"},
        files=[("image", ("a.png", png(16, 16), "image/png"))],
        data={"prompt": "a hat", "stream": "true", **data},
        timeout=HTTP_TIMEOUT,
    )


def event_names(response: httpx.Response) -> list[str]:
    return [block.split("\n")[0].removeprefix("event: ") for block in response.text.split("\n\n") if block]


def test_the_openai_emulator_streams_edits_and_breaks_them_as_told(emulators: Emulators) -> None:
    answer = emulator_edit(emulators, model="gpt-image-1.5", partial_images="2")
    assert event_names(answer) == ["image_edit.partial_image", "image_edit.partial_image", "image_edit.completed"]
    emulators.openai.inject(Fault.stream_error())
    assert event_names(emulator_edit(emulators, model="gpt-image-1.5", partial_images="2")) == [
        "image_edit.partial_image",
        "error",
    ]
    emulators.openai.inject(Fault.stream_reset())
    with pytest.raises(httpx.HTTPError):
        emulator_edit(emulators, model="gpt-image-1.5", partial_images="2")
    refused = emulator_edit(emulators, model="dall-e-2")  # dall-e-2's edit form has no stream
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "stream"
