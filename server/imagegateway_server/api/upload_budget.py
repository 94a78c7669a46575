"""Bounds the memory uploads (edits, variations) hold at once: a byte budget that requests wait for.

An edit may carry 16 images of several MiB each, and the images stay in memory until the request
ends (a retry or a fallback sends them again). Each upload reserves its declared size (or the body
limit when it declares none) before its body is read; an upload that does not fit waits, unread, so
the client's bytes wait in the socket (TCP flow control) rather than in the gateway's memory. One
upload larger than the whole budget still runs, alone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class UploadBudget:
    """At most ``capacity`` bytes of uploads in flight; ``reserve`` waits its turn (first come, first served)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._used = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        return self._used

    @contextlib.asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[None]:
        """Holds ``size`` bytes (capped at the capacity) for the block; waits while they do not fit."""
        amount = max(0, min(size, self._capacity))
        if self._waiters or self._used + amount > self._capacity:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append((amount, waiter))
            try:
                await waiter
            except BaseException:
                if (amount, waiter) in self._waiters:
                    self._waiters.remove((amount, waiter))
                elif waiter.done() and not waiter.cancelled():
                    self._release(amount)  # granted just as we were cancelled
                self._wake()
                raise
        else:
            self._used += amount
        try:
            yield
        finally:
            self._release(amount)

    def _release(self, amount: int) -> None:
        self._used -= amount
        self._wake()

    def _wake(self) -> None:
        # In order: the first waiter goes first, so a large upload is not starved by small ones.
        while self._waiters:
            amount, waiter = self._waiters[0]
            if self._used + amount > self._capacity and self._used > 0:
                return
            self._waiters.pop(0)
            if not waiter.done():
                self._used += amount
                waiter.set_result(None)
