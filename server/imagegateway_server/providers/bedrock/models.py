"""Bedrock's image models: the family each belongs to (which body it takes) and its table for translation.

| model id | family | sizes | n per call | quality | style |
|---|---|---|---|---|---|
| ``amazon.nova-canvas-v1:0`` | Nova | width/height (1) | 1-5 | standard, premium | Nova's eight styles |
| ``amazon.titan-image-generator-v2:0`` | Titan | one of 25 fixed sizes (2) | 1-5 | standard, premium | none |
| ``stability.sd3-5-large-v1:0`` | Stability | one of nine aspect ratios | 1 (fanned out) | none | none |
| ``stability.stable-image-core-v1:1`` (and ``-v1:0``) | Stability | same | 1 | none | none |
| ``stability.stable-image-ultra-v1:1`` (and ``-v1:0``) | Stability | same | 1 | none | none |

(1) Sides multiples of 16 from 320 to 4096, aspect ratio within 1:4 to 4:1, fewer than 4,194,304 pixels.
(2) AWS's "Amazon Titan Image Generator G1 models" page lists the sizes v1 and v2 take.

Edits take input images within each model's ``InputRule``: Nova Canvas inpaints images of the sizes
it generates, Titan edits (inpainting and variation) images up to 1408 pixels on the longer side.

OpenAI's qualities map onto Nova's and Titan's two: ``hd``/``high`` become ``premium``,
``low``/``medium`` ``standard`` (each change reported); ``auto`` is the default (standard).
Nova's ``style`` takes its own values (``PHOTOREALISM``...), not OpenAI's ``vivid``/``natural``.
"""

from __future__ import annotations

import dataclasses
import enum

from imagegateway_server.providers.kit.model_spec import ModelSpec, Setting, qualities
from imagegateway_server.providers.kit.sizes import AspectRatios, SizeRule, fixed_sizes

NOVA_CANVAS = "amazon.nova-canvas-v1:0"
TITAN_V2 = "amazon.titan-image-generator-v2:0"
SD3_5_LARGE = "stability.sd3-5-large-v1:0"
STABLE_IMAGE_CORE = "stability.stable-image-core-v1:1"
STABLE_IMAGE_ULTRA = "stability.stable-image-ultra-v1:1"
DEFAULT_MODEL = NOVA_CANVAS


class Family(enum.Enum):
    """Which request body and answer a model speaks."""

    NOVA = "nova"
    TITAN = "titan"
    STABILITY = "stability"


# Nova Canvas: sides multiples of 16 from 320 to 4096, aspect within 1:4 and 4:1, fewer than
# 4,194,304 pixels (AWS's "Request and response structure for image generation").
NOVA_STEP = 16
NOVA_MIN_SIDE = 320
NOVA_MAX_SIDE = 4096
NOVA_MAX_RATIO = 4
NOVA_PIXEL_LIMIT = 4_194_304  # exclusive


