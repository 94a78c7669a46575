"""Single-flight: identical calls in flight share one run; one waiter leaving never stops it for others."""

from __future__ import annotations

import asyncio

import pytest

from imagegateway_server.routing.single_flight import SharedCallFailed, SingleFlight, WaitExpired


class Work:
    """Counts runs; each run waits for ``release`` and then returns or raises ``outcome``."""

    def __init__(self, outcome: object = "done") -> None:
        self.runs = 0
        self.cancelled = 0
        self.release = asyncio.Event()
        self.outcome = outcome

    async def __call__(self) -> str:
        self.runs += 1
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return str(self.outcome)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_concurrent_identical_calls_run_the_work_once() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    waiters = [asyncio.create_task(flights.do("k", work)) for _ in range(8)]
    await settle()
    work.release.set()
    results = await asyncio.gather(*waiters)
    assert work.runs == 1
    assert [value for value, _ in results] == ["done"] * 8
    assert sorted(shared for _, shared in results) == [False] + [True] * 7
    assert not flights.in_flight("k")


async def test_different_keys_do_not_share() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    work.release.set()
    await asyncio.gather(flights.do("a", work), flights.do("b", work))
    assert work.runs == 2


async def test_a_finished_call_is_not_reused() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    work.release.set()
    await flights.do("k", work)
    assert await flights.do("k", work) == ("done", False)
    assert work.runs == 2


async def test_a_failure_reaches_every_waiter_and_is_not_kept() -> None:
    flights: SingleFlight[str] = SingleFlight()
    boom = RuntimeError("upstream broke")
    work = Work(boom)
    leader = asyncio.create_task(flights.do("k", work))
    await settle()
    followers = [asyncio.create_task(flights.do("k", work)) for _ in range(3)]
    await settle()
    work.release.set()
    with pytest.raises(RuntimeError):
        await leader
    for follower in followers:
        with pytest.raises(SharedCallFailed) as info:
            await follower
        assert info.value.error is boom
    assert work.runs == 1
    work.outcome = "recovered"
    assert await flights.do("k", work) == ("recovered", False)


async def test_cancelling_the_leader_does_not_cancel_the_call_for_followers() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    leader = asyncio.create_task(flights.do("k", work))
    await settle()
    follower = asyncio.create_task(flights.do("k", work))
    await settle()
    leader.cancel()
    await settle()
    assert leader.cancelled() and work.cancelled == 0
    work.release.set()
    assert await follower == ("done", True)
    assert work.runs == 1


async def test_when_every_waiter_leaves_the_work_is_cancelled_and_the_next_call_starts_afresh() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    waiters = [asyncio.create_task(flights.do("k", work)) for _ in range(3)]
    await settle()
    for waiter in waiters:
        waiter.cancel()
    await settle()
    assert work.cancelled == 1 and not flights.in_flight("k")
    work.release.set()
    assert await flights.do("k", work) == ("done", False)
    assert work.runs == 2


async def test_a_follower_stops_waiting_at_its_own_deadline_while_the_call_goes_on() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    leader = asyncio.create_task(flights.do("k", work))
    await settle()
    deadline = asyncio.get_running_loop().time() + 0.05
    with pytest.raises(WaitExpired):
        await flights.do("k", work, deadline=deadline)
    assert work.cancelled == 0 and not leader.done()
    work.release.set()
    assert await leader == ("done", False)


async def test_a_follower_deadline_already_past_gives_up_at_once() -> None:
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    leader = asyncio.create_task(flights.do("k", work))
    await settle()
    with pytest.raises(WaitExpired):
        await flights.do("k", work, deadline=asyncio.get_running_loop().time() - 1)
    work.release.set()
    await leader


async def test_the_leaders_own_deadline_argument_does_not_bound_its_work() -> None:
    # The leader's work (the router) enforces the leader's deadline itself, with its attempt records.
    flights: SingleFlight[str] = SingleFlight()
    work = Work()
    leader = asyncio.create_task(flights.do("k", work, deadline=asyncio.get_running_loop().time() - 1))
    await settle()
    assert not leader.done()
    work.release.set()
    assert await leader == ("done", False)
