"""What a caller may watch while its request is served: progress events, partial images, and who hears them.

The router reports an attempt starting, an attempt failing and a fallback moving on; adapters
report a job queued (at a position) or running (with its poll count) and partial images as the
provider streams them, through the hook in ``providers/kit/progress.py``. All of it goes to the
request's one ``StreamListener`` (``GenerationCall.listener`` -> ``RouteContext.listener``), which
a front end sets only for a streaming call (``core/streaming.py``); with no listener nothing is
built, so unary calls pay nothing. A listener must not block: it is called on the event loop, in
the middle of an attempt.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

from imagegateway_server.domain.error_kinds import ErrorKind


class ProgressKind(enum.Enum):
    """What a progress event says."""

    # A target is about to be called (each retry and each successor call is an attempt too).
    ATTEMPT_STARTED = "attempt_started"
    # An asynchronous provider holds the job in its queue (``queue_position`` when the provider says it).
    QUEUED = "queued"
    # An asynchronous provider's job runs; reported at each poll (``poll_count``).
    RUNNING = "running"
    # The attempt failed (``error_kind``, ``error``); a retry or a fallback may follow.
    ATTEMPT_FAILED = "attempt_failed"
    # ``target`` failed (``error_kind``, ``error``) and the walk moves on to ``next_target``.
    FALLBACK = "fallback"


@dataclasses.dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One step of a request, about the attempt it concerns. ``target`` is Portkey's
    ``config.targets[i]`` path ("" when the request named no config); ``elapsed_seconds`` runs from
    the attempt's start (QUEUED, RUNNING, ATTEMPT_FAILED)."""

    kind: ProgressKind
    target: str
    provider: str
    model: str
    retry_index: int = 0
    # QUEUED, RUNNING: the provider's own word for the job's state ("IN_QUEUE", "Pending").
    status: str = ""
    queue_position: int | None = None
    poll_count: int = 0
    elapsed_seconds: float = 0.0
    # ATTEMPT_FAILED, FALLBACK: why the attempt failed (never a secret: error messages carry none).
    error_kind: ErrorKind | None = None
    error: str = ""
    # FALLBACK: the path of the target tried next.
    next_target: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class PartialImage:
    """A partial image as the provider streamed it: ``b64_json`` is kept as sent, as text or a view of
    its ASCII bytes in the provider's event (REST passes it on without decoding; gRPC sends ``data``,
    the bytes it decodes to, which an adapter that checked the base64 by decoding it hands over, else
    gRPC decodes it). The other fields are the provider's (OpenAI's event fields)."""

    index: int
    # A view of the ASCII text where the adapter had it as bytes (a long image): not copied out of the
    # event, as gRPC never reads it and REST copies it once, into its own event.
    b64_json: str | bytes | memoryview
    provider: str
    model: str
    background: str = ""
    output_format: str = ""
    quality: str = ""
    size: str = ""
    created_at: int = 0
    data: bytes | None = dataclasses.field(default=None, repr=False)


class StreamListener(Protocol):
    """Hears one request's events, in order; both methods return at once (they must not block the
    router or the adapter). ``images_sent`` counts the partial images passed to the caller: once it
    is above zero a failing target cannot be replaced by a fallback, as the caller has seen its images."""

    @property
    def images_sent(self) -> int: ...

    def progress(self, event: ProgressEvent) -> None: ...

    def partial_image(self, image: PartialImage) -> None: ...
