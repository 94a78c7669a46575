"""xAI's image models and how an OpenAI ``size`` reaches them.

| model | size | aspect_ratio, resolution | n |
|---|---|---|---|
| ``grok-imagine-image`` (and ``-pro``, ``-quality``) | becomes ``aspect_ratio`` + ``resolution`` | sent | 1-10 |
| ``grok-2-image`` (``-1212``) | only 1024x768, its one size (sent as nothing) | refused | 1-10 |

Ratios: 1:1, 16:9, 9:16, 4:3, 3:4, 3:2, 2:3, 2:1, 1:2, 20:9, 9:20, 19.5:9, 9:19.5, auto; resolutions
``1k`` and ``2k``.

A size becomes the nearest aspect ratio the model makes (ratios with a decimal, 19.5:9 and 9:19.5,
are taken when asked for by name, never chosen for a size), and the resolution whose long side is
nearer the size's long side: ``2k`` above 1448 px (the geometric middle of 1024 and 2048), else
``1k``. xAI has no quality or style parameter: ``quality`` ``auto`` is the default, anything else
and any ``style`` are refused naming the parameter.
"""

from __future__ import annotations

from imagegateway_server.providers.kit.model_spec import ModelSpec, qualities
from imagegateway_server.providers.kit.sizes import AspectRatios, fixed_sizes

DEFAULT_MODEL = "grok-imagine-image"
MAX_N = 10
GROK_2_SIZE = (1024, 768)

# Ratios the translation may choose for a size (integers only: kit.sizes parses w:h as integers).
IMAGINE_RATIOS = AspectRatios(("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "2:1", "1:2", "20:9", "9:20"))
# Every ratio the API takes when the caller names one.
IMAGINE_ASPECT_RATIOS = frozenset({*IMAGINE_RATIOS.ratios, "19.5:9", "9:19.5", "auto"})
RESOLUTIONS = ("1k", "2k")
TWO_K_ABOVE = 1448

GROK_IMAGINE = ModelSpec(IMAGINE_RATIOS, qualities(auto=None), max_n=MAX_N)
GROK_2 = ModelSpec(fixed_sizes([GROK_2_SIZE]), qualities(auto=None), max_n=MAX_N, default_size="1024x768")


def is_grok_2(model: str) -> bool:
    """Whether ``model`` is the grok-2-image family (no aspect ratio, no resolution)."""
    return model.lower().startswith("grok-2-image")


def model_spec(model: str) -> ModelSpec | None:
    """The table of an xAI image model; None for a name outside both families (sent as given)."""
    name = model.lower()
    if is_grok_2(name):
        return GROK_2
    if name.startswith("grok-imagine-image"):
        return GROK_IMAGINE
    return None


def resolution_for(width: int, height: int) -> str:
    """The xAI resolution nearest a size: ``2k`` when its long side is above 1448 px, else ``1k``."""
    return "2k" if max(width, height) > TWO_K_ABOVE else "1k"
