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


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class ServerSentEvent:
    """One event: its name ("" when the stream gave none) and its data, ``source[start:end]``.

    An event whose one data line arrived whole in one chunk keeps that chunk as its ``source``, so a
    partial image (hundreds of KiB) is not copied out of it; a reader that can take bounds (a JSON
    parse) reads it in place, ``data`` copies it.
    """

    event: str
    source: bytes
    start: int = 0
    end: int | None = None  # None: to the end of ``source``

    @property
    def data(self) -> bytes:
        if self.start == 0 and (self.end is None or self.end == len(self.source)):
            return self.source
        return self.source[self.start : self.end]

    @property
    def data_end(self) -> int:
        """Where the data ends in ``source``."""
        return len(self.source) if self.end is None else self.end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return self.event == other.event and self.data == other.data

    def __hash__(self) -> int:
        return hash((self.event, self.data))


class EventTooLarge(ValueError):
    """One event grew past the decoder's cap."""


class SseDecoder:
    """Splits a byte stream into events; not thread-safe, one per stream."""

    __slots__ = ("_buffer", "_data", "_data_bytes", "_event", "_in_chunk", "_max_event_bytes", "_scanned")

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no line end
        self._event = ""
        self._data: list[bytes] = []
        # The pending event's one data line as a span of the chunk being read, not yet copied out of it.
        self._in_chunk: tuple[bytes, int, int] | None = None
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
        in_chunk = buffer is chunk and isinstance(chunk, bytes)  # immutable: a span of it stays valid
        events: list[ServerSentEvent] = []
        start = 0
        while True:
            end = buffer.find(b"\n", max(start, self._scanned) if start == 0 else start)
            if end < 0:
                break
            event = self._line(buffer, start, end, in_chunk=in_chunk)
            start = end + 1
            if event is not None:
                events.append(event)
        self._take_span_out()  # the chunk's lines are read: a pending data line now lives in the buffer
        if buffer is chunk:
            if start < len(chunk):
                self._buffer += memoryview(chunk)[start:]
        elif start:
            del self._buffer[:start]
        self._scanned = len(self._buffer)
        if len(self._buffer) + self._data_bytes > self._max_event_bytes:
            raise EventTooLarge(f"a server-sent event is larger than {self._max_event_bytes} bytes")
        return events

    def _line(self, buffer: bytes | bytearray, start: int, end: int, *, in_chunk: bool) -> ServerSentEvent | None:
        """The line ``buffer[start:end]`` (its LF excluded). Read in place: a ``data:`` value (a partial
        image: hundreds of KiB) is not sliced line by field by value; read from the chunk itself
        (``in_chunk``), a lone data line is not copied at all."""
        if end > start and buffer[end - 1] == _CR:
            end -= 1
        if start == end:  # a blank line dispatches the event
            if self._in_chunk is not None and not self._data:
                source, value_start, value_end = self._in_chunk
                self._in_chunk = None
                event = ServerSentEvent(self._event, source, value_start, value_end)
            else:
                self._take_span_out()
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
            self._take_span_out()
            if in_chunk and not self._data and isinstance(buffer, bytes):
                self._in_chunk = (buffer, value_start, end)
            else:
                with memoryview(buffer) as view:
                    self._data.append(view[value_start:end].tobytes())
            self._data_bytes += end - value_start + 1  # the line and the newline that joins it
        elif name == b"event":
            self._event = buffer[value_start:end].decode("utf-8", "replace")
        return None

    def _take_span_out(self) -> None:
        """Copies a data line still held as a span of the chunk into the pending lines: another data
        line follows it, or the chunk ends before its event does."""
        if self._in_chunk is not None:
            source, value_start, value_end = self._in_chunk
            self._in_chunk = None
            self._data.append(source[value_start:value_end])
