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

# The model sent when neither the caller nor a config names one. OpenAI's reference (openai-python
# 3.63, ``images.generate``) no longer has a default ("Specify a model explicitly"); the old one,
# dall-e-2, was shut down on 2026-05-12. This is the end of dall-e-2's successor chain in
# ``kit/retired_models.json`` (dall-e-2 -> gpt-image-1-mini -> gpt-image-2), a model the reference
# lists for generations and edits; it makes no variations (nor does OpenAI any more).
DEFAULT_MODEL = "gpt-image-2"

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
