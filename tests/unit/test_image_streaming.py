"""Streaming pieces without sockets: the SSE decoder, the router's progress events and its rule that
a stream cut after an image event never falls back, the adapters' progress hook, and the SSE writer."""

from __future__ import annotations

import json

import pytest

from imagegateway_server.api import rest_mapping
from imagegateway_server.api.rest_sse import completed_event, error_event, partial_image_event
from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind, InvalidArgument
from imagegateway_server.domain.progress import PartialImage, ProgressEvent, ProgressKind
from imagegateway_server.domain.request import ImageRequest, ResponseFormat, validate_request
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.providers.kit import progress
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.sse import EventTooLarge, ServerSentEvent, SseDecoder
from imagegateway_server.routing.router import RouteContext
from tests.unit.test_router import REQUEST, ScriptedAdapter, fail, fallback, make_router

# -- the SSE decoder ---------------------------------------------------------------------------------


def test_events_split_anywhere_across_chunks_come_out_whole_and_in_order() -> None:
    wire = b'event: a\ndata: {"x": 1}\n\n: a comment\r\nevent: b\r\ndata: one\r\ndata: two\r\nid: 7\r\n\r\n'
    for size in (1, 2, 3, 7, len(wire)):
        decoder = SseDecoder()
        events: list[ServerSentEvent] = []
        for start in range(0, len(wire), size):
            events += decoder.feed(wire[start : start + size])
        assert events == [ServerSentEvent("a", b'{"x": 1}'), ServerSentEvent("b", b"one\ntwo")]


def test_an_event_read_from_a_whole_chunk_keeps_the_next_events_start_and_a_split_crlf() -> None:
    # A chunk read with nothing pending is parsed in place; what follows its last line end (the next
    # event's first bytes, a CR whose LF comes later) is kept for the next chunk.
    decoder = SseDecoder()
    assert decoder.feed(b"event: a\ndata: 1\n\nevent: b\r") == [ServerSentEvent("a", b"1")]
    assert decoder.feed(b"\ndata: 2") == []
    assert decoder.feed(b"\r\n\r\n") == [ServerSentEvent("b", b"2")]
    assert decoder.feed(b"data: 3\n\n") == [ServerSentEvent("", b"3")]


def test_a_data_line_read_whole_from_one_chunk_is_not_copied_out_of_it() -> None:
    chunk = b"event: image_generation.partial_image\ndata: " + b"QUJD" * 1000 + b"\n\nevent: b\ndata: x\n\n"
    first, second = SseDecoder().feed(chunk)
    assert first.source is chunk and first.data == b"QUJD" * 1000 and first.event == "image_generation.partial_image"
    assert second == ServerSentEvent("b", b"x")


