"""Fan-out for models that make one image per call: n calls at once, all succeed or none is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

_T = TypeVar("_T")


async def all_or_nothing(calls: list[Awaitable[_T]]) -> list[_T]:
    """Runs calls concurrently; on the first failure cancels the rest and raises that failure."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
