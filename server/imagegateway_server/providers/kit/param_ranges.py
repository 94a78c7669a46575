"""Range checks of numeric extra parameters, refused before any call with the 400 naming the parameter.

Providers document integer and number ranges for their own parameters (steps, guidance, seed...).
A whole float (``4.0``, as JSON and protobuf Struct values often arrive) counts as an integer; a
bool is never a number; a number must be finite.
"""

from __future__ import annotations

import math
from typing import Any

from imagegateway_server.providers.kit.errors import refuse_parameter


def check_integer(provider: str, name: str, value: Any, low: int, high: int) -> None:
    """Refuses ``value`` of parameter ``name`` unless it is an integer from ``low`` to ``high``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise refuse_parameter(provider, name, f"must be an integer from {low} to {high}, got {value!r}")


def check_number(provider: str, name: str, value: Any, low: float, high: float) -> None:
    """Refuses ``value`` of parameter ``name`` unless it is a finite number from ``low`` to ``high``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise refuse_parameter(provider, name, f"must be a number from {low:g} to {high:g}, got {value!r}")