def _nova_columns() -> tuple[tuple[int, range], ...]:
    columns = []
    for width in range(NOVA_MIN_SIDE, NOVA_MAX_SIDE + 1, NOVA_STEP):
        low = max(NOVA_MIN_SIDE, -(-width // (NOVA_MAX_RATIO * NOVA_STEP)) * NOVA_STEP)
        high = min(NOVA_MAX_SIDE, width * NOVA_MAX_RATIO, (NOVA_PIXEL_LIMIT - 1) // width)
        high -= high % NOVA_STEP
        if low <= high:
            columns.append((width, range(low, high + 1, NOVA_STEP)))
    return tuple(columns)


NOVA_SIZE_RULE = SizeRule(
    _nova_columns(),
    f"sides multiples of {NOVA_STEP} from {NOVA_MIN_SIDE} to {NOVA_MAX_SIDE}, aspect ratio within "
    f"1:{NOVA_MAX_RATIO} to {NOVA_MAX_RATIO}:1, fewer than {NOVA_PIXEL_LIMIT:,} pixels",
)
TITAN_SIZE_RULE = fixed_sizes(
    [
        (1024, 1024),
        (768, 768),
        (512, 512),
        (768, 1152),
        (384, 576),
        (1152, 768),
        (576, 384),
        (768, 1280),
        (384, 640),
        (1280, 768),
        (640, 384),
        (896, 1152),
        (448, 576),
        (1152, 896),
        (576, 448),
        (768, 1408),
        (384, 704),
        (1408, 768),
        (704, 384),
        (640, 1408),
        (320, 704),
        (1408, 640),
        (704, 320),
        (1152, 640),
        (1173, 640),
    ]
)
STABILITY_ASPECT_RATIOS = AspectRatios(("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21"))
NOVA_STYLES = frozenset(
    {
        "3D_ANIMATED_FAMILY_FILM",
        "DESIGN_SKETCH",
        "FLAT_VECTOR_ILLUSTRATION",
        "GRAPHIC_NOVEL_ILLUSTRATION",
        "MAXIMALISM",
        "MIDCENTURY_RETRO",
        "PHOTOREALISM",
        "SOFT_DIGITAL_PAINTING",
    }
)
MAX_IMAGES_PER_CALL = 5  # numberOfImages, Nova and Titan

_STANDARD = Setting("quality", "standard")
_PREMIUM = Setting("quality", "premium")
_AMAZON_QUALITIES = qualities(
    auto=None, standard=_STANDARD, premium=_PREMIUM, low=_STANDARD, medium=_STANDARD, hd=_PREMIUM, high=_PREMIUM
)

NOVA_SPEC = ModelSpec(
    NOVA_SIZE_RULE, _AMAZON_QUALITIES, styles=NOVA_STYLES, max_n=MAX_IMAGES_PER_CALL, default_size="1024x1024"
)
TITAN_SPEC = ModelSpec(TITAN_SIZE_RULE, _AMAZON_QUALITIES, max_n=MAX_IMAGES_PER_CALL, default_size="1024x1024")
STABILITY_SPEC = ModelSpec(STABILITY_ASPECT_RATIOS, qualities(auto=None), one_per_call=True)


@dataclasses.dataclass(frozen=True, slots=True)
class InputRule:
    """The input images a task takes (AWS's limits), checked from an image's header before it is decoded."""

    max_side: int
    min_side: int = 1
    max_ratio: int | None = None
    pixel_limit: int | None = None  # exclusive

    def accepts(self, width: int, height: int) -> bool:
        if not all(self.min_side <= side <= self.max_side for side in (width, height)):
            return False
        if self.max_ratio is not None and max(width, height) > self.max_ratio * min(width, height):
            return False
        return self.pixel_limit is None or width * height < self.pixel_limit

    def describe(self) -> str:
        said = [
            f"sides from {self.min_side} to {self.max_side}" if self.min_side > 1 else f"sides up to {self.max_side}"
        ]
        if self.max_ratio is not None:
            said.append(f"aspect ratio within 1:{self.max_ratio} to {self.max_ratio}:1")
        if self.pixel_limit is not None:
            said.append(f"fewer than {self.pixel_limit:,} pixels")
        return ", ".join(said)


# Any input image Bedrock takes: none has a side over 4096.
ANY_INPUT = InputRule(NOVA_MAX_SIDE)
# Nova Canvas inpaints an image of the sizes it generates (AWS's "Image generation and editing" page).
NOVA_INPAINT_INPUT = InputRule(NOVA_MAX_SIDE, NOVA_MIN_SIDE, NOVA_MAX_RATIO, NOVA_PIXEL_LIMIT)
# Titan edits (inpainting, variation) an image "<= 1,408 on the longer side" (AWS's "Amazon Titan
# Image Generator G1 models" page); the answer of an inpainting has the input's size.
TITAN_INPUT = InputRule(1408)


@dataclasses.dataclass(frozen=True, slots=True)
class BedrockModel:
    """One model: its family, its name in messages, its translation table, the limits of its body's
    fields, and the input images its inpainting and its variation take."""

    family: Family
    label: str
    spec: ModelSpec
    max_prompt_chars: int
    max_seed: int
    inpaint_input: InputRule = ANY_INPUT
    vary_input: InputRule = ANY_INPUT


_NOVA = BedrockModel(
    Family.NOVA, "Nova Canvas", NOVA_SPEC, max_prompt_chars=1024, max_seed=858_993_459, inpaint_input=NOVA_INPAINT_INPUT
)
_TITAN = BedrockModel(
    Family.TITAN,
    "Titan Image Generator v2",
    TITAN_SPEC,
    max_prompt_chars=512,
    max_seed=2_147_483_646,
    inpaint_input=TITAN_INPUT,
    vary_input=TITAN_INPUT,
)
_STABILITY = BedrockModel(
    Family.STABILITY, "Stability", STABILITY_SPEC, max_prompt_chars=10_000, max_seed=4_294_967_294
)

MODELS: dict[str, BedrockModel] = {
    NOVA_CANVAS: _NOVA,
    TITAN_V2: _TITAN,
    SD3_5_LARGE: _STABILITY,
    STABLE_IMAGE_CORE: _STABILITY,
    STABLE_IMAGE_ULTRA: _STABILITY,
    # The first revisions of Stable Image Core and Ultra on Bedrock take the same body.
    "stability.stable-image-core-v1:0": _STABILITY,
    "stability.stable-image-ultra-v1:0": _STABILITY,
}


def model_spec(model: str) -> ModelSpec | None:
    """The translation table of a Bedrock model; None for a model id this provider does not know."""
    known = MODELS.get(model)
    return known.spec if known is not None else None
