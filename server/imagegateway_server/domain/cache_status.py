"""What the response cache did for one request: the one name for it in logs, metrics and headers."""

from __future__ import annotations

import enum


class CacheStatus(enum.StrEnum):
    """What the cache did for one request; the value is the x-portkey-cache-status header."""

    HIT = "HIT"
    MISS = "MISS"
    REFRESH = "REFRESH"
    DISABLED = "DISABLED"
