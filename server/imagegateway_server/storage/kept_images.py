"""Keeps one image per opted-in request on disk, bounded in size, so the dashboard can show a thumbnail.

Off unless IMAGEGW_KEEP_IMAGES is set and the caller asks per request. Only the first image of a
request is kept, only PNG, JPEG or WebP, only up to ``max_image_bytes``; once the directory holds
more than ``max_total_bytes`` the oldest images go first. Files are named by the request-log id,
so whoever may read that log record may see its image, and nobody else (the caller checks that).
The directory is per process: replicas behind a load balancer each keep their own images.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

KEEPABLE_TYPES: dict[str, str] = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
_TYPE_OF_SUFFIX = {suffix: mime for mime, suffix in KEEPABLE_TYPES.items()}
# Log ids are "log_" + 32 hex digits; anything else never becomes a path.
_LOG_ID = re.compile(r"log_[0-9a-f]{32}")

DEFAULT_MAX_IMAGE_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_TOTAL_BYTES = 256 * 1024 * 1024


def is_log_id(value: str) -> bool:
    """True when ``value`` has the shape of a request-log id."""
    return _LOG_ID.fullmatch(value) is not None


class ImageKeeper:
    """A directory of kept images indexed by log id, oldest evicted first. Thread-safe."""

    def __init__(
        self,
        directory: Path,
        *,
        max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    ) -> None:
        self._dir = directory
        self._max_image = max_image_bytes
        self._max_total = max_total_bytes
        self._lock = threading.Lock()
        # log id -> (path, size), oldest first.
        self._index: OrderedDict[str, tuple[Path, int]] = OrderedDict()
        self._total = 0
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = []
        for path in directory.iterdir():
            if path.suffix in _TYPE_OF_SUFFIX and is_log_id(path.stem) and path.is_file():
                stat = path.stat()
                found.append((stat.st_mtime_ns, path.stem, path, stat.st_size))
            elif path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # a write cut short by a crash
        for _, log_id, path, size in sorted(found):
            self._index[log_id] = (path, size)
            self._total += size
        self._evict()

    @property
    def total_bytes(self) -> int:
        return self._total

    def keep(self, log_id: str, data: bytes, mime_type: str) -> bool:
        """Stores the image of ``log_id``; False (and nothing stored) when it is not keepable."""
        suffix = KEEPABLE_TYPES.get(mime_type)
        if suffix is None or not is_log_id(log_id) or not data or len(data) > self._max_image:
            return False
        path = self._dir / (log_id + suffix)
        temporary = path.with_name(path.name + ".tmp")
        # Write then rename, so a reader never sees half an image.
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
        with self._lock:
            previous = self._index.pop(log_id, None)
            if previous is not None:
                self._total -= previous[1]
            self._index[log_id] = (path, len(data))
            self._total += len(data)
            self._evict()
        return True

    def get(self, log_id: str) -> tuple[bytes, str] | None:
        """The kept image of ``log_id`` and its MIME type, or None."""
        with self._lock:
            entry = self._index.get(log_id)
        if entry is None:
            return None
        path = entry[0]
        try:
            return path.read_bytes(), _TYPE_OF_SUFFIX[path.suffix]
        except FileNotFoundError:  # evicted between the look-up and the read
            return None

    def has(self, log_id: str) -> bool:
        with self._lock:
            return log_id in self._index

    def _evict(self) -> None:
        # Called with the lock held (or from __init__, before the keeper is shared).
        while self._total > self._max_total and self._index:
            _, (path, size) = self._index.popitem(last=False)
            self._total -= size
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
