"""The fal adapter over real sockets: the queue (submit, status, result, cancel), translation, moderation, SSRF.

The fal emulator validates each model's input, answers the queue's URLs without the model's
subpath, and serves images from a second port (its media host) at signed URLs that expire.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.progress import ProgressKind
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.fal.adapter import FalAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.polling import drain_cancellations
from imagegateway_server.providers.kit.progress import AttemptEvents
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.adapter_failures import generate_fails
from tests.emulators import FalEmulator, Fault, JobFault
from tests.unit.test_polling import Heard

KEY = "fal-test-key-0123456789:abcdef"


@pytest.fixture
async def emu() -> AsyncIterator[FalEmulator]:
    async with FalEmulator(KEY, job_seconds=0.3) as emulator:
        yield emulator


@pytest.fixture
async def adapter(emu: FalEmulator) -> AsyncIterator[FalAdapter]:
    made = FalAdapter(base_url=emu.base_url, client=guarded_client(UpstreamHostPolicy(["127.0.0.1"])))
    yield made
    await made.aclose()


def target(timeout: float = 10.0, key: str = KEY, **kwargs: Any) -> UpstreamTarget:
    credential = Credential.of("fal-ai", {"api_key": key}, ["api_key"])
    return UpstreamTarget(credential=credential, timeout=timeout, jobs=JobProgress(), **kwargs)


async def refused(adapter: FalAdapter, request: ImageRequest, **kwargs: Any) -> ProviderError:
    return await generate_fails(adapter, request, target(**kwargs), KEY)


async def test_a_request_is_queued_polled_read_and_its_images_fetched_without_the_key(
    adapter: FalAdapter, emu: FalEmulator
) -> None:
    where = target()
    request = ImageRequest(prompt="a fox", size="1792x1024", n=2, seed=5)
    result = await adapter.generate(request, where)
    submit, *rest = emu.requests
    assert (submit.method, submit.path) == ("POST", "/fal-ai/flux/dev")
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.json == {
        "prompt": "a fox",
        "image_size": {"width": 1792, "height": 1024},
        "num_images": 2,
        "seed": 5,
    }
    job_id = emu.jobs[0].id
    polls = [r for r in rest if r.path.endswith("/status")]
    assert polls and all(r.path == f"/fal-ai/flux/requests/{job_id}/status" for r in polls)
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in rest)
    assert rest[-1].path == f"/fal-ai/flux/requests/{job_id}"
    assert len(emu.delivery.requests) == 2
    assert all("authorization" not in r.headers for r in emu.delivery.requests)
    assert [(image.provider, image.model, image.size) for image in result.images] == [
        ("fal-ai", "fal-ai/flux/dev", "1792x1024")
    ] * 2
    assert result.provider_request_id == job_id
    assert where.jobs is not None and where.jobs.polls == len(polls)


async def test_the_queue_position_is_reported_while_the_request_waits(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.job_seconds = 2.0
    heard = Heard()
    events = AttemptEvents(heard, target="", provider="fal-ai", model="fal-ai/flux/dev", retry_index=0)
    where = target(events=events)
    task = asyncio.ensure_future(adapter.generate(ImageRequest(prompt="a fox"), where))
    await asyncio.sleep(0.5)
    assert where.jobs is not None and where.jobs.status == "IN_QUEUE"
    assert where.jobs.queue_position is not None and where.jobs.queue_position > 0
    await task
    # The same polls reach a watching caller through the progress hook: queued with a place, then running.
    kinds = [e.kind for e in heard.events]
    assert kinds[0] is ProgressKind.QUEUED and heard.events[0].queue_position is not None
    assert kinds[-1] is ProgressKind.RUNNING and heard.events[-1].poll_count == where.jobs.polls


async def test_recraft_fans_out_takes_its_own_styles_and_sizes(adapter: FalAdapter, emu: FalEmulator) -> None:
    request = ImageRequest(
        prompt="a fox", model="fal-ai/recraft-v3", n=2, style="digital_illustration", size="1792x1024"
    )
    result = await adapter.generate(request, target())
    submits = [r.json for r in emu.requests if r.method == "POST"]
    assert (
        submits
        == [{"prompt": "a fox", "image_size": {"width": 1820, "height": 1024}, "style": "digital_illustration"}] * 2
    )
    assert result.translations == ("n=2->2x1", "size=1792x1024->1820x1024")


async def test_flux_inputs_are_named_as_fal_names_them(adapter: FalAdapter, emu: FalEmulator) -> None:
    request = ImageRequest(
        prompt="a fox", cfg_scale=5.0, aspect_ratio="16:9", extra={"steps": 20, "enable_safety_checker": False}
    )
    await adapter.generate(request, target())
    assert emu.requests[0].json == {
        "prompt": "a fox",
        "image_size": "landscape_16_9",
        "guidance_scale": 5.0,
        "num_inference_steps": 20,
        "enable_safety_checker": False,
    }
    await adapter.generate(
        ImageRequest(prompt="a fox", model="fal-ai/flux-pro/v1.1", extra={"safety_tolerance": 5}), target()
    )
    assert [r.json for r in emu.requests if r.path == "/fal-ai/flux-pro/v1.1"] == [
        {"prompt": "a fox", "safety_tolerance": "5"}
    ]


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", quality="hd"), "quality"),
        (ImageRequest(prompt="x", negative_prompt="blur"), "negative_prompt"),
        (ImageRequest(prompt="x", style="vivid"), "style"),
        (ImageRequest(prompt="x", model="fal-ai/recraft-v3", style="vivid"), "style"),
        (ImageRequest(prompt="x", n=5), "n"),
        (ImageRequest(prompt="x", aspect_ratio="7:3"), "aspect_ratio"),
        (ImageRequest(prompt="x", size="1024x1024", aspect_ratio="1:1"), "aspect_ratio"),
        (ImageRequest(prompt="x", model="fal-ai/flux/schnell", extra={"steps": 30}), "num_inference_steps"),
        (ImageRequest(prompt="x", model="fal-ai/flux-pro/v1.1", cfg_scale=3.0), "cfg_scale"),
        (ImageRequest(prompt="x", model="fal-ai/recraft-v3", seed=3), "seed"),
        (ImageRequest(prompt="x", model="fal-ai/unknown"), "model"),
        (
            ImageRequest(prompt="x", model="fal-ai/flux-pro/v1.1", extra={"safety_tolerance": "²"}),
            "safety_tolerance",
        ),  # isdigit(), not int()
    ],
)
async def test_what_a_model_does_not_take_is_refused_by_name_before_any_call(
    adapter: FalAdapter, emu: FalEmulator, request_: ImageRequest, param: str
) -> None:
    error = await refused(adapter, request_)
    assert (error.kind, error.status_code, error.param) == (ErrorKind.BAD_REQUEST, 400, param)
    assert not emu.requests


async def test_a_moderated_prompt_is_a_content_policy_failure(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.REQUEST_MODERATED)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.CONTENT_POLICY, 422, "content_policy_violation")
    assert error.param == "prompt"


async def test_an_image_the_safety_checker_flagged_is_never_served(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.CONTENT_MODERATED)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.code) == (ErrorKind.CONTENT_POLICY, "content_policy_violation")
    assert not emu.delivery.requests


async def test_a_model_that_fails_is_unavailable(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.FAILS)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code) == (ErrorKind.UNAVAILABLE, 500)


async def test_a_request_that_never_finishes_times_out_and_is_cancelled_on_the_queue(
    adapter: FalAdapter, emu: FalEmulator
) -> None:
    emu.fail_next_jobs(JobFault.NEVER_FINISHES)
    error = await refused(adapter, ImageRequest(prompt="x"), timeout=0.8)
    assert (error.kind, error.status_code) == (ErrorKind.TIMEOUT, 408)
    await drain_cancellations()
    assert emu.cancellations == [emu.jobs[0].id]
    (cancel,) = [r for r in emu.requests if r.method == "PUT"]
    assert cancel.headers["authorization"] == f"Key {KEY}"


async def test_a_caller_who_leaves_cancels_the_queued_request(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.NEVER_FINISHES)
    task = asyncio.ensure_future(adapter.generate(ImageRequest(prompt="x"), target()))
    await asyncio.sleep(0.6)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await drain_cancellations()
    assert emu.cancellations == [emu.jobs[0].id]


async def test_429s_on_status_polls_are_polled_through(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.inject_on_polls(Fault.rate_limited(), times=3)
    result = await adapter.generate(ImageRequest(prompt="x"), target())
    assert result.images[0].data


async def test_a_wrong_key_is_an_authentication_failure(adapter: FalAdapter) -> None:
    with pytest.raises(ProviderError) as raised:
        await adapter.generate(ImageRequest(prompt="x"), target(key="wrong-fal-key-0123456789"))
    assert raised.value.kind is ErrorKind.AUTHENTICATION and "wrong-fal-key-0123456789" not in raised.value.message


async def test_a_status_url_elsewhere_is_refused_and_never_polled(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.POLLING_URL_ELSEWHERE)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.code, error.status_code) == ("upstream_url_refused", 502) and "status_url" in error.message
    assert [r.method for r in emu.requests] == ["POST"]


async def test_an_image_url_elsewhere_is_refused_and_never_fetched(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.RESULT_URL_ELSEWHERE)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert error.code == "upstream_url_refused" and "images[].url" in error.message
    assert not emu.delivery.requests


async def test_an_expired_image_url_is_unavailable(adapter: FalAdapter, emu: FalEmulator) -> None:
    emu.fail_next_jobs(JobFault.RESULT_EXPIRED)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.code) == (ErrorKind.UNAVAILABLE, "result_unavailable")


async def test_a_caller_asking_for_urls_gets_fals_urls_unfetched(adapter: FalAdapter, emu: FalEmulator) -> None:
    result = await adapter.generate(ImageRequest(prompt="x", response_format=ResponseFormat.URL), target())
    (image,) = result.images
    assert image.url is not None and image.url.startswith(emu.delivery.origin) and image.data is None
    assert image.mime_type == "image/jpeg" and not emu.delivery.requests
