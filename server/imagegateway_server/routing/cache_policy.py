"""The ``cache`` block of a routing config, validated once into an immutable policy.

``{"mode": "simple", "max_age": 3600, "include_seeded_and_multi_image": false}``: ``max_age`` is in
seconds (Portkey's unit), ``semantic`` mode is refused because it matches prompts by meaning, which
would serve one prompt's image for another.
"""

from __future__ import annotations

import dataclasses

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.routing_config import CacheSettings

DEFAULT_MAX_AGE_SECONDS = 3600
# A year: longer than any sensible image cache, short enough to catch milliseconds sent by mistake.
MAX_MAX_AGE_SECONDS = 365 * 24 * 3600


@dataclasses.dataclass(frozen=True, slots=True)
class CachePolicy:
    """How long a target's successful answers are kept, and whether seeded or n > 1 requests count."""

    max_age: int = DEFAULT_MAX_AGE_SECONDS
    include_seeded_and_multi_image: bool = False


def cache_policy(settings: CacheSettings, param: str) -> CachePolicy:
    """Validates one ``cache`` block; raises InvalidArgument naming ``<param>.mode`` or ``<param>.max_age``."""
    mode = settings.mode
    if mode == "semantic":
        raise InvalidArgument(
            "'semantic' caching matches prompts by meaning and is not offered for images; use 'simple'",
            param=f"{param}.mode",
        )
    if mode != "simple":
        raise InvalidArgument(
            f"must be 'simple'; got {mode!r}" if mode else "is required; must be 'simple'", param=f"{param}.mode"
        )
    max_age = DEFAULT_MAX_AGE_SECONDS
    if settings.max_age is not None:
        max_age = settings.max_age
        if not 1 <= max_age <= MAX_MAX_AGE_SECONDS:
            raise InvalidArgument(
                f"must be between 1 and {MAX_MAX_AGE_SECONDS} seconds, got {max_age}", param=f"{param}.max_age"
            )
    return CachePolicy(max_age=max_age, include_seeded_and_multi_image=bool(settings.include_seeded_and_multi_image))
