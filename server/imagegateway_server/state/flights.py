"""Shared calls across replicas: which replica makes the one upstream call for identical cache misses.

Inside a replica, identical misses in flight already share one call (``routing.single_flight``).
Across replicas the call's leader ``claim``s the cache key first; a replica that cannot claim it
``wait``s until the leader ``finish``es, then reads the answer from the shared cache store (or, when
the leader kept nothing, makes its own call). The in-process backend always lets the caller lead.
"""

from __future__ import annotations

import enum
from typing import Protocol


class FlightEnd(enum.Enum):
    """How waiting on another replica's call ended."""

    KEPT = "kept"  # the answer is in the cache store: read it
    NOT_KEPT = "not_kept"  # the call failed or its answer was not cacheable: make your own call
    GONE = "gone"  # nobody leads the key any more (the leader's replica went away): claim it again
    EXPIRED = "expired"  # the waiter's own time ran out


class SharedFlights(Protocol):
    """Elects one leader per cache key across replicas."""

    async def claim(self, key: str) -> bool:
        """True when this replica is to make the call (it must ``finish`` it); False when another is making it."""
        ...

    def finish(self, key: str, kept: bool) -> None:
        """Ends this replica's claim on ``key`` and wakes the waiters; ``kept``: the answer is in the store.

        Synchronous, so it is safe in ``finally`` and on cancel: a shared backend queues the write.
        """
        ...

    def abandon(self, key: str) -> None:
        """This replica will not claim ``key`` after all (its request ended first): gives back a lock a
        look-up took for the claim. Synchronous: a shared backend queues the write."""
        ...

    async def wait(self, key: str, within: float | None) -> FlightEnd:
        """Waits (at most ``within`` seconds, None: no bound) for the leader of ``key`` to finish."""
        ...
