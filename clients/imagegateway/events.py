"""StreamGenerateImage's (and StreamEditImage's and StreamEditImageUpload's) messages as typed events,
for callers that show a request's progress.

``generate_events`` and ``edit_events`` (on both clients) yield, in order: ``Progress`` reports (an attempt starting
or failing, a job queued or running at an asynchronous provider, a fallback moving on),
``PartialImage`` events when partial images were asked for and the serving model streams them,
then one ``FinalImage`` per image, the last carrying the ``RoutingOutcome`` and ``GenerationReport``.
A request that fails raises its ``ImageGatewayError`` after the events that came before it.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, TypeVar

from imagegateway.v1 import images_pb2

ProgressKindName = Literal["attempt_started", "queued", "running", "attempt_failed", "fallback", "unspecified"]
StreamFallbackName = Literal["skip", "complete"]

_KIND_NAMES: dict[int, ProgressKindName] = {
    images_pb2.PROGRESS_KIND_ATTEMPT_STARTED: "attempt_started",
    images_pb2.PROGRESS_KIND_QUEUED: "queued",
    images_pb2.PROGRESS_KIND_RUNNING: "running",
    images_pb2.PROGRESS_KIND_ATTEMPT_FAILED: "attempt_failed",
    images_pb2.PROGRESS_KIND_FALLBACK: "fallback",
}
STREAM_FALLBACKS: dict[StreamFallbackName, images_pb2.StreamFallback.ValueType] = {
    "skip": images_pb2.STREAM_FALLBACK_SKIP,
    "complete": images_pb2.STREAM_FALLBACK_COMPLETE,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Progress:
    """What the request is doing, about one attempt: ``target`` ("config.targets[i]"), ``provider``,
    ``model`` and ``retry_index`` (0 for a first try) say which; the rest is set by kind.

    ``queued``: ``queue_position`` when the provider says it; ``queued`` and ``running``: ``status``
    (the provider's word for the job's state), ``poll_count`` and ``elapsed`` (seconds since the
    attempt started); ``attempt_failed`` and ``fallback``: ``error_kind`` ("content_policy",
    "rate_limited", ...) and ``error``; ``fallback``: ``next_target``, the target tried next.
    """

    kind: ProgressKindName
    target: str
    provider: str
    model: str
    retry_index: int = 0
    queue_position: int | None = None
    poll_count: int = 0
    elapsed: float = 0.0
    status: str = ""
    error_kind: str = ""
    error: str = ""
    next_target: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class PartialImage:
    """An unfinished version of the image, as the provider streamed it."""

    index: int
    data: bytes
    mime_type: str
    provider: str
    model: str


@dataclasses.dataclass(frozen=True, slots=True)
class FinalImage:
    """One generated image; the last carries the outcome and report (``last`` is True)."""

    image: images_pb2.Image
    created: int
    outcome: images_pb2.RoutingOutcome | None
    report: images_pb2.GenerationReport | None

    @property
    def last(self) -> bool:
        return self.outcome is not None


GenerationEvent = Progress | PartialImage | FinalImage


# The requests of the streaming image RPCs (StreamEditImageUpload's header): all carry progress,
# partial_images and stream_fallback.
StreamRequest = TypeVar(
    "StreamRequest",
    images_pb2.StreamGenerateImageRequest,
    images_pb2.StreamEditImageRequest,
    images_pb2.StreamEditImageUploadHeader,
)


def stream_request(
    request: StreamRequest,
    partial_images: int | None,
    stream_fallback: StreamFallbackName | None,
) -> StreamRequest:
    """Sets the streaming fields on a StreamGenerateImage or StreamEditImage request, or a StreamEditImageUpload
    header (progress reports always)."""
    request.progress = True
    if partial_images is not None:
        request.partial_images = partial_images
    if stream_fallback is not None:
        request.stream_fallback = STREAM_FALLBACKS[stream_fallback]
    return request


def _error_kind_name(kind: images_pb2.ErrorKind.ValueType) -> str:
    """``ERROR_KIND_CONTENT_POLICY`` as "content_policy"; "" when unset."""
    if kind == images_pb2.ERROR_KIND_UNSPECIFIED:
        return ""
    try:
        return images_pb2.ErrorKind.Name(kind).removeprefix("ERROR_KIND_").lower()
    except ValueError:  # a kind newer than this client
        return "unknown"


def event_of(
    message: images_pb2.StreamGenerateImageResponse
    | images_pb2.StreamEditImageResponse
    | images_pb2.StreamEditImageUploadResponse,
) -> GenerationEvent:
    """The typed event one response message carries (the three responses share their layout)."""
    if message.HasField("progress"):
        p = message.progress
        return Progress(
            kind=_KIND_NAMES.get(p.kind, "unspecified"),
            target=p.target,
            provider=p.provider,
            model=p.model,
            retry_index=p.retry_index,
            queue_position=p.queue_position if p.HasField("queue_position") else None,
            poll_count=p.poll_count,
            elapsed=p.elapsed_ms / 1000.0,
            status=p.status,
            error_kind=_error_kind_name(p.error_kind),
            error=p.error,
            next_target=p.next_target,
        )
    if message.HasField("partial_image"):
        q = message.partial_image
        return PartialImage(index=q.index, data=q.data, mime_type=q.mime_type, provider=q.provider, model=q.model)
    return FinalImage(
        image=message.image,
        created=message.created,
        outcome=message.outcome if message.HasField("outcome") else None,
        report=message.report if message.HasField("report") else None,
    )
