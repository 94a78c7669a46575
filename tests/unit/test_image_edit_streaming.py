"""Streamed edits without sockets: the edit form's stream fields (REST in, OpenAI out), the
``image_edit.*`` event names, and the gRPC messages whose shared layout the servicer and the client rely on."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image

from imagegateway import uploads
from imagegateway.v1 import images_pb2
from imagegateway_server.api.rest_multipart import Upload, UploadedFile
from imagegateway_server.api.rest_sse import EDIT_EVENTS, completed_event, partial_image_event
from imagegateway_server.api.rest_upload_mapping import edit_request
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.image_inputs import Operation
from imagegateway_server.domain.input_limits import DEFAULT_INPUT_LIMITS
from imagegateway_server.domain.progress import PartialImage
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage
from imagegateway_server.providers.kit.openai_images import build_form


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def form(**fields: str) -> Upload:
    return Upload(fields=dict(fields), files=[UploadedFile("image", "a.png", "image/png", png(8, 8))])


# -- the REST form in ----------------------------------------------------------------------------------


def test_a_streamed_edit_form_asks_for_base64_and_keeps_its_stream_fields() -> None:
    request = edit_request(form(prompt="a hat", stream="true", partial_images="2"), DEFAULT_INPUT_LIMITS)
    assert request.operation is Operation.EDIT
    assert (request.stream, request.partial_images, request.response_format) == (True, 2, ResponseFormat.B64_JSON)
    assert "stream" not in request.extra and "partial_images" not in request.extra


def test_an_edit_form_without_stream_is_not_streamed() -> None:
    request = edit_request(form(prompt="a hat", stream="false"), DEFAULT_INPUT_LIMITS)
    assert not request.stream and request.partial_images is None


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"stream": "maybe"}, "stream"),
        ({"stream": "true", "partial_images": "4"}, "partial_images"),
        ({"stream": "true", "partial_images": "two"}, "partial_images"),
        ({"stream": "true", "partial_images": "²"}, "partial_images"),  # a digit to str.isdigit(), not to int()
        ({"stream": "true", "partial_images": "-1"}, "partial_images"),
        ({"stream": "true", "response_format": "url"}, "response_format"),
    ],
)
def test_bad_stream_fields_of_an_edit_are_refused_naming_them(fields: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        edit_request(form(prompt="a hat", **fields), DEFAULT_INPUT_LIMITS)
    assert raised.value.param == param


# -- OpenAI's form out ---------------------------------------------------------------------------------


def streamed_edit(partial_images: int | None) -> ImageRequest:
    request = edit_request(form(prompt="a hat", stream="true"), DEFAULT_INPUT_LIMITS)
    return ImageRequest(
        prompt=request.prompt,
        operation=request.operation,
        images=request.images,
        stream=True,
        partial_images=partial_images,
    )


def test_a_streamed_edit_is_sent_with_stream_true_and_partial_images_as_form_fields() -> None:
    fields, files = build_form(streamed_edit(3), "gpt-image-1.5", provider="openai")
    assert ("stream", "true") in fields and ("partial_images", "3") in fields
    assert [f.name for f in files] == ["image"]
    fields, _ = build_form(streamed_edit(None), "gpt-image-1.5", provider="openai")
    assert ("stream", "true") in fields and "partial_images" not in dict(fields)


def test_an_edit_that_is_not_streamed_sends_no_stream_fields() -> None:
    plain = edit_request(form(prompt="a hat", partial_images="2"), DEFAULT_INPUT_LIMITS)
    fields, _ = build_form(plain, "gpt-image-1.5", provider="openai")
    assert "stream" not in dict(fields) and "partial_images" not in dict(fields)


# -- the events ----------------------------------------------------------------------------------------


def _parse(event: bytes) -> tuple[str, dict[str, Any]]:
    name, data = event.decode().removesuffix("\n\n").split("\n")
    return name.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def test_edit_events_are_named_image_edit_with_openais_fields() -> None:
    request = ImageRequest(prompt="x", quality="low", stream=True, operation=Operation.EDIT)
    partial = PartialImage(index=0, b64_json="AAAA", provider="openai", model="m", size="1024x1024", created_at=9)
    name, data = _parse(partial_image_event(partial, request, EDIT_EVENTS))
    assert name == data["type"] == "image_edit.partial_image"
    assert set(data) == {
        "type",
        "b64_json",
        "created_at",
        "size",
        "quality",
        "background",
        "output_format",
        "partial_image_index",
    }
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    image = GeneratedImage(b"\x00\x01", "image/png")
    name, data = _parse(completed_event(image, request, 7, {"usage": usage}, EDIT_EVENTS))
    assert name == data["type"] == "image_edit.completed" and data["usage"] == usage


# -- the gRPC messages ---------------------------------------------------------------------------------


def _fields(message: Any) -> list[tuple[str, int, int, str]]:
    """Each field's name, number, wire type and message type (a map's entry type is named per message)."""
    return [
        (f.name, f.number, f.type, f.message_type.name if f.message_type else "") for f in message.DESCRIPTOR.fields
    ]


def test_stream_edit_image_response_is_laid_out_as_stream_generate_image_response() -> None:
    # The servicer serializes StreamEditImage's messages with StreamGenerateImage's splicing code.
    assert _fields(images_pb2.StreamEditImageResponse) == _fields(images_pb2.StreamGenerateImageResponse)


def test_stream_edit_image_request_starts_with_edit_image_requests_fields() -> None:
    # The client builds it from the bytes of an EditImageRequest without markup (fields 1-7), then sets
    # the markup, whose number differs; the streaming switches are StreamGenerateImage's.
    edit_fields = [f for f in _fields(images_pb2.EditImageRequest) if f[0] != "markup"]
    stream_fields = _fields(images_pb2.StreamEditImageRequest)
    assert stream_fields[: len(edit_fields)] == edit_fields
    rest = {name: (kind, type_name) for name, _, kind, type_name in stream_fields[len(edit_fields) :]}
    assert set(rest) == {"progress", "partial_images", "stream_fallback", "markup"}
    markup = next(f for f in _fields(images_pb2.EditImageRequest) if f[0] == "markup")
    assert rest["markup"] == (markup[2], markup[3])


def test_the_client_carries_every_file_and_field_into_a_stream_edit_request() -> None:
    request = uploads.stream_edit_request(
        [("a.png", b"one"), b"two"], ("m.png", b"mask"), prompt="a hat", model="gpt-image-1.5", trace_id="t-1"
    )
    assert [(i.filename, i.data) for i in request.images] == [("a.png", b"one"), ("", b"two")]
    assert (request.mask.filename, request.mask.data) == ("m.png", b"mask")
    assert (request.parameters.prompt, request.parameters.model, request.trace_id) == ("a hat", "gpt-image-1.5", "t-1")
    assert not request.HasField("partial_images")
