"""Request builders of the upload RPCs: EditImage, EditImageUpload (chunked), StreamEditImage and
CreateImageVariation.

Input images are given as bytes, or as ``(file name, bytes)`` pairs; the other fields are those of
``generate_image`` (``prompt``, ``model``, routing, ``metadata`` ...). An edit larger than one
message may hold is sent as EditImageUpload: a header, then each file in chunks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Unpack

from imagegateway.builders import GenerateFields, build_generate_request
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
    return itertools.chain([images_pb2.EditImageUploadRequest(header=header)], _chunks(files, chunk_bytes))


def _chunks(files: list[tuple[int, str, bytes]], chunk_bytes: int) -> Iterator[images_pb2.EditImageUploadRequest]:
    # ``kind`` is "" for an input image, else the one-of-a-kind file the bytes belong to.
    for index, kind, data in files:
        for start in range(0, len(data), chunk_bytes):
            chunk = images_pb2.EditImageUploadChunk(
                image_index=index,
                mask=kind == "mask",
                markup=kind == "markup",
                data=data[start : start + chunk_bytes],
            )
            yield images_pb2.EditImageUploadRequest(chunk=chunk)


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
