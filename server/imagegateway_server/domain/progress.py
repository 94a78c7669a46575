"""What a caller may watch while its request is served: attempts starting, jobs queued and polled, failures.

The router reports each step to the request's ``ProgressListener`` (``RouteContext.progress``,
from ``GenerationCall.progress``), which a front end turns into messages (the gRPC stream's
``Progress``). Listening is optional and costs nothing when nobody listens; a listener must not
block (it is called on the event loop, in the middle of an attempt).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from imagegateway_server.domain.error_kinds import ErrorKind


class ProgressKind(enum.Enum):
    """What happened."""

    ATTEMPT_STARTED = "ATTEMPT_STARTED"  # a target is being called (or called again, on a retry)
    QUEUED = "QUEUED"  # the provider holds the job in its queue (at ``queue_position`` when it says)
    RUNNING = "RUNNING"  # the job runs; each poll that says so is reported
    ATTEMPT_FAILED = "ATTEMPT_FAILED"  # the attempt failed; a retry or the next target may follow


@dataclasses.dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One step of a request, about the attempt it concerns."""

    kind: ProgressKind
    target: str
    provider: str
    model: str
    retry_index: int = 0
    status: str = ""  # the provider's own word for the job's state ("IN_QUEUE", "Pending")
    queue_position: int | None = None
    poll_count: int = 0
    elapsed_seconds: float = 0.0  # since the attempt started
    error_kind: ErrorKind | None = None
    error: str = ""


ProgressListener = Callable[[ProgressEvent], None]
