"""The image responses the servicer serializes itself are exactly the messages protobuf would write."""

from __future__ import annotations

import os
from types import MappingProxyType

import pybase64
import pytest

from imagegateway.v1 import images_pb2
from imagegateway_server.api.grpc_image_responses import (
    generate_image_response,
    partial_image_response,
    progress_response,
    stream_image_response,
)
from imagegateway_server.api.grpc_mapping import fill_image_metadata, fill_outcome
from imagegateway_server.domain.calls import GenerationOutcome
from imagegateway_server.domain.errors import ErrorKind
from imagegateway_server.domain.image_info import sniff_image
from imagegateway_server.domain.progress import PartialImage, ProgressEvent, ProgressKind
from imagegateway_server.domain.result import AttemptRecord, GeneratedImage, ImageResult, RoutedResult
from imagegateway_server.routing.plan import Leaf

IMAGES = {
    "one small": (
        GeneratedImage(b"\x89PNG small", "image/png", 4, 3, provider="openai", model="dall-e-2", size="4x3"),
    ),
    "large, seeded, rewritten": (
        GeneratedImage(
            os.urandom(300_000),
            "image/webp",
            1024,
            1024,
            seed=2**40,
            revised_prompt="a kite, rewritten",
            provider="stability-ai",
            model="core",
            size="1024x1024",
        ),
    ),
    "a URL image and an empty one": (
        GeneratedImage(None, "image/png", url="https://example.test/a.png"),
        GeneratedImage(b"", ""),
    ),
    "several, lengths around varint steps": tuple(
        GeneratedImage(os.urandom(size), "image/jpeg", 8, 8) for size in (1, 127, 128, 16_384)
    ),
    "none": (),
}


def outcome(images: tuple[GeneratedImage, ...]) -> GenerationOutcome:
    leaf = Leaf(
        path="config.targets[1]",
        provider="openai",
        virtual_key="vk",
        credential=None,
        custom_host=None,
        override_params=MappingProxyType({}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )
    attempts = (
        AttemptRecord(
            "config.targets[0]", "stability-ai", "core", 503, 12, error_kind=ErrorKind.UNAVAILABLE, error="down"
        ),
        AttemptRecord("config.targets[1]", "openai", "dall-e-2", 200, 40, translations=("size=a->b",)),
    )
    routed = RoutedResult(
        result=ImageResult(images=images, model="dall-e-2", created=1_700_000_000),
        leaf=leaf,
        provider="openai",
        attempts=attempts,
        retry_count=0,
        fallback_used=True,
    )
    return GenerationOutcome(
        routed=routed, trace_id="trace-1", log_id="log_" + "ab" * 16, cache_status="MISS", cost_usd=0.02
    )


def image_message(message: images_pb2.Image, image: GeneratedImage, index: int) -> None:
    message.data = image.data or b""
    fill_image_metadata(message, image, index)


@pytest.mark.parametrize("images", IMAGES.values(), ids=IMAGES.keys())
def test_generate_image_response_is_what_protobuf_serializes(images: tuple[GeneratedImage, ...]) -> None:
    served = outcome(images)
    expected = images_pb2.GenerateImageResponse(created=1_700_000_000)
    for index, image in enumerate(images):
        image_message(expected.images.add(), image, index)
    fill_outcome(expected.outcome, served)
    spliced = generate_image_response(served).data
    assert spliced == expected.SerializeToString()
    assert images_pb2.GenerateImageResponse.FromString(spliced) == expected


@pytest.mark.parametrize("images", [v for v in IMAGES.values() if v], ids=[k for k, v in IMAGES.items() if v])
def test_stream_messages_are_what_protobuf_serializes(images: tuple[GeneratedImage, ...]) -> None:
    served = outcome(images)
    for index, image in enumerate(images):
        last = index == len(images) - 1
        expected = images_pb2.StreamGenerateImageResponse(created=1_700_000_000)
        image_message(expected.image, image, index)
        if last:
            fill_outcome(expected.outcome, served)
        spliced = stream_image_response(served, index, last=last).data
        assert images_pb2.StreamGenerateImageResponse.FromString(spliced) == expected
        assert spliced == expected.SerializeToString()


@pytest.mark.parametrize("index", [0, 2])
@pytest.mark.parametrize("size", [0, 1, 127, 128, 300_000])
@pytest.mark.parametrize("decoded", [True, False], ids=["bytes from the adapter", "base64 only"])
def test_a_partial_image_message_is_what_protobuf_serializes(index: int, size: int, decoded: bool) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(size) if size else b""
    b64 = pybase64.b64encode(data).decode()
    image = PartialImage(index, b64, "openai", "gpt-image-1.5", data=data if decoded else None)
    expected = images_pb2.StreamGenerateImageResponse(
        partial_image=images_pb2.PartialImage(
            index=index, data=data, mime_type=sniff_image(data)[0], provider="openai", model="gpt-image-1.5"
        )
    )
    spliced = partial_image_response(image).data
    assert images_pb2.StreamGenerateImageResponse.FromString(spliced) == expected
    assert spliced == expected.SerializeToString()


def test_every_progress_kind_has_its_message_and_a_fallback_carries_why_and_where_next() -> None:
    for kind in ProgressKind:
        event = ProgressEvent(kind, "config.targets[0]", "fal-ai", "flux")
        message = images_pb2.StreamGenerateImageResponse.FromString(progress_response(event).data)
        assert images_pb2.ProgressKind.Name(message.progress.kind) == f"PROGRESS_KIND_{kind.name}"
        assert not message.HasField("image") and not message.progress.HasField("queue_position")
    fell_back = ProgressEvent(
        ProgressKind.FALLBACK,
        "config.targets[0]",
        "black-forest-labs",
        "flux-2-pro",
        retry_index=1,
        error_kind=ErrorKind.CONTENT_POLICY,
        error="moderated",
        next_target="config.targets[1]",
    )
    progress = images_pb2.StreamGenerateImageResponse.FromString(progress_response(fell_back).data).progress
    assert (progress.error_kind, progress.error, progress.next_target, progress.retry_index) == (
        images_pb2.ERROR_KIND_CONTENT_POLICY,
        "moderated",
        "config.targets[1]",
        1,
    )
    queued = ProgressEvent(
        ProgressKind.QUEUED,
        "",
        "fal-ai",
        "flux",
        queue_position=0,
        poll_count=3,
        elapsed_seconds=1.25,
        status="IN_QUEUE",
    )
    progress = images_pb2.StreamGenerateImageResponse.FromString(progress_response(queued).data).progress
    assert progress.HasField("queue_position") and progress.queue_position == 0  # first in line is still a place
    assert (progress.poll_count, progress.elapsed_ms, progress.status) == (3, 1250, "IN_QUEUE")
