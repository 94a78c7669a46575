"""What a provider produced, and what the router did to get it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from imagegateway_server.domain.errors import ErrorKind


@dataclasses.dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One image. ``data`` is set unless the caller asked for URLs and the provider gave one."""

    data: bytes | None
    mime_type: str
    width: int = 0
    height: int = 0
    url: str | None = None
    revised_prompt: str | None = None
    seed: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ImageResult:
    """A provider's successful answer."""

    images: tuple[GeneratedImage, ...]
    model: str
    created: int
    provider_request_id: str | None = None
    usage: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One upstream call made by the router."""

    target: str
    provider: str
    model: str
    status_code: int
    latency_ms: int
    retry_index: int = 0
    error_kind: ErrorKind | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.error_kind is None
