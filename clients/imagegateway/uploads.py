"""Request builders of the upload RPCs: EditImage, StreamEditImage and CreateImageVariation, and their
chunked forms EditImageUpload, StreamEditImageUpload and CreateImageVariationUpload.

Input images are given as bytes, or as ``(file name, bytes)`` pairs; the other fields are those of
``generate_image`` (``prompt``, ``model``, routing, ``metadata`` ...). Inputs larger than one
message may hold are sent chunked: a header, then each file in chunks; ``sends_chunked`` is the one
place that decides, for both clients and every upload RPC.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import TypeVar, Unpack

from imagegateway import events
from imagegateway.builders import GenerateFields, build_generate_request
from imagegateway.events import StreamFallbackName
from imagegateway.v1 import images_pb2

InputFile = bytes | tuple[str, bytes]
# Chunks of an upload: well under gRPC's default message limit, large enough to be cheap per message.
UPLOAD_CHUNK_BYTES = 1024 * 1024


def _input(file: InputFile) -> images_pb2.InputImage:
    if isinstance(file, bytes):
        return images_pb2.InputImage(data=file)
    name, data = file
    return images_pb2.InputImage(data=data, filename=name)


def input_bytes(images: Sequence[InputFile], mask: InputFile | None, markup: InputFile | None = None) -> int:
    """The bytes the files of an edit carry."""
    files = [*images, *(file for file in (mask, markup) if file is not None)]
    return sum(len(_input(file).data) for file in files)


def sends_chunked(input_size: int, max_message_bytes: int, chunked: bool | None) -> bool:
    """Whether an upload of ``input_size`` bytes of files goes chunked: ``chunked`` when the caller says,
    else when the files are over half the message limit (the rest of the message, base64-free but with
    its parameters and framing, must fit too, and the server's limit may be lower than the client's)."""
    return chunked if chunked is not None else input_size > max_message_bytes // 2


def edit_request(
    images: Sequence[InputFile],
    mask: InputFile | None,
    markup: InputFile | None = None,
    **fields: Unpack[GenerateFields],
) -> images_pb2.EditImageRequest:
    """One EditImageRequest carrying every file."""
    base = build_generate_request(**fields)
    request = images_pb2.EditImageRequest(
        parameters=base.parameters,
        routing=base.routing,
        images=[_input(image) for image in images],
        trace_id=base.trace_id,
        metadata=dict(base.metadata),
    )
    if mask is not None:
        request.mask.CopyFrom(_input(mask))
    if markup is not None:
        request.markup.CopyFrom(_input(markup))
    return request


def stream_edit_request(
    images: Sequence[InputFile],
    mask: InputFile | None,
    markup: InputFile | None = None,
    **fields: Unpack[GenerateFields],
) -> images_pb2.StreamEditImageRequest:
    """One StreamEditImageRequest carrying every file (its streaming switches are set by ``events``)."""
    edit = edit_request(images, mask, **fields)
    # The two requests share their first seven fields (same numbers and types); the markup has another
    # number in each, so it is set after the copy.
    request = images_pb2.StreamEditImageRequest.FromString(edit.SerializeToString())
    if markup is not None:
        request.markup.CopyFrom(_input(markup))
    return request


def _edit_upload_header(
    images: Sequence[InputFile],
    mask: InputFile | None,
    markup: InputFile | None,
    fields: GenerateFields,
) -> tuple[images_pb2.EditImageUploadHeader, list[tuple[int, str, bytes]]]:
    """The header of an edit upload, and the files its chunks carry as (image index, kind, bytes)."""
    base = build_generate_request(**fields)
    inputs = [_input(image) for image in images]
    header = images_pb2.EditImageUploadHeader(
        parameters=base.parameters,
        routing=base.routing,
        image_count=len(inputs),
        has_mask=mask is not None,
        has_markup=markup is not None,
        trace_id=base.trace_id,
        metadata=dict(base.metadata),
        filenames=[image.filename for image in inputs],
    )
    files: list[tuple[int, str, bytes]] = [(index, "", image.data) for index, image in enumerate(inputs)]
    if mask is not None:
        files.append((0, "mask", _input(mask).data))
    if markup is not None:
        files.append((0, "markup", _input(markup).data))
    # Announced, the gateway reserves the upload's memory at once and queues it whole, as a REST upload.
    header.upload_bytes = sum(len(data) for _, _, data in files)
    return header, files


def edit_upload_messages(
    images: Sequence[InputFile],
    mask: InputFile | None,
    markup: InputFile | None = None,
    *,
    chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    **fields: Unpack[GenerateFields],
) -> Iterator[images_pb2.EditImageUploadRequest]:
    """The header, then each image's chunks in order, then the mask's, then the markup's.

    The header is built here, so a bad field raises at the call; the chunks are made as gRPC sends them.
    """
    header, files = _edit_upload_header(images, mask, markup, fields)
    first = images_pb2.EditImageUploadRequest(header=header)
    return itertools.chain([first], _chunks(files, chunk_bytes, images_pb2.EditImageUploadRequest))


def stream_edit_upload_messages(
    images: Sequence[InputFile],
    mask: InputFile | None,
    markup: InputFile | None = None,
    *,
    partial_images: int | None = None,
    stream_fallback: StreamFallbackName | None = None,
    chunk_bytes: int = UPLOAD_CHUNK_BYTES,
    **fields: Unpack[GenerateFields],
) -> Iterator[images_pb2.StreamEditImageUploadRequest]:
    """StreamEditImageUpload's messages: ``edit_upload_messages``' header with the streaming switches
    (progress reports always), then the same chunks."""
    edit_header, files = _edit_upload_header(images, mask, markup, fields)
    # StreamEditImageUploadHeader has EditImageUploadHeader's fields under the same numbers.
    header = images_pb2.StreamEditImageUploadHeader.FromString(edit_header.SerializeToString())
    events.stream_request(header, partial_images, stream_fallback)
    first = images_pb2.StreamEditImageUploadRequest(header=header)
    return itertools.chain([first], _chunks(files, chunk_bytes, images_pb2.StreamEditImageUploadRequest))


_UploadRequest = TypeVar("_UploadRequest", images_pb2.EditImageUploadRequest, images_pb2.StreamEditImageUploadRequest)


def _chunks(
    files: list[tuple[int, str, bytes]], chunk_bytes: int, message: type[_UploadRequest]
) -> Iterator[_UploadRequest]:
    # ``kind`` is "" for an input image, else the one-of-a-kind file the bytes belong to.
    for index, kind, data in files:
        for start in range(0, len(data), chunk_bytes):
            chunk = images_pb2.EditImageUploadChunk(
                image_index=index,
                mask=kind == "mask",
                markup=kind == "markup",
                data=data[start : start + chunk_bytes],
            )
            yield message(chunk=chunk)


def as_edit_response(response: images_pb2.EditImageUploadResponse) -> images_pb2.EditImageResponse:
    # The two responses are field-for-field identical by design (same numbers and types).
    return images_pb2.EditImageResponse.FromString(response.SerializeToString())


def variation_request(image: InputFile, **fields: Unpack[GenerateFields]) -> images_pb2.CreateImageVariationRequest:
    """A CreateImageVariationRequest; a variation takes no prompt."""
    base = build_generate_request(**fields)
    return images_pb2.CreateImageVariationRequest(
        parameters=base.parameters,
        routing=base.routing,
        image=_input(image),
        trace_id=base.trace_id,
        metadata=dict(base.metadata),
    )


def variation_upload_messages(
    image: InputFile, *, chunk_bytes: int = UPLOAD_CHUNK_BYTES, **fields: Unpack[GenerateFields]
) -> Iterator[images_pb2.CreateImageVariationUploadRequest]:
    """CreateImageVariationUpload's messages: the header (built here, so a bad field raises at the call),
    then the image's bytes in chunks, made as gRPC sends them."""
    base = build_generate_request(**fields)
    file = _input(image)
    header = images_pb2.CreateImageVariationUploadHeader(
        parameters=base.parameters,
        routing=base.routing,
        trace_id=base.trace_id,
        metadata=dict(base.metadata),
        filename=file.filename,
        upload_bytes=len(file.data),
    )
    data = file.data
    chunks = (
        images_pb2.CreateImageVariationUploadRequest(chunk=data[start : start + chunk_bytes])
        for start in range(0, len(data), chunk_bytes)
    )
    return itertools.chain([images_pb2.CreateImageVariationUploadRequest(header=header)], chunks)


def as_variation_response(
    response: images_pb2.CreateImageVariationUploadResponse,
) -> images_pb2.CreateImageVariationResponse:
    # The two responses are field-for-field identical by design (same numbers and types).
    return images_pb2.CreateImageVariationResponse.FromString(response.SerializeToString())
