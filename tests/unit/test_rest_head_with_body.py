"""The REST protocol writes a response's head with its body in one write, and never holds a head past its turn."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from imagegateway_server.api.rest_protocol import _HeadWithBody


class RecordingTransport:
    def __init__(self) -> None:
        self.writes: list[tuple[bytes, ...]] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append((data,))

    def writelines(self, pieces: Any) -> None:
        self.writes.append(tuple(pieces))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def wrapped() -> tuple[_HeadWithBody, RecordingTransport, SimpleNamespace]:
    transport = RecordingTransport()
    cycle = SimpleNamespace(response_started=False)
    return _HeadWithBody(transport, cycle), transport, cycle  # type: ignore[arg-type]


async def test_a_whole_response_leaves_in_one_write() -> None:
    wrapper, transport, cycle = wrapped()
    cycle.response_started = True
    wrapper.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert transport.writes == []
    wrapper.write(b"body")
    assert transport.writes == [(b"HTTP/1.1 200 OK\r\n\r\n", b"body")]
    await asyncio.sleep(0)
    assert transport.writes == [(b"HTTP/1.1 200 OK\r\n\r\n", b"body")]  # nothing held, nothing written twice


async def test_a_head_whose_body_is_late_goes_out_at_the_end_of_the_turn() -> None:
    wrapper, transport, cycle = wrapped()
    wrapper.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the response starts: at once
    assert transport.writes == [(b"HTTP/1.1 100 Continue\r\n\r\n",)]
    cycle.response_started = True
    wrapper.write(b"HTTP/1.1 200 OK\r\n\r\n")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert transport.writes[-1] == (b"HTTP/1.1 200 OK\r\n\r\n",)
    wrapper.write(b"event 1")
    assert transport.writes[-1] == (b"event 1",)
    assert wrapper.is_closing() is False


async def test_closing_sends_a_held_head_first() -> None:
    wrapper, transport, cycle = wrapped()
    cycle.response_started = True
    wrapper.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    wrapper.close()
    assert transport.writes == [(b"HTTP/1.1 204 No Content\r\n\r\n",)] and transport.closed
