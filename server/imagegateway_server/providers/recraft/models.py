"""Recraft's raster image models: the sizes each makes, its styles, and how many images per call.

| model | sizes | style, negative_prompt |
|---|---|---|
| ``recraftv4_1`` (default), ``recraftv4`` | 14 around 1 MP (1024x1024, 1536x768, 1344x768, ...) | refused |
| ``recraftv4_1_pro``, ``recraftv4_pro`` | 14 around 4 MP (2048x2048, 3072x1536, 2688x1536, ...) | refused |
| ``recraftv3``, ``recraftv2`` | 15 (1024x1024, 1365x1024, 1820x1024, 2048x1024, ...) | sent |

V2 and V3 styles: any, realistic_image, digital_illustration, vector_illustration, icon.

A size not in the model's list becomes the nearest one in it (``kit.sizes``), reported as a
translation; ``quality`` has no equivalent (``auto`` only). Recraft takes ``n`` from 1 to 6. The
``_vector`` models answer SVG, which is no raster image the gateway can serve: they are refused.
"""

from __future__ import annotations

from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities
from imagegateway_server.providers.kit.sizes import fixed_sizes

DEFAULT_MODEL = "recraftv4_1"
MAX_N = 6

V4_SIZES = fixed_sizes(
    [
        (1024, 1024), (1536, 768), (768, 1536), (1280, 832), (832, 1280), (1216, 896), (896, 1216),
        (1152, 896), (896, 1152), (832, 1344), (1280, 896), (896, 1280), (1344, 768), (768, 1344),
    ]
)  # fmt: skip
V4_PRO_SIZES = fixed_sizes(
    [
        (2048, 2048), (3072, 1536), (1536, 3072), (2560, 1664), (1664, 2560), (2432, 1792), (1792, 2432),
        (2304, 1792), (1792, 2304), (1664, 2688), (2560, 1792), (1792, 2560), (2688, 1536), (1536, 2688),
    ]
)  # fmt: skip
V3_SIZES = fixed_sizes(
    [
        (1024, 1024), (2048, 1024), (1024, 2048), (1536, 1024), (1024, 1536), (1365, 1024), (1024, 1365),
        (1280, 1024), (1024, 1280), (1707, 1024), (1024, 1707), (1434, 1024), (1024, 1434), (1820, 1024),
        (1024, 1820),
    ]
)  # fmt: skip
V3_STYLES = frozenset({"any", "realistic_image", "digital_illustration", "vector_illustration", "icon"})

V4 = ModelSpec(V4_SIZES, qualities(auto=None), max_n=MAX_N, default_size="1024x1024")
V4_PRO = ModelSpec(V4_PRO_SIZES, qualities(auto=None), max_n=MAX_N, default_size="2048x2048")
V3 = ModelSpec(V3_SIZES, qualities(auto=None), styles=V3_STYLES, max_n=MAX_N, default_size="1024x1024")

_MODELS = {
    "recraftv4_1": V4,
    "recraftv4": V4,
    "recraftv4_1_pro": V4_PRO,
    "recraftv4_pro": V4_PRO,
    "recraftv3": V3,
    "recraftv2": V3,
}
KNOWN_MODELS = tuple(_MODELS)


def model_spec(model: str) -> ModelSpec | None:
    """The table of a Recraft raster model; None for any other name (refused before the call)."""
    return _MODELS.get(model.lower())


def takes_style(model: str) -> bool:
    """Whether ``model`` takes ``style`` and ``negative_prompt`` (V2 and V3; V4 refuses them)."""
    return model.lower() in ("recraftv3", "recraftv2")
