"""OpenAI's image models: the shared OpenAI tables (``kit.openai_image_models``) and OpenAI's default model."""

from __future__ import annotations

from imagegateway_server.providers.kit.openai_image_models import (
    DALL_E_2,
    DALL_E_2_SIZES,
    DALL_E_3,
    DALL_E_3_SIZES,
    GPT_IMAGE,
    GPT_IMAGE_2,
    GPT_IMAGE_2_SIZES,
    GPT_IMAGE_SIZES,
    ModelFamily,
    model_family,
    model_spec,
)

# What OpenAI itself generates with when ``model`` is omitted; sent explicitly so logs name a model.
DEFAULT_MODEL = "dall-e-2"

__all__ = [
    "DALL_E_2",
    "DALL_E_2_SIZES",
    "DALL_E_3",
    "DALL_E_3_SIZES",
    "DEFAULT_MODEL",
    "GPT_IMAGE",
    "GPT_IMAGE_2",
    "GPT_IMAGE_2_SIZES",
    "GPT_IMAGE_SIZES",
    "ModelFamily",
    "model_family",
    "model_spec",
]
