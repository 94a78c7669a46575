"""Black Forest Labs' FLUX models: how each is sized and which of BFL's parameters it takes.

| model | size | own parameters (``extra``) |
|---|---|---|
| ``flux-2-pro``, ``-max`` | ``width``/``height``, multiples of 16, <= 4 MP | ``input_image``, ``prompt_upsampling`` |
| ``flux-2-flex`` | as FLUX.2 | as FLUX.2, and ``steps`` (1-50), ``guidance`` (1.5-10) |
| ``flux-pro-1.1`` | ``width``/``height``: multiples of 32, 256-1440 | ``prompt_upsampling``, ``image_prompt`` |
| ``flux-pro-1.1-ultra`` | ``aspect_ratio`` only | ``raw``, ``image_prompt``, ``image_prompt_strength`` |
| ``flux-kontext-pro``, ``-max`` | ``aspect_ratio`` only | ``input_image``..``input_image_4``, ``prompt_upsampling`` |

Every model also takes ``seed``, ``output_format`` and ``safety_tolerance``. FLUX 1.1 makes
1024x768 when no size is sent, FLUX.2 1024x1024.

Every model makes one image per task, so ``n`` fans out into n tasks. ``safety_tolerance`` runs
0 (strictest) to 6 on FLUX 1.x and Kontext, 0 to 5 on FLUX.2; ``output_format`` is ``jpeg`` or
``png``. A size a model does not make becomes the nearest one it does (``kit.translation``); the
largest FLUX.2 side (4096) is BFL's documented 4 MP at the widest aspect ratios BFL shows.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities
from imagegateway_server.providers.kit.sizes import AspectRatios, SizeRule, grid

FLUX_2_MAX_PIXELS = 4 * 1024 * 1024
DEFAULT_MODEL = "flux-2-pro"


def _megapixel_capped(step: int, min_side: int, max_side: int, max_pixels: int) -> SizeRule:
    """Sides multiples of ``step`` from ``min_side`` to ``max_side``, width x height at most ``max_pixels``."""
    columns = []
    for width in range(min_side, max_side + 1, step):
        top = min(max_side, max_pixels // width)
        top -= top % step
        if top >= min_side:
            columns.append((width, range(min_side, top + 1, step)))
    return SizeRule(
        tuple(columns),
        f"sides multiples of {step} from {min_side} to {max_side}, at most {max_pixels / 1024 / 1024:g} MP",
    )


FLUX_2_SIZES = _megapixel_capped(16, 64, 4096, FLUX_2_MAX_PIXELS)
FLUX_1_1_SIZES = grid(256, 1440, 32)
# BFL takes any ratio from 21:9 to 9:21 (3:7 to 7:3 on Kontext); these are the ones a size maps to.
ULTRA_RATIOS = AspectRatios(("21:9", "16:9", "3:2", "4:3", "5:4", "1:1", "4:5", "3:4", "2:3", "9:16", "9:21"))
KONTEXT_RATIOS = AspectRatios(("21:9", "16:9", "3:2", "4:3", "1:1", "3:4", "2:3", "9:16", "9:21"))

_AUTO_ONLY = qualities(auto=None)

_COMMON = frozenset({"seed", "output_format", "safety_tolerance"})
_FLUX_2_IMAGES = frozenset({"input_image", *(f"input_image_{i}" for i in range(2, 9))})
# Kontext's multi-reference slots stop at input_image_4 (BFL's reference).
_KONTEXT_IMAGES = frozenset({"input_image", *(f"input_image_{i}" for i in range(2, 5))})


@dataclasses.dataclass(frozen=True, slots=True)
class FluxModel:
    """One FLUX model: its size table, how it is sized, and the parameters it takes."""

    name: str
    spec: ModelSpec
    by_ratio: bool
    params: frozenset[str]
    max_safety_tolerance: int


def _flux_2(name: str, *extra: str) -> FluxModel:
    spec = ModelSpec(FLUX_2_SIZES, _AUTO_ONLY, one_per_call=True, default_size="1024x1024")
    return FluxModel(name, spec, False, _COMMON | _FLUX_2_IMAGES | {"prompt_upsampling", *extra}, 5)


MODELS: dict[str, FluxModel] = {
    model.name: model
    for model in (
        _flux_2("flux-2-pro"),
        _flux_2("flux-2-max"),
        _flux_2("flux-2-flex", "steps", "guidance"),
        FluxModel(
            "flux-pro-1.1",
            ModelSpec(FLUX_1_1_SIZES, _AUTO_ONLY, one_per_call=True, default_size="1024x768"),
            False,
            _COMMON | {"prompt_upsampling", "image_prompt"},
            6,
        ),
        FluxModel(
            "flux-pro-1.1-ultra",
            ModelSpec(ULTRA_RATIOS, _AUTO_ONLY, one_per_call=True),
            True,
            _COMMON | {"aspect_ratio", "raw", "image_prompt", "image_prompt_strength"},
            6,
        ),
        FluxModel(
            "flux-kontext-pro",
            ModelSpec(KONTEXT_RATIOS, _AUTO_ONLY, one_per_call=True),
            True,
            _COMMON | _KONTEXT_IMAGES | {"aspect_ratio", "prompt_upsampling"},
            6,
        ),
        FluxModel(
            "flux-kontext-max",
            ModelSpec(KONTEXT_RATIOS, _AUTO_ONLY, one_per_call=True),
            True,
            _COMMON | _KONTEXT_IMAGES | {"aspect_ratio", "prompt_upsampling"},
            6,
        ),
    )
}


def flux_model(model: str) -> FluxModel | None:
    """The FLUX model of that name (case-insensitive); None for one BFL does not serve here."""
    return MODELS.get(model.strip().lower())


def model_spec(model: str) -> ModelSpec | None:
    """The size and ``n`` table of a FLUX model, for translation."""
    found = flux_model(model)
    return found.spec if found is not None else None
