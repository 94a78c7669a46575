"""What a streaming caller sees before the images: progress events and partial images, and who hears them.

The router reports an attempt starting and a fallback moving on; adapters report a job queued at
a position and polls of a job still running (``providers/kit/progress.py``) and partial images as the
provider streams them. All of it goes to one ``StreamListener``, which a front end sets only for
a streaming call; with no listener nothing is built, so unary calls pay nothing.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol


class ProgressKind(enum.Enum):
    """What a progress event says."""

    # The router is about to call a target (each retry and each successor call is an attempt too).
    ATTEMPT_STARTED = "attempt_started"
    # An asynchronous provider holds the job in its queue (``position`` when the provider says it).
    QUEUED = "queued"
    # An asynchronous provider's job runs; the adapter has polled it ``polls`` times.
    POLLING = "polling"
    # A target failed and the walk moves on to the next one (``reason`` says why).
    FALLBACK = "fallback"


@dataclasses.dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress report of a request. ``target`` is Portkey's ``config.targets[i]`` path ("" when
    the request named no config); ``elapsed`` is seconds since the attempt started (QUEUED, POLLING)."""

    kind: ProgressKind
    target: str
    provider: str
    model: str
    attempt: int = 0
    position: int | None = None
    elapsed: float = 0.0
    polls: int = 0
    # FALLBACK: why ``target`` failed, and the path of the target tried next.
    reason: str = ""
    next_target: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class PartialImage:
    """A partial image as the provider streamed it: ``b64_json`` is kept as sent (REST passes it on
    without decoding; gRPC decodes it). The other fields are the provider's (OpenAI's event fields)."""

    index: int
    b64_json: str
    provider: str
    model: str
    background: str = ""
    output_format: str = ""
    quality: str = ""
    size: str = ""
    created_at: int = 0


class StreamListener(Protocol):
    """Hears one request's events, in order; both methods return at once (they must not block the
    router or the adapter). ``images_sent`` counts the image events passed to the caller: once it is
    above zero a failing target cannot be replaced by a fallback, as the caller has seen its images."""

    @property
    def images_sent(self) -> int: ...

    def progress(self, event: ProgressEvent) -> None: ...

    def partial_image(self, image: PartialImage) -> None: ...
