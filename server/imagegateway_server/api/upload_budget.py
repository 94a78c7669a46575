"""Bounds the memory uploads (edits, variations) hold at once: one byte budget per process, shared by the
REST shim and the gRPC servicer, that requests wait for.

An edit may carry 16 images of several MiB each, and the images stay in memory until the request
ends (a retry or a fallback sends them again). A REST upload reserves its declared size (or the body
limit when it declares none) before its body is read, and a one-message gRPC upload the size of its
message; one that does not fit waits its turn, unread, so the client's bytes wait in the socket (TCP
flow control) rather than in the gateway's memory. One such upload larger than the whole budget still
runs, alone.

A chunked gRPC upload reserves through ``hold`` and ``Reservation.grow``. One whose header announces
its size reserves it with the header, waiting its turn as above (``grpc_upload``); one that announces
nothing grows its reservation chunk by chunk as the chunks arrive: its first chunk waits its turn as
above, later chunks take room while there is some and otherwise wait for another upload to give
memory back (before new uploads are let in, as the growing upload already holds memory). Two cases
could never end, and are refused at once with ``UploadMemoryExhausted``: a chunked upload that would
outgrow the whole budget, and a chunk that would wait while every upload holding memory is itself
waiting for more (the upload whose chunk came last is refused, so the others can go on).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from imagegateway_server.domain.errors import ErrorKind, GatewayError

SETTING = "IMAGEGW_UPLOAD_MEMORY_BYTES"


class UploadMemoryExhausted(GatewayError):
    """A chunked upload cannot get the memory it needs now (RESOURCE_EXHAUSTED); names the setting."""

    kind = ErrorKind.RATE_LIMITED
    setting = SETTING

    def __init__(self, message: str) -> None:
        super().__init__(message, code="upload_memory_exhausted", status_code=429)


class Reservation:
    """The bytes one upload holds; ``grow`` adds a chunk's worth (see the module's docstring)."""

    __slots__ = ("_budget", "amount")

    def __init__(self, budget: UploadBudget) -> None:
        self._budget = budget
        self.amount = 0

    async def grow(self, size: int) -> None:
        """Holds ``size`` more bytes; waits while they do not fit, or raises UploadMemoryExhausted."""
        await self._budget._grow(self, size)


# A waiting reservation, the bytes it waits for, and the future that grants or refuses them.
_Waiter = tuple[Reservation, int, "asyncio.Future[None]"]


class UploadBudget:
    """At most ``capacity`` bytes of uploads in flight; ``reserve`` and ``hold`` wait their turn (first come,
    first served)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._used = 0
        self._holders = 0  # reservations holding any bytes
        self._waiters: deque[_Waiter] = deque()  # uploads not yet let in
        self._growers: deque[_Waiter] = deque()  # uploads holding memory that wait for more

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        return self._used

    @contextlib.asynccontextmanager
    async def reserve(self, size: int) -> AsyncIterator[None]:
        """Holds ``size`` bytes (capped at the capacity) for the block; waits while they do not fit."""
        reservation = Reservation(self)
        try:
            await self._admit(reservation, max(0, min(size, self._capacity)))
            yield
        finally:
            self._release(reservation)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[Reservation]:
        """A reservation of nothing yet, grown by ``Reservation.grow``; whatever it holds is given back when
        the block ends, however it ends."""
        reservation = Reservation(self)
        try:
            yield reservation
        finally:
            self._release(reservation)

    async def _admit(self, reservation: Reservation, amount: int) -> None:
        if amount == 0:
            return
        if not self._waiters and not self._growers and self._fits(amount, admitting=True):
            self._take(reservation, amount)
            return
        await self._wait(self._waiters, reservation, amount)

    async def _grow(self, reservation: Reservation, size: int) -> None:
        if size <= 0:
            return
        if reservation.amount + size > self._capacity:
            raise UploadMemoryExhausted(
                f"the upload is larger than {SETTING} ({self._capacity} bytes), the memory all uploads may hold"
                " at once; send it in smaller requests, or raise the setting"
            )
        if reservation.amount == 0:
            await self._admit(reservation, size)
        elif not self._growers and self._fits(size, admitting=False):
            self._take(reservation, size)
        elif self._holders == len(self._growers) + 1:
            raise self._stuck()  # every other holder waits for more too: waiting would never end
        else:
            await self._wait(self._growers, reservation, size)

    async def _wait(self, queue: deque[_Waiter], reservation: Reservation, amount: int) -> None:
        """Waits in ``queue`` until ``_wake`` grants ``amount`` (adding it to the reservation then, so that
        nothing is granted twice) or refuses it."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (reservation, amount, waiter)
        queue.append(entry)
        try:
            await waiter
        except BaseException:
            # Cancelled while waiting: out of the queue. Granted just as it was cancelled: the bytes are in
            # the reservation already, and go back when its block ends.
            if entry in queue:
                queue.remove(entry)
            self._wake()
            raise

    def _stuck(self) -> UploadMemoryExhausted:
        return UploadMemoryExhausted(
            f"the uploads in progress hold all of {SETTING} ({self._capacity} bytes) and each needs more;"
            " this one is refused so the others can finish: send it again later"
        )

    def _fits(self, amount: int, *, admitting: bool) -> bool:
        # An upload larger than the whole budget is let in when nothing else holds any (it could never fit).
        return self._used + amount <= self._capacity or (admitting and self._used == 0)

    def _take(self, reservation: Reservation, amount: int) -> None:
        if reservation.amount == 0:
            self._holders += 1
        reservation.amount += amount
        self._used += amount

    def _release(self, reservation: Reservation) -> None:
        if reservation.amount:
            self._used -= reservation.amount
            self._holders -= 1
            reservation.amount = 0
        self._wake()

    def _wake(self) -> None:
        # Growing uploads first, in order: they hold memory already, and finishing them gives it back.
        while self._growers:
            _, amount, _ = self._growers[0]
            if self._used + amount > self._capacity:
                break
            self._grant(self._growers.popleft())
        if self._growers:
            if self._holders == len(self._growers):
                # Every holder waits for more and none can have it: the newest gives way.
                _, _, waiter = self._growers.pop()
                if not waiter.done():
                    waiter.set_exception(self._stuck())
            return
        # Then new uploads, in order: the first goes first, so a large upload is not starved by small ones.
        while self._waiters:
            _, amount, _ = self._waiters[0]
            if not self._fits(amount, admitting=True):
                return
            self._grant(self._waiters.popleft())

    def _grant(self, entry: _Waiter) -> None:
        reservation, amount, waiter = entry
        if not waiter.done():
            self._take(reservation, amount)
            waiter.set_result(None)
