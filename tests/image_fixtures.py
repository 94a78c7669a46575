"""What the image-request tests build again and again: input images (pictures, OpenAI's alpha masks),
edit requests, and inline-config targets pointing at the emulators."""

from __future__ import annotations

import io
import os
from typing import Any

from PIL import Image

from imagegateway_server.domain.image_inputs import Operation, input_image
from imagegateway_server.domain.request import ImageRequest
from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators


def png(width: int, height: int, colour: Any = (200, 80, 40), *, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """A PNG of random pixels: they do not compress, so it is about 3 bytes a pixel (a large upload)."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def mask_png(width: int, height: int) -> bytes:
    """OpenAI's mask: opaque, with a fully transparent square (alpha 0) where the edit goes."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (width // 4, height // 4, 3 * width // 4, 3 * height // 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def openai_target(emulators: Emulators, **fields: Any) -> dict[str, Any]:
    return {"provider": "openai", "api_key": OPENAI_SECRET, "custom_host": emulators.openai.base_url, **fields}


def stability_target(emulators: Emulators, **fields: Any) -> dict[str, Any]:
    return {
        "provider": "stability-ai",
        "api_key": STABILITY_SECRET,
        "custom_host": emulators.stability.base_url,
        **fields,
    }


def fallback(*targets: dict[str, Any]) -> dict[str, Any]:
    return {"strategy": {"mode": "fallback"}, "targets": list(targets)}


def photo(colour: Any = (200, 30, 30), fmt: str = "PNG", size: tuple[int, int] = (64, 48)) -> bytes:
    """An opaque picture in ``fmt`` (PNG, JPEG, WEBP ...)."""
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, fmt)
    return buffer.getvalue()


def left_half_mask(width: int = 64, height: int = 48) -> bytes:
    """OpenAI's mask whose transparent left half marks where to edit."""
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, width // 2, height))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def edit_of(
    *images: bytes, prompt: str, model: str | None = None, mask: bytes | None = None, **fields: Any
) -> ImageRequest:
    """An edit request of ``images`` (under ``mask``), as the front ends build it."""
    return ImageRequest(
        prompt=prompt,
        model=model,
        operation=Operation.EDIT,
        images=tuple(input_image(data, param="image") for data in images),
        mask=input_image(mask, param="mask") if mask else None,
        **fields,
    )
