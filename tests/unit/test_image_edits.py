"""Edits and variations without sockets: input images, the multipart reader, the upload budget, the
router's skip of a target that cannot do the operation, OpenAI's forms, the cache key and the mask
conversion for Stability."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from PIL import Image

from imagegateway.v1 import images_pb2
from imagegateway_server.api.grpc_upload import read_edit_upload, read_variation_upload
from imagegateway_server.api.rest_multipart import BodyTooLarge, read_upload
from imagegateway_server.api.upload_budget import Reservation, UploadBudget, UploadMemoryExhausted
from imagegateway_server.domain.errors import AllTargetsFailed, ErrorKind, InvalidArgument, ProviderError
from imagegateway_server.domain.image_inputs import InputImage, Operation, digests, input_image, png_has_alpha
from imagegateway_server.domain.input_limits import InputLimits
from imagegateway_server.domain.request import ImageRequest, ResponseFormat, validate_request
from imagegateway_server.providers.kit.masks import alpha_to_luminance
from imagegateway_server.providers.kit.openai_images import build_form
from imagegateway_server.routing.cache_key import cache_key
from imagegateway_server.routing.router import RouteContext
from tests.unit.test_router import ScriptedAdapter, fallback, make_router


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def mask(width: int, height: int) -> bytes:
    image = Image.new("RGBA", (width, height), (0, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, width // 2, height))  # the left half is to be repainted
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def edit(*images: bytes, with_mask: bytes | None = None, **fields: object) -> ImageRequest:
    return ImageRequest(
        prompt="a hat",
        operation=Operation.EDIT,
        images=tuple(input_image(data, param="image") for data in images),
        mask=input_image(with_mask, param="mask") if with_mask else None,
        **fields,  # type: ignore[arg-type]
    )


# -- input images --------------------------------------------------------------------------------------


def test_an_input_image_is_described_by_type_size_and_digest_never_its_bytes() -> None:
    data = png(40, 30, "RGBA")
    image = input_image(data, param="image", filename="a.png")
    assert (image.mime_type, image.width, image.height, image.has_alpha) == ("image/png", 40, 30, True)
    assert image.describe()["bytes"] == len(data) and len(image.sha256) == 64
    assert "data" not in repr(image) and data not in repr(image).encode()
    assert image.without_bytes().data == b"" and image.without_bytes().describe() == image.describe()


@pytest.mark.parametrize("filename", ["a\nb.png", "a\r.png", "nul\x00.png", "tab\t.png", "del\x7f.png", "\x1b[1m.png"])
def test_a_file_name_with_a_control_character_is_refused_naming_it(filename: str) -> None:
    # It would go upstream in a multipart part's header, where the HTTP client refuses it: a gateway
    # fault (500) for the caller's input, found by the gRPC fuzzer.
    with pytest.raises(InvalidArgument) as caught:
        input_image(png(8, 8), param="images[1]", filename=filename)
    assert caught.value.param == "images[1].filename"


def test_a_file_name_in_any_script_is_kept() -> None:
    assert input_image(png(8, 8), param="image", filename="картинка 😀.png").filename == "картинка 😀.png"


@pytest.mark.parametrize(("mode", "alpha"), [("RGB", False), ("RGBA", True), ("LA", True), ("L", False)])
def test_png_alpha_is_read_from_the_header(mode: str, alpha: bool) -> None:
    assert png_has_alpha(png(8, 8, mode)) is alpha


def test_a_palette_png_with_transparency_has_alpha() -> None:
    image = Image.new("P", (8, 8))
    image.info["transparency"] = 0
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=0)
    assert png_has_alpha(buffer.getvalue())


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (lambda: edit(png(64, 64), with_mask=mask(32, 32)), "mask"),
        (lambda: edit(png(64, 64), with_mask=png(64, 64)), "mask"),
        (lambda: edit(*[png(8, 8)] * 17), "image"),
        (lambda: ImageRequest(prompt="x", operation=Operation.EDIT), "image"),
        (
            lambda: ImageRequest(prompt=" ", operation=Operation.EDIT, images=(input_image(png(8, 8), param="i"),)),
            "prompt",
        ),
    ],
)
def test_bad_edits_are_refused_naming_the_field(request_: object, param: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_request(request_())  # type: ignore[operator]
    assert caught.value.param == param


def test_a_variation_needs_no_prompt_but_exactly_one_image() -> None:
    one = ImageRequest(prompt="", operation=Operation.VARIATION, images=(input_image(png(8, 8), param="image"),))
    assert validate_request(one) is one
    with pytest.raises(InvalidArgument, match="exactly one"):
        validate_request(ImageRequest(prompt="", operation=Operation.VARIATION))


def test_an_oversized_input_image_is_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        input_image(png(64, 64), param="image", max_bytes=10)
    assert caught.value.param == "image" and caught.value.code == "image_too_large"
    with pytest.raises(InvalidArgument):
        validate_request(edit(png(64, 64)), InputLimits(max_input_image_bytes=10))


# -- the multipart reader ------------------------------------------------------------------------------


async def chunks(body: bytes, size: int = 7) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def form(*parts: tuple[str, str | None, bytes]) -> bytes:
    out = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--xx\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return out + b"--xx--\r\n"


async def test_the_multipart_reader_keeps_fields_and_files_in_order_across_chunk_boundaries() -> None:
    body = form(("prompt", None, b"a hat"), ("image[]", "a.png", b"A" * 50), ("image[]", "b.png", b"B" * 20))
    upload = await read_upload(
        "multipart/form-data; boundary=xx", chunks(body), max_body_bytes=10_000, max_file_bytes=100, max_files=3
    )
    assert upload.fields == {"prompt": "a hat"}
    assert [(f.name, f.filename, f.data) for f in upload.files] == [
        ("image[]", "a.png", b"A" * 50),
        ("image[]", "b.png", b"B" * 20),
    ]
    # Hashed as the bytes came in, seven at a time: the same digests as of the whole files.
    assert [f.sha256 for f in upload.files] == [hashlib.sha256(f.data).hexdigest() for f in upload.files]


async def test_the_multipart_reader_stops_at_each_limit() -> None:
    content_type = "multipart/form-data; boundary=xx"
    body = form(("image", "a.png", b"A" * 50))
    with pytest.raises(BodyTooLarge):
        await read_upload(content_type, chunks(body), max_body_bytes=20, max_file_bytes=100, max_files=3)
    with pytest.raises(InvalidArgument) as too_big:
        await read_upload(content_type, chunks(body), max_body_bytes=10_000, max_file_bytes=10, max_files=3)
    assert too_big.value.param == "image"
    many = form(*[("image[]", f"{i}.png", b"x") for i in range(4)])
    with pytest.raises(InvalidArgument) as too_many:
        await read_upload(content_type, chunks(many), max_body_bytes=10_000, max_file_bytes=10, max_files=3)
    assert too_many.value.param == "image"
    with pytest.raises(InvalidArgument):
        await read_upload("multipart/form-data", chunks(body), max_body_bytes=10_000, max_file_bytes=100, max_files=3)


# -- the upload budget ---------------------------------------------------------------------------------


async def test_the_upload_budget_makes_uploads_wait_in_order_until_they_fit() -> None:
    budget = UploadBudget(100)
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def hold(name: str, size: int, release: asyncio.Event | None = None) -> None:
        async with budget.reserve(size):
            order.append(name)
            if name == "first":
                first_in.set()
            if release is not None:
                await release.wait()

    first = asyncio.create_task(hold("first", 80, release_first))
    await first_in.wait()
    second = asyncio.create_task(hold("second", 50))
    third = asyncio.create_task(hold("third", 10))  # would fit, but waits its turn behind the second
    await asyncio.sleep(0)
    assert order == ["first"] and budget.used == 80
    release_first.set()
    await asyncio.gather(first, second, third)
    assert order == ["first", "second", "third"] and budget.used == 0


async def test_an_upload_larger_than_the_budget_still_runs_alone_and_a_cancelled_wait_gives_back_nothing() -> None:
    budget = UploadBudget(10)
    async with budget.reserve(1000):
        assert budget.used == 10
        waiting = asyncio.create_task(budget.reserve(5).__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert budget.used == 0


async def test_a_chunked_upload_grows_while_there_is_room_and_waits_for_a_finishing_upload_before_new_ones() -> None:
    budget = UploadBudget(10)
    async with budget.hold() as chunked:
        async with budget.reserve(6):  # a REST upload, being served
            await chunked.grow(3)
            growing = asyncio.create_task(chunked.grow(3))  # 12 would not fit: waits for the REST upload
            await asyncio.sleep(0)
            newcomer = asyncio.create_task(budget.reserve(5).__aenter__())  # arrives while it waits
            await asyncio.sleep(0)
            assert budget.used == 9 and not growing.done() and not newcomer.done()
        await growing  # served before the newcomer, which would have left it no room
        assert chunked.amount == 6 and budget.used == 6 and not newcomer.done()
    await newcomer
    assert budget.used == 5


async def test_a_chunked_upload_outgrowing_the_whole_budget_is_refused_naming_the_setting() -> None:
    budget = UploadBudget(10)
    with pytest.raises(UploadMemoryExhausted) as refused:
        async with budget.hold() as chunked:
            await chunked.grow(6)
            await chunked.grow(5)
    assert "IMAGEGW_UPLOAD_MEMORY_BYTES" in refused.value.message and budget.used == 0


async def test_uploads_that_would_each_wait_for_the_other_refuse_the_newest_so_the_other_finishes() -> None:
    budget = UploadBudget(10)
    async with budget.hold() as first, budget.hold() as second:
        await first.grow(5)
        await second.grow(5)
        waiting = asyncio.create_task(first.grow(3))  # waits: the second may still finish
        await asyncio.sleep(0)
        assert not waiting.done()
        with pytest.raises(UploadMemoryExhausted):
            await second.grow(3)  # both would wait for ever: the newest gives way
        budget._release(second)  # its request ends
        await waiting
        assert first.amount == 8 and budget.used == 8
    assert budget.used == 0


async def test_when_the_last_upload_that_could_give_memory_back_ends_the_newest_waiting_one_is_refused() -> None:
    budget = UploadBudget(10)
    outcomes: dict[str, str] = {}

    async def upload(name: str, reservation: Reservation, size: int) -> None:
        try:
            await reservation.grow(size)
            outcomes[name] = "grown"
        except UploadMemoryExhausted:
            outcomes[name] = "refused"
            budget._release(reservation)

    async with budget.hold() as first, budget.hold() as second:
        async with budget.reserve(2):
            await first.grow(4)
            await second.grow(4)
            tasks = [asyncio.create_task(upload("first", first, 3)), asyncio.create_task(upload("second", second, 3))]
            await asyncio.sleep(0)
            assert outcomes == {}  # the REST upload holding 2 may still give them room
        await asyncio.gather(*tasks)
        assert outcomes == {"second": "refused", "first": "grown"} and budget.used == 7
    assert budget.used == 0


async def test_a_cancelled_chunked_upload_gives_back_all_it_held() -> None:
    budget = UploadBudget(10)
    started = asyncio.Event()

    async def upload() -> None:
        async with budget.hold() as reservation:
            await reservation.grow(4)
            started.set()
            await asyncio.sleep(60)  # a client that stops sending

    task = asyncio.create_task(upload())
    await started.wait()
    assert budget.used == 4
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert budget.used == 0
    async with budget.reserve(10):
        assert budget.used == 10


# -- routing -------------------------------------------------------------------------------------------


class EditingAdapter(ScriptedAdapter):
    def operations(self, model: str) -> frozenset[Operation]:
        return frozenset({Operation.GENERATE, Operation.EDIT})


class GeneratingAdapter(ScriptedAdapter):
    def operations(self, model: str) -> frozenset[Operation]:
        return frozenset({Operation.GENERATE})


async def test_a_target_that_cannot_edit_is_skipped_whatever_the_fallbacks_status_codes() -> None:
    adapters = {"gen": GeneratingAdapter("gen", []), "edit": EditingAdapter("edit", [])}
    plan = fallback({"virtual_key": "gen"}, {"virtual_key": "edit"}, on_status_codes=[500])
    routed = await make_router(adapters).run(plan, edit(png(8, 8)), RouteContext(trace_id="t"))
    assert routed.provider == "edit" and not adapters["gen"].calls
    skipped = routed.attempts[0]
    assert (skipped.status_code, skipped.error_kind) == (400, ErrorKind.BAD_REQUEST)
    assert "cannot make image edits" in skipped.error


async def test_when_no_target_can_vary_the_request_fails_with_a_400_naming_the_operation() -> None:
    adapters = {"a": EditingAdapter("a", []), "b": GeneratingAdapter("b", [])}
    variation = ImageRequest(prompt="", operation=Operation.VARIATION, images=(input_image(png(8, 8), param="i"),))
    with pytest.raises(AllTargetsFailed) as caught:
        await make_router(adapters).run(
            fallback({"virtual_key": "a"}, {"virtual_key": "b"}), variation, RouteContext(trace_id="t")
        )
    error = caught.value.last
    assert isinstance(error, ProviderError) and error.status_code == 400 and error.param == "model"
    assert "image variations" in error.message and len(caught.value.attempts) == 2


# -- OpenAI's forms ------------------------------------------------------------------------------------


def test_openai_edit_form_sends_several_images_as_image_brackets_and_the_mask() -> None:
    request = edit(png(8, 8), png(8, 8), with_mask=mask(8, 8), input_fidelity="high", quality="low")
    fields, files = build_form(request, "gpt-image-1.5", provider="openai")
    assert dict(fields) == {
        "model": "gpt-image-1.5",
        "n": "1",
        "prompt": "a hat",
        "quality": "low",
        "input_fidelity": "high",
    }
    assert [f.name for f in files] == ["image[]", "image[]", "mask"]


def test_openai_dall_e_2_edit_takes_one_image_and_answers_in_the_format_asked() -> None:
    fields, files = build_form(edit(png(8, 8), response_format=ResponseFormat.URL), "dall-e-2", provider="openai")
    assert ("response_format", "url") in fields and [f.name for f in files] == ["image"]
    with pytest.raises(ProviderError) as caught:
        build_form(edit(png(8, 8), png(8, 8)), "dall-e-2", provider="openai")
    assert caught.value.param == "image"
    with pytest.raises(ProviderError) as fidelity:
        build_form(edit(png(8, 8), input_fidelity="high"), "dall-e-2", provider="openai")
    assert fidelity.value.param == "input_fidelity"


# -- cache keys and masks ------------------------------------------------------------------------------


def test_the_cache_key_of_an_edit_follows_the_images_digests() -> None:
    first, second = png(8, 8), png(9, 9)
    key = cache_key(tenant="t", plan="p", request=edit(first))
    assert key == cache_key(tenant="t", plan="p", request=edit(first))
    assert key != cache_key(tenant="t", plan="p", request=edit(second))
    assert key != cache_key(tenant="t", plan="p", request=edit(first, with_mask=mask(8, 8)))
    generation = ImageRequest(prompt="a hat")
    assert key != cache_key(tenant="t", plan="p", request=generation)


def test_an_openai_mask_becomes_a_luminance_mask_white_where_to_repaint() -> None:
    converted = Image.open(io.BytesIO(alpha_to_luminance(mask(16, 8), provider="stability-ai")))
    assert converted.mode == "L" and converted.size == (16, 8)
    assert converted.getpixel((2, 4)) == 255 and converted.getpixel((12, 4)) == 0
    with pytest.raises(ProviderError) as caught:
        alpha_to_luminance(b"not a png", provider="stability-ai")
    assert caught.value.param == "mask"


@pytest.mark.parametrize("side", [5_000, 10_000, 20_000])  # over the cap, over PIL's warning, over its error
def test_a_mask_claiming_a_huge_canvas_is_refused_from_its_header_never_decoded(side: int) -> None:
    from tests.unit.test_provider_bedrock_edits import huge_png

    with pytest.raises(ProviderError) as caught:
        alpha_to_luminance(huge_png(side, side), provider="stability-ai")
    assert (caught.value.kind, caught.value.param) == (ErrorKind.BAD_REQUEST, "mask")


# -- the chunked gRPC upload ---------------------------------------------------------------------------


async def messages(*items: images_pb2.EditImageUploadRequest) -> AsyncIterator[images_pb2.EditImageUploadRequest]:
    for item in items:
        yield item


def room() -> Reservation:
    """A reservation on a budget with room for anything these tests send."""
    return Reservation(UploadBudget(2**30))


def header(count: int, has_mask: bool = False) -> images_pb2.EditImageUploadRequest:
    return images_pb2.EditImageUploadRequest(
        header=images_pb2.EditImageUploadHeader(image_count=count, has_mask=has_mask, filenames=["a.png"])
    )


def chunk(index: int, data: bytes, is_mask: bool = False) -> images_pb2.EditImageUploadRequest:
    return images_pb2.EditImageUploadRequest(
        chunk=images_pb2.EditImageUploadChunk(image_index=index, data=data, mask=is_mask)
    )


async def test_a_chunked_upload_is_assembled_in_order() -> None:
    upload = await read_edit_upload(
        messages(header(2, True), chunk(0, b"ab"), chunk(1, b"x"), chunk(0, b"cd"), chunk(0, b"", True)),
        InputLimits(),
        room(),
    )
    assert upload.images == [(b"abcd", "a.png"), (b"x", "")] and upload.mask == (b"", "mask.png")
    assert upload.digests == tuple(hashlib.sha256(data).hexdigest() for data in (b"abcd", b"x", b""))


@pytest.mark.parametrize(
    ("stream", "param"),
    [
        ((chunk(0, b"a"),), "header"),
        ((header(17),), "header.image_count"),
        ((header(1), chunk(1, b"a")), "chunk.image_index"),
        ((header(1), chunk(0, b"a", True)), "chunk.mask"),
        ((header(1), chunk(0, b"a" * 11)), "images[0]"),
        (
            (
                header(1, True),
                images_pb2.EditImageUploadRequest(
                    chunk=images_pb2.EditImageUploadChunk(data=b"a", mask=True, markup=True)
                ),
            ),
            "chunk.markup",
        ),
    ],
)
async def test_a_bad_chunked_upload_is_refused_naming_the_field(
    stream: tuple[images_pb2.EditImageUploadRequest, ...], param: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await read_edit_upload(messages(*stream), InputLimits(max_input_image_bytes=10), room())
    assert caught.value.param == param


async def test_a_streamed_edit_upload_keeps_its_header_and_is_assembled_the_same_way() -> None:
    first = images_pb2.StreamEditImageUploadHeader(image_count=1, has_markup=True, partial_images=2, progress=True)
    stream = [
        images_pb2.StreamEditImageUploadRequest(header=first),
        images_pb2.StreamEditImageUploadRequest(chunk=images_pb2.EditImageUploadChunk(data=b"im")),
        images_pb2.StreamEditImageUploadRequest(chunk=images_pb2.EditImageUploadChunk(data=b"mk", markup=True)),
        images_pb2.StreamEditImageUploadRequest(chunk=images_pb2.EditImageUploadChunk(data=b"g")),
    ]

    async def items() -> AsyncIterator[images_pb2.StreamEditImageUploadRequest]:
        for item in stream:
            yield item

    upload = await read_edit_upload(items(), InputLimits(), room())
    assert isinstance(upload.header, images_pb2.StreamEditImageUploadHeader) and upload.header.partial_images == 2
    assert upload.images == [(b"img", "")] and upload.markup == (b"mk", "markup.png") and upload.mask is None
    assert upload.digests == (hashlib.sha256(b"img").hexdigest(), hashlib.sha256(b"mk").hexdigest())


async def test_an_announced_upload_reserves_its_size_with_the_header_and_its_chunks_draw_on_it_first() -> None:
    first = header(2)
    first.header.upload_bytes = 5
    budget = UploadBudget(1000)
    async with budget.hold() as reservation:
        upload = await read_edit_upload(
            messages(first, chunk(0, b"ab"), chunk(1, b"xyz"), chunk(0, b"cd")), InputLimits(), reservation
        )
        assert upload.images == [(b"abcd", "a.png"), (b"xyz", "")]
        # 5 announced with the header; the 2 bytes past the announcement grew it.
        assert reservation.amount == first.ByteSize() + 5 + 2
    assert budget.used == 0


@pytest.mark.parametrize("announced", [-1, 2 * 10 + 1])
async def test_an_announcement_below_zero_or_above_what_the_files_may_hold_is_refused_naming_it(announced: int) -> None:
    first = header(1, has_mask=True)  # two files of at most 10 bytes
    first.header.upload_bytes = announced
    with pytest.raises(InvalidArgument) as caught:
        await read_edit_upload(messages(first), InputLimits(max_input_image_bytes=10), room())
    assert caught.value.param == "header.upload_bytes"


async def test_an_announced_variation_reserves_the_image_with_the_header() -> None:
    announced = images_pb2.CreateImageVariationUploadHeader(filename="cat.png", upload_bytes=4)
    budget = UploadBudget(1000)
    async with budget.hold() as reservation:
        upload = await read_variation_upload(variation(announced, b"ab", b"cd"), InputLimits(), reservation)
        assert upload.image == (b"abcd", "cat.png")
        assert reservation.amount == images_pb2.CreateImageVariationUploadRequest(header=announced).ByteSize() + 4
    with pytest.raises(InvalidArgument) as caught:
        too_much = images_pb2.CreateImageVariationUploadHeader(upload_bytes=11)
        await read_variation_upload(variation(too_much, b"ab"), InputLimits(max_input_image_bytes=10), room())
    assert caught.value.param == "header.upload_bytes"


VARIATION_HEADER = images_pb2.CreateImageVariationUploadHeader()


def variation(*parts: bytes | images_pb2.CreateImageVariationUploadHeader) -> Any:
    async def items() -> AsyncIterator[images_pb2.CreateImageVariationUploadRequest]:
        for part in parts:
            if isinstance(part, bytes):
                yield images_pb2.CreateImageVariationUploadRequest(chunk=part)
            else:
                yield images_pb2.CreateImageVariationUploadRequest(header=part)

    return items()


async def test_a_chunked_variation_is_assembled_and_hashed() -> None:
    named = images_pb2.CreateImageVariationUploadHeader(filename="cat.png")
    upload = await read_variation_upload(variation(named, b"ab", b"", b"cd"), InputLimits(), room())
    assert upload.image == (b"abcd", "cat.png") and upload.digest == hashlib.sha256(b"abcd").hexdigest()


@pytest.mark.parametrize(
    ("parts", "param"),
    [
        ((b"ab",), "header"),
        ((), "header"),
        ((VARIATION_HEADER,), "image"),
        ((VARIATION_HEADER, b"a", VARIATION_HEADER), "header"),
        ((VARIATION_HEADER, b"a" * 6, b"a" * 5), "image"),
    ],
)
async def test_a_bad_chunked_variation_is_refused_naming_the_field(
    parts: tuple[bytes | images_pb2.CreateImageVariationUploadHeader, ...], param: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await read_variation_upload(variation(*parts), InputLimits(max_input_image_bytes=10), room())
    assert caught.value.param == param


async def test_large_uploads_are_hashed_off_the_event_loop() -> None:
    small, large = b"s" * 1000, b"L" * (64 << 20)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    beat = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        before = ticks
        found = await digests([small, large])
        # The loop went on while 64 MiB were hashed in a thread.
        assert ticks > before + 1
    finally:
        beat.cancel()
    assert found == [hashlib.sha256(small).hexdigest(), hashlib.sha256(large).hexdigest()]
    assert input_image(png(8, 8), param="image", sha256="f" * 64).sha256 == "f" * 64


def test_an_input_image_is_frozen() -> None:
    image = input_image(png(8, 8), param="image")
    assert isinstance(image, InputImage)
    with pytest.raises(AttributeError):
        image.width = 9  # type: ignore[misc]
