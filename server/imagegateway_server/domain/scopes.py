"""The scopes a gateway API key can have: what its holder may call (the one definition of them)."""

from __future__ import annotations

import enum


class Scope(enum.StrEnum):
    """``admin`` may call everything; ``generate`` may generate images and read its own request logs."""

    ADMIN = "admin"
    GENERATE = "generate"
