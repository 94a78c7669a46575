"""What each model of the built-in adapters takes: sizes, images per call, quality and style values.

The tables drive ``translation.translate``; the adapters keep their own lists of which parameters a
model takes at all. Quality mappings (the equivalents chosen, and why):

| asked | dall-e-2 | dall-e-3 | gpt-image-* | Stability v1 (``steps``) | Stability v2beta |
|---|---|---|---|---|---|
| ``auto`` | default | default | ``auto`` | default (30) | default |
| ``low`` | ``standard`` | ``standard`` | ``low`` | 20 | refused |
| ``medium`` | ``standard`` | ``standard`` | ``medium`` | 30 | refused |
| ``standard`` | ``standard`` | ``standard`` | ``medium`` | 30 | refused |
| ``high`` | refused | ``hd`` | ``high`` | 50 | refused |
| ``hd`` | refused | ``hd`` | ``high`` | 50 | refused |

``standard``/``hd`` are dall-e-3's two tiers; gpt-image's ``medium`` is the tier that matches dall-e-3
``standard`` in price per 1024px image, and ``high`` the one that matches ``hd`` in intent (finer
detail; it costs about twice ``hd``). dall-e-2 has one tier, so nothing above it is promised.
Stability v1 has no quality, but its ``steps`` (10-50, default 30) is what quality buys there.
Stability v2beta's quality is the choice of service (ultra, core, sd3), which is the caller's
``model``, so a quality is refused there rather than silently switching services. ``auto`` always
means "the provider's default", which is not a translation.

``style`` (``vivid``/``natural``) exists only on dall-e-3; everywhere else it is refused, since no
other model has an equivalent (Stability's ``style_preset`` names an art style, not vividness).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from imagegateway_server.providers import sizes
from imagegateway_server.providers.sizes import AspectRatios, SizeRule


@dataclasses.dataclass(frozen=True, slots=True)
class Setting:
    """The upstream parameter and value one asked-for value becomes (``quality=hd`` -> ``steps=50``)."""

    param: str
    value: str | int


@dataclasses.dataclass(frozen=True, slots=True)
class ModelSpec:
    """How one model takes the OpenAI-shaped parameters.

    ``qualities`` maps each quality value the model can honour to what is sent (None: nothing, the
    provider's default); a value not in it is refused. ``styles`` None means the model has no style.
    ``one_per_call`` models make one image per request, so ``n`` fans out into n calls.
    ``default_size`` is what the model makes when no size is sent, when that is fixed.
    """

    sizes: SizeRule | AspectRatios
    qualities: Mapping[str, Setting | None]
    styles: frozenset[str] | None = None
    one_per_call: bool = False
    max_n: int = 10
    default_size: str = ""


def _quality(**values: Setting | None) -> Mapping[str, Setting | None]:
    return MappingProxyType(values)


def _q(value: str) -> Setting:
    return Setting("quality", value)


DALL_E_2 = ModelSpec(
    sizes.DALL_E_2_SIZES,
    _quality(auto=None, low=_q("standard"), medium=_q("standard"), standard=_q("standard")),
    default_size="1024x1024",
)
DALL_E_3 = ModelSpec(
    sizes.DALL_E_3_SIZES,
    _quality(auto=None, low=_q("standard"), medium=_q("standard"), standard=_q("standard"),
             high=_q("hd"), hd=_q("hd")),
    styles=frozenset({"vivid", "natural"}),
    one_per_call=True,
    default_size="1024x1024",
)
_GPT_QUALITIES = _quality(auto=_q("auto"), low=_q("low"), medium=_q("medium"), high=_q("high"),
                          standard=_q("medium"), hd=_q("high"))
GPT_IMAGE = ModelSpec(sizes.GPT_IMAGE_SIZES, _GPT_QUALITIES)
GPT_IMAGE_2 = ModelSpec(sizes.GPT_IMAGE_2_SIZES, _GPT_QUALITIES)

_STEPS = _quality(auto=None, low=Setting("steps", 20), medium=Setting("steps", 30),
                  standard=Setting("steps", 30), high=Setting("steps", 50), hd=Setting("steps", 50))
SDXL = ModelSpec(sizes.SDXL_SIZES, _STEPS, default_size="1024x1024")
SD_V1_6 = ModelSpec(sizes.SD_V1_6_SIZES, _STEPS, default_size="512x512")
STABLE_IMAGE = ModelSpec(sizes.STABILITY_ASPECT_RATIOS, _quality(auto=None), one_per_call=True)


def openai_spec(model: str) -> ModelSpec | None:
    """The table of an OpenAI model; None for a model outside the known families (sent as given)."""
    name = model.lower()
    if name == "dall-e-2":
        return DALL_E_2
    if name.startswith("dall-e"):
        return DALL_E_3  # as the adapter's model_family: every other dall-e takes dall-e-3's parameters
    if name.startswith("gpt-image-2"):
        return GPT_IMAGE_2
    if name.startswith(("gpt-image-", "chatgpt-image-")):
        return GPT_IMAGE
    return None


def stability_spec(model: str) -> ModelSpec | None:
    """The table of a Stability model; None for a name Stability does not serve (refused later)."""
    name = model.lower()
    if name == "stable-diffusion-xl-1024-v1-0":
        return SDXL
    if name == "stable-diffusion-v1-6":
        return SD_V1_6
    if name in ("core", "stable-image-core", "ultra", "stable-image-ultra", "sd3") or name.startswith(
        ("sd3-", "sd3.")
    ):
        return STABLE_IMAGE
    return None
