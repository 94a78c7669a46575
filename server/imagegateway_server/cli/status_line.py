"""What ``imagegw generate`` says while it waits: one live status line on a terminal, plain lines elsewhere.

It shows the typed events of ``generate_events`` (``imagegateway.events``): which attempt runs, on
which provider and model, whether its job is queued (and where) or running (and how many polls so
far), an attempt failing and the fallback to the next target, and partial images as they arrive.

On a terminal the line is rewritten in place (carriage return, erase to the end of the line) with
the latest step and the time since the request began, and a ticker thread moves the clock on
every half second while nothing arrives; the line is erased when the request ends, so the outcome
prints on a clean screen. When the stream is not a terminal (a pipe, a log file, CI), each step is
its own line, stamped with the elapsed time; polls that change nothing but their count are not
repeated, so a long wait does not flood a log.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import TextIO

from imagegateway.events import PartialImage, Progress

TICK_SECONDS = 0.5
_ERASE_LINE = "\r\x1b[K"


def describe(event: Progress | PartialImage) -> str:
    """One step in words, without the time: ``calling openai gpt-image-1.5 (config.targets[0])``."""
    who = f"{event.provider} {event.model}".strip()
    if isinstance(event, PartialImage):
        return f"partial image {event.index + 1} from {who}"
    if event.kind == "attempt_started":
        where = ", ".join(
            part for part in (event.target, f"retry {event.retry_index}" if event.retry_index else "") if part
        )
        return f"calling {who}" + (f" ({where})" if where else "")
    if event.kind == "queued":
        place = f", position {event.queue_position}" if event.queue_position is not None else ""
        return f"{who}: queued{place} ({_polls(event.poll_count)})"
    if event.kind == "running":
        state = f" ({event.status})" if event.status else ""
        return f"{who}: running{state} ({_polls(event.poll_count)})"
    if event.kind == "attempt_failed":
        return f"{who} failed ({event.error_kind or 'error'}): {event.error}"
    if event.kind == "fallback":
        return f"falling back from {event.target or who} to {event.next_target or 'the next target'}"
    return f"{event.kind} on {who}"


def _polls(count: int) -> str:
    return "1 poll" if count == 1 else f"{count} polls"


def _state(event: Progress | PartialImage) -> Hashable | None:
    """What a job's poll says apart from its count (None for any other step, always shown)."""
    if isinstance(event, Progress) and event.kind in ("queued", "running"):
        return (event.kind, event.target, event.retry_index, event.queue_position, event.status)
    return None


class StatusLine:
    """Shows one request's progress on ``stream``; ``close`` when the request has ended."""

    def __init__(
        self, stream: TextIO, *, live: bool | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._clock = clock
        self._started = clock()
        self._text = "waiting for the gateway"
        self._last_state: Hashable | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self._live:
            self._draw()
            self._ticker = threading.Thread(target=self._tick, name="imagegw-status", daemon=True)
            self._ticker.start()

    def _elapsed(self) -> str:
        return f"{self._clock() - self._started:.1f}s"

    def _draw(self) -> None:
        with self._lock:
            self._stream.write(f"{_ERASE_LINE}[{self._elapsed()}] {self._text}")
            self._stream.flush()

    def _tick(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self._draw()

    def report(self, event: Progress | PartialImage) -> None:
        """Shows ``event``: the live line's new text, or one more plain line."""
        self._text = describe(event)
        if self._live:
            self._draw()
            return
        state = _state(event)
        if state is not None and state == self._last_state:
            return  # the same wait, one more poll
        self._last_state = state
        self._stream.write(f"[{self._elapsed()}] {self._text}\n")
        self._stream.flush()

    def close(self) -> None:
        """Stops the clock and erases the live line (plain lines stay)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self._live:
            with self._lock:
                self._stream.write(_ERASE_LINE)
                self._stream.flush()
            self._live = False  # closed: a second close writes nothing
