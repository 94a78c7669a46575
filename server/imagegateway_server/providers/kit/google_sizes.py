"""Google's image sizes: an OpenAI ``size`` as an aspect ratio plus an image-size tier (1K, 2K, 4K).

Imagen (``sampleImageSize``) and Gemini's image models (``imageConfig.imageSize``) are sized by an
aspect ratio and, on some models, a resolution tier. The ratio is the nearest the model makes
(``kit.translation`` with the model's ``AspectRatios``); the tier is chosen here, before that step
drops the pixel size: the smallest tier with at least the pixels asked for (a tier's nominal image
is its long side squared: 1K 1024², 2K 2048², 4K 4096²), else the model's largest. A model without
tiers makes 1K images, so asking it for more pixels is a change: noted as ``image_size=2K->1K``, or
refused in strict mode, like any other translation.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.errors import refuse_parameter
from imagegateway_server.providers.kit.sizes import AUTO, requested_size

ONE_K = "1K"
TIERS = (ONE_K, "2K", "4K")
_NOMINAL_SIDE = {"1K": 1024, "2K": 2048, "4K": 4096}
PARAM = "image_size"


@dataclasses.dataclass(frozen=True, slots=True)
class TierChoice:
    """The tier to send (None: send none, the model's 1K default) and the note the choice made, if any."""

    tier: str | None
    note: str | None = None


def wanted_tier(width: int, height: int) -> str:
    """The smallest tier whose nominal image has at least ``width * height`` pixels (4K at most)."""
    area = width * height
    for tier in TIERS:
        if _NOMINAL_SIDE[tier] ** 2 >= area:
            return tier
    return TIERS[-1]


def choose_tier(request: ImageRequest, model_tiers: tuple[str, ...], *, provider: str, strict: bool) -> TierChoice:
    """The tier for ``request`` on a model that makes ``model_tiers`` (empty: 1K only, nothing sent).

    An explicit ``image_size`` in the request's extras ("1K", "2K", "4K") wins over the size.
    """
    explicit = request.extra.get(PARAM)
    if explicit is not None:
        if not isinstance(explicit, str) or explicit.upper() not in TIERS:
            raise refuse_parameter(provider, PARAM, f"must be one of {', '.join(TIERS)}")
        tier = explicit.upper()
        if tier == ONE_K and not model_tiers:
            return TierChoice(None)
        if tier not in (model_tiers or (ONE_K,)):
            takes = ", ".join(model_tiers or (ONE_K,))
            raise refuse_parameter(provider, PARAM, f"{tier} is not made by {request.model!r}; it makes: {takes}")
        return TierChoice(tier)
    if request.size is None or request.size == AUTO:
        return TierChoice(None)
    width, height = requested_size(provider, request.size)
    wanted = wanted_tier(width, height)
    available = model_tiers or (ONE_K,)
    if wanted in available:
        return TierChoice(wanted if model_tiers else None)
    # The model's largest tier below the wanted one (tiers are listed smallest first).
    best = [tier for tier in available if TIERS.index(tier) < TIERS.index(wanted)][-1]
    if strict:
        raise refuse_parameter(
            provider,
            "size",
            f"{request.size} needs a {wanted} image, which {request.model!r} does not make "
            f"({PARAM}={wanted}->{best}); strict mode refuses to translate it",
        )
    return TierChoice(best if model_tiers else None, f"{PARAM}={wanted}->{best}")
