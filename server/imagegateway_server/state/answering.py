"""The task answering the current request, so that shared state can write after the caller has its answer.

The gateway names it when a request starts (``answering``); tasks made for the request, like a shared
call's leader, inherit it. A shared backend sends the writes nobody waits for (a cached answer, a
shared call's end, a request's release) when that task is done: the front end wrote the answer from
it, so the writes, and the encoding of a cached answer, cost nothing on the caller's path, and
replicas waiting on a shared call hear of its end at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

_ANSWERING: ContextVar[asyncio.Future[Any] | None] = ContextVar("imagegw_answering", default=None)


@contextlib.contextmanager
def answering() -> Iterator[None]:
    """Marks the running task as the one that answers the request served inside the block."""
    token = _ANSWERING.set(asyncio.current_task())
    try:
        yield
    finally:
        _ANSWERING.reset(token)


def answering_task() -> asyncio.Future[Any] | None:
    """The task answering the request being served here, if any (None outside a request)."""
    return _ANSWERING.get()
