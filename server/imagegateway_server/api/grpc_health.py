"""gRPC health checking that lets a graceful shutdown finish early.

Load balancers keep a Health/Watch stream open for as long as the server runs. grpc's stock
servicer never ends those streams, so ``server.stop(grace)`` always waited the whole grace period
even with no request in flight. Here, once shutdown begins, each watcher is sent NOT_SERVING and
its stream is then closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from grpc_health.v1 import health, health_pb2

# Time a watcher gets to write NOT_SERVING to its peer before its stream is closed.
NOT_SERVING_FLUSH_SECONDS = 0.2


class DrainingHealthServicer(health.aio.HealthServicer):
    """The standard aio health servicer, whose Watch streams end once shutdown begins."""

    def __init__(self) -> None:
        super().__init__()
        self._draining = asyncio.Event()

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self._draining.set()

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Any) -> None:
        watch = asyncio.ensure_future(super().Watch(request, context))
        draining = asyncio.ensure_future(self._draining.wait())
        try:
            await asyncio.wait({watch, draining}, return_when=asyncio.FIRST_COMPLETED)
            if not watch.done():
                await asyncio.sleep(NOT_SERVING_FLUSH_SECONDS)
        finally:
            for task in (watch, draining):
                task.cancel()
            for task in (watch, draining):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
