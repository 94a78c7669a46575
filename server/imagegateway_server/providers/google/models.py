"""The image models the Gemini API serves, and what each takes.

| model | call | size tiers | seed | negative prompt |
|---|---|---|---|---|
| gemini-2.5-flash-image | generateContent, one image per call | 1K only | yes | no |
| gemini-3-pro-image-preview | generateContent, one image per call | 1K, 2K, 4K | yes | no |
| imagen-4.0-generate-001, imagen-4.0-ultra-generate-001 | predict, 1-4 images | 1K, 2K | no | no |
| imagen-4.0-fast-generate-001 | predict, 1-4 images | 1K only | no | no |

The Gemini API takes neither a seed nor a negative prompt for Imagen (Google's GenAI SDK refuses
both there), nor output options or person generation for Gemini models.
"""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.providers.kit.google_adapter import GoogleImageModel
from imagegateway_server.providers.kit.google_imagen import ImagenModel

DEFAULT_MODEL = "gemini-2.5-flash-image"

MODELS = MappingProxyType(
    {
        "gemini-2.5-flash-image": GoogleImageModel(),
        "gemini-3-pro-image-preview": GoogleImageModel(("1K", "2K", "4K")),
        "imagen-4.0-generate-001": GoogleImageModel(("1K", "2K"), ImagenModel(("1K", "2K"))),
        "imagen-4.0-ultra-generate-001": GoogleImageModel(("1K", "2K"), ImagenModel(("1K", "2K"))),
        "imagen-4.0-fast-generate-001": GoogleImageModel((), ImagenModel()),
    }
)
