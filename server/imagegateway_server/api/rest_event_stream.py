"""The REST answer sent as it is made (server-sent events), written from the request's own task.

Starlette's ``StreamingResponse``, under uvicorn's ASGI 2.3, runs the body in a new task of an anyio
task group beside one that waits for the caller to leave: the status line and the first event wait
for that task to be scheduled and for the task group's cancel scopes (~0.15 ms of a streamed
request's time to its first partial image, timed along the path on a loaded 2-core machine). Here
the request's own task writes the status line and each event the moment it has them, and a plain
task, started once the first chunk is out, waits for the caller to leave and then cancels the
request's task: the events' generator is closed by that cancellation (for the image stream, the
request is cancelled and logged as such) and the response ends quietly, as Starlette's does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send


class _Watch:
    """Whether the caller left while the events were sent, and whether the sending ended first."""

    __slots__ = ("caller_left", "ended")

    def __init__(self) -> None:
        self.caller_left = False
        self.ended = False


async def _cancel_when_caller_leaves(receive: Receive, sender: asyncio.Task[object], watch: _Watch) -> None:
    # The request's body has been read, so the next message is the disconnect; uvicorn also answers
    # it once the response is complete, which ``watch.ended`` (set before this task runs again) tells apart.
    while (await receive())["type"] != "http.disconnect":
        pass
    if not watch.ended:
        watch.caller_left = True
        sender.cancel()


class EventStreamResponse(Response):
    """A 200 whose body is ``events``, each chunk sent as soon as the iterator yields it."""

    def __init__(self, events: AsyncGenerator[bytes, None], *, headers: Mapping[str, str], media_type: str) -> None:
        self._events = events
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sender = asyncio.current_task()
        assert sender is not None  # ASGI apps run in a task
        watch = _Watch()
        watcher: asyncio.Future[None] | None = None
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self._events:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                if watcher is None:
                    # Started once the first chunk is out, which thus waits for nothing (the image stream's
                    # first event is ready when the response is made); a caller who left earlier is
                    # seen at once, as the disconnect is already there to receive.
                    watcher = asyncio.ensure_future(_cancel_when_caller_leaves(receive, sender, watch))
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watch.caller_left:
                raise
            sender.uncancel()  # our own cancellation, for a caller who left: the response simply ends
        finally:
            watch.ended = True
            if watcher is not None:
                watcher.cancel()
            # Cancelled while a write waited on a slow caller, the generator is still open: close it now
            # (its own clean-up cancels the request) rather than when it is garbage-collected.
            await self._events.aclose()
