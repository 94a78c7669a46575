"""The provider-independent emulator: lifecycle, request recording and fault application.

A provider subclass routes requests to endpoint functions and says how its errors look; this class
decides, per request, whether a fault replaces, delays or alters the normal answer.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Self

from .control import PREFIX, ControlApi
from .faults import Fault, FaultSchedule
from .images import ImageFormat, ImageStore
from .recording import RecordedRequest, RequestLog
from .server import Hang, HttpRequest, HttpServer, Outcome, Reset, Response, Truncated

_THREAD_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class AnswerMode:
    """How a normal answer is altered by a fault that does not replace it."""

    content_filtered: bool = False
    image_bytes: int | None = None
    # A streamed answer's misbehaviour after its first partial image ("reset", "error", "stall"),
    # and the wait before each of its events after the first.
    stream_fault: str | None = None
    stream_gap_ms: float = 0.0
    stream_first_ms: float = 0.0  # the wait between the answer's head and its first event


Endpoint = Callable[[RecordedRequest, AnswerMode], Response]


class Emulator(abc.ABC):
    """Base of the provider emulators; see the package docstring for the public API."""

    provider: ClassVar[str]
    _base_path: ClassVar[str] = ""
    _malformed_body: ClassVar[bytes] = b'{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgoAAAANSU'

    def __init__(
        self, api_key: str | None = None, *, host: str = "127.0.0.1", port: int = 0, max_recorded: int = 1000
    ) -> None:
        self.api_key = api_key
        self._faults = FaultSchedule()
        self._log = RequestLog(max_recorded)
        self.images = ImageStore()
        self._control = ControlApi(self.provider, self._faults, self._log, self.images)
        self._server = HttpServer(self._handle, host, port)

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Binds the listening socket (a free port unless one was given) and starts serving."""
        await self._server.start()

    async def stop(self) -> None:
        """Stops serving and drops open connections."""
        await self._server.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    @contextlib.contextmanager
    def running_in_thread(cls, **kwargs: Any) -> Iterator[Self]:
        """Runs an emulator on its own event loop in a daemon thread, for sync code or other loops."""
        emulator = cls(**kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"{cls.provider}-emulator", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(emulator.start(), loop).result(_THREAD_START_TIMEOUT)
            yield emulator
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(emulator.stop(), loop).result(_THREAD_START_TIMEOUT)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_THREAD_START_TIMEOUT)
            loop.close()

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def origin(self) -> str:
        """`http://127.0.0.1:PORT`, without the API's base path."""
        return f"http://{self._server.host}:{self._server.port}"

    @property
    def base_url(self) -> str:
        """What a client uses as its base URL."""
        return self.origin + self._base_path

    # -- faults and recording ----------------------------------------------------------------------

    def inject(self, fault: Fault, times: int | None = 1) -> None:
        """Applies `fault` to the next `times` requests (None: every request until cleared), FIFO."""
        self._faults.inject(fault, times)

    def set_fault_rate(self, rate: float, faults: Sequence[Fault], seed: int | None = None) -> None:
        """Applies a random one of `faults` to a `rate` share of requests not taken by scripted faults."""
        self._faults.set_rate(rate, faults, seed)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Provider requests received so far (control and image-download requests excluded)."""
        return self._log.snapshot()

    def reset(self) -> None:
        """Clears faults and recorded requests."""
        self._faults.clear()
        self._log.clear()

    # -- provider hooks ----------------------------------------------------------------------------

    @abc.abstractmethod
    def _route(self, request: RecordedRequest) -> Endpoint | None:
        """The endpoint for a provider request, or None when no route matches."""

    @abc.abstractmethod
    def _not_found(self, request: RecordedRequest) -> Response:
        """The provider's answer to an unknown path or method."""

    @abc.abstractmethod
    def _error_response(self, status: int, request: RecordedRequest) -> Response:
        """The provider's default error response for `status` on the endpoint hit."""

    @abc.abstractmethod
    def _rate_limited_response(self, request: RecordedRequest) -> Response:
        """The provider's 429."""

    @abc.abstractmethod
    def _moderation_denied(self, request: RecordedRequest, endpoint: Endpoint) -> Response:
        """The provider's answer when moderation refuses the request."""

    def _schedule_for(self, request: RecordedRequest) -> FaultSchedule:
        """The fault schedule a request draws from (asynchronous providers keep one for their polls)."""
        return self._faults

    def _new_request_id(self) -> str:
        """The id sent back in `x-request-id`."""
        return secrets.token_hex(16)

    def _response_headers(self) -> list[tuple[str, str]]:
        """Provider headers on every answer besides `x-request-id`."""
        return []

    def image_url(self, data: bytes, fmt: ImageFormat) -> str:
        """Stores an image and returns the absolute URL this server serves it at."""
        return f"{self.origin}{PREFIX}images/{self.images.put(data, fmt)}"

    # -- dispatch ----------------------------------------------------------------------------------

    async def _handle(self, http_request: HttpRequest) -> Outcome:
        if http_request.path.startswith(PREFIX):
            return self._control.handle(http_request)
        request = RecordedRequest.decode(http_request, self._new_request_id())
        self._log.add(request)
        endpoint = self._route(request)
        if endpoint is None:
            outcome: Outcome = self._not_found(request)
        else:
            outcome = await self._apply(self._schedule_for(request).next(), request, endpoint)
        return self._finish(outcome, request.request_id)

    def _finish(self, outcome: Outcome, request_id: str) -> Outcome:
        if isinstance(outcome, Response):
            return self._with_common_headers(outcome, request_id)
        if isinstance(outcome, Truncated):
            return Truncated(self._with_common_headers(outcome.response, request_id), outcome.missing_bytes)
        return outcome

    def _with_common_headers(self, response: Response, request_id: str) -> Response:
        present = {name.lower() for name, _ in response.headers}
        common = [("x-request-id", request_id), *self._response_headers()]
        extra = [(n, v) for n, v in common if n.lower() not in present]
        return replace(response, headers=response.headers + tuple(extra))

    async def _apply(self, fault: Fault | None, request: RecordedRequest, endpoint: Endpoint) -> Outcome:
        if fault is None:
            return endpoint(request, AnswerMode())
        match fault.kind:
            case "latency":
                await asyncio.sleep(fault.ms / 1000)
                return await self._apply(fault.then, request, endpoint)
            case "status":
                assert fault.status_code is not None
                return self._status_response(fault, request)
            case "rate_limited":
                headers: list[tuple[str, str]] = []
                if fault.retry_after is not None:
                    headers.append(("retry-after", _number(fault.retry_after)))
                if fault.retry_after_ms is not None:
                    headers.append(("retry-after-ms", _number(fault.retry_after_ms)))
                return self._rate_limited_response(request).with_headers(headers)
            case "reset":
                return Reset()
            case "hang":
                return Hang()
            case "malformed":
                return Response(200, (("content-type", "application/json"),), self._malformed_body)
            case "truncated":
                normal = endpoint(request, AnswerMode())
                if normal.status != 200:
                    normal = Response(200, (("content-type", "application/json"),), self._malformed_body * 4)
                return Truncated(normal)
            case "empty":
                return Response(200, (("content-type", "application/json"),), b"")
            case "content_filter":
                return endpoint(request, AnswerMode(content_filtered=True))
            case "moderation_denied":
                return self._moderation_denied(request, endpoint)
            case "image_bytes":
                return endpoint(request, AnswerMode(image_bytes=fault.nbytes))
            case "stream_reset" | "stream_error" | "stream_stall":
                return endpoint(request, AnswerMode(stream_fault=fault.kind.removeprefix("stream_")))
            case "stream_gap":
                return endpoint(
                    request,
                    AnswerMode(
                        stream_gap_ms=fault.ms, stream_first_ms=fault.first_ms, image_bytes=fault.nbytes or None
                    ),
                )
        raise AssertionError(f"unhandled fault kind {fault.kind}")

    def _status_response(self, fault: Fault, request: RecordedRequest) -> Response:
        assert fault.status_code is not None
        extra = tuple((fault.headers or {}).items())
        if fault.body is None:
            return self._error_response(fault.status_code, request).with_headers(extra)
        if isinstance(fault.body, bytes | str):
            raw = fault.body.encode() if isinstance(fault.body, str) else fault.body
            return Response(fault.status_code, (("content-type", "text/plain"),), raw).with_headers(extra)
        return Response.json(fault.status_code, fault.body).with_headers(extra)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def mask_key(key: str) -> str:
    """`sk-wrong-key-1234` -> `sk-**********1234`, the way providers echo a wrong key."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else value.strip()
