"""What an emulator saw: decoded requests kept for assertions, and their short JSON summaries."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .forms import Form, FormError, FormFile, json_object, media_type, parse_multipart
from .server import HttpRequest

_SUMMARY_STRING_LIMIT = 200
_SECRET_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "x-goog-api-key", "x-amz-security-token"})


@dataclass(frozen=True)
class RecordedRequest:
    """A provider request with its body decoded: `json` for JSON bodies, `form`/`files` for multipart."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None
    form: dict[str, str] | None
    files: dict[str, FormFile] = field(default_factory=dict)
    body: bytes = b""
    # Every file part in order (``files`` keeps the last of each name; ``image[]`` repeats).
    file_parts: list[tuple[str, FormFile]] = field(default_factory=list)
    query: dict[str, str] = field(default_factory=dict)
    request_id: str = ""

    @classmethod
    def decode(cls, request: HttpRequest, request_id: str = "") -> RecordedRequest:
        content_type = request.headers.get("content-type")
        kind = media_type(content_type)
        body_json: dict[str, Any] | None = None
        form: Form | None = None
        if kind == "multipart/form-data":
            try:
                form = parse_multipart(content_type or "", request.body)
            except FormError:
                form = None
        elif request.body:
            body_json = json_object(request.body)
        return cls(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            json=body_json,
            form=form.fields if form else None,
            files=form.files if form else {},
            body=request.body,
            file_parts=form.file_parts if form else [],
            query=dict(request.query),
            request_id=request_id,
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-able view with long strings shortened and secrets masked."""
        headers = {k: ("***" if k in _SECRET_HEADERS else v) for k, v in self.headers.items()}
        return {
            "request_id": self.request_id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "json": _shorten(self.json),
            "form": _shorten(self.form),
            "files": {
                name: {"filename": f.filename, "content_type": f.content_type, "size": len(f.data)}
                for name, f in self.files.items()
            },
            "body_bytes": len(self.body),
        }


def _shorten(value: Any) -> Any:
    if isinstance(value, str) and len(value) > _SUMMARY_STRING_LIMIT:
        return f"{value[:_SUMMARY_STRING_LIMIT]}... ({len(value)} chars)"
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    return value


class RequestLog:
    """The most recent `capacity` requests, in arrival order."""

    def __init__(self, capacity: int = 1000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._items: list[RecordedRequest] = []

    def add(self, request: RecordedRequest) -> None:
        with self._lock:
            self._items.append(request)
            if len(self._items) > self._capacity:
                del self._items[: len(self._items) - self._capacity]

    def snapshot(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
