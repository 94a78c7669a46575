"""The REST event stream response: what it sends, and what happens when the caller leaves or the server
cancels it (the ASGI side is driven directly; the real sockets are in tests/integration/test_image_streaming.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import pytest

from imagegateway_server.api.rest_event_stream import EventStreamResponse


class Caller:
    """The ASGI receive/send pair of one request whose body was read: ``receive`` waits until ``leave``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._left = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self._left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def leave(self) -> None:
        self._left.set()


def response(events: AsyncGenerator[bytes, None]) -> EventStreamResponse:
    return EventStreamResponse(events, headers={"x-portkey-trace-id": "t"}, media_type="text/event-stream")


async def test_the_head_then_each_event_then_the_end_are_sent() -> None:
    async def events() -> AsyncGenerator[bytes, None]:
        yield b"event: a\n\n"
        yield b"event: b\n\n"

    caller = Caller()
    await response(events())({"type": "http"}, caller.receive, caller.send)
    start, *bodies = caller.sent
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in start["headers"]
    assert [(m["body"], m["more_body"]) for m in bodies] == [
        (b"event: a\n\n", True),
        (b"event: b\n\n", True),
        (b"", False),
    ]


async def test_a_caller_who_leaves_closes_the_events_and_the_response_ends_quietly() -> None:
    closed = asyncio.Event()
    waiting = asyncio.Event()

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            yield b"event: first\n\n"
            waiting.set()
            await asyncio.Event().wait()  # the provider's next event never comes
            yield b"never"
        finally:
            closed.set()

    caller = Caller()
    served = asyncio.ensure_future(response(events())({"type": "http"}, caller.receive, caller.send))
    await waiting.wait()
    caller.leave()
    await asyncio.wait_for(served, 10)
    assert served.exception() is None and closed.is_set()
    assert [m.get("body") for m in caller.sent[1:]] == [b"event: first\n\n"]


async def test_a_cancellation_from_the_server_still_propagates_and_closes_the_events() -> None:
    closed = asyncio.Event()
    waiting = asyncio.Event()

    async def events() -> AsyncGenerator[bytes, None]:
        try:
            yield b"event: first\n\n"
            waiting.set()
            await asyncio.Event().wait()
            yield b"never"
        finally:
            closed.set()

    caller = Caller()
    served = asyncio.ensure_future(response(events())({"type": "http"}, caller.receive, caller.send))
    await waiting.wait()
    served.cancel()
    with pytest.raises(asyncio.CancelledError):
        await served
    assert closed.is_set()
