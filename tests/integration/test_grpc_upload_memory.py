"""The gRPC uploads hold their memory against IMAGEGW_UPLOAD_MEMORY_BYTES, the budget REST uploads use, over
real sockets against the OpenAI emulator, in a gateway whose budget is 8 MB.

Chunked uploads that announce their size (as the clients do) reserve it with their header and queue
whole: three of 5 MB are all served, one after another. Uploads that announce nothing grow their
reservation as their chunks arrive; the test sends each upload's chunks a step at a time and reads the
budget's use from ``imagegateway_upload_memory_reserved_bytes``. Three such uploads of 5 MB: each that
finds no room waits while another can still give memory back, and the one whose chunk would leave all
three waiting for each other is RESOURCE_EXHAUSTED naming the setting; the other two are served, and
the budget is whole again afterwards. A request gives back what it held
however it ends: served, refused, failed upstream, cancelled, or its client gone. A REST upload and a
one-message gRPC upload wait, as REST always has, for memory a chunked gRPC upload holds.
"""

from __future__ import annotations

import asyncio
import os
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest

from imagegateway import AsyncImageGatewayClient, ImageGatewayClient
from imagegateway.errors import from_rpc_error
from imagegateway.uploads import edit_upload_messages
from imagegateway.v1 import images_pb2, service_pb2_grpc
from tests.conftest import OPENAI_SECRET, Emulators
from tests.emulators import Fault
from tests.harness import GatewayThread, running_gateway
from tests.image_fixtures import noise_png, openai_target, png
from tests.integration.test_grpc_api import prometheus_samples
from tests.integration.test_image_edits import post_edit

