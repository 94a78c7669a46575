"""What ``imagegw generate`` says while it waits: one live status line on a terminal, plain lines elsewhere.

On a terminal the line is rewritten in place (carriage return, erase to the end of the line) with
the latest progress and the time since the request began, and a ticker thread moves the clock on
every half second while nothing arrives; the line is erased when the request ends, so the outcome
prints on a clean screen. When the stream is not a terminal (a pipe, a log file, CI), each report
is its own line, stamped with the elapsed time, and nothing is rewritten.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from imagegateway.events import PartialImage, Progress

TICK_SECONDS = 0.5
_ERASE_LINE = "\r\x1b[K"


def describe(event: Progress | PartialImage) -> str:
    """One report in words: ``attempt 1 on openai gpt-image-1.5 (config.targets[0])``."""
    if isinstance(event, PartialImage):
        return f"partial image {event.index + 1} from {event.provider} {event.model}"
    where = f"{event.provider} {event.model}".strip() + (f" ({event.target})" if event.target else "")
    if event.kind == "attempt_started":
        return f"attempt {event.attempt + 1} on {where}"
    if event.kind == "queued":
        place = f" at position {event.queue_position}" if event.queue_position is not None else ""
        return f"queued{place} on {where}"
    if event.kind == "polling":
        return f"running on {where}, {event.polls} polls"
    if event.kind == "fallback":
        return f"{where} failed ({event.reason}); falling back to {event.next_target or 'the next target'}"
    return f"{event.kind} on {where}"


class StatusLine:
    """Shows one request's progress on ``stream``; ``close`` when the request has ended."""

    def __init__(self, stream: TextIO, *, live: bool | None = None) -> None:
        self._stream = stream
        self._live = stream.isatty() if live is None else live
        self._started = time.monotonic()
        self._text = "waiting for the gateway"
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self._live:
            self._draw()
            self._ticker = threading.Thread(target=self._tick, name="imagegw-status", daemon=True)
            self._ticker.start()

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._started:.1f}s"

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
        else:
            self._stream.write(f"[{self._elapsed()}] {self._text}\n")
            self._stream.flush()

    def close(self) -> None:
        """Stops the clock and erases the live line (plain lines stay)."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._live:
            with self._lock:
                self._stream.write(_ERASE_LINE)
                self._stream.flush()
