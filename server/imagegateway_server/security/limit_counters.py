"""The counters behind key limits: requests in a sliding minute, and spend per UTC day and month.

``LimitCounters`` is what the limiter talks to; ``InProcessLimitCounters`` keeps the counts in this
process (the scale-out issue adds one over Redis, so replicas share them). Reads and admissions are
coroutines, so a shared store fits the interface; releases and spend updates are fire-and-forget
(the request is over; nothing waits on them). Amounts are integer micro-dollars: sums are exact
(three 0.04 USD requests fit a 0.12 USD budget) and a shared store can add them with INCRBY.

Requests per minute use a sliding-window counter: per key, the count of the current clock minute
and of the previous one. A request a fraction ``f`` into the current minute is admitted when
``previous * (1 - f) + current < limit``. Two integers per key instead of one timestamp per request;
never more than ``limit`` admissions in one clock minute; and a burst at the end of a minute still
weighs on the start of the next, instead of the count resetting at the boundary (a fixed window lets
through twice the limit across one). Refused requests are not counted.

Spend is kept per key for the current UTC day and month, plus the estimates that requests in flight
hold. A budget refuses when spent + held + the new request's estimate would pass it; with no
estimate (a model the price table does not know), when spent + held has reached it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Protocol

WINDOW_SECONDS = 60.0
MICROS_PER_USD = 1_000_000


class Period(enum.Enum):
    """A budget period; the value names the limit field it belongs to."""

    DAY = "usd_per_day"
    MONTH = "usd_per_month"


@dataclasses.dataclass(frozen=True, slots=True)
class Budget:
    """One budget of a key: at most ``limit_micros`` micro-dollars per ``period``."""

    period: Period
    limit_micros: int


def to_micros(usd: float) -> int:
    return round(usd * MICROS_PER_USD)


def period_start(period: Period, when: datetime) -> datetime:
    """The UTC midnight (DAY) or first of the month (MONTH) that starts the period holding ``when``."""
    when = when.astimezone(UTC)
    if period is Period.DAY:
        return datetime(when.year, when.month, when.day, tzinfo=UTC)
    return datetime(when.year, when.month, 1, tzinfo=UTC)


def period_end(period: Period, when: datetime) -> datetime:
    """When the period holding ``when`` ends (the next one's start)."""
    start = period_start(period, when)
    if period is Period.DAY:
        return datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


def _period_id(period: Period, when: datetime) -> date:
    return period_start(period, when).date()


class LimitCounters(Protocol):
    """Request and spend counters per key (``api_key:<id>``, ``virtual_key:<id>``)."""

    async def take_request(self, key: str, per_minute: int, now: float) -> float:
        """Counts one request at ``now`` (epoch seconds) unless that passes ``per_minute``.

        Returns 0 when counted, else how many seconds until a request would be admitted (nothing counted).
        """
        ...

    async def reserve(self, key: str, budgets: Sequence[Budget], micros: int, now: datetime) -> list[Budget]:
        """Holds ``micros`` (a request's estimate) unless a budget would be passed; returns the budgets
        that would be (nothing held then), else an empty list."""
        ...

    def release(self, key: str, micros: int) -> None:
        """Gives back what ``reserve`` held, when the request ends."""
        ...

    def add_spend(self, key: str, micros: int, when: datetime) -> None:
        """Adds a finished request's actual cost to the day and month holding ``when``."""
        ...

    def restore(self, key: str, period: Period, when: datetime, micros: int) -> None:
        """Sets the spend of the period holding ``when`` (recomputed from the request log at start)."""
        ...


@dataclasses.dataclass(slots=True)
class SlidingMinute:
    """The two clock-minute counts of one key's sliding window."""

    index: int = 0  # the current clock minute: floor(epoch seconds / 60)
    current: int = 0
    previous: int = 0

    def advance(self, index: int) -> None:
        if index == self.index:
            return
        self.previous = self.current if index == self.index + 1 else 0
        self.current = 0
        self.index = index

    def take(self, limit: int, now: float) -> float:
        """Admits and counts a request, returning 0, or returns the seconds until one would be admitted."""
        minutes = now / WINDOW_SECONDS
        self.advance(math.floor(minutes))
        fraction = minutes - self.index
        if self.previous * (1.0 - fraction) + self.current < limit:
            self.current += 1
            return 0.0
        if self.current < limit:
            # The previous minute's weight has to fade: previous * (1 - f) < limit - current.
            fade_until = 1.0 - (limit - self.current) / self.previous
            return max(fade_until - fraction, 0.0) * WINDOW_SECONDS
        # Not this minute: in the next one this minute's count is the previous, and must fade below the limit.
        return (1.0 - fraction + 1.0 - limit / self.current) * WINDOW_SECONDS


class InProcessLimitCounters:
    """LimitCounters in this process's memory (one per process; replicas do not share them)."""

    def __init__(self) -> None:
        self._minutes: dict[str, SlidingMinute] = {}
        # (key, period) -> (the period's first day, micro-dollars spent in it)
        self._spent: dict[tuple[str, Period], tuple[date, int]] = {}
        self._held: dict[str, int] = {}

    async def take_request(self, key: str, per_minute: int, now: float) -> float:
        window = self._minutes.get(key)
        if window is None:
            window = self._minutes[key] = SlidingMinute(math.floor(now / WINDOW_SECONDS))
        return window.take(per_minute, now)

    def spent(self, key: str, period: Period, now: datetime) -> int:
        """Micro-dollars ``key`` spent in the period holding ``now``."""
        entry = self._spent.get((key, period))
        return entry[1] if entry is not None and entry[0] == _period_id(period, now) else 0

    def held(self, key: str) -> int:
        """Micro-dollars requests in flight hold against ``key``."""
        return self._held.get(key, 0)

    async def reserve(self, key: str, budgets: Sequence[Budget], micros: int, now: datetime) -> list[Budget]:
        held = self._held.get(key, 0)
        # An unknown estimate (0) still needs one micro-dollar of room, so a budget that is used up refuses.
        needed = max(micros, 1)
        over = [b for b in budgets if self.spent(key, b.period, now) + held + needed > b.limit_micros]
        if not over and micros > 0:
            self._held[key] = held + micros
        return over

    def release(self, key: str, micros: int) -> None:
        left = self._held.get(key, 0) - micros
        if left > 0:
            self._held[key] = left
        else:
            self._held.pop(key, None)

    def add_spend(self, key: str, micros: int, when: datetime) -> None:
        if micros <= 0:
            return
        # Runs for every priced request: the two period ids from one UTC date rather than via period_start.
        day = when.astimezone(UTC).date()
        for period, current in ((Period.DAY, day), (Period.MONTH, day.replace(day=1))):
            entry = self._spent.get((key, period))
            if entry is None or entry[0] < current:
                self._spent[(key, period)] = (current, micros)
            elif entry[0] == current:
                self._spent[(key, period)] = (current, entry[1] + micros)
            # An older period than the one kept is over: its spend no longer limits anything.

    def restore(self, key: str, period: Period, when: datetime, micros: int) -> None:
        self._spent[(key, period)] = (_period_id(period, when), micros)
