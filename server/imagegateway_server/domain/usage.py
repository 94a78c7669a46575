"""A provider's token counts (OpenAI's ``usage`` object) read into the flat names the API reports them by."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# (reported name, path in OpenAI's usage object)
USAGE_PATHS = (
    ("input_tokens", ("input_tokens",)),
    ("input_text_tokens", ("input_tokens_details", "text_tokens")),
    ("input_image_tokens", ("input_tokens_details", "image_tokens")),
    ("output_tokens", ("output_tokens",)),
    ("output_image_tokens", ("output_tokens_details", "image_tokens")),
    ("output_text_tokens", ("output_tokens_details", "text_tokens")),
    ("total_tokens", ("total_tokens",)),
)


def token_counts(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """The positive whole-number counts of ``usage`` by reported name; anything else is left out."""
    out: dict[str, int] = {}
    for name, path in USAGE_PATHS:
        value: Any = usage
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[name] = value
    return out
