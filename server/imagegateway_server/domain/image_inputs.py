"""What an image request does (generate, edit, vary) and the images a caller sends with it.

An edit carries one or more input images and an optional mask; a variation carries one image. Both
front ends turn uploaded bytes into ``InputImage`` values here, checked once at the edge (count,
size, type, a mask's alpha channel and pixel size) so that the inside trusts them. An input image is
described to logs and cache keys by its size and SHA-256, never by its bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import hashlib
import re
import struct
from collections.abc import Sequence
from typing import Any

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.image_info import sniff_image

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# A file name travels upstream in a multipart part's header, where no control character may stand.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# PNG colour types with an alpha channel: greyscale + alpha (4) and RGBA (6).
_PNG_ALPHA_COLOUR_TYPES = (4, 6)


class Operation(enum.Enum):
    """What a request asks of the provider; adapters declare which they can do for a model."""

    GENERATE = "generate"
    EDIT = "edit"
    VARIATION = "variation"

    @property
    def noun(self) -> str:
        """How errors name the operation: "image generation", "image edits", "image variations"."""
        return {"generate": "image generation", "edit": "image edits", "variation": "image variations"}[self.value]


@dataclasses.dataclass(frozen=True, slots=True)
class InputImage:
    """One uploaded image: its bytes, what they are, and their digest."""

    data: bytes = dataclasses.field(repr=False)
    mime_type: str
    width: int
    height: int
    sha256: str
    filename: str = ""
    # Whether the image has an alpha channel (PNG colour type 4 or 6, or a tRNS chunk).
    has_alpha: bool = False
    # The size of ``data``; kept when the bytes are let go (``without_bytes``).
    byte_count: int = 0

    def without_bytes(self) -> InputImage:
        """The description alone, for what outlives the upstream calls (the request log's pending record)."""
        return dataclasses.replace(self, data=b"")

    def describe(self) -> dict[str, Any]:
        """What logs and cache keys hold of the image: never its bytes."""
        return {
            "bytes": self.byte_count,
            "sha256": self.sha256,
            "mime_type": self.mime_type,
            "width": self.width,
            "height": self.height,
        }


def input_image(
    data: bytes, *, param: str, filename: str = "", max_bytes: int | None = None, sha256: str | None = None
) -> InputImage:
    """Reads ``data`` as an uploaded image; an empty, oversized or unknown file is a 400 naming ``param``.
    ``sha256`` is the digest when the front end already has it (hashed as the bytes streamed in, or off
    the event loop by ``digests``)."""
    if _CONTROL_CHARACTER.search(filename):
        raise InvalidArgument("must not hold control characters (line breaks, tabs, NUL)", param=f"{param}.filename")
    if not data:
        raise InvalidArgument("is an empty file", param=param, code="invalid_image")
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidArgument(
            f"is {len(data)} bytes; an input image may be at most {max_bytes} bytes",
            param=param,
            code="image_too_large",
        )
    mime, width, height = sniff_image(data)
    if mime == "application/octet-stream" or not width or not height:
        raise InvalidArgument(
            "is not a PNG, JPEG, WebP or GIF image the gateway can read", param=param, code="invalid_image_format"
        )
    return InputImage(
        data=data,
        mime_type=mime,
        width=width,
        height=height,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        filename=filename,
        has_alpha=mime == "image/png" and png_has_alpha(data),
        byte_count=len(data),
    )


# Above this many bytes in all, ``digests`` hashes in a thread: hashlib releases the GIL on large
# buffers, so the event loop goes on serving while 16 images of 50 MB are digested (about 1 GB/s).
OFF_LOOP_DIGEST_BYTES = 1 << 20


async def digests(buffers: Sequence[bytes]) -> list[str]:
    """The SHA-256 of each buffer, in order; a large total is hashed off the event loop."""

    def hash_all() -> list[str]:
        return [hashlib.sha256(buffer).hexdigest() for buffer in buffers]

    if sum(len(buffer) for buffer in buffers) < OFF_LOOP_DIGEST_BYTES:
        return hash_all()
    return await asyncio.to_thread(hash_all)


def png_has_alpha(data: bytes) -> bool:
    """Whether a PNG has an alpha channel: an alpha colour type, or transparency in a tRNS chunk."""
    if not data.startswith(_PNG_SIGNATURE) or len(data) < 26:
        return False
    if data[25] in _PNG_ALPHA_COLOUR_TYPES:
        return True
    # tRNS comes before the first IDAT; walk the chunk headers only.
    offset = len(_PNG_SIGNATURE)
    while offset + 8 <= len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"tRNS":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        offset += 12 + length
    return False


def check_edit_inputs(
    images: Sequence[InputImage], mask: InputImage | None, *, max_images: int, image_param: str = "image"
) -> None:
    """An edit's images and mask as OpenAI checks them, before any upstream call."""
    if not images:
        raise InvalidArgument(
            "is required: send at least one image to edit", param=image_param, code="missing_required_parameter"
        )
    if len(images) > max_images:
        raise InvalidArgument(
            f"has {len(images)} images; at most {max_images} may be sent", param=image_param, code="too_many_images"
        )
    if mask is None:
        return
    if mask.mime_type != "image/png":
        raise InvalidArgument(f"must be a PNG image, got {mask.mime_type}", param="mask", code="invalid_image_format")
    if not mask.has_alpha:
        raise InvalidArgument(
            "must be a PNG with an alpha channel (transparent where the image is to be edited)",
            param="mask",
            code="invalid_image_format",
        )
    first = images[0]
    if (mask.width, mask.height) != (first.width, first.height):
        raise InvalidArgument(
            f"is {mask.width}x{mask.height} but the image is {first.width}x{first.height}; they must be the same size",
            param="mask",
            code="invalid_image_size",
        )


def check_variation_input(images: Sequence[InputImage], *, image_param: str = "image") -> None:
    """A variation takes exactly one image."""
    if len(images) != 1:
        raise InvalidArgument(f"must be exactly one image, got {len(images)}", param=image_param, code="invalid_value")


def check_input_bytes(images: Sequence[InputImage], mask: InputImage | None, *, max_bytes: int) -> None:
    """Every input image (and the mask) within the per-image limit (IMAGEGW_MAX_INPUT_IMAGE_BYTES)."""
    for index, image in enumerate(images):
        if len(image.data) > max_bytes:
            raise InvalidArgument(
                f"image {index} is {len(image.data)} bytes; an input image may be at most {max_bytes} bytes",
                param="image",
                code="image_too_large",
            )
    if mask is not None and len(mask.data) > max_bytes:
        raise InvalidArgument(
            f"is {len(mask.data)} bytes; a mask may be at most {max_bytes} bytes", param="mask", code="image_too_large"
        )


def check_markup(
    images: Sequence[InputImage], mask: InputImage | None, markup: InputImage | None, *, max_bytes: int
) -> None:
    """OpenAI's ``markup`` as its reference describes it: a transparent PNG overlay the size of the
    first image, never sent with a mask (they are two ways of saying where to edit)."""
    if markup is None:
        return
    if mask is not None:
        raise InvalidArgument("cannot be combined with mask; send one of them", param="markup", code="invalid_value")
    if markup.mime_type != "image/png" or not markup.has_alpha:
        raise InvalidArgument(
            "must be a PNG with an alpha channel (a transparent overlay with the marks drawn on it)",
            param="markup",
            code="invalid_image_format",
        )
    if len(markup.data) > max_bytes:
        raise InvalidArgument(
            f"is {len(markup.data)} bytes; it may be at most {max_bytes} bytes", param="markup", code="image_too_large"
        )
    first = images[0]
    if (markup.width, markup.height) != (first.width, first.height):
        raise InvalidArgument(
            f"is {markup.width}x{markup.height} but the first image is {first.width}x{first.height}; "
            "they must be the same size",
            param="markup",
            code="invalid_image_size",
        )
