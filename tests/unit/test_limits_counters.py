"""The limit counters: the sliding minute, budgets in micro-dollars, holds, UTC periods, restore."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegateway_server.state.in_process.limit_counters import InProcessLimitCounters, SlidingMinute
from imagegateway_server.state.limit_counters import Budget, Period, period_end, period_start, to_micros

MINUTE_START = 60.0 * 29_000_000  # some clock minute's first instant, in epoch seconds
NOON = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)


def day_budget(usd: float) -> list[Budget]:
    return [Budget(Period.DAY, to_micros(usd))]


# -- requests per minute --------------------------------------------------------------------------


async def test_the_limit_is_admitted_in_one_minute_and_the_next_request_waits_for_the_minute_to_end() -> None:
    counters = InProcessLimitCounters()
    assert [await counters.take_request("k", 3, MINUTE_START + i) for i in range(3)] == [0.0, 0.0, 0.0]
    wait = await counters.take_request("k", 3, MINUTE_START + 10)
    assert wait == pytest.approx(50.0)  # this minute is full; the next one starts with these three at full weight
    assert await counters.take_request("k", 3, MINUTE_START + 10 + wait + 1e-6) == 0.0


async def test_refused_requests_are_not_counted() -> None:
    counters = InProcessLimitCounters()
    await counters.take_request("k", 1, MINUTE_START)
    waits = [await counters.take_request("k", 1, MINUTE_START + 1 + i) for i in range(20)]
    assert all(w > 0 for w in waits)
    # Had the refusals counted, the key would still be over its limit a minute later.
    assert await counters.take_request("k", 1, MINUTE_START + 60.5) == 0.0


async def test_a_burst_at_the_end_of_a_minute_still_weighs_on_the_next() -> None:
    counters = InProcessLimitCounters()
    for i in range(10):
        assert await counters.take_request("k", 10, MINUTE_START + 59 + i / 100) == 0.0
    # 1 s into the next minute the burst still weighs 9.83 of the 10 allowed: one more, then a wait
    # until it has faded to 9 (6 s in), where a fixed window would have let ten more through at once.
    assert await counters.take_request("k", 10, MINUTE_START + 61) == 0.0
    assert await counters.take_request("k", 10, MINUTE_START + 61) == pytest.approx(5.0)


async def test_keys_are_counted_apart() -> None:
    counters = InProcessLimitCounters()
    assert await counters.take_request("a", 1, MINUTE_START) == 0.0
    assert await counters.take_request("b", 1, MINUTE_START) == 0.0
    assert await counters.take_request("a", 1, MINUTE_START + 1) > 0


def test_a_request_at_the_instant_the_previous_minute_fades_to_the_limit_is_refused_and_not_counted() -> None:
    # Found by the property below: at that instant the wait came out as 0, read as "admitted",
    # yet the request was not counted, so any number of them got through.
    window = SlidingMinute(int(MINUTE_START // 60))
    assert window.take(1, MINUTE_START + 20) == 0.0
    assert 0 < window.take(1, MINUTE_START + 60) < 1e-3
    assert window.current == 0


@settings(max_examples=300, deadline=None)
@given(limit=st.integers(1, 12), gaps=st.lists(st.floats(0.0, 40.0, allow_nan=False), min_size=1, max_size=80))
def test_sliding_minute_properties(limit: int, gaps: list[float]) -> None:
    """Never more than the limit in one clock minute, and each refusal's wait is exactly enough."""
    window = SlidingMinute(int(MINUTE_START // 60))
    now = MINUTE_START
    admitted_per_minute: dict[int, int] = {}
    for gap in gaps:
        now += gap
        before = dataclasses.replace(window)
        wait = window.take(limit, now)
        if wait == 0.0:
            admitted_per_minute[window.index] = admitted_per_minute.get(window.index, 0) + 1
            continue
        assert window == _advanced(before, now), "a refused request changed the counts"
        assert dataclasses.replace(before).take(limit, now + wait + 1e-6) == 0.0, "the wait was not enough"
        if wait > 1e-3:
            assert dataclasses.replace(before).take(limit, now + wait - 1e-3) > 0, "the wait was longer than needed"
    assert all(count <= limit for count in admitted_per_minute.values())


def _advanced(window: SlidingMinute, now: float) -> SlidingMinute:
    moved = dataclasses.replace(window)
    moved.advance(int(now // 60))
    return moved


# -- budgets ----------------------------------------------------------------------------------------


async def test_amounts_are_exact_micro_dollars_so_a_budget_fits_what_adds_up_to_it() -> None:
    counters = InProcessLimitCounters()
    assert 0.1 + 0.2 > 0.3  # what float sums would have refused
    counters.add_spend("k", to_micros(0.1), NOON)
    assert await counters.reserve("k", day_budget(0.3), to_micros(0.2), NOON) == []
    counters.release("k", to_micros(0.2))
    counters.add_spend("k", to_micros(0.2), NOON)
    assert await counters.reserve("k", day_budget(0.3), to_micros(0.01), NOON) == day_budget(0.3)


async def test_without_an_estimate_a_budget_refuses_only_once_it_is_used_up() -> None:
    counters = InProcessLimitCounters()
    counters.add_spend("k", to_micros(0.99), NOON)
    assert await counters.reserve("k", day_budget(1.0), 0, NOON) == []
    counters.add_spend("k", to_micros(0.01), NOON)
    assert await counters.reserve("k", day_budget(1.0), 0, NOON) == day_budget(1.0)


async def test_estimates_in_flight_are_held_until_released() -> None:
    counters = InProcessLimitCounters()
    assert await counters.reserve("k", day_budget(0.1), to_micros(0.06), NOON) == []
    assert counters.held("k") == to_micros(0.06)
    assert await counters.reserve("k", day_budget(0.1), to_micros(0.06), NOON) == day_budget(0.1)
    assert counters.held("k") == to_micros(0.06), "a refused reservation holds nothing"
    counters.release("k", to_micros(0.06))
    assert counters.held("k") == 0
    assert await counters.reserve("k", day_budget(0.1), to_micros(0.06), NOON) == []


async def test_every_budget_that_would_be_passed_is_reported() -> None:
    counters = InProcessLimitCounters()
    counters.add_spend("k", to_micros(5), NOON)
    budgets = [Budget(Period.DAY, to_micros(5)), Budget(Period.MONTH, to_micros(5))]
    assert await counters.reserve("k", budgets, 1, NOON) == budgets
    assert await counters.reserve("k", [Budget(Period.MONTH, to_micros(6))], 1, NOON) == []


async def test_spend_starts_again_each_utc_day_and_month() -> None:
    counters = InProcessLimitCounters()
    last_of_january = datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC)
    counters.add_spend("k", to_micros(2), last_of_january)
    counters.add_spend("k", to_micros(3), last_of_january - timedelta(days=3))
    assert counters.spent("k", Period.DAY, last_of_january) == to_micros(2)
    assert counters.spent("k", Period.MONTH, last_of_january) == to_micros(5)
    first_of_february = last_of_january + timedelta(seconds=1)
    assert counters.spent("k", Period.DAY, first_of_february) == 0
    assert counters.spent("k", Period.MONTH, first_of_february) == 0
    counters.add_spend("k", to_micros(1), first_of_february)
    # A late report for a period that is over changes nothing that still limits.
    counters.add_spend("k", to_micros(7), last_of_january)
    assert counters.spent("k", Period.MONTH, first_of_february) == to_micros(1)


async def test_spend_in_another_time_zone_counts_for_the_utc_day() -> None:
    counters = InProcessLimitCounters()
    tokyo_evening = datetime(2025, 3, 15, 8, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Tokyo"))  # 17:00 there
    counters.add_spend("k", 10, tokyo_evening)
    assert counters.spent("k", Period.DAY, datetime(2025, 3, 15, 23, tzinfo=UTC)) == 10


async def test_restore_sets_the_spend_of_the_period_holding_now() -> None:
    counters = InProcessLimitCounters()
    counters.add_spend("k", 5, NOON)
    await counters.restore("k", Period.MONTH, NOON, 1_000)
    assert counters.spent("k", Period.MONTH, NOON) == 1_000
    assert counters.spent("k", Period.DAY, NOON) == 5


@pytest.mark.parametrize(
    ("when", "day_end", "month_end"),
    [
        (datetime(2025, 3, 14, 12, tzinfo=UTC), datetime(2025, 3, 15, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)),
        (
            datetime(2024, 2, 28, 23, 59, tzinfo=UTC),
            datetime(2024, 2, 29, tzinfo=UTC),
            datetime(2024, 3, 1, tzinfo=UTC),
        ),
        (
            datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        (datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)),
    ],
)
def test_periods_are_utc_days_and_months(when: datetime, day_end: datetime, month_end: datetime) -> None:
    assert period_end(Period.DAY, when) == day_end and period_end(Period.MONTH, when) == month_end
    assert period_start(Period.DAY, when) <= when < day_end
    assert period_start(Period.MONTH, when) == datetime(when.year, when.month, 1, tzinfo=UTC)
