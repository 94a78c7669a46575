"""The hook through which an adapter tells a watching caller what its attempt is doing.

The router gives each attempt of a watched request an ``AttemptEvents`` as
``UpstreamTarget.events`` (None when nobody listens, so a unary call builds nothing). An adapter
reports through the three module functions, which do nothing when ``target.events`` is None:

    from imagegateway_server.providers.kit import progress
    progress.queued(target, position=3)      # the provider holds the job in its queue (position or None)
    progress.running(target, polls=4)        # the job runs; the adapter has polled it 4 times
    progress.partial_image(target, index=0, b64_json=..., fields=event, data=...)   # a streamed partial image

They return at once (the listener queues the event for the front end) and never raise. An
asynchronous adapter that waits with ``kit/polling.poll_job`` hands it ``target.events`` and
``target.jobs``: every poll is counted in the attempt's ``JobProgress`` (for the attempt log) and
reported here, QUEUED while the provider says a place in its queue, else RUNNING. Elapsed time is
counted here, from the attempt's start. docs/streaming.md says how the events reach callers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Protocol

from imagegateway_server.domain.progress import PartialImage, ProgressEvent, ProgressKind, StreamListener


class AttemptEvents:
    """One attempt's way to its request's listener, carrying who is called (target, provider, model)."""

    __slots__ = ("_listener", "model", "provider", "retry_index", "started", "target")

    def __init__(self, listener: StreamListener, *, target: str, provider: str, model: str, retry_index: int) -> None:
        self._listener = listener
        self.target = target
        self.provider = provider
        self.model = model
        self.retry_index = retry_index
        self.started = time.monotonic()

    def _event(self, kind: ProgressKind, **fields: Any) -> ProgressEvent:
        return ProgressEvent(
            kind=kind,
            target=self.target,
            provider=self.provider,
            model=self.model,
            retry_index=self.retry_index,
            elapsed_seconds=time.monotonic() - self.started,
            **fields,
        )

    def queued(self, position: int | None, *, polls: int = 0, status: str = "") -> None:
        self._listener.progress(
            self._event(ProgressKind.QUEUED, queue_position=position, poll_count=polls, status=status)
        )

    def running(self, polls: int, *, status: str = "") -> None:
        self._listener.progress(self._event(ProgressKind.RUNNING, poll_count=polls, status=status))

    def partial_image(
        self, index: int, b64_json: str | bytes | memoryview, fields: Mapping[str, Any], data: bytes | None = None
    ) -> None:
        def text(name: str) -> str:
            value = fields.get(name)
            return value if isinstance(value, str) else ""

        created = fields.get("created_at")
        self._listener.partial_image(
            PartialImage(
                index=index,
                b64_json=b64_json,
                provider=self.provider,
                model=self.model,
                background=text("background"),
                output_format=text("output_format"),
                quality=text("quality"),
                size=text("size"),
                created_at=created if isinstance(created, int) and not isinstance(created, bool) else 0,
                data=data,
            )
        )


class Watched(Protocol):
    """What the functions below need of an adapter's ``UpstreamTarget`` (named structurally, as
    ``kit/interface.py`` imports this module)."""

    @property
    def events(self) -> AttemptEvents | None: ...


def queued(target: Watched, position: int | None = None, *, polls: int = 0, status: str = "") -> None:
    """Reports that the provider holds the attempt's job in its queue, at ``position`` if it said
    (``polls`` so far; ``status``: the provider's word for it)."""
    if target.events is not None:
        target.events.queued(position, polls=polls, status=status)


def running(target: Watched, polls: int, *, status: str = "") -> None:
    """Reports that the attempt's job runs at the provider and has been polled ``polls`` times."""
    if target.events is not None:
        target.events.running(polls, status=status)


def partial_image(
    target: Watched,
    index: int,
    b64_json: str | bytes | memoryview,
    fields: Mapping[str, Any],
    data: bytes | None = None,
) -> None:
    """Passes on a partial image the provider streamed (``fields``: its size, quality, ... as sent;
    ``data``: the bytes ``b64_json`` decodes to, when the adapter decoded it to check it)."""
    if target.events is not None:
        target.events.partial_image(index, b64_json, fields, data)
