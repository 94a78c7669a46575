"""Synthetic images: cached solid-colour images, random-noise PNGs, and the store behind image URLs.

PNGs are assembled with zlib (a solid colour compresses to a few KB in milliseconds); Pillow is only
used for JPEG and WebP. Every result is cached, so a busy emulator encodes each (size, format) once.
"""

from __future__ import annotations

import functools
import io
import os
import secrets
import struct
import threading
import zlib
from collections import OrderedDict
from typing import Literal

from PIL import Image

ImageFormat = Literal["png", "jpeg", "webp"]

CONTENT_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

_COLOUR = (90, 140, 200)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png(width: int, height: int, rows: bytes, *, alpha: bool, level: int) -> bytes:
    colour_type = 6 if alpha else 2
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, level)) + _chunk(b"IEND", b"")


@functools.lru_cache(maxsize=64)
def solid_image(width: int, height: int, fmt: ImageFormat = "png", transparent: bool = False) -> bytes:
    """A solid-colour image; `transparent` gives a fully transparent RGBA PNG/WebP."""
    if fmt == "png":
        pixel = bytes((*_COLOUR, 0)) if transparent else bytes(_COLOUR)
        row = b"\x00" + pixel * width
        return _png(width, height, row * height, alpha=transparent, level=6)
    mode = "RGBA" if transparent and fmt == "webp" else "RGB"
    colour = (*_COLOUR, 0) if mode == "RGBA" else _COLOUR
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buffer, "JPEG" if fmt == "jpeg" else "WEBP", quality=80)
    return buffer.getvalue()


@functools.lru_cache(maxsize=16)
def noise_png(width: int, height: int, nbytes: int) -> bytes:
    """A `width`x`height` PNG of about `nbytes`: leading rows of random noise, the rest solid.

    Capped by the size of the uncompressed noise (3 bytes a pixel).
    """
    stride = 1 + 3 * width
    noisy_rows = min(height, max(1, nbytes // stride))
    noise = b"".join(b"\x00" + os.urandom(stride - 1) for _ in range(noisy_rows))
    solid = (b"\x00" + bytes(_COLOUR) * width) * (height - noisy_rows)
    return _png(width, height, noise + solid, alpha=False, level=1)


class ImageStore:
    """Images handed out as URLs (`/_emulator/images/<id>.<ext>`), oldest dropped past `capacity`."""

    def __init__(self, capacity: int = 512) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._images: OrderedDict[str, tuple[str, bytes]] = OrderedDict()

    def put(self, data: bytes, fmt: ImageFormat) -> str:
        """Stores the image and returns its file name (`<id>.<ext>`)."""
        name = f"img_{secrets.token_hex(12)}.{fmt}"
        with self._lock:
            self._images[name] = (CONTENT_TYPES[fmt], data)
            while len(self._images) > self._capacity:
                self._images.popitem(last=False)
        return name

    def get(self, name: str) -> tuple[str, bytes] | None:
        """(content type, bytes) for a stored file name."""
        with self._lock:
            return self._images.get(name)
