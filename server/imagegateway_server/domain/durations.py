"""Durations as people type them (``30m``, ``24h``, ``7d``, ``1h30m``): one parser for the CLI and the dashboard."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(?:\d{1,9}[smhdw])+")
_PART = re.compile(r"(\d+)([smhdw])")


def parse_duration(text: str) -> timedelta:
    """A positive duration: whole numbers of s, m, h, d or w, one or more (``1h30m``).

    Raises ValueError, saying what is accepted, for anything else (zero included)."""
    text = text.strip()
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a duration like 30m, 24h or 7d: {text!r}")
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(text))
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, not {text!r}")
    return timedelta(seconds=seconds)
