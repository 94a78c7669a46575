"""fal's image models served here: how each is sized and which of its inputs it takes.

| model | size (``image_size``) | n | own inputs (``extra``) |
|---|---|---|---|
| ``fal-ai/flux/dev`` | ``{width, height}``, 256-2048 | up to 4 | ``num_inference_steps`` (1-50), ``guidance_scale`` |
| ``fal-ai/flux/schnell`` | as dev | up to 4 | ``num_inference_steps`` (1-12) |
| ``fal-ai/flux-pro/v1.1`` | as dev | up to 4 | ``safety_tolerance`` (1-6) |
| ``fal-ai/recraft-v3`` | Recraft's own sizes | one per call | ``style`` (Recraft's styles), ``colors``, ``style_id`` |
| ``fal-ai/flux-pro/kontext``, ``.../max`` | ``aspect_ratio`` (nine) | up to 4 | edits: ``image_url`` (1) |
| ``fal-ai/flux-pro/kontext/multi``, ``.../max/multi`` | as Kontext | up to 4 | edits: ``image_urls`` (1) |

(1) Edits only (the input image is required); also ``guidance_scale``, ``safety_tolerance``, ``enhance_prompt``.

FLUX dev and schnell also take ``acceleration``. Every model takes ``enable_safety_checker``;
FLUX also ``seed`` and ``output_format`` (``jpeg``/``png``). Sides are multiples of 16.
``image_size`` may also be one of fal's presets (``square_hd``, ``landscape_16_9``,
...), given as ``extra["image_size"]`` or reached from ``aspect_ratio``. fal documents no hard
bound for FLUX's width and height; 256-2048 in multiples of 16 is the range its own examples use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities
from imagegateway_server.providers.kit.sizes import AspectRatios, fixed_sizes, grid

DEFAULT_MODEL = "fal-ai/flux/dev"

# fal's named sizes, and the aspect ratio each stands for.
PRESETS: Mapping[str, str] = MappingProxyType(
    {
        "square_hd": "1:1",
        "square": "1:1",
        "portrait_4_3": "3:4",
        "portrait_16_9": "9:16",
        "landscape_4_3": "4:3",
        "landscape_16_9": "16:9",
    }
)
PRESET_FOR_RATIO: Mapping[str, str] = MappingProxyType(
    {
        "1:1": "square_hd",
        "3:4": "portrait_4_3",
        "9:16": "portrait_16_9",
        "4:3": "landscape_4_3",
        "16:9": "landscape_16_9",
    }
)
RECRAFT_STYLES = frozenset(
    {
        "any",
        "realistic_image",
        "digital_illustration",
        "vector_illustration",
        "realistic_image/b_and_w",
        "realistic_image/hard_flash",
        "realistic_image/hdr",
        "realistic_image/natural_light",
        "realistic_image/studio_portrait",
        "realistic_image/enterprise",
        "realistic_image/motion_blur",
        "digital_illustration/pixel_art",
        "digital_illustration/hand_drawn",
        "digital_illustration/grain",
        "digital_illustration/infantile_sketch",
        "digital_illustration/2d_art_poster",
        "vector_illustration/engraving",
        "vector_illustration/line_art",
        "vector_illustration/linocut",
    }
)

FLUX_SIZES = grid(256, 2048, 16)
RECRAFT_SIZES = fixed_sizes(
    [
        (1024, 1024),
        (1365, 1024),
        (1024, 1365),
        (1536, 1024),
        (1024, 1536),
        (1820, 1024),
        (1024, 1820),
        (1024, 2048),
        (2048, 1024),
        (1434, 1024),
        (1024, 1434),
        (1024, 1280),
        (1280, 1024),
        (1024, 1707),
        (1707, 1024),
    ]
)

_FLUX_COMMON = frozenset({"seed", "output_format", "enable_safety_checker", "image_size", "aspect_ratio"})
# FLUX.1 Kontext on fal is sized by aspect_ratio alone (fal's model pages), not image_size.
KONTEXT_RATIOS = AspectRatios(("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"))
_KONTEXT = frozenset(
    {"seed", "output_format", "aspect_ratio", "guidance_scale", "cfg_scale", "safety_tolerance", "enhance_prompt"}
)


@dataclasses.dataclass(frozen=True, slots=True)
class FalModel:
    """One fal model: its id (the queue path), size table and the inputs it takes."""

    id: str
    spec: ModelSpec
    params: frozenset[str]
    max_steps: int = 0  # 0: no num_inference_steps
    takes_n: bool = True  # num_images; otherwise n fans out
    # Where an edit's images go: "image_url" (one) or "image_urls" (several); None: the model
    # generates only. A model with one edits only (its input image is required).
    images_field: str | None = None

    @property
    def by_ratio(self) -> bool:
        """Sized by ``aspect_ratio`` (Kontext) rather than ``image_size``."""
        return self.images_field is not None


def _kontext(model_id: str, images_field: str) -> FalModel:
    spec = ModelSpec(KONTEXT_RATIOS, qualities(auto=None), max_n=4)
    return FalModel(model_id, spec, _KONTEXT, images_field=images_field)


MODELS: dict[str, FalModel] = {
    model.id: model
    for model in (
        FalModel(
            "fal-ai/flux/dev",
            ModelSpec(FLUX_SIZES, qualities(auto=None), max_n=4, default_size="1024x768"),
            _FLUX_COMMON | {"num_inference_steps", "guidance_scale", "cfg_scale", "acceleration"},
            max_steps=50,
        ),
        FalModel(
            "fal-ai/flux/schnell",
            ModelSpec(FLUX_SIZES, qualities(auto=None), max_n=4, default_size="1024x768"),
            _FLUX_COMMON | {"num_inference_steps", "acceleration"},
            max_steps=12,
        ),
        FalModel(
            "fal-ai/flux-pro/v1.1",
            ModelSpec(FLUX_SIZES, qualities(auto=None), max_n=4, default_size="1024x768"),
            _FLUX_COMMON | {"safety_tolerance"},
        ),
        FalModel(
            "fal-ai/recraft-v3",
            ModelSpec(
                RECRAFT_SIZES, qualities(auto=None), styles=RECRAFT_STYLES, one_per_call=True, default_size="1024x1024"
            ),
            frozenset({"style", "colors", "style_id", "enable_safety_checker", "image_size", "aspect_ratio"}),
            takes_n=False,
        ),
        _kontext("fal-ai/flux-pro/kontext", "image_url"),
        _kontext("fal-ai/flux-pro/kontext/max", "image_url"),
        _kontext("fal-ai/flux-pro/kontext/multi", "image_urls"),
        _kontext("fal-ai/flux-pro/kontext/max/multi", "image_urls"),
    )
}


def fal_model(model: str) -> FalModel | None:
    """The fal model of that id (case-insensitive); None for one not served here."""
    return MODELS.get(model.strip().lower())


def model_spec(model: str) -> ModelSpec | None:
    found = fal_model(model)
    return found.spec if found is not None else None
