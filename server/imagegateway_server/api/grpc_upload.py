"""Assembles the chunked uploads: EditImageUpload and StreamEditImageUpload (a header message, then the
input images, mask and markup in pieces) and CreateImageVariationUpload (a header, then the one image).

For inputs larger than one gRPC message may hold (IMAGEGW_MAX_MESSAGE_BYTES), a client sends the
header first and then chunks of each file in order. The limits are enforced as the chunks arrive:
the number of images and the bytes of each file, each an INVALID_ARGUMENT naming the field, so an
oversized upload is refused before it is all in memory. Each file is hashed chunk by chunk as it
arrives, so a large upload never stalls the event loop for one long digest at the end.

Each message read is added to the upload's reservation against the process's upload budget
(IMAGEGW_UPLOAD_MEMORY_BYTES, ``upload_budget``) before the next is read: while the budget has no
room the stream is not read, so the client's further chunks wait in the transport's flow control. A
header that announces the upload's size (``upload_bytes``) reserves it with the header, waiting its
turn as a REST upload does; its chunks then count against the announcement before they grow it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import Any

from imagegateway.v1 import images_pb2
from imagegateway_server.api.upload_budget import Reservation
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.input_limits import InputLimits

# The two edit uploads' headers share their fields (same names and numbers); the streamed one adds
# the streaming switches, which the servicer reads from it as it reads StreamEditImageRequest's.
EditHeader = images_pb2.EditImageUploadHeader | images_pb2.StreamEditImageUploadHeader


class _Announced:
    """The bytes a header announced, reserved with it: chunks draw on them before they grow the reservation."""

    __slots__ = ("_left",)

    def __init__(self, announced: int) -> None:
        self._left = announced

    def beyond(self, size: int) -> int:
        """How much of a chunk of ``size`` bytes the announcement does not cover."""
        covered = min(self._left, size)
        self._left -= covered
        return size - covered


def _announced(
    header: EditHeader | images_pb2.CreateImageVariationUploadHeader, files: int, limits: InputLimits
) -> int:
    """The header's ``upload_bytes``: 0 to what ``files`` files may hold, else INVALID_ARGUMENT."""
    most = files * limits.max_input_image_bytes
    if not 0 <= header.upload_bytes <= most:
        raise InvalidArgument(
            f"must be from 0 to {most} (what the files may hold), got {header.upload_bytes}",
            param="header.upload_bytes",
        )
    return header.upload_bytes


class _UploadFile:
    """One file of an upload as its chunks arrive: the bytes, their running SHA-256, and the size limit."""

    __slots__ = ("_hash", "data", "param")

    def __init__(self, param: str) -> None:
        self.param = param
        self.data = bytearray()
        self._hash = hashlib.sha256()

    def append(self, chunk: bytes, limits: InputLimits) -> None:
        if len(self.data) + len(chunk) > limits.max_input_image_bytes:
            raise InvalidArgument(
                f"is larger than {limits.max_input_image_bytes} bytes, the most an input image may be",
                param=self.param,
                code="image_too_large",
            )
        self.data += chunk
        self._hash.update(chunk)

    def digest(self) -> str:
        return self._hash.hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class EditUpload:
    """The header and the assembled files, as (bytes, file name) pairs, and their SHA-256s in the order
    images, mask, markup."""

    header: EditHeader
    images: list[tuple[bytes, str]]
    mask: tuple[bytes, str] | None
    markup: tuple[bytes, str] | None = None
    digests: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class VariationUpload:
    """The header, the image as a (bytes, file name) pair, and its SHA-256."""

    header: images_pb2.CreateImageVariationUploadHeader
    image: tuple[bytes, str]
    digest: str


def _is_header(message: Any, header: object | None) -> bool:
    """Whether ``message`` is the upload's header (``header``: the one read so far, if any); the header
    comes first and only first, every later message is a chunk."""
    part = message.WhichOneof("part")
    if header is None:
        if part != "header":
            raise InvalidArgument("the first message must carry the header", param="header")
        return True
    if part != "chunk":
        raise InvalidArgument("only the first message may carry a header", param="header")
    return False


