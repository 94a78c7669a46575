"""Serves one request as a stream of events: progress, partial images, then the outcome.

``stream_generation`` runs ``Gateway.generate`` with a listener and yields what the listener hears
(``ProgressEvent`` and ``PartialImage``, in order) and finally the ``GenerationOutcome``; a failed
request raises its ``RequestFailed`` after the events that came before it. Both streaming front
ends (REST server-sent events, gRPC StreamGenerateImage) read it; closing the iterator early (the
caller left) cancels the request, which the gateway then logs as cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator

from imagegateway_server.core.gateway import Gateway
from imagegateway_server.domain.calls import GenerationCall, GenerationOutcome
from imagegateway_server.domain.progress import PartialImage, ProgressEvent

StreamItem = ProgressEvent | PartialImage | GenerationOutcome


class _Done:
    """Put on the queue when the request has ended: nothing follows it."""


_DONE = _Done()


class QueueListener:
    """A ``StreamListener`` that queues what it hears for one reader; never blocks the router.

    Without ``progress`` the progress events are dropped as they are heard: a reader that would only
    pass over them (REST, gRPC without ``progress``) is then not woken for each attempt, and the
    first partial image meets no queued events ahead of it."""

    __slots__ = ("_images_sent", "_progress", "queue")

    def __init__(self, *, progress: bool = True) -> None:
        self.queue: asyncio.Queue[ProgressEvent | PartialImage | _Done] = asyncio.Queue()
        self._images_sent = 0
        self._progress = progress

    @property
    def images_sent(self) -> int:
        return self._images_sent

    def progress(self, event: ProgressEvent) -> None:
        if self._progress:
            self.queue.put_nowait(event)

    def partial_image(self, image: PartialImage) -> None:
        # Counted when queued: from here on it goes to the caller, so no fallback may replace its target.
        self._images_sent += 1
        self.queue.put_nowait(image)


async def stream_generation(
    gateway: Gateway, call: GenerationCall, *, progress: bool = True
) -> AsyncGenerator[StreamItem, None]:
    """The events of serving ``call``, then its outcome; raises what ``Gateway.generate`` raises.
    ``progress=False``: only the partial images and the outcome (no ``ProgressEvent``)."""
    listener = QueueListener(progress=progress)
    task = asyncio.ensure_future(gateway.generate(dataclasses.replace(call, listener=listener)))
    task.add_done_callback(lambda _: listener.queue.put_nowait(_DONE))
    try:
        while True:
            item = await listener.queue.get()
            if isinstance(item, _Done):
                break
            yield item
        yield task.result()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
