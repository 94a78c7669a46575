"""Assembles a chunked EditImageUpload: a header message, then the input images, mask and markup in pieces.

For inputs larger than one gRPC message may hold (IMAGEGW_MAX_MESSAGE_BYTES), a client sends the
header first and then chunks of each file in order. The limits are enforced as the chunks arrive:
the number of images and the bytes of each file, each an INVALID_ARGUMENT naming the field, so an
oversized upload is refused before it is all in memory. Each file is hashed chunk by chunk as it
arrives, so a large upload never stalls the event loop for one long digest at the end.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator

from imagegateway.v1 import images_pb2
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.input_limits import InputLimits


@dataclasses.dataclass(frozen=True, slots=True)
class EditUpload:
    """The header and the assembled files, as (bytes, file name) pairs, and their SHA-256s in the order
    images, mask, markup."""

    header: images_pb2.EditImageUploadHeader
    images: list[tuple[bytes, str]]
    mask: tuple[bytes, str] | None
    markup: tuple[bytes, str] | None = None
    digests: tuple[str, ...] = ()


async def read_edit_upload(
    requests: AsyncIterator[images_pb2.EditImageUploadRequest], limits: InputLimits
) -> EditUpload:
    """Reads the whole stream; INVALID_ARGUMENT for a missing header, a chunk out of range or a file too large."""
    header: images_pb2.EditImageUploadHeader | None = None
    images: list[bytearray] = []
    mask: bytearray | None = None
    markup: bytearray | None = None
    hashes: dict[int, hashlib._Hash] = {}  # by id() of the file's buffer
    async for message in requests:
        part = message.WhichOneof("part")
        if header is None:
            if part != "header":
                raise InvalidArgument("the first message must carry the header", param="header")
            header = message.header
            count = header.image_count
            if not 1 <= count <= limits.max_input_images:
                raise InvalidArgument(
                    f"must be from 1 to {limits.max_input_images}, got {count}", param="header.image_count"
                )
            images = [bytearray() for _ in range(count)]
            mask = bytearray() if header.has_mask else None
            markup = bytearray() if header.has_markup else None
            continue
        if part != "chunk":
            raise InvalidArgument("only the first message may carry a header", param="header")
        chunk = message.chunk
        if chunk.markup and chunk.mask:
            raise InvalidArgument("a chunk is either the mask's or the markup's, not both", param="chunk.markup")
        if chunk.markup:
            if markup is None:
                raise InvalidArgument(
                    "a markup chunk was sent but the header says there is no markup", param="chunk.markup"
                )
            target, name = markup, "markup"
        elif chunk.mask:
            if mask is None:
                raise InvalidArgument("a mask chunk was sent but the header says there is no mask", param="chunk.mask")
            target, name = mask, "mask"
        else:
            if not 0 <= chunk.image_index < len(images):
                raise InvalidArgument(f"must be from 0 to {len(images) - 1}", param="chunk.image_index")
            target, name = images[chunk.image_index], f"images[{chunk.image_index}]"
        if len(target) + len(chunk.data) > limits.max_input_image_bytes:
            raise InvalidArgument(
                f"is larger than {limits.max_input_image_bytes} bytes, the most an input image may be",
                param=name,
                code="image_too_large",
            )
        target += chunk.data
        hashes.setdefault(id(target), hashlib.sha256()).update(chunk.data)
    if header is None:
        raise InvalidArgument("the upload ended before its header", param="header")
    names = list(header.filenames)
    buffers = [*images, *([mask] if mask is not None else []), *([markup] if markup is not None else [])]
    digests = tuple((hashes.get(id(data)) or hashlib.sha256()).hexdigest() for data in buffers)
    files = [(bytes(data), names[index] if index < len(names) else "") for index, data in enumerate(images)]
    return EditUpload(
        header,
        files,
        (bytes(mask), "mask.png") if mask is not None else None,
        (bytes(markup), "markup.png") if markup is not None else None,
        digests,
    )
