"""gRPC health checking that lets a graceful shutdown finish early.

Load balancers keep a Health/Watch stream open for as long as the server runs. grpc's stock
servicer never ends those streams, so ``server.stop(grace)`` always waited the whole grace period
even with no request in flight. Here, once shutdown begins, each watcher is sent NOT_SERVING and
its stream is then closed.

``Check`` also sends the replica's health details (the database and the shared state backend: up or
not, never a password) as JSON in the ``imagegw-health-details`` trailing metadata entry, the same
object ``GET /health`` shows: the standard response has a status only, and probes that read just the
status are unaffected. A replica whose database or Redis is unreachable is still SERVING (it serves
from cached configs and in-process state); the details say what it is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from grpc_health.v1 import health, health_pb2

# Time a watcher gets to write NOT_SERVING to its peer before its stream is closed.
NOT_SERVING_FLUSH_SECONDS = 0.2
# The trailing metadata entry Check's details travel in.
DETAILS_METADATA_KEY = "imagegw-health-details"

HealthDetails = Callable[[], Mapping[str, object]]


class DrainingHealthServicer(health.aio.HealthServicer):
    """The standard aio health servicer, whose Watch streams end once shutdown begins."""

    def __init__(self, details: HealthDetails | None = None) -> None:
        super().__init__()
        self._draining = asyncio.Event()
        self._details = details

    async def Check(self, request: health_pb2.HealthCheckRequest, context: Any) -> Any:
        answer = await super().Check(request, context)
        if self._details is not None:
            context.set_trailing_metadata(((DETAILS_METADATA_KEY, json.dumps(dict(self._details()))),))
        return answer

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
