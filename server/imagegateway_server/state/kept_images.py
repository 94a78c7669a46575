"""Kept images: one image per opted-in request, for the dashboard's thumbnails; the async interface
every backend implements, and the synchronous one of the on-disk keeper it can wrap.

Which images may be kept (type, size, the request-log id's shape) is the keeper's rule; a backend
that keeps them elsewhere is given the same rule as ``Keepable``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

# Whether (log id, image bytes, MIME type) may be kept at all.
Keepable = Callable[[str, bytes, str], bool]


class LocalImageKeeper(Protocol):
    """A keeper in this process (``storage.kept_images.ImageKeeper``, on disk): synchronous and thread-safe."""

    def keep(self, log_id: str, data: bytes, mime_type: str) -> bool: ...

    def get(self, log_id: str) -> tuple[bytes, str] | None: ...

    def has(self, log_id: str) -> bool: ...


class KeptImages(Protocol):
    """Keeps and finds images by request-log id."""

    async def keep(self, log_id: str, data: bytes, mime_type: str) -> bool:
        """Stores the image of ``log_id``; False (nothing stored) when it may not be kept."""
        ...

    async def get(self, log_id: str) -> tuple[bytes, str] | None:
        """The image of ``log_id`` and its MIME type, or None."""
        ...

    async def kept_among(self, log_ids: Iterable[str]) -> set[str]:
        """Which of ``log_ids`` have an image (one look-up for a page of logs)."""
        ...
