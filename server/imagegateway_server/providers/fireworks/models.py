"""Fireworks' FLUX workflow models: their aspect ratios, steps and what ``quality`` becomes.

| model | how it answers | quality |
|---|---|---|
| ``flux-1-schnell-fp8`` | the image (text_to_image), 4 steps by default | steps: low 2, medium/standard 4, high/hd 8 |
| ``flux-1-dev-fp8`` | the image (text_to_image), 28 steps by default | steps: low 14, medium/standard 28, high/hd 50 |
| ``flux-kontext-pro``, ``flux-kontext-max`` | a task to poll (``kontext``) | ``auto`` only |

All take ``aspect_ratio`` 1:1, 21:9, 16:9, 3:2, 5:4, 4:5, 2:3, 9:16, 9:21, 4:3 or 3:4.

A size becomes the nearest ratio (``kit.sizes``), reported as a translation; Fireworks picks the
pixels (about 1 MP). Each call makes one image, so ``n`` fans out. A name may carry Fireworks'
account prefix (``accounts/fireworks/models/flux-1-dev-fp8``).
"""

from __future__ import annotations

from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities, step_qualities
from imagegateway_server.providers.kit.sizes import AspectRatios

DEFAULT_MODEL = "flux-1-schnell-fp8"
ACCOUNT_PREFIX = "accounts/fireworks/models/"
ASPECT_RATIOS = AspectRatios(("1:1", "21:9", "16:9", "3:2", "5:4", "4:5", "2:3", "9:16", "9:21", "4:3", "3:4"))
# Answered by a task to poll (``kontext``) rather than the image.
ASYNC_MODELS = frozenset({"flux-kontext-pro", "flux-kontext-max"})
MAX_N = 10


def _spec(low: int, standard: int, high: int) -> ModelSpec:
    return ModelSpec(
        ASPECT_RATIOS,
        step_qualities("num_inference_steps", low, standard, high),
        one_per_call=True,
        max_n=MAX_N,
    )


SCHNELL = _spec(2, 4, 8)
DEV = _spec(14, 28, 50)
KONTEXT = ModelSpec(ASPECT_RATIOS, qualities(auto=None), one_per_call=True, max_n=MAX_N)
_MODELS = {
    "flux-1-schnell-fp8": SCHNELL,
    "flux-1-dev-fp8": DEV,
    "flux-kontext-pro": KONTEXT,
    "flux-kontext-max": KONTEXT,
}
KNOWN_MODELS = tuple(_MODELS)


def short_name(model: str) -> str:
    """The model's name without Fireworks' account prefix, lower-cased."""
    name = model.lower()
    return name[len(ACCOUNT_PREFIX) :] if name.startswith(ACCOUNT_PREFIX) else name


def model_spec(model: str) -> ModelSpec | None:
    """The table of a Fireworks FLUX workflow model; None for any other name (refused before the call)."""
    return _MODELS.get(short_name(model))


def is_kontext(model: str) -> bool:
    """Whether ``model`` is a FLUX Kontext model, answered by a task to poll."""
    return short_name(model) in ASYNC_MODELS
