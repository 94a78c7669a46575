"""Request-body decoding shared by the emulators: JSON objects and multipart/form-data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header


@dataclass(frozen=True)
class FormFile:
    """An uploaded file part."""

    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class Form:
    """Text fields (last value wins) and file parts of a multipart body; ``file_parts`` keeps every
    file part in order (``files`` only the last of each name), for fields repeated as ``image[]``."""

    fields: dict[str, str]
    files: dict[str, FormFile]
    file_parts: list[tuple[str, FormFile]] = field(default_factory=list)


class FormError(ValueError):
    """The body claims to be multipart/form-data but is not well formed."""


def media_type(content_type: str | None) -> str:
    """`multipart/form-data; boundary=x` -> `multipart/form-data`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)


def parse_multipart(content_type: str, body: bytes) -> Form:
    """Parses a multipart/form-data body; raises FormError when it is malformed."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise FormError("multipart body without a boundary")
    parts: list[_Part] = []
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        parts.append(_Part())

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers[header_name.decode("latin-1").lower()] = header_value.decode("utf-8", "replace")
        header_name.clear()
        header_value.clear()

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_part_data": on_part_data,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
    }
    parser = MultipartParser(boundary, callbacks)
    try:
        parser.write(body)
        parser.finalize()
    except FormParserError as exc:
        raise FormError(f"malformed multipart body: {exc}") from exc
    if not parts:
        raise FormError("multipart body without parts")
    fields: dict[str, str] = {}
    files: dict[str, FormFile] = {}
    file_parts: list[tuple[str, FormFile]] = []
    for part in parts:
        _, disposition = parse_options_header(part.headers.get("content-disposition"))
        name = disposition.get(b"name")
        if name is None:
            raise FormError("multipart part without a name")
        filename = disposition.get(b"filename")
        key = name.decode("utf-8", "replace")
        if filename is None:
            fields[key] = bytes(part.data).decode("utf-8", "replace")
        else:
            files[key] = FormFile(
                filename.decode("utf-8", "replace"), part.headers.get("content-type"), bytes(part.data)
            )
            file_parts.append((key, files[key]))
    return Form(fields, files, file_parts)
