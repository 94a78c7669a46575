"""Fault descriptions, their JSON form, and the schedule that decides which request gets which fault.

A `Fault` says *what* goes wrong; each emulator decides *how* it looks for its provider (the error body
of a `Fault.status(503)` differs between OpenAI and Stability). The schedule is shared with other
threads (`running_in_thread`), so it is guarded by a lock.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast, get_args

FaultKind = Literal[
    "status",
    "rate_limited",
    "latency",
    "reset",
    "hang",
    "malformed",
    "truncated",
    "empty",
    "content_filter",
    "moderation_denied",
    "image_bytes",
    "stream_reset",
    "stream_error",
    "stream_stall",
    "stream_gap",
]
_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


@dataclass(frozen=True)
class Fault:
    """One misbehaviour; build it with the constructors, not directly."""

    kind: FaultKind
    status_code: int | None = None
    body: Any = None
    headers: Mapping[str, str] | None = None
    ms: float = 0.0
    then: Fault | None = None
    retry_after: float | None = None
    retry_after_ms: float | None = None
    nbytes: int = 0
    first_ms: float = 0.0

    @staticmethod
    def status(code: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Fault:
        """Answer `code`; `body` (JSON value, str or bytes) defaults to the provider's error shape."""
        if not 100 <= code <= 599:
            raise ValueError(f"invalid HTTP status {code}")
        return Fault("status", status_code=code, body=body, headers=dict(headers) if headers else None)

    @staticmethod
    def rate_limited(retry_after: float | None = None, retry_after_ms: float | None = None) -> Fault:
        """A 429 with the provider's body and optional Retry-After / retry-after-ms headers."""
        return Fault("rate_limited", retry_after=retry_after, retry_after_ms=retry_after_ms)

    @staticmethod
    def latency(ms: float, then: Fault | None = None) -> Fault:
        """Wait `ms` milliseconds, then answer normally (or apply `then`)."""
        if ms < 0:
            raise ValueError("latency must be >= 0 ms")
        return Fault("latency", ms=ms, then=then)

    @staticmethod
    def reset() -> Fault:
        """Read the request, then abort the TCP connection with a RST."""
        return Fault("reset")

    @staticmethod
    def hang() -> Fault:
        """Read the request and never answer until the client disconnects."""
        return Fault("hang")

    @staticmethod
    def malformed() -> Fault:
        """A 200 labelled application/json whose body is not JSON."""
        return Fault("malformed")

    @staticmethod
    def truncated() -> Fault:
        """A 200 whose Content-Length promises more bytes than are sent before the close."""
        return Fault("truncated")

    @staticmethod
    def empty() -> Fault:
        """A 200 with an empty body."""
        return Fault("empty")

    @staticmethod
    def content_filter() -> Fault:
        """The provider's content-filter outcome for an otherwise valid request."""
        return Fault("content_filter")

    @staticmethod
    def moderation_denied() -> Fault:
        """Stability's 403 `content_moderation` (OpenAI answers as for `content_filter`)."""
        return Fault("moderation_denied")

    @staticmethod
    def image_bytes(n: int) -> Fault:
        """Answer normally with random-noise PNGs of about `n` bytes each."""
        if n <= 0:
            raise ValueError("image size must be > 0 bytes")
        return Fault("image_bytes", nbytes=n)

    @staticmethod
    def stream_reset() -> Fault:
        """A streamed answer aborted with a TCP RST right after its first partial image."""
        return Fault("stream_reset")

    @staticmethod
    def stream_error() -> Fault:
        """A streamed answer whose first partial image is followed by the provider's error event."""
        return Fault("stream_error")

    @staticmethod
    def stream_stall() -> Fault:
        """A streamed answer that sends nothing after its first partial image until the client leaves."""
        return Fault("stream_stall")

    @staticmethod
    def stream_gap(ms: float, image_bytes: int = 0, first_ms: float = 0.0) -> Fault:
        """A streamed answer that waits `ms` milliseconds before each event after the first, and
        `first_ms` between its head and its first event (as a provider works on the image before its
        first partial image); with `image_bytes`, its images are random-noise PNGs of about that many
        bytes (as `image_bytes`)."""
        if ms < 0 or first_ms < 0:
            raise ValueError("the gap must be >= 0 ms")
        if image_bytes < 0:
            raise ValueError("image size must be >= 0 bytes")
        return Fault("stream_gap", ms=ms, nbytes=image_bytes, first_ms=first_ms)

    def to_json(self) -> dict[str, Any]:
        """The control-API form of this fault."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "status":
            out.update(status=self.status_code, body=_jsonable(self.body), headers=self.headers)
        elif self.kind == "rate_limited":
            out.update(retry_after=self.retry_after, retry_after_ms=self.retry_after_ms)
        elif self.kind == "latency":
            out.update(ms=self.ms, then=self.then.to_json() if self.then else None)
        elif self.kind == "stream_gap":
            out.update(ms=self.ms)
            if self.nbytes:
                out.update(n=self.nbytes)
            if self.first_ms:
                out.update(first_ms=self.first_ms)
        elif self.kind == "image_bytes":
            out.update(n=self.nbytes)
        return out

    @staticmethod
    def from_json(data: Any) -> Fault:
        """Parses the control-API form; raises ValueError naming the bad field."""
        if not isinstance(data, Mapping) or data.get("kind") not in _KINDS:
            raise ValueError(f"fault must be an object with 'kind' among {sorted(_KINDS)}")
        kind = cast(FaultKind, data["kind"])
        try:
            if kind == "status":
                headers = data.get("headers")
                if headers is not None and not isinstance(headers, Mapping):
                    raise ValueError("'headers' must be an object")
                return Fault.status(int(data["status"]), data.get("body"), headers)
            if kind == "rate_limited":
                return Fault.rate_limited(_opt_float(data.get("retry_after")), _opt_float(data.get("retry_after_ms")))
            if kind == "latency":
                then = data.get("then")
                return Fault.latency(float(data["ms"]), Fault.from_json(then) if then is not None else None)
            if kind == "image_bytes":
                return Fault.image_bytes(int(data["n"]))
            if kind == "stream_gap":
                return Fault.stream_gap(float(data["ms"]), int(data.get("n") or 0), float(data.get("first_ms") or 0))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"bad {kind} fault: {exc!r}") from exc
        return Fault(kind)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _jsonable(body: Any) -> Any:
    return body.decode("latin-1") if isinstance(body, bytes) else body


@dataclass
class _Scripted:
    fault: Fault
    remaining: int | None


class FaultSchedule:
    """Scripted faults first (FIFO, each `times` requests or forever), else random ones at a rate."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[_Scripted] = deque()
        self._rate = 0.0
        self._random_faults: tuple[Fault, ...] = ()
        self._rng = random.Random()

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        with self._lock:
            self._queue.append(_Scripted(fault, times))

    def set_rate(self, rate: float, faults: Sequence[Fault], seed: int | None = None) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        if rate > 0 and not faults:
            raise ValueError("a fault rate needs at least one fault")
        with self._lock:
            self._rate = rate
            self._random_faults = tuple(faults)
            self._rng = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rate = 0.0
            self._random_faults = ()

    def next(self) -> Fault | None:
        """The fault for the request being served now, if any."""
        with self._lock:
            if self._queue:
                head = self._queue[0]
                if head.remaining is not None:
                    head.remaining -= 1
                    if head.remaining == 0:
                        self._queue.popleft()
                return head.fault
            if self._rate > 0 and self._rng.random() < self._rate:
                return self._rng.choice(self._random_faults)
            return None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "scripted": [{"fault": s.fault.to_json(), "remaining": s.remaining} for s in self._queue],
                "rate": self._rate,
                "random_faults": [f.to_json() for f in self._random_faults],
            }
