"""``imagegw generate``'s view of a request while it is served: one live status line, or plain lines.

On a terminal the gateway's progress messages (``Progress`` on the image stream) rewrite one line
on stderr with the time since the command started: which attempt is running, on which provider and
model, whether the job is queued (and where) or running, how many polls so far, and a fallback when
an attempt fails. When stderr is not a terminal (a log, a pipe) each change is one plain line
instead, and repeated polls that change nothing are not repeated.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO

from imagegateway.types import ErrorKind, Progress, ProgressKind

_CLEAR_LINE = "\r\x1b[K"


def describe(step: Progress) -> str:
    """One step in words, without the time."""
    who = f"{step.provider} {step.model}".strip()
    attempt = f"{step.target or 'target'}" + (f" retry {step.retry_index}" if step.retry_index else "")
    if step.kind == ProgressKind.PROGRESS_KIND_ATTEMPT_STARTED:
        return f"calling {who} ({attempt})"
    if step.kind == ProgressKind.PROGRESS_KIND_QUEUED:
        where = f", position {step.queue_position}" if step.HasField("queue_position") else ""
        return f"{who}: queued{where} ({_polls(step.poll_count)})"
    if step.kind == ProgressKind.PROGRESS_KIND_RUNNING:
        state = f" ({step.status})" if step.status else ""
        return f"{who}: running{state} ({_polls(step.poll_count)})"
    if step.kind == ProgressKind.PROGRESS_KIND_ATTEMPT_FAILED:
        kind = ErrorKind.Name(step.error_kind).removeprefix("ERROR_KIND_").lower()
        return f"{who} failed ({kind}): {step.error}; trying the next target if there is one"
    return who


def _polls(count: int) -> str:
    return "1 poll" if count == 1 else f"{count} polls"


class ProgressLine:
    """Shows progress steps on ``stream``; ``finish`` leaves the terminal's line clean."""

    def __init__(
        self, stream: IO[str], *, tty: bool | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._started = clock()
        self._last_plain = ""
        self._drawn = False

    def show(self, step: Progress) -> None:
        text = describe(step)
        elapsed = f"[{self._clock() - self._started:5.1f}s]"
        if self._tty:
            self._stream.write(f"{_CLEAR_LINE}{elapsed} {text}")
            self._drawn = True
        else:
            # The poll count changes every poll; only a change of state is a new plain line.
            state = text.split(" (", 1)[0] if step.kind != ProgressKind.PROGRESS_KIND_ATTEMPT_FAILED else text
            if state == self._last_plain:
                return
            self._last_plain = state
            self._stream.write(f"{elapsed} {text}\n")
        self._stream.flush()

    def finish(self) -> None:
        if self._tty and self._drawn:
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()
            self._drawn = False
