"""Stability's image models: which endpoint serves each, and what each takes (sizes, n, qualities).

Model routing:

| model | endpoint (POST) | body |
|---|---|---|
| ``stable-diffusion-v1-6`` | ``/v1/generation/{engine}/text-to-image`` | JSON |
| ``stable-diffusion-xl-1024-v1-0`` | ``/v1/generation/{engine}/text-to-image`` | JSON |
| ``core`` / ``stable-image-core`` | ``/v2beta/stable-image/generate/core`` | multipart |
| ``ultra`` / ``stable-image-ultra`` | ``/v2beta/stable-image/generate/ultra`` | multipart |
| ``sd3``, ``sd3-*``, ``sd3.5-*`` | ``/v2beta/stable-image/generate/sd3`` | multipart |

For sd3 the form's ``model`` field carries the name (``sd3.5-large``...), except for bare ``sd3``
which leaves Stability's default.

Quality: v1 has none, but its ``steps`` (10-50, default 30) is what quality buys there, so ``low``
is 20 steps, ``medium``/``standard`` 30 and ``high``/``hd`` 50. v2beta's quality is the choice of
service (ultra, core, sd3), which is the caller's ``model``, so any quality but ``auto`` is refused
there rather than silently switching services. No Stability model has a ``style`` (its
``style_preset`` names an art style, not vividness), so a style is refused everywhere.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.providers.kit.model_spec import ModelSpec, Setting, qualities
from imagegateway_server.providers.kit.sizes import AspectRatios, fixed_sizes, grid
from imagegateway_server.providers.stability import PROVIDER

# Stability's current general-purpose service (v1 is legacy), and the one that takes every
# parameter the adapter maps except ``cfg_scale``.
DEFAULT_MODEL = "core"

SD_V1_6 = "stable-diffusion-v1-6"
SDXL_1_0 = "stable-diffusion-xl-1024-v1-0"
V1_ENGINES = frozenset({SD_V1_6, SDXL_1_0})

SDXL_SIZE_RULE = fixed_sizes(
    [
        (1024, 1024),
        (1152, 896),
        (1216, 832),
        (1344, 768),
        (1536, 640),
        (640, 1536),
        (768, 1344),
        (832, 1216),
        (896, 1152),
    ]
)
SD_V1_6_SIZE_RULE = grid(320, 1536, 64)
ASPECT_RATIO_RULE = AspectRatios(("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"))

SDXL_SIZES: tuple[tuple[int, int], ...] = tuple(SDXL_SIZE_RULE.sizes())
V1_DEFAULT_SIZE = {SD_V1_6: (512, 512), SDXL_1_0: (1024, 1024)}
ASPECT_RATIOS = ASPECT_RATIO_RULE.ratios

_STEPS = qualities(
    auto=None,
    low=Setting("steps", 20),
    medium=Setting("steps", 30),
    standard=Setting("steps", 30),
    high=Setting("steps", 50),
    hd=Setting("steps", 50),
)
SDXL = ModelSpec(SDXL_SIZE_RULE, _STEPS, default_size="1024x1024")
SD_V1_6_SPEC = ModelSpec(SD_V1_6_SIZE_RULE, _STEPS, default_size="512x512")
STABLE_IMAGE = ModelSpec(ASPECT_RATIO_RULE, qualities(auto=None), one_per_call=True)


def model_spec(model: str) -> ModelSpec | None:
    """The table of a Stability model; None for a name Stability does not serve (refused later)."""
    name = model.lower()
    if name == SDXL_1_0:
        return SDXL
    if name == SD_V1_6:
        return SD_V1_6_SPEC
    if name in ("core", "stable-image-core", "ultra", "stable-image-ultra", "sd3") or name.startswith(("sd3-", "sd3.")):
        return STABLE_IMAGE
    return None


@dataclasses.dataclass(frozen=True, slots=True)
class Route:
    """Where a model is served: a v1 engine, or a v2beta service (with the sd3 ``model`` field)."""

    api: str  # "v1" or "v2beta"
    endpoint: str  # v1 engine id, or core | ultra | sd3
    sd3_model: str | None = None


def route(model: str) -> Route:
    """The endpoint serving ``model``; an unknown model is a BAD_REQUEST naming ``model``."""
    name = model.lower()
    if name in V1_ENGINES:
        return Route("v1", name)
    if name in ("core", "stable-image-core"):
        return Route("v2beta", "core")
    if name in ("ultra", "stable-image-ultra"):
        return Route("v2beta", "ultra")
    if name == "sd3":
        return Route("v2beta", "sd3")
    if name.startswith(("sd3-", "sd3.")):
        return Route("v2beta", "sd3", sd3_model=name)
    known = ", ".join(sorted(V1_ENGINES | {"core", "ultra", "sd3", "sd3.5-large", "sd3.5-medium"}))
    raise ProviderError(
        ErrorKind.BAD_REQUEST,
        f"{PROVIDER}: model {model!r} is not a Stability image model (known: {known})",
        provider=PROVIDER,
        status_code=400,
        code="invalid_value",
        param="model",
    )
