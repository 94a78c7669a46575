"""The counters behind key limits: requests in a sliding minute, and spend per UTC day and month;
the async interface every counter backend implements, and the periods and amounts it speaks.

Counters are keyed by ``api_key:<id>`` and ``virtual_key:<id>``. Amounts are integer
micro-dollars: sums are exact (three 0.04 USD requests fit a 0.12 USD budget) and a shared store
can add them with INCRBY.

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
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

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


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """What ``LimitCounters.admit`` decided: the budgets that would be passed, else the seconds to
    wait for the minute (0: admitted, and the estimate is held)."""

    over: tuple[Budget, ...] = ()
    wait: float = 0.0

    @property
    def admitted(self) -> bool:
        return not self.over and self.wait <= 0


ADMITTED = Admission()


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


# Recomputes spend into the counters it is given (from the request log, as at start).
SpendSeeder = Callable[["LimitCounters"], Awaitable[None]]


class LimitCounters(Protocol):
    """Request and spend counters per key (``api_key:<id>``, ``virtual_key:<id>``).

    Admissions are coroutines, since they must read the shared count before answering. Releases and
    spend updates are synchronous: the request is over and nothing waits on them, so a shared
    backend applies them locally and queues the write (no I/O in the call), and they stay safe in
    ``finally`` blocks and on cancel.
    """

    async def take_request(self, key: str, per_minute: int, now: float) -> float:
        """Counts one request at ``now`` (epoch seconds) unless that passes ``per_minute``.

        Returns 0 when counted, else how many seconds until a request would be admitted (nothing counted).
        """
        ...

    async def admit(self, key: str, budgets: Sequence[Budget], micros: int, per_minute: int, now: float) -> Admission:
        """``reserve`` then ``take_request`` as one step (one round trip for a shared backend): the
        budgets are checked first; a request the minute refuses holds nothing. ``per_minute`` 0 and
        empty ``budgets`` skip that check; ``now`` is epoch seconds."""
        ...

    async def reserve(self, key: str, budgets: Sequence[Budget], micros: int, now: datetime) -> list[Budget]:
        """Holds ``micros`` (a request's estimate) unless a budget would be passed; returns the budgets
        that would be (nothing held then), else an empty list."""
        ...

    def release(self, key: str, micros: int) -> None:
        """Gives back what ``reserve`` held, when the request ends (queued by a shared backend)."""
        ...

    def add_spend(self, key: str, micros: int, when: datetime) -> None:
        """Adds a finished request's actual cost to the day and month holding ``when`` (queued by a
        shared backend)."""
        ...

    async def restore(self, key: str, period: Period, when: datetime, micros: int) -> None:
        """Sets the spend of the period holding ``when`` (recomputed from the request log at start).

        A shared backend sets it in its in-process fallback, and in the shared store only while it
        recomputes the store through ``seed_from``'s seeder: replicas starting beside running ones
        must not overwrite live totals with the log's, which lag behind them.
        """
        ...

    def seed_from(self, seeder: SpendSeeder) -> None:
        """Remembers how spend is recomputed, for a shared backend to call again when its store comes
        back empty (a restart, an eviction) or when it falls back to in-process counters."""
        ...
