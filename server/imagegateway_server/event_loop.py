"""Which event loop the process runs on: uvloop by default, the standard asyncio loop on request.

uvloop (libuv, in C) roughly halves the loop's own cost per request: socket reads and writes,
callbacks, timers (bench/NOTES.md item 8). It has no Windows build, so where it cannot be imported
the process runs on the standard loop, which serves the same way, only slower.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

UVLOOP = "uvloop"
ASYNCIO = "asyncio"
EVENT_LOOPS = (UVLOOP, ASYNCIO)

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(name: str) -> LoopFactory:
    """A factory of new loops of the kind ``name`` names (one of ``EVENT_LOOPS``)."""
    if name not in EVENT_LOOPS:
        raise ValueError(f"unknown event loop {name!r}; expected one of {', '.join(EVENT_LOOPS)}")
    if name == UVLOOP:
        try:
            import uvloop
        except ImportError:
            log.info("uvloop is not installed here; running on the standard asyncio loop")
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """What actually runs: ``uvloop`` or ``asyncio`` (for the start log line)."""
    return UVLOOP if type(loop).__module__.startswith("uvloop") else ASYNCIO
