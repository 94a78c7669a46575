"""Chunked uploads that stream or vary, over real sockets: StreamEditImageUpload (EditImageUpload's chunks
in, StreamEditImage's events out) and CreateImageVariationUpload, through a gateway whose message limit
(4 MiB) is smaller than the images, against the OpenAI emulator.

Three ~5 MB images stream as an edit: a fallback moves on before the first event, the partial images
arrive in order, then the final image; the one log record holds every attempt and the images' digests.
Each bad upload is INVALID_ARGUMENT naming its field before any upstream call. The clients (sync and
async) and ``imagegw edit`` / ``imagegw vary`` switch to the chunked RPCs by themselves over half the
message limit, and the gRPC metrics name each method with its kind.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from imagegateway import (
    AsyncImageGatewayClient,
    FinalImage,
    ImageGatewayClient,
    InvalidArgumentError,
    PartialImage,
    Progress,
    ResourceExhaustedError,
)
from imagegateway.errors import from_rpc_error
from imagegateway.v1 import images_pb2, service_pb2_grpc
from imagegateway_server.cli import main as imagegw
from tests.conftest import OPENAI_SECRET, Emulators, eventually
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway
from tests.image_fixtures import fallback, mask_png, noise_png, openai_target, png
from tests.integration.test_grpc_api import prometheus_samples

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT = 60.0
MESSAGE_LIMIT = 4 * 1024 * 1024  # the gateway's and the clients' IMAGEGW_MAX_MESSAGE_BYTES here
IMAGE_LIMIT = 6_000_000  # IMAGEGW_MAX_INPUT_IMAGE_BYTES: room for a ~5 MB image, not for 6 MiB
IMAGE_COUNT_LIMIT = 4  # IMAGEGW_MAX_INPUT_IMAGES
SIDE = 1300  # a noise PNG this wide and high is ~5.07 MB: over the message limit, under the image limit


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(
        tmp_path_factory.mktemp("upload-streams"),
        max_message_bytes=MESSAGE_LIMIT,
        max_input_image_bytes=IMAGE_LIMIT,
        max_input_images=IMAGE_COUNT_LIMIT,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def small_admin(small_gateway: GatewayThread) -> Iterator[ImageGatewayClient]:
    with ImageGatewayClient(small_gateway.grpc_target, api_key=small_gateway.admin_key) as client:
        yield client


@pytest.fixture(scope="module")
def key(small_admin: ImageGatewayClient) -> str:
    return small_admin.create_api_key(f"upload-streams-{uuid.uuid4().hex[:6]}", "generate").key


@pytest.fixture(scope="module")
def big_images() -> list[tuple[str, bytes]]:
    images = [(f"{name}.png", noise_png(SIDE, SIDE)) for name in "abc"]
    assert all(MESSAGE_LIMIT < len(data) < IMAGE_LIMIT for _, data in images)
    return images


def failing_primary(emulators: Emulators) -> dict[str, Any]:
    """gpt-image-1.5, then gpt-image-2 when it fails."""
    return fallback(
        openai_target(emulators, override_params={"model": "gpt-image-1.5"}),
        openai_target(emulators, override_params={"model": "gpt-image-2"}),
    )


def edits_sent(emulators: Emulators) -> list[Any]:
    return [r for r in emulators.openai.requests if r.path.endswith("/images/edits")]


def logs_of(admin: ImageGatewayClient, trace_id: str) -> list[Any]:
    return eventually(lambda: list(admin.list_logs(trace_id=trace_id).logs))


def handled(gateway: GatewayThread, method: str) -> dict[str, float]:
    """``grpc_server_handled_total`` of ``method`` with code OK, by grpc_type."""
    text = httpx.get(gateway.metrics_url, timeout=10).text
    return {
        labels["grpc_type"]: value
        for name, labels, value in prometheus_samples(text)
        if name == "grpc_server_handled_total" and labels.get("grpc_method") == method and labels["grpc_code"] == "OK"
    }


def trace(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ + (f":{e.kind}" if isinstance(e, Progress) else "") for e in events]


# -- StreamEditImageUpload ------------------------------------------------------------------------------


def test_three_5mb_images_stream_as_an_edit_over_a_4mib_channel_falling_back_before_the_first_event(
    small_gateway: GatewayThread,
    small_admin: ImageGatewayClient,
    key: str,
    emulators: Emulators,
    big_images: list[tuple[str, bytes]],
) -> None:
    emulators.openai.inject(Fault.status(503))
    mask = mask_png(SIDE, SIDE)
    trace_id = trace("upload-stream")
    before = handled(small_gateway, "StreamEditImageUpload").get("bidi_stream", 0)
    with ImageGatewayClient(small_gateway.grpc_target, api_key=key, max_message_bytes=MESSAGE_LIMIT) as client:
        events = list(
            client.edit_events(
                big_images,
                mask=mask,
                prompt="a lighthouse",
                config=failing_primary(emulators),
                partial_images=2,
                trace_id=trace_id,
            )
        )
    assert kinds(events) == [
        "Progress:attempt_started",
        "Progress:attempt_failed",
        "Progress:fallback",
        "Progress:attempt_started",
        "PartialImage",
        "PartialImage",
        "FinalImage",
    ]
    partials = [e for e in events if isinstance(e, PartialImage)]
    assert [p.index for p in partials] == [0, 1] and all(p.model == "gpt-image-2" for p in partials)
    final = events[-1]
    assert isinstance(final, FinalImage) and final.last and final.image.data.startswith(PNG_SIGNATURE)
    assert final.outcome is not None and final.outcome.fallback_used
    # The primary's 503 came before any event, so the fallback's request carried every file whole.
    sent = edits_sent(emulators)
    assert len(sent) == 2 and sent[-1].form["stream"] == "true" and sent[-1].form["partial_images"] == "2"
    assert [part.data for _, part in sent[-1].file_parts] == [data for _, data in big_images] + [mask]
    (record,) = logs_of(small_admin, trace_id)
    assert record.operation == "edit" and [a.status_code for a in record.attempts] == [503, 200]
    digests = [hashlib.sha256(data).hexdigest() for _, data in big_images]
    assert [image.sha256 for image in record.input_images] == digests
    assert [image.bytes for image in record.input_images] == [len(data) for _, data in big_images]
    assert record.input_mask.sha256 == hashlib.sha256(mask).hexdigest()
    assert handled(small_gateway, "StreamEditImageUpload")["bidi_stream"] == before + 1


def test_the_same_edit_in_one_message_does_not_fit_the_channel(
    small_gateway: GatewayThread, key: str, emulators: Emulators, big_images: list[tuple[str, bytes]]
) -> None:
    with ImageGatewayClient(small_gateway.grpc_target, api_key=key, max_message_bytes=MESSAGE_LIMIT) as client:
        with pytest.raises(ResourceExhaustedError):
            list(client.edit_events(big_images[:1], prompt="x", config=openai_target(emulators), chunked=False))
    assert not emulators.openai.requests


def upload_header(**fields: Any) -> images_pb2.StreamEditImageUploadRequest:
    fields.setdefault("parameters", images_pb2.ImageParameters(prompt="a kite", model="gpt-image-1.5"))
    return images_pb2.StreamEditImageUploadRequest(header=images_pb2.StreamEditImageUploadHeader(**fields))


def upload_chunk(data: bytes, index: int = 0, **flags: bool) -> images_pb2.StreamEditImageUploadRequest:
    chunk = images_pb2.EditImageUploadChunk(image_index=index, data=data, **flags)
    return images_pb2.StreamEditImageUploadRequest(chunk=chunk)


def stub_stream(
    gateway: GatewayThread, key: str, messages: list[Any]
) -> list[images_pb2.StreamEditImageUploadResponse]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        return list(
            stub.StreamEditImageUpload(iter(messages), metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT)
        )


def test_the_generated_stub_uploads_in_small_chunks_and_reads_partial_images_then_the_image(
    small_gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    image, mask = png(64, 64), mask_png(64, 64)
    messages = [
        upload_header(
            routing=images_pb2.Routing(
                provider="openai", provider_api_key=OPENAI_SECRET, custom_host=emulators.openai.base_url
            ),
            image_count=1,
            has_mask=True,
            filenames=["cat.png"],
            partial_images=1,
        ),
        *(upload_chunk(image[start : start + 100]) for start in range(0, len(image), 100)),
        *(upload_chunk(mask[start : start + 100], mask=True) for start in range(0, len(mask), 100)),
    ]
    responses = stub_stream(small_gateway, key, messages)
    assert [_kind(r) for r in responses] == ["partial_image", "image"]
    assert responses[0].partial_image.index == 0 and responses[-1].outcome.provider == "openai"
    (sent,) = edits_sent(emulators)
    assert [(name, part.filename, part.data) for name, part in sent.file_parts] == [
        ("image", "cat.png", image),
        ("mask", "mask.png", mask),
    ]


def _kind(message: images_pb2.StreamEditImageUploadResponse) -> str:
    for name in ("progress", "partial_image", "image"):
        if message.HasField(name):
            return name
    return ""


MiB = 1024 * 1024
BAD_UPLOADS: dict[str, tuple[list[Any], str]] = {
    "missing header": ([upload_chunk(b"\x89PNG")], "header"),
    "a second header": ([upload_header(image_count=1), upload_header(image_count=1)], "header"),
    "chunk for an unknown image": ([upload_header(image_count=1), upload_chunk(b"x", index=1)], "chunk.image_index"),
    "too many images": ([upload_header(image_count=IMAGE_COUNT_LIMIT + 1)], "header.image_count"),
    "no images": ([upload_header(image_count=0)], "header.image_count"),
    "mask chunk without a mask": ([upload_header(image_count=1), upload_chunk(b"x", mask=True)], "chunk.mask"),
    "oversize image": (
        [upload_header(image_count=1), *(upload_chunk(b"\0" * MiB) for _ in range(IMAGE_LIMIT // MiB + 1))],
        "images[0]",
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_a_bad_upload_is_invalid_argument_naming_the_field_before_any_upstream_call(
    small_gateway: GatewayThread, key: str, emulators: Emulators, case: str
) -> None:
    messages, field = BAD_UPLOADS[case]
    with pytest.raises(grpc.RpcError) as raised:
        stub_stream(small_gateway, key, messages)
    error = from_rpc_error(raised.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.error_info is not None and error.error_info.metadata["param"] == field, error.message
    assert not emulators.openai.requests


def test_bad_edit_fields_are_invalid_argument_naming_the_field_before_any_upstream_call(
    small_gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    target = openai_target(emulators)
    cases = [
        ({"mask": mask_png(32, 32), "model": "gpt-image-1.5"}, "mask"),
        ({"model": "gpt-image-1.5", "partial_images": 4}, "partial_images"),
        ({"model": "dall-e-2", "partial_images": 1}, "stream"),
    ]
    with ImageGatewayClient(small_gateway.grpc_target, api_key=key) as client:
        for fields, param in cases:
            with pytest.raises(InvalidArgumentError) as raised:
                list(client.edit_events([png(64, 64)], prompt="x", config=target, chunked=True, **fields))
            info = raised.value.error_info
            assert info is not None and info.metadata["param"] == param, raised.value
    assert not emulators.openai.requests


# -- CreateImageVariationUpload -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_square() -> bytes:
    """A square noise PNG over half the message limit, under dall-e-2's 4 MB."""
    data = noise_png(1000, 1000)
    assert MESSAGE_LIMIT // 2 < len(data) < 4 * 1024 * 1024
    return data


