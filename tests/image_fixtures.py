"""What the image-request tests build again and again: input PNGs (an image, OpenAI's alpha mask) and
inline-config targets pointing at the emulators."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from tests.conftest import OPENAI_SECRET, STABILITY_SECRET, Emulators


def png(width: int, height: int, colour: Any = (200, 80, 40), *, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), colour).save(buffer, "PNG")
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