def test_a_data_line_whose_event_ends_in_the_next_chunk_is_kept_whole() -> None:
    # The line is read in place from the first chunk, then copied out when that chunk is done with.
    decoder = SseDecoder()
    assert decoder.feed(b"event: a\ndata: 12345\n") == []
    assert decoder.feed(b"data: 67\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent("a", b"12345\n67")]
    assert decoder.feed(b"data: 89\n") == [] and decoder.feed(b"\n") == [ServerSentEvent("", b"89")]


def test_an_event_larger_than_the_cap_is_refused() -> None:
    decoder = SseDecoder(max_event_bytes=100)
    decoder.feed(b"data: " + b"A" * 60 + b"\n")
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: " + b"A" * 60)


def test_many_short_data_lines_count_toward_the_cap_and_a_finished_event_resets_it() -> None:
    # An upstream that never ends its event with short lines: counted as they come (the joined size,
    # newlines included), never by summing every pending line again on each chunk.
    decoder = SseDecoder(max_event_bytes=100)
    assert decoder.feed(b"data: x\n" * 40 + b"\n") == [ServerSentEvent("", b"\n".join([b"x"] * 40))]
    decoder.feed(b"data: x\n" * 45)
    with pytest.raises(EventTooLarge):
        decoder.feed(b"data: x\n" * 10)


# -- request rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [-1, 4])
def test_partial_images_outside_0_to_3_is_refused_naming_it(value: int) -> None:
    with pytest.raises(InvalidArgument) as raised:
        validate_request(ImageRequest(prompt="x", stream=True, partial_images=value))
    assert raised.value.param == "partial_images"


def test_stream_and_partial_images_are_not_parameters_an_adapter_must_honour() -> None:
    assert ImageRequest(prompt="x", stream=True, partial_images=2).set_fields() == {}


# -- the router: progress events and the stream-cut rule --------------------------------------------


class Listener:
    def __init__(self) -> None:
        self.events: list[ProgressEvent | PartialImage] = []
        self.images_sent = 0

    def progress(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def partial_image(self, image: PartialImage) -> None:
        self.images_sent += 1
        self.events.append(image)


class StreamingAdapter(ScriptedAdapter):
    """Streams one partial image through the hook, then follows its script (a failure cuts the stream)."""

    def streams(self, model: str) -> bool:
        return True

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        if request.stream:
            progress.partial_image(target, 0, "iVBORw0KGgo=", {"size": "1024x1024", "created_at": 5})
        return await super().generate(request, target)


class PollingAdapter(ScriptedAdapter):
    """An asynchronous provider's adapter: reports its job queued, then polled, through the hook."""

    async def generate(self, request: ImageRequest, target: UpstreamTarget) -> ImageResult:
        progress.queued(target, position=2, polls=1, status="IN_QUEUE")
        progress.running(target, polls=2)
        return await super().generate(request, target)


async def test_attempts_and_fallbacks_are_reported_in_order() -> None:
    adapters = {"a": ScriptedAdapter("a", [fail(ErrorKind.UNAVAILABLE, 503)]), "b": PollingAdapter("b", [])}
    listener = Listener()
    await make_router(adapters).run(
        fallback({"virtual_key": "a"}, {"virtual_key": "b"}), REQUEST, RouteContext(trace_id="t", listener=listener)
    )
    assert [(e.kind, e.target) for e in listener.events if isinstance(e, ProgressEvent)] == [
        (ProgressKind.ATTEMPT_STARTED, "config.targets[0]"),
        (ProgressKind.ATTEMPT_FAILED, "config.targets[0]"),
        (ProgressKind.FALLBACK, "config.targets[0]"),
        (ProgressKind.ATTEMPT_STARTED, "config.targets[1]"),
        (ProgressKind.QUEUED, "config.targets[1]"),
        (ProgressKind.RUNNING, "config.targets[1]"),
    ]
    failed, fell_back = listener.events[1], listener.events[2]
    assert isinstance(failed, ProgressEvent) and failed.error_kind is ErrorKind.UNAVAILABLE
    assert isinstance(fell_back, ProgressEvent) and fell_back.next_target == "config.targets[1]"
    assert (fell_back.error_kind, fell_back.error) == (ErrorKind.UNAVAILABLE, "503 from upstream")
    queued, running = listener.events[4], listener.events[5]
    assert isinstance(queued, ProgressEvent) and (queued.queue_position, queued.poll_count) == (2, 1)
    assert queued.provider == "b" and queued.status == "IN_QUEUE"
    assert isinstance(running, ProgressEvent) and running.poll_count == 2 and running.queue_position is None


async def test_without_a_listener_the_hook_costs_a_none_check_and_nothing_is_built() -> None:
    adapters = {"b": PollingAdapter("b", [])}
    await make_router(adapters).run(fallback({"virtual_key": "b"}), REQUEST, RouteContext(trace_id="t"))
    assert adapters["b"].calls[0][1].events is None


async def test_a_failure_after_a_partial_image_ends_the_request_without_fallback() -> None:
    adapters = {
        "a": StreamingAdapter("a", [fail(ErrorKind.UNAVAILABLE, 502)]),
        "b": StreamingAdapter("b", []),
    }
    listener = Listener()
    request = ImageRequest(prompt="x", model="m", stream=True, partial_images=1)
    with pytest.raises(AllTargetsFailed) as raised:
        await make_router(adapters).run(
            fallback({"virtual_key": "a"}, {"virtual_key": "b"}), request, RouteContext(trace_id="t", listener=listener)
        )
    assert not adapters["b"].calls
    assert [(a.status_code, a.stream_events) for a in raised.value.attempts] == [(502, 1)]


async def test_a_target_that_cannot_stream_is_skipped_without_a_call_or_called_plainly_with_the_switch() -> None:
    request = ImageRequest(prompt="x", model="m", stream=True, partial_images=1)
    plan = fallback({"virtual_key": "plain"}, {"virtual_key": "live"})
    adapters = {"plain": ScriptedAdapter("plain", []), "live": StreamingAdapter("live", [])}
    routed = await make_router(adapters).run(plan, request, RouteContext(trace_id="t", listener=Listener()))
    assert routed.provider == "live" and not adapters["plain"].calls
    assert routed.attempts[0].status_code == 400 and "cannot stream" in routed.attempts[0].error
    adapters = {"plain": ScriptedAdapter("plain", []), "live": StreamingAdapter("live", [])}
    routed = await make_router(adapters).run(
        plan, request, RouteContext(trace_id="t", listener=Listener(), stream_complete=True)
    )
    assert routed.provider == "plain" and adapters["plain"].calls[0][0].stream is False


def test_a_plan_where_no_target_streams_is_refused_naming_stream() -> None:
    router = make_router({"plain": ScriptedAdapter("plain", [])})
    plan = fallback({"provider": "plain", "api_key": "k"})
    with pytest.raises(InvalidArgument) as raised:
        router.refuse_unstreamable(plan, ImageRequest(prompt="x", stream=True))
    assert raised.value.param == "stream" and "plain-default on plain" in raised.value.message
    router.refuse_unstreamable(fallback({"virtual_key": "plain"}), ImageRequest(prompt="x", stream=True))


# -- the SSE writer ----------------------------------------------------------------------------------


def _parse(event: bytes) -> tuple[str, dict[str, object]]:
    name, data = event.decode().removesuffix("\n\n").split("\n")
    return name.removeprefix("event: "), json.loads(data.removeprefix("data: "))


def test_partial_and_completed_events_carry_openais_fields() -> None:
    request = ImageRequest(prompt="x", quality="low", stream=True)
    partial = PartialImage(index=1, b64_json="AAAA", provider="openai", model="m", size="1024x1024", created_at=9)
    name, data = _parse(partial_image_event(partial, request))
    assert name == data["type"] == "image_generation.partial_image"
    assert data == {
        "type": "image_generation.partial_image",
        "partial_image_index": 1,
        "created_at": 9,
        "background": "auto",
        "output_format": "png",
        "quality": "low",
        "size": "1024x1024",
        "b64_json": "AAAA",
    }
    image = GeneratedImage(b"\x00\x01", "image/png")
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    name, data = _parse(completed_event(image, request, 7, {"quality": "high", "usage": usage}))
    assert name == "image_generation.completed" and data["b64_json"] == "AAE=" and data["usage"] == usage
    assert data["quality"] == "high" and data["created_at"] == 7


def test_the_error_event_holds_openais_envelope_under_error() -> None:
    envelope = {"error": {"message": "m", "type": "server_error", "param": None, "code": "c"}}
    name, data = _parse(error_event(envelope))
    assert name == "error" and data == {"type": "error", **envelope}


# -- the REST body and header ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"stream": "yes"}, "stream"),
        ({"stream": True, "partial_images": "2"}, "partial_images"),
        ({"stream": True, "partial_images": True}, "partial_images"),
        ({"stream": True, "response_format": "url"}, "response_format"),
    ],
)
def test_bad_stream_fields_are_refused_naming_them(body: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        rest_mapping.image_request({"prompt": "x", **body})
    assert raised.value.param == param


def test_a_streamed_rest_request_answers_base64_and_keeps_its_stream_fields() -> None:
    request = rest_mapping.image_request({"prompt": "x", "model": "dall-e-3", "stream": True, "partial_images": 2})
    assert (request.stream, request.partial_images, request.response_format) == (True, 2, ResponseFormat.B64_JSON)
    assert "stream" not in request.extra


def test_the_stream_fallback_header_takes_complete_or_skip() -> None:
    assert rest_mapping.stream_fallback({"x-imagegw-stream-fallback": "Complete"})
    assert not rest_mapping.stream_fallback({"x-imagegw-stream-fallback": "skip"})
    assert not rest_mapping.stream_fallback({})
    with pytest.raises(InvalidArgument) as raised:
        rest_mapping.stream_fallback({"x-imagegw-stream-fallback": "yes"})
    assert raised.value.param == "x-imagegw-stream-fallback"
