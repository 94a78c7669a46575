"""Single-flight: identical work started while the same work is in flight waits for it instead.

The first caller (the leader) starts the work as its own task; later callers with the same key
(followers) wait on that task. Every caller waits behind ``asyncio.shield``, so one caller going away
never cancels the work for the others; when the last caller goes away, the work is cancelled, since
nobody is left to use its result. A failure reaches every waiter, followers wrapped in
``SharedCallFailed`` so they can tell it was not their own call.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class SharedCallFailed(Exception):
    """The in-flight call a follower waited on failed with ``error``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class WaitExpired(Exception):
    """A follower's own deadline passed before the shared call finished."""


@dataclasses.dataclass(slots=True)
class _Flight(Generic[T]):
    task: asyncio.Task[T]
    waiters: int = 0


class SingleFlight(Generic[T]):
    """Coalesces concurrent calls by key. One instance per kind of work, shared by all requests."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight[T]] = {}

    def in_flight(self, key: Hashable) -> bool:
        return key in self._flights

    async def do(
        self, key: Hashable, work: Callable[[], Coroutine[Any, Any, T]], *, deadline: float | None = None
    ) -> tuple[T, bool]:
        """Runs ``work`` or joins the identical call in flight; returns (value, shared).

        ``deadline`` (event-loop time) bounds a follower's wait (raising WaitExpired); the leader's
        work bounds itself.
        """
        found = self._flights.get(key)
        leader = found is None
        if found is None:
            flight = _Flight(asyncio.create_task(work()))
            self._flights[key] = flight
            flight.task.add_done_callback(lambda task: self._finished(key, flight, task))
        else:
            flight = found
        flight.waiters += 1
        try:
            if not leader and deadline is not None:
                # asyncio.wait leaves the task running when this caller's time is up.
                remaining = deadline - asyncio.get_running_loop().time()
                done, _ = await asyncio.wait((flight.task,), timeout=max(0.0, remaining))
                if not done:
                    self._leave(key, flight)
                    raise WaitExpired("the deadline passed while an identical call was in flight")
            value = await asyncio.shield(flight.task)
        except asyncio.CancelledError:
            self._leave(key, flight)
            raise
        except WaitExpired:
            raise
        except Exception as exc:
            flight.waiters -= 1
            if leader:
                raise
            raise SharedCallFailed(exc) from None
        flight.waiters -= 1
        return value, not leader

    def _leave(self, key: Hashable, flight: _Flight[T]) -> None:
        flight.waiters -= 1
        if flight.waiters == 0 and not flight.task.done():
            # Nobody is left to use the result: stop the work, and let a new caller start afresh
            # rather than join a call that is being cancelled.
            flight.task.cancel()
            if self._flights.get(key) is flight:
                del self._flights[key]

    def _finished(self, key: Hashable, flight: _Flight[T], task: asyncio.Task[T]) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
        if not task.cancelled():
            # Mark a failure nobody waited for as seen, so asyncio does not warn about it.
            with contextlib.suppress(BaseException):
                task.exception()
