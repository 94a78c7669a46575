"""Together's image models: the sizes each makes, how many per call, and what ``quality`` becomes (steps).

| model (``black-forest-labs/...``) | width/height | steps (default) | quality -> steps |
|---|---|---|---|
| ``FLUX.1-schnell`` (and ``-Free``) | multiples of 16, 256-1792 | 1-12 (4) | low 2, medium/standard 4, high/hd 8 |
| ``FLUX.1-dev`` | multiples of 16, 256-1792 | up to 50 (28) | low 14, medium/standard 28, high/hd 50 |
| ``FLUX.1.1-pro``, ``FLUX.1-pro`` | multiples of 32, 256-1440 (BFL's) | fixed by the model | ``auto`` only |

A size the model does not make becomes the nearest one it makes (``kit.sizes``), reported as a
translation. Together takes ``n`` up to 4 per call. A model outside this table (Together serves
more, and adds new ones) is sent as given: Together validates it.
"""

from __future__ import annotations

from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities, step_qualities
from imagegateway_server.providers.kit.sizes import grid

DEFAULT_MODEL = "black-forest-labs/FLUX.1-schnell"
MAX_N = 4

_OPEN_WEIGHTS_SIZES = grid(256, 1792, 16)
_PRO_SIZES = grid(256, 1440, 32)


def _steps(low: int, standard: int, high: int) -> ModelSpec:
    return ModelSpec(
        _OPEN_WEIGHTS_SIZES,
        step_qualities("steps", low, standard, high),
        max_n=MAX_N,
        default_size="1024x1024",
    )


SCHNELL = _steps(2, 4, 8)
DEV = _steps(14, 28, 50)
PRO = ModelSpec(_PRO_SIZES, qualities(auto=None), max_n=MAX_N, default_size="1024x1024")

_MODELS = {
    "black-forest-labs/flux.1-schnell": SCHNELL,
    "black-forest-labs/flux.1-schnell-free": SCHNELL,
    "black-forest-labs/flux.1-dev": DEV,
    "black-forest-labs/flux.1.1-pro": PRO,
    "black-forest-labs/flux.1-pro": PRO,
}
KNOWN_MODELS = tuple(sorted(_MODELS))


def model_spec(model: str) -> ModelSpec | None:
    """The table of a Together image model; None for a model outside it (sent as given)."""
    return _MODELS.get(model.lower())
