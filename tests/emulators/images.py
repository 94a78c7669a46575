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

# gif and svg: OpenAI's animated and vector outputs of the gpt-image-2.6 models.
ImageFormat = Literal["png", "jpeg", "webp", "gif", "svg"]

CONTENT_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "svg": "image/svg+xml",
}

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
    """A solid-colour image; `transparent` gives a fully transparent RGBA PNG/WebP (gif: one frame)."""
    if fmt == "svg":
        return svg_document(width, height)
    if fmt == "gif":
        return animated_gif(width, height, 1, 200)
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
def animated_gif(width: int, height: int, frames: int, frame_duration_ms: int) -> bytes:
    """An animated GIF of ``frames`` solid frames, each shown ``frame_duration_ms``."""
    images = [Image.new("RGB", (width, height), tuple(c + 6 * i for c in _COLOUR)) for i in range(frames)]
    buffer = io.BytesIO()
    images[0].save(buffer, "GIF", save_all=True, append_images=images[1:], duration=frame_duration_ms, loop=0)
    return buffer.getvalue()


def svg_document(width: int, height: int) -> bytes:
    """A vector image: one rectangle of the solid colour."""
    r, g, b = _COLOUR
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" fill="rgb({r},{g},{b})"/></svg>'
    ).encode()


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
