"""Reads a multipart/form-data upload (OpenAI's edits and variations) as it streams in, under limits.

The body is fed chunk by chunk to python-multipart's push parser, so nothing beyond the parts
themselves is buffered, and the limits cut the upload short as soon as they are crossed: the whole
body (IMAGEGW_MAX_BODY_BYTES, a 413), each file (IMAGEGW_MAX_INPUT_IMAGE_BYTES) and the number of
files (IMAGEGW_MAX_INPUT_IMAGES, plus a mask), each a 400 naming the field. Text fields are small
by nature and capped too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from imagegateway_server.domain.errors import InvalidArgument

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# A text field (a prompt of 32,000 characters is the longest OpenAI takes) never needs more.
MAX_FIELD_BYTES = 256 * 1024
MAX_PARTS = 64


class BodyTooLarge(Exception):
    """The upload crossed the body limit (a 413 for the shim)."""


@dataclasses.dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part: its field name (``image``, ``image[]``, ``mask``), file name, type and bytes."""

    name: str
    filename: str
    content_type: str
    data: bytes = dataclasses.field(repr=False)
    # Hashed as the bytes streamed in, so a large upload is never digested in one long stall.
    sha256: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class Upload:
    """A parsed form: text fields (a repeated name keeps its last value) and file parts in order."""

    fields: dict[str, str]
    files: list[UploadedFile]


@dataclasses.dataclass
class _Part:
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    name: str = ""
    filename: str | None = None
    data: bytearray = dataclasses.field(default_factory=bytearray)
    digest: hashlib._Hash | None = None


class _Reader:
    """The parser's callbacks: collects parts and enforces the per-part limits as bytes arrive."""

    def __init__(self, *, max_file_bytes: int, max_files: int) -> None:
        self.max_file_bytes = max_file_bytes
        self.max_files = max_files
        self.parts: list[_Part] = []
        self.files = 0
        self._header_name = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.part_begin,
            "on_part_data": self.part_data,
            "on_header_field": self.header_field,
            "on_header_value": self.header_value,
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
        }

    def part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise InvalidArgument(f"the form has more than {MAX_PARTS} parts", param=None)
        self.parts.append(_Part())

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name.extend(data[start:end])

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def header_end(self) -> None:
        name = self._header_name.decode("latin-1").lower()
        self.parts[-1].headers[name] = self._header_value.decode("utf-8", "replace")
        self._header_name.clear()
        self._header_value.clear()

    def headers_finished(self) -> None:
        part = self.parts[-1]
        _, options = parse_options_header(part.headers.get("content-disposition", ""))
        name = options.get(b"name")
        if name is None:
            raise InvalidArgument("a part of the form has no name", param=None)
        part.name = name.decode("utf-8", "replace")
        filename = options.get(b"filename")
        if filename is not None:
            part.filename = filename.decode("utf-8", "replace")
            part.digest = hashlib.sha256()
            self.files += 1
            if self.files > self.max_files:
                param = part.name.removesuffix("[]")
                raise InvalidArgument(
                    f"too many files: at most {self.max_files - 1} images and a mask may be sent",
                    param=param,
                    code="too_many_images",
                )

    def part_data(self, data: bytes, start: int, end: int) -> None:
        part = self.parts[-1]
        piece = memoryview(data)[start:end]
        part.data += piece
        if part.digest is not None:
            part.digest.update(piece)
        if part.filename is not None:
            if len(part.data) > self.max_file_bytes:
                raise InvalidArgument(
                    f"a file is larger than {self.max_file_bytes} bytes, the most an input image may be",
                    param=part.name.removesuffix("[]"),
                    code="image_too_large",
                )
        elif len(part.data) > MAX_FIELD_BYTES:
            raise InvalidArgument(f"is longer than {MAX_FIELD_BYTES} bytes", param=part.name)


async def read_upload(
    content_type: str,
    chunks: AsyncIterator[bytes],
    *,
    max_body_bytes: int,
    max_file_bytes: int,
    max_files: int,
) -> Upload:
    """Parses the streamed body; raises BodyTooLarge or InvalidArgument naming the field."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise InvalidArgument("a multipart/form-data body needs a boundary in its Content-Type", param="content-type")
    reader = _Reader(max_file_bytes=max_file_bytes, max_files=max_files)
    parser = MultipartParser(boundary, reader.callbacks())
    size = 0
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_body_bytes:
                raise BodyTooLarge
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise InvalidArgument("the request body is not a well-formed multipart/form-data body", param=None) from None
    fields: dict[str, str] = {}
    files: list[UploadedFile] = []
    for part in reader.parts:
        if part.filename is None:
            fields[part.name] = part.data.decode("utf-8", "replace")
        else:
            content = part.headers.get("content-type", "application/octet-stream")
            digest = part.digest.hexdigest() if part.digest is not None else ""
            files.append(UploadedFile(part.name, part.filename, content, bytes(part.data), digest))
            part.data = bytearray()  # the copy above is the one kept
    return Upload(fields, files)
