"""The OpenAI image models' tables: their parameter families and what each takes (sizes, n, qualities, styles).

Shared by every provider that serves OpenAI's models behind OpenAI's Images API (OpenAI itself,
Azure OpenAI deployments); each provider's ``models`` module picks its default model from them.

Quality mappings (the equivalents chosen, and why):

| asked | dall-e-2 | dall-e-3 | gpt-image-* |
|---|---|---|---|
| ``auto`` | default | default | ``auto`` |
| ``low`` | ``standard`` | ``standard`` | ``low`` |
| ``medium`` | ``standard`` | ``standard`` | ``medium`` |
| ``standard`` | ``standard`` | ``standard`` | ``medium`` |
| ``high`` | refused | ``hd`` | ``high`` |
| ``hd`` | refused | ``hd`` | ``high`` |
| ``xhigh``, ``max`` | refused | ``hd`` | ``high``; sent as is to gpt-image-2.5-* and gpt-image-2.6-* |

``standard``/``hd`` are dall-e-3's two tiers; gpt-image's ``medium`` is the tier that matches dall-e-3
``standard`` in price per 1024px image, and ``high`` the one that matches ``hd`` in intent (finer
detail; it costs about twice ``hd``). dall-e-2 has one tier, so nothing above it is promised.
``xhigh`` and ``max`` are the gpt-image-2.5 and 2.6 models' tiers above ``high``; elsewhere the highest tier
the model has stands in for them (reported as a translation, refused in strict mode).

``style`` (``vivid``/``natural``) exists only on dall-e-3; every other model refuses it, having no
equivalent.
"""

from __future__ import annotations

import enum
import re

from imagegateway_server.providers.kit.model_spec import ModelSpec, Setting, qualities
from imagegateway_server.providers.kit.sizes import bounded, fixed_sizes


class ModelFamily(enum.Enum):
    """Groups of OpenAI image models that take the same parameters."""

    DALL_E_2 = "dall-e-2"
    DALL_E_3 = "dall-e-3"
    GPT_IMAGE = "gpt-image"
    OTHER = "other"


def model_family(model: str) -> ModelFamily:
    """The parameter family of an OpenAI model name."""
    name = model.lower()
    if name == "dall-e-2":
        return ModelFamily.DALL_E_2
    if name.startswith("dall-e"):
        return ModelFamily.DALL_E_3
    if name.startswith(("gpt-image-", "chatgpt-image-")):
        return ModelFamily.GPT_IMAGE
    return ModelFamily.OTHER


DALL_E_2_SIZES = fixed_sizes([(256, 256), (512, 512), (1024, 1024)])
DALL_E_3_SIZES = fixed_sizes([(1024, 1024), (1792, 1024), (1024, 1792)])
GPT_IMAGE_SIZES = fixed_sizes([(1024, 1024), (1536, 1024), (1024, 1536)], auto=True)
GPT_IMAGE_2_SIZES = bounded(16, 3, 3840, 2160, auto=True)


def _q(value: str) -> Setting:
    return Setting("quality", value)


DALL_E_2 = ModelSpec(
    DALL_E_2_SIZES,
    qualities(auto=None, low=_q("standard"), medium=_q("standard"), standard=_q("standard")),
    default_size="1024x1024",
)
DALL_E_3 = ModelSpec(
    DALL_E_3_SIZES,
    qualities(
        auto=None,
        low=_q("standard"),
        medium=_q("standard"),
        standard=_q("standard"),
        high=_q("hd"),
        hd=_q("hd"),
        xhigh=_q("hd"),
        max=_q("hd"),
    ),
    styles=frozenset({"vivid", "natural"}),
    one_per_call=True,
    default_size="1024x1024",
)
_GPT_QUALITIES = qualities(
    auto=_q("auto"),
    low=_q("low"),
    medium=_q("medium"),
    high=_q("high"),
    standard=_q("medium"),
    hd=_q("high"),
    xhigh=_q("high"),
    max=_q("high"),
)
# The gpt-image-2.5 models add two tiers above high (2026-09-08); the 2.6 models keep them.
_GPT_25_QUALITIES = qualities(
    auto=_q("auto"),
    low=_q("low"),
    medium=_q("medium"),
    high=_q("high"),
    xhigh=_q("xhigh"),
    max=_q("max"),
    standard=_q("medium"),
    hd=_q("high"),
)
GPT_IMAGE = ModelSpec(GPT_IMAGE_SIZES, _GPT_QUALITIES)
GPT_IMAGE_2 = ModelSpec(GPT_IMAGE_2_SIZES, _GPT_QUALITIES)
GPT_IMAGE_25 = ModelSpec(GPT_IMAGE_2_SIZES, _GPT_25_QUALITIES)

# Every OpenAI image model with a table, by its undated name; a dated snapshot
# (``gpt-image-2-2026-04-21``) takes its model's table. Names from openai-python's ``ImageModel``
# (3.63, December 2026: the 2.6 models of 2026-11-04 take the 2.5 models' sizes and qualities, "low
# to max"). tests/unit/test_openai_sdk_conformance.py fails when the installed SDK names a model
# missing here. A name not here (a model newer than this table) is sent as given and left to the
# provider to validate.
MODEL_SPECS: dict[str, ModelSpec] = {
    "dall-e-2": DALL_E_2,
    "dall-e-3": DALL_E_3,
    "gpt-image-1": GPT_IMAGE,
    "gpt-image-1-mini": GPT_IMAGE,
    "gpt-image-1.5": GPT_IMAGE,
    "chatgpt-image-latest": GPT_IMAGE,
    "gpt-image-2": GPT_IMAGE_2,
    "gpt-image-2.5-flare": GPT_IMAGE_25,
    "gpt-image-2.5-sunburst": GPT_IMAGE_25,
    "gpt-image-2.6-flare": GPT_IMAGE_25,
    "gpt-image-2.6-sunburst": GPT_IMAGE_25,
}
_SNAPSHOT = re.compile(r"^(?P<model>.+)-\d{4}-\d{2}-\d{2}$")


def model_spec(model: str) -> ModelSpec | None:
    """The table of an OpenAI image model; None for a model outside the known ones (sent as given)."""
    name = model.lower()
    spec = MODEL_SPECS.get(name)
    if spec is None and (snapshot := _SNAPSHOT.match(name)):
        spec = MODEL_SPECS.get(snapshot["model"])
    if spec is None and name.startswith("dall-e"):
        return DALL_E_3  # as model_family: every other dall-e takes dall-e-3's parameters
    return spec