BUDGET = 8_000_000  # IMAGEGW_UPLOAD_MEMORY_BYTES here
CHUNK = 1_000_000  # the bytes of each chunk these tests send
MESSAGE_LIMIT = 4 * 1024 * 1024
IMAGE_LIMIT = 6_000_000
TIMEOUT = 60.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def budget_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    with running_gateway(
        tmp_path_factory.mktemp("upload-memory"),
        max_message_bytes=MESSAGE_LIMIT,
        max_input_image_bytes=IMAGE_LIMIT,
        upload_memory_bytes=BUDGET,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def key(budget_gateway: GatewayThread) -> str:
    with ImageGatewayClient(budget_gateway.grpc_target, api_key=budget_gateway.admin_key) as admin:
        return admin.create_api_key("upload-memory", "generate").key


@pytest.fixture(scope="module")
def five_mb() -> bytes:
    data = noise_png(1300, 1300)
    assert 5 * CHUNK < len(data) < 6 * CHUNK
    return data


def reserved(gateway: GatewayThread) -> float:
    text = httpx.get(gateway.metrics_url, timeout=10).text
    (value,) = [v for name, _, v in prometheus_samples(text) if name == "imagegateway_upload_memory_reserved_bytes"]
    return value


async def reserved_becomes(gateway: GatewayThread, expected: float, within: float = 15.0) -> None:
    """Waits until the budget holds ``expected`` bytes (the gateway has read what was sent)."""
    deadline = asyncio.get_running_loop().time() + within
    while (now := reserved(gateway)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"the budget holds {now} bytes, not {expected}"
        await asyncio.sleep(0.02)


def header(emulators: Emulators, image_count: int = 1) -> images_pb2.EditImageUploadRequest:
    return images_pb2.EditImageUploadRequest(
        header=images_pb2.EditImageUploadHeader(
            parameters=images_pb2.ImageParameters(prompt="a kite", model="gpt-image-1.5"),
            routing=images_pb2.Routing(
                provider="openai", provider_api_key=OPENAI_SECRET, custom_host=emulators.openai.base_url
            ),
            image_count=image_count,
        )
    )


def chunk(data: bytes, index: int = 0) -> images_pb2.EditImageUploadRequest:
    return images_pb2.EditImageUploadRequest(chunk=images_pb2.EditImageUploadChunk(image_index=index, data=data))


def upload_messages(kind: str, emulators: Emulators, image: bytes) -> tuple[Any, list[Any]]:
    """The header and the chunks of an upload of ``image`` by ``kind``: EditImageUpload ("edit"),
    StreamEditImageUpload ("stream") or CreateImageVariationUpload ("variation")."""
    pieces = [image[start : start + CHUNK] for start in range(0, len(image), CHUNK)]
    if kind == "edit":
        return header(emulators), [chunk(piece) for piece in pieces]
    edit_header = header(emulators).header
    if kind == "stream":
        streamed = images_pb2.StreamEditImageUploadHeader(
            parameters=edit_header.parameters, routing=edit_header.routing, image_count=1
        )
        return images_pb2.StreamEditImageUploadRequest(header=streamed), [
            images_pb2.StreamEditImageUploadRequest(chunk=images_pb2.EditImageUploadChunk(data=piece))
            for piece in pieces
        ]
    variation = images_pb2.CreateImageVariationUploadHeader(
        parameters=images_pb2.ImageParameters(model="dall-e-2"), routing=edit_header.routing, filename="a.png"
    )
    return images_pb2.CreateImageVariationUploadRequest(header=variation), [
        images_pb2.CreateImageVariationUploadRequest(chunk=piece) for piece in pieces
    ]


class PacedUpload:
    """An upload of one image whose messages the test lets go a few at a time."""

    def __init__(
        self,
        stub: service_pb2_grpc.ImageGatewayStub,
        key: str,
        emulators: Emulators,
        image: bytes,
        kind: str = "edit",
    ) -> None:
        self.header, self._chunks = upload_messages(kind, emulators, image)
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._queue.put_nowait(self.header)
        rpc = {
            "edit": stub.EditImageUpload,
            "stream": stub.StreamEditImageUpload,
            "variation": stub.CreateImageVariationUpload,
        }[kind]
        self.call = rpc(self._messages(), metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT)
        self.result = asyncio.ensure_future(self._result(kind == "stream"))

    @property
    def header_bytes(self) -> int:
        return self.header.ByteSize()

    async def _messages(self) -> AsyncIterator[Any]:
        while (message := await self._queue.get()) is not None:
            yield message

    async def _result(self, streamed: bool) -> Any:
        if streamed:
            return [message async for message in self.call]
        return await self.call

    def send(self, count: int) -> None:
        for _ in range(count):
            self._queue.put_nowait(self._chunks.pop(0))

    def finish(self) -> None:
        self.send(len(self._chunks))
        self._queue.put_nowait(None)


@pytest.fixture
async def stub(budget_gateway: GatewayThread) -> AsyncIterator[service_pb2_grpc.ImageGatewayStub]:
    async with grpc.aio.insecure_channel(budget_gateway.grpc_target) as channel:
        yield service_pb2_grpc.ImageGatewayStub(channel)


@pytest.fixture
async def holding_upload(
    budget_gateway: GatewayThread,
    key: str,
    emulators: Emulators,
    stub: service_pb2_grpc.ImageGatewayStub,
    five_mb: bytes,
) -> PacedUpload:
    """A chunked edit of a 5 MB image holding the memory of its header and first five chunks."""
    upload = PacedUpload(stub, key, emulators, five_mb)
    upload.send(5)
    await reserved_becomes(budget_gateway, upload.header_bytes + 5 * CHUNK)
    return upload


def assert_refused_naming_the_budget(error: BaseException) -> None:
    assert isinstance(error, grpc.aio.AioRpcError), error
    status = from_rpc_error(error)
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED, status.message
    assert "IMAGEGW_UPLOAD_MEMORY_BYTES" in status.message
    assert status.error_info is not None and status.error_info.reason == "UPLOAD_MEMORY_EXHAUSTED"
    assert status.error_info.metadata["setting"] == "IMAGEGW_UPLOAD_MEMORY_BYTES"


async def test_three_5mb_uploads_in_an_8mb_budget_refuse_the_one_that_would_leave_all_waiting_and_serve_the_rest(
    budget_gateway: GatewayThread,
    key: str,
    emulators: Emulators,
    stub: service_pb2_grpc.ImageGatewayStub,
    five_mb: bytes,
) -> None:
    first, second, third = (PacedUpload(stub, key, emulators, five_mb) for _ in range(3))
    headers = first.header_bytes  # each upload's header is read (and reserved) at once
    await reserved_becomes(budget_gateway, 3 * headers)
    first.send(3)
    await reserved_becomes(budget_gateway, 3 * headers + 3 * CHUNK)
    second.send(3)
    await reserved_becomes(budget_gateway, 3 * headers + 6 * CHUNK)
    third.send(1)
    await reserved_becomes(budget_gateway, 3 * headers + 7 * CHUNK)
    third.send(1)  # no room: waits, as the first two may still give memory back
    first.send(1)  # likewise, while the second may
    await asyncio.sleep(0.3)
    assert reserved(budget_gateway) == 3 * headers + 7 * CHUNK and not first.result.done()
    second.send(1)  # now every upload would wait for another: this one is refused at once
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await asyncio.wait_for(second.result, TIMEOUT)
    assert_refused_naming_the_budget(refused.value)
    # What the second held went back, and the waiting chunks of the other two took it.
    await reserved_becomes(budget_gateway, 2 * headers + 6 * CHUNK)
    assert emulators.openai.requests == []
    # The first is read to its end and served, then the third (both at once would again be two uploads
    # each waiting for the other's memory, and one of them would be refused).
    for upload in (first, third):
        upload.finish()
        response = await asyncio.wait_for(upload.result, TIMEOUT)
        assert response.images[0].data.startswith(PNG_SIGNATURE)
    assert len(emulators.openai.requests) == 2
    await reserved_becomes(budget_gateway, 0)
    # The whole budget is free again: an upload of nearly all of it is served.
    nearly_all = [(f"{name}.png", noise_png(1140, 1140)) for name in "ab"]
    assert 7_500_000 < sum(len(data) for _, data in nearly_all) < BUDGET - 10_000
    with ImageGatewayClient(budget_gateway.grpc_target, api_key=key, max_message_bytes=MESSAGE_LIMIT) as client:
        edited = client.edit_image(nearly_all, prompt="x", config=openai_target(emulators), timeout=TIMEOUT)
    assert edited.images[0].data.startswith(PNG_SIGNATURE)
    await reserved_becomes(budget_gateway, 0)


async def test_three_announced_5mb_uploads_in_an_8mb_budget_queue_and_are_all_served(
    budget_gateway: GatewayThread, key: str, emulators: Emulators, five_mb: bytes
) -> None:
    # The clients announce an upload's size in its header: each reserves it whole before its chunks are
    # read, so the three wait their turn, as REST uploads do, and none is refused halfway.
    sent = upload_messages("edit", emulators, five_mb)[0]
    announced = next(iter(edit_upload_messages([five_mb], None, prompt="x")))
    assert announced.header.upload_bytes == len(five_mb) and not sent.header.upload_bytes
    async with AsyncImageGatewayClient(budget_gateway.grpc_target, api_key=key) as client:
        answers = await asyncio.gather(
            *(
                client.edit_image([five_mb], prompt=f"kite {n}", config=openai_target(emulators), chunked=True)
                for n in range(3)
            )
        )
    assert all(answer.images[0].data.startswith(PNG_SIGNATURE) for answer in answers)
    assert len(emulators.openai.requests) == 3
    await reserved_becomes(budget_gateway, 0)


async def test_an_upload_larger_than_the_whole_budget_is_refused_before_any_upstream_call(
    budget_gateway: GatewayThread, key: str, emulators: Emulators, stub: service_pb2_grpc.ImageGatewayStub
) -> None:
    half = b"\0" * 4_500_000  # two images of 4.5 MB: each under its limit, both over the budget
    messages = [header(emulators, image_count=2)]
    messages += [chunk(half[start : start + CHUNK], index) for index in (0, 1) for start in range(0, len(half), CHUNK)]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.EditImageUpload(iter(messages), metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT)
    assert_refused_naming_the_budget(refused.value)
    assert emulators.openai.requests == []
    await reserved_becomes(budget_gateway, 0)


async def test_a_client_that_cancels_mid_upload_gives_back_its_memory_to_a_rest_upload_waiting_for_it(
    budget_gateway: GatewayThread, key: str, emulators: Emulators, holding_upload: PacedUpload
) -> None:
    upload = holding_upload
    # One budget for both front ends: a REST edit of 3.6 MB does not fit beside it, and waits unread.
    image = noise_png(1100, 1100)
    files = [("image", ("a.png", image))]
    rest = asyncio.ensure_future(asyncio.to_thread(post_edit, budget_gateway, key, emulators, files, {"prompt": "x"}))
    await asyncio.sleep(0.5)
    assert not rest.done() and emulators.openai.requests == []
    upload.call.cancel()
    answer = await asyncio.wait_for(rest, TIMEOUT)
    assert answer.status_code == 200, answer.text
    await reserved_becomes(budget_gateway, 0)
    with pytest.raises(asyncio.CancelledError):
        await upload.result


@pytest.mark.parametrize("kind", ["edit", "stream", "variation"])
async def test_a_client_that_cancels_while_its_chunk_waits_for_room_gives_back_what_it_held(
    budget_gateway: GatewayThread,
    key: str,
    emulators: Emulators,
    stub: service_pb2_grpc.ImageGatewayStub,
    five_mb: bytes,
    kind: str,
) -> None:
    holding, waiting = PacedUpload(stub, key, emulators, five_mb), PacedUpload(stub, key, emulators, five_mb, kind)
    headers = holding.header_bytes
    await reserved_becomes(budget_gateway, headers + waiting.header_bytes)
    holding.send(5)
    await reserved_becomes(budget_gateway, headers + waiting.header_bytes + 5 * CHUNK)
    waiting.send(3)  # the third chunk does not fit beside the first upload: it waits
    await reserved_becomes(budget_gateway, headers + waiting.header_bytes + 7 * CHUNK)
    await asyncio.sleep(0.3)
    waiting.call.cancel()
    await reserved_becomes(budget_gateway, headers + 5 * CHUNK)
    holding.finish()
    assert (await asyncio.wait_for(holding.result, TIMEOUT)).images
    await reserved_becomes(budget_gateway, 0)
    served = PacedUpload(stub, key, emulators, png(64, 64), kind)  # and one of its kind served whole
    served.finish()
    assert await asyncio.wait_for(served.result, TIMEOUT)
    await reserved_becomes(budget_gateway, 0)


async def test_a_one_message_edit_reserves_its_size_at_once_and_waits_its_turn(
    budget_gateway: GatewayThread,
    key: str,
    emulators: Emulators,
    stub: service_pb2_grpc.ImageGatewayStub,
    holding_upload: PacedUpload,
) -> None:
    upload = holding_upload
    request = images_pb2.EditImageRequest(
        parameters=images_pb2.ImageParameters(prompt="x", model="gpt-image-1.5"),
        routing=header(emulators).header.routing,
        images=[images_pb2.InputImage(data=noise_png(1100, 1100), filename="a.png")],
    )
    one = asyncio.ensure_future(
        stub.EditImage(request, metadata=(("authorization", f"Bearer {key}"),), timeout=TIMEOUT)
    )
    await asyncio.sleep(0.5)
    assert not one.done() and emulators.openai.requests == []
    upload.finish()
    assert (await asyncio.wait_for(upload.result, TIMEOUT)).images
    response = await asyncio.wait_for(one, TIMEOUT)  # served once the chunked upload gave its memory back
    assert response.images[0].data.startswith(PNG_SIGNATURE)
    await reserved_becomes(budget_gateway, 0)


async def test_a_failed_request_gives_back_its_memory_whether_refused_mid_upload_or_failed_upstream(
    budget_gateway: GatewayThread, key: str, emulators: Emulators, stub: service_pb2_grpc.ImageGatewayStub
) -> None:
    metadata = (("authorization", f"Bearer {key}"),)
    bad = [header(emulators), chunk(b"\0" * CHUNK), chunk(b"\0" * CHUNK), chunk(b"x", index=3)]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.EditImageUpload(iter(bad), metadata=metadata, timeout=TIMEOUT)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await reserved_becomes(budget_gateway, 0)
    image = png(64, 64)
    emulators.openai.inject(Fault.status(400))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.EditImageUpload(iter([header(emulators), chunk(image)]), metadata=metadata, timeout=TIMEOUT)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT and len(emulators.openai.requests) == 1
    await reserved_becomes(budget_gateway, 0)
    emulators.openai.inject(Fault.status(400))
    variation = images_pb2.CreateImageVariationRequest(
        parameters=images_pb2.ImageParameters(model="dall-e-2"),
        routing=header(emulators).header.routing,
        image=images_pb2.InputImage(data=image, filename="a.png"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.CreateImageVariation(variation, metadata=metadata, timeout=TIMEOUT)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await reserved_becomes(budget_gateway, 0)


GONE_CLIENT = textwrap.dedent(
    """
    import sys, time
    import grpc
    from imagegateway.v1 import images_pb2, service_pb2_grpc

    target, key = sys.argv[1], sys.argv[2]
    def messages():
        yield images_pb2.CreateImageVariationUploadRequest(header=images_pb2.CreateImageVariationUploadHeader())
        for _ in range(3):
            yield images_pb2.CreateImageVariationUploadRequest(chunk=b"\\0" * 1_000_000)
        time.sleep(600)
    stub = service_pb2_grpc.ImageGatewayStub(grpc.insecure_channel(target))
    stub.CreateImageVariationUpload(messages(), metadata=(("authorization", "Bearer " + key),))
    """
)


async def test_a_client_gone_mid_upload_gives_back_its_memory(budget_gateway: GatewayThread, key: str) -> None:
    header_bytes = images_pb2.CreateImageVariationUploadRequest(
        header=images_pb2.CreateImageVariationUploadHeader()
    ).ByteSize()
    client = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        GONE_CLIENT,
        budget_gateway.grpc_target,
        key,
        stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        await reserved_becomes(budget_gateway, header_bytes + 3 * CHUNK, within=30)
    finally:
        client.kill()  # the process dies: its connection closes with nothing said
        await asyncio.wait_for(client.wait(), 10)
    await reserved_becomes(budget_gateway, 0)