def dall_e_2_twice(emulators: Emulators) -> dict[str, Any]:
    target = openai_target(emulators, override_params={"model": "dall-e-2"})
    return fallback(target, target)


def test_a_variation_over_half_the_message_limit_is_uploaded_in_chunks_and_falls_back(
    small_gateway: GatewayThread, small_admin: ImageGatewayClient, key: str, emulators: Emulators, big_square: bytes
) -> None:
    emulators.openai.inject(Fault.status(503))
    trace_id = trace("vary-upload")
    before = handled(small_gateway, "CreateImageVariationUpload").get("client_stream", 0)
    with ImageGatewayClient(small_gateway.grpc_target, api_key=key, max_message_bytes=MESSAGE_LIMIT) as client:
        response = client.create_image_variation(
            ("big.png", big_square), n=2, size="256x256", config=dall_e_2_twice(emulators), trace_id=trace_id
        )
    assert len(response.images) == 2 and response.outcome.model == "dall-e-2"
    assert [a.status_code for a in response.outcome.attempts] == [503, 200]
    sent = [r for r in emulators.openai.requests if r.path.endswith("/images/variations")][-1]
    assert [(part.filename, part.data) for _, part in sent.file_parts] == [("big.png", big_square)]
    (record,) = logs_of(small_admin, trace_id)
    assert record.operation == "variation" and len(record.attempts) == 2
    assert [image.sha256 for image in record.input_images] == [hashlib.sha256(big_square).hexdigest()]
    assert handled(small_gateway, "CreateImageVariationUpload")["client_stream"] == before + 1


