"""An incremental reader of server-sent events (the ``text/event-stream`` format), as bytes arrive.

``SseDecoder.feed`` takes each chunk read from the upstream and returns the events it completed;
an event is the ``event:`` name and the ``data:`` lines joined by newlines. Lines end in LF or
CRLF (a lone CR, which no image API sends, is not a line end); comments (``:``) and
``id:``/``retry:`` fields are skipped. A
partial image is one long ``data:`` line (hundreds of KiB of base64), so the buffer is searched only
from where the last search stopped, and one event larger than ``max_event_bytes`` is refused.
"""

from __future__ import annotations

import dataclasses

DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024
_CR, _COLON, _SPACE = ord("\r"), ord(":"), ord(" ")


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One event: its name ("" when the stream gave none) and its data."""

    event: str
    data: bytes


class EventTooLarge(ValueError):
    """One event grew past the decoder's cap."""


class SseDecoder:
    """Splits a byte stream into events; not thread-safe, one per stream."""

    __slots__ = ("_buffer", "_data", "_data_bytes", "_event", "_max_event_bytes", "_scanned")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no line end
        self._event = ""
        self._data: list[bytes] = []
        # Kept as lines arrive: summing the pending lines on every chunk is quadratic in an upstream
        # that sends many short data lines and never ends the event.
        self._data_bytes = 0
        self._max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events ``chunk`` completes, in order."""
        # With nothing pending, the lines are read from the chunk itself: a partial image usually arrives
        # whole in one read (hundreds of KiB), and appending it to the buffer first would copy it once more.
        # Only what follows the chunk's last line end is kept.
        buffer: bytes | bytearray
        if self._buffer:
            self._buffer += chunk
            buffer = self._buffer
        else:
            buffer = chunk
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, self._scanned) if start == 0 else start)
            if end < 0:
                break
            event = self._line(buffer, start, end)
            start = end + 1
            if event is not None:
                events.append(event)
        if buffer is chunk:
            if start < len(chunk):
                self._buffer += memoryview(chunk)[start:]
        elif start:
            del self._buffer[:start]
        self._scanned = len(self._buffer)
        if len(self._buffer) + self._data_bytes > self._max_event_bytes:
            raise EventTooLarge(f"a server-sent event is larger than {self._max_event_bytes} bytes")
        return events

    def _line(self, buffer: bytes | bytearray, start: int, end: int) -> ServerSentEvent | None:
        """The line ``buffer[start:end]`` (its LF excluded). Read in place: a ``data:`` value (a partial
        image: hundreds of KiB) is copied out of the buffer once, not sliced line by field by value."""
        if end > start and buffer[end - 1] == _CR:
            end -= 1
        if start == end:  # a blank line dispatches the event
            if not self._data and not self._event:
                return None
            event = ServerSentEvent(self._event, b"\n".join(self._data))
            self._event, self._data, self._data_bytes = "", [], 0
            return event
        if buffer[start] == _COLON:
            return None
        colon = buffer.find(b":", start, end)
        if colon < 0:
            name, value_start = bytes(buffer[start:end]), end
        else:
            name, value_start = bytes(buffer[start:colon]), colon + 1
            if value_start < end and buffer[value_start] == _SPACE:
                value_start += 1
        if name == b"data":
            with memoryview(buffer) as view:
                self._data.append(view[value_start:end].tobytes())
            self._data_bytes += end - value_start + 1  # the line and the newline that joins it
        elif name == b"event":
            self._event = buffer[value_start:end].decode("utf-8", "replace")
        return None