def _no_header() -> InvalidArgument:
    """The refusal of an upload that ended before its header came."""
    return InvalidArgument("the upload ended before its header", param="header")


async def read_edit_upload(
    requests: AsyncIterator[images_pb2.EditImageUploadRequest] | AsyncIterator[images_pb2.StreamEditImageUploadRequest],
    limits: InputLimits,
    reservation: Reservation,
) -> EditUpload:
    """Reads the whole stream into ``reservation``; INVALID_ARGUMENT for a missing header, a chunk out of
    range or a file too large, RESOURCE_EXHAUSTED when the upload budget cannot hold it."""
    header: EditHeader | None = None
    images: list[_UploadFile] = []
    mask: _UploadFile | None = None
    markup: _UploadFile | None = None
    announced = _Announced(0)
    async for message in requests:
        if _is_header(message, header):
            header = message.header
            count = header.image_count
            if not 1 <= count <= limits.max_input_images:
                raise InvalidArgument(
                    f"must be from 1 to {limits.max_input_images}, got {count}", param="header.image_count"
                )
            images = [_UploadFile(f"images[{index}]") for index in range(count)]
            mask = _UploadFile("mask") if header.has_mask else None
            markup = _UploadFile("markup") if header.has_markup else None
            size = _announced(header, count + header.has_mask + header.has_markup, limits)
            announced = _Announced(size)
            await reservation.grow(message.ByteSize() + size)
            continue
        chunk = message.chunk
        if chunk.markup and chunk.mask:
            raise InvalidArgument("a chunk is either the mask's or the markup's, not both", param="chunk.markup")
        if chunk.markup:
            if markup is None:
                raise InvalidArgument(
                    "a markup chunk was sent but the header says there is no markup", param="chunk.markup"
                )
            target = markup
        elif chunk.mask:
            if mask is None:
                raise InvalidArgument("a mask chunk was sent but the header says there is no mask", param="chunk.mask")
            target = mask
        else:
            if not 0 <= chunk.image_index < len(images):
                raise InvalidArgument(f"must be from 0 to {len(images) - 1}", param="chunk.image_index")
            target = images[chunk.image_index]
        target.append(chunk.data, limits)
        await reservation.grow(announced.beyond(len(chunk.data)))
    if header is None:
        raise _no_header()
    names = list(header.filenames)
    files = [*images, *([mask] if mask is not None else []), *([markup] if markup is not None else [])]
    return EditUpload(
        header,
        [(bytes(file.data), names[index] if index < len(names) else "") for index, file in enumerate(images)],
        (bytes(mask.data), "mask.png") if mask is not None else None,
        (bytes(markup.data), "markup.png") if markup is not None else None,
        tuple(file.digest() for file in files),
    )


async def read_variation_upload(
    requests: AsyncIterator[images_pb2.CreateImageVariationUploadRequest],
    limits: InputLimits,
    reservation: Reservation,
) -> VariationUpload:
    """Reads the whole stream into ``reservation``; INVALID_ARGUMENT for a missing header, no image bytes or
    an image too large, RESOURCE_EXHAUSTED when the upload budget cannot hold it."""
    header: images_pb2.CreateImageVariationUploadHeader | None = None
    image = _UploadFile("image")
    announced = _Announced(0)
    async for message in requests:
        if _is_header(message, header):
            header = message.header
            size = _announced(header, 1, limits)
            announced = _Announced(size)
            await reservation.grow(message.ByteSize() + size)
        else:
            image.append(message.chunk, limits)
            await reservation.grow(announced.beyond(len(message.chunk)))
    if header is None:
        raise _no_header()
    if not image.data:
        raise InvalidArgument("is required: send the image's bytes in chunks after the header", param="image")
    return VariationUpload(header, (bytes(image.data), header.filename), image.digest())