def variation_stub(gateway: GatewayThread, key: str, messages: list[Any]) -> Any:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = service_pb2_grpc.ImageGatewayStub(channel)
        return stub.CreateImageVariationUpload(
            iter(messages), metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT
        )


def variation_header(**fields: Any) -> images_pb2.CreateImageVariationUploadRequest:
    return images_pb2.CreateImageVariationUploadRequest(header=images_pb2.CreateImageVariationUploadHeader(**fields))


def test_bad_variation_uploads_are_invalid_argument_naming_the_field(
    small_gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    routing = images_pb2.Routing(
        provider="openai", provider_api_key=OPENAI_SECRET, custom_host=emulators.openai.base_url
    )
    dall_e_2 = images_pb2.ImageParameters(model="dall-e-2")
    chunk = images_pb2.CreateImageVariationUploadRequest(chunk=png(64, 64))
    cases = [
        ([chunk], "header"),
        ([variation_header(parameters=dall_e_2, routing=routing)], "image"),
        ([variation_header(parameters=dall_e_2, routing=routing), chunk, variation_header()], "header"),
        (
            [
                variation_header(parameters=dall_e_2, routing=routing),
                *(images_pb2.CreateImageVariationUploadRequest(chunk=b"\0" * MiB) for _ in range(6)),
            ],
            "image",
        ),
        (
            [variation_header(parameters=images_pb2.ImageParameters(prompt="x"), routing=routing), chunk],
            "parameters.prompt",
        ),
    ]
    for messages, field in cases:
        with pytest.raises(grpc.RpcError) as raised:
            variation_stub(small_gateway, key, messages)
        error = from_rpc_error(raised.value)
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT
        assert error.error_info is not None and error.error_info.metadata["param"] == field, error.message
    assert not emulators.openai.requests
    response = variation_stub(small_gateway, key, [variation_header(parameters=dall_e_2, routing=routing), chunk])
    assert response.images[0].data.startswith(PNG_SIGNATURE)


# -- the clients' switch and the CLI ---------------------------------------------------------------------


def test_the_clients_pick_the_one_message_or_the_chunked_rpc_by_the_size_of_the_inputs(
    small_gateway: GatewayThread, key: str, emulators: Emulators
) -> None:
    # Two ~49 KB images are over half a 64 KiB limit: chunked; under half the default limit: one message.
    images = [noise_png(128, 128), noise_png(128, 128)]
    target = openai_target(emulators, override_params={"model": "gpt-image-1.5"})
    one = handled(small_gateway, "StreamEditImage").get("server_stream", 0)
    chunked = handled(small_gateway, "StreamEditImageUpload").get("bidi_stream", 0)
    vary_chunked = handled(small_gateway, "CreateImageVariationUpload").get("client_stream", 0)

    async def run() -> list[list[str]]:
        seen = []
        for limit in (64 * 1024, MESSAGE_LIMIT):
            async with AsyncImageGatewayClient(small_gateway.grpc_target, api_key=key, max_message_bytes=limit) as c:
                events = [e async for e in c.edit_events(images, prompt="a kite", config=target, partial_images=1)]
                seen.append(kinds(events))
        async with AsyncImageGatewayClient(
            small_gateway.grpc_target, api_key=key, max_message_bytes=64 * 1024
        ) as client:
            varied = await client.create_image_variation(
                noise_png(128, 128), config=openai_target(emulators, override_params={"model": "dall-e-2"})
            )
            assert varied.images[0].data.startswith(PNG_SIGNATURE)
        return seen

    expected = ["Progress:attempt_started", "PartialImage", "FinalImage"]
    assert asyncio.run(run()) == [expected, expected]
    with ImageGatewayClient(small_gateway.grpc_target, api_key=key, max_message_bytes=64 * 1024) as client:
        assert kinds(list(client.edit_events(images, prompt="a kite", config=target, partial_images=1))) == expected
    assert handled(small_gateway, "StreamEditImage")["server_stream"] == one + 1
    assert handled(small_gateway, "StreamEditImageUpload")["bidi_stream"] == chunked + 2
    assert handled(small_gateway, "CreateImageVariationUpload")["client_stream"] == vary_chunked + 1


def test_imagegw_edit_and_vary_upload_big_inputs_in_chunks(
    small_gateway: GatewayThread,
    small_admin: ImageGatewayClient,
    key: str,
    emulators: Emulators,
    big_images: list[tuple[str, bytes]],
    big_square: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, data in big_images[:2]:
        (tmp_path / name).write_bytes(data)
    (tmp_path / "square.png").write_bytes(big_square)
    vk = small_admin.create_virtual_key(
        f"uploads-{uuid.uuid4().hex[:6]}", "openai", OPENAI_SECRET, base_url=emulators.openai.base_url
    ).id
    client_flags = ["--server", small_gateway.grpc_target, "--api-key", key, "--virtual-key", vk]
    before = handled(small_gateway, "StreamEditImageUpload").get("bidi_stream", 0)
    capsys.readouterr()
    code = imagegw(
        [
            "edit",
            *client_flags,
            "--max-message-bytes",
            str(MESSAGE_LIMIT),
            "--model",
            "gpt-image-1.5",
            "--image",
            str(tmp_path / "a.png"),
            "--image",
            str(tmp_path / "b.png"),
            "--prompt",
            "a sail",
            "--partial-images",
            "1",
            "--out",
            str(tmp_path / "edited.png"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (tmp_path / "edited.png").read_bytes().startswith(PNG_SIGNATURE)
    assert [line.split("] ", 1)[1].split(" ")[0] for line in captured.err.splitlines()] == ["calling", "partial"]
    assert [part.data for _, part in edits_sent(emulators)[-1].file_parts] == [data for _, data in big_images[:2]]
    assert handled(small_gateway, "StreamEditImageUpload")["bidi_stream"] == before + 1
    # vary reads the limit the gateway reads, from the environment.
    monkeypatch.setenv("IMAGEGW_MAX_MESSAGE_BYTES", str(MESSAGE_LIMIT))
    before = handled(small_gateway, "CreateImageVariationUpload").get("client_stream", 0)
    code = imagegw(
        [
            "vary",
            *client_flags,
            "--model",
            "dall-e-2",
            "--image",
            str(tmp_path / "square.png"),
            "--out",
            str(tmp_path / "vary.png"),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "vary.png").read_bytes().startswith(PNG_SIGNATURE)
    assert handled(small_gateway, "CreateImageVariationUpload")["client_stream"] == before + 1
