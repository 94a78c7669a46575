"""The image models Vertex AI serves, and what each takes.

| model | call | size tiers | seed | negative prompt |
|---|---|---|---|---|
| imagen-4.0-generate-001, imagen-4.0-ultra-generate-001 | predict, 1-4 images | 1K, 2K | yes | no |
| imagen-4.0-fast-generate-001 | predict, 1-4 images | 1K only | yes | no |
| imagen-3.0-generate-002 | predict, 1-4 images | 1K only | yes | no |
| imagen-3.0-generate-001, imagen-3.0-fast-generate-001 | predict, 1-4 images | 1K only | yes | yes |
| gemini-2.5-flash-image | generateContent, one image per call | 1K only | yes | no |
| gemini-3-pro-image-preview | generateContent, one image per call | 1K, 2K, 4K | yes | no |

A seed is sent with ``addWatermark: false``, without which Vertex ignores it. Google's GenAI SDK
documents ``sampleImageSize`` as unsupported on Imagen 3 and on Imagen 4 Fast, and the negative
prompt as dropped after ``imagen-3.0-generate-001``.
"""

from __future__ import annotations

from types import MappingProxyType

from imagegateway_server.providers.kit.google_adapter import GoogleImageModel
from imagegateway_server.providers.kit.google_imagen import ImagenModel

DEFAULT_MODEL = "imagen-4.0-generate-001"

_TIERS_2K = ("1K", "2K")
MODELS = MappingProxyType(
    {
        "imagen-4.0-generate-001": GoogleImageModel(_TIERS_2K, ImagenModel(_TIERS_2K, seed=True)),
        "imagen-4.0-ultra-generate-001": GoogleImageModel(_TIERS_2K, ImagenModel(_TIERS_2K, seed=True)),
        "imagen-4.0-fast-generate-001": GoogleImageModel((), ImagenModel(seed=True)),
        "imagen-3.0-generate-002": GoogleImageModel((), ImagenModel(seed=True)),
        "imagen-3.0-generate-001": GoogleImageModel((), ImagenModel(negative_prompt=True, seed=True)),
        "imagen-3.0-fast-generate-001": GoogleImageModel((), ImagenModel(negative_prompt=True, seed=True)),
        "gemini-2.5-flash-image": GoogleImageModel(),
        "gemini-3-pro-image-preview": GoogleImageModel(("1K", "2K", "4K")),
    }
)
