"""The REST protocol writes a response's head with its body in one write, and never holds a head past its turn."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from imagegateway_server.api.rest_protocol import UNJOINED_CHUNK_BYTES, _HeadWithBody, _unjoined_chunks


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


async def test_pieces_written_together_follow_a_held_head_in_the_same_write() -> None:
    wrapper, transport, cycle = wrapped()
    cycle.response_started = True
    wrapper.write(b"HTTP/1.1 200 OK\r\n\r\n")
    wrapper.writelines((b"5\r\n", b"event", b"\r\n"))
    wrapper.writelines((b"1\r\n", b"x", b"\r\n"))
    assert transport.writes == [(b"HTTP/1.1 200 OK\r\n\r\n", b"5\r\n", b"event", b"\r\n"), (b"1\r\n", b"x", b"\r\n")]


def streaming_cycle() -> tuple[SimpleNamespace, RecordingTransport, list[dict[str, Any]]]:
    """A response cycle mid-way through a chunked body, whose own ``send`` records what it was given."""
    transport = RecordingTransport()
    passed: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        passed.append(message)

    cycle = SimpleNamespace(
        send=send,
        transport=transport,
        chunked_encoding=True,
        response_started=True,
        response_complete=False,
        disconnected=False,
        flow=SimpleNamespace(write_paused=False),
        scope={"method": "POST"},
    )
    return cycle, transport, passed


async def test_a_large_streamed_chunk_leaves_with_its_framing_unjoined() -> None:
    cycle, transport, passed = streaming_cycle()
    send = _unjoined_chunks(cycle)  # type: ignore[arg-type]
    event = b"e" * UNJOINED_CHUNK_BYTES
    await send({"type": "http.response.body", "body": event, "more_body": True})
    assert passed == []
    assert transport.writes == [(b"%x\r\n" % len(event), event, b"\r\n")]
    assert transport.writes[0][1] is event  # the event's own bytes, not a copy


async def test_uvicorn_sends_small_and_last_chunks_and_any_while_the_caller_is_slow_or_gone() -> None:
    event = b"e" * UNJOINED_CHUNK_BYTES
    for change, message in (
        ({}, {"type": "http.response.body", "body": b"small", "more_body": True}),
        ({}, {"type": "http.response.body", "body": event, "more_body": False}),
        ({}, {"type": "http.response.start", "status": 200, "headers": []}),
        (
            {"flow": SimpleNamespace(write_paused=True)},
            {"type": "http.response.body", "body": event, "more_body": True},
        ),
        ({"disconnected": True}, {"type": "http.response.body", "body": event, "more_body": True}),
        ({"chunked_encoding": False}, {"type": "http.response.body", "body": event, "more_body": True}),
        ({"scope": {"method": "HEAD"}}, {"type": "http.response.body", "body": event, "more_body": True}),
    ):
        cycle, transport, passed = streaming_cycle()
        vars(cycle).update(change)
        await _unjoined_chunks(cycle)(message)  # type: ignore[arg-type]
        assert passed == [message] and transport.writes == [], change
