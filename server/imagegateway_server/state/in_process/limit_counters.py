"""Limit counters kept in this process: a sliding minute per key, and spend and holds per key in
plain dicts (one per process; replicas do not share them). The counting rules are in
``state.limit_counters``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import UTC, date, datetime

from imagegateway_server.state.limit_counters import ADMITTED, Admission, Budget, Period, SpendSeeder, period_start

WINDOW_SECONDS = 60.0
# The wait reported for a request refused at the very instant it would fit (a wait of 0 means admitted).
_SHORTEST_WAIT_SECONDS = 1e-6


def _period_id(period: Period, when: datetime) -> date:
    return period_start(period, when).date()


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
            # At the very instant the weight reaches the limit the request is still refused (the test
            # above is strict), so the wait is never 0, which callers read as "admitted".
            return max((fade_until - fraction) * WINDOW_SECONDS, _SHORTEST_WAIT_SECONDS)
        # Not this minute: in the next one this minute's count is the previous, and must fade below the limit.
        return (1.0 - fraction + 1.0 - limit / self.current) * WINDOW_SECONDS


class InProcessLimitCounters:
    """LimitCounters in this process's memory (one per process; replicas do not share them)."""

    def __init__(self) -> None:
        self._minutes: dict[str, SlidingMinute] = {}
        # (key, period) -> (the period's first day, micro-dollars spent in it)
        self._spent: dict[tuple[str, Period], tuple[date, int]] = {}
        self._held: dict[str, int] = {}

    async def admit(self, key: str, budgets: Sequence[Budget], micros: int, per_minute: int, now: float) -> Admission:
        if budgets:
            over = await self.reserve(key, budgets, micros, datetime.fromtimestamp(now, UTC))
            if over:
                return Admission(over=tuple(over))
        if per_minute:
            wait = await self.take_request(key, per_minute, now)
            if wait > 0:
                if budgets and micros > 0:
                    self.release(key, micros)
                return Admission(wait=wait)
        return ADMITTED

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

    def hold(self, key: str, micros: int) -> None:
        """Holds ``micros`` without a check (a shared backend mirrors what it held)."""
        self._held[key] = self._held.get(key, 0) + micros

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

    async def restore(self, key: str, period: Period, when: datetime, micros: int) -> None:
        self._spent[(key, period)] = (_period_id(period, when), micros)

    def seed_from(self, seeder: SpendSeeder) -> None:
        return None  # nothing here is lost while the process lives
