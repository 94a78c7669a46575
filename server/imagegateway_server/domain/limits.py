"""The limits a gateway key or a virtual key carries: requests per minute and USD per UTC day / month.

Zero means unlimited, as in the proto's ``Limits`` message. Values are checked once, when a key is
created, and trusted afterwards; enforcement lives in ``core.limits``.
"""

from __future__ import annotations

import dataclasses
import math

from imagegateway_server.domain.errors import InvalidArgument

# Far above any real budget, and low enough that micro-dollar amounts stay well inside 64 bits
# (a shared counter store keeps integers).
MAX_USD = 1_000_000_000.0
MAX_REQUESTS_PER_MINUTE = 2**31 - 1


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """Per-key limits; 0 switches a limit off."""

    requests_per_minute: int = 0
    usd_per_day: float = 0.0
    usd_per_month: float = 0.0

    @property
    def unlimited(self) -> bool:
        return not (self.requests_per_minute or self.usd_per_day or self.usd_per_month)

    @property
    def has_budget(self) -> bool:
        return bool(self.usd_per_day or self.usd_per_month)

    @classmethod
    def checked(
        cls, requests_per_minute: int, usd_per_day: float, usd_per_month: float, *, param: str = "limits"
    ) -> Limits:
        """Builds limits from caller input; InvalidArgument names the field (``limits.usd_per_day``)."""
        if not 0 <= requests_per_minute <= MAX_REQUESTS_PER_MINUTE:
            raise InvalidArgument("must not be negative", param=f"{param}.requests_per_minute")
        for name, value in (("usd_per_day", usd_per_day), ("usd_per_month", usd_per_month)):
            if not math.isfinite(value) or value < 0:
                raise InvalidArgument("must be a finite number of US dollars, not negative", param=f"{param}.{name}")
            if value > MAX_USD:
                raise InvalidArgument(f"must be at most {MAX_USD:.0f} US dollars", param=f"{param}.{name}")
        return cls(int(requests_per_minute), float(usd_per_day), float(usd_per_month))


NO_LIMITS = Limits()
