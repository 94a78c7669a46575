"""The Black Forest Labs adapter over real sockets: submit, poll, fetch, translation, moderation, faults, SSRF.

The BFL emulator validates bodies as BFL's models do and serves results from a second port (its
delivery host) at signed URLs that expire; the adapter's client is the SSRF-guarded one with
127.0.0.1 on the allow list, as the test gateway has it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.providers.black_forest_labs.adapter import BlackForestLabsAdapter
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.kit.transport import UpstreamClient
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.adapter_failures import generate_fails
from tests.emulators import BFLEmulator, Fault, JobFault

KEY = "bfl-test-key-0123456789abcdef"
JPEG = b"\xff\xd8\xff"


@pytest.fixture
async def emu() -> AsyncIterator[BFLEmulator]:
    async with BFLEmulator(KEY, job_seconds=0.15) as emulator:
        yield emulator


@pytest.fixture
async def adapter(emu: BFLEmulator) -> AsyncIterator[BlackForestLabsAdapter]:
    made = BlackForestLabsAdapter(base_url=emu.base_url, client=guarded_client(UpstreamHostPolicy(["127.0.0.1"])))
    yield made
    await made.aclose()


def target(timeout: float = 10.0, **kwargs: Any) -> UpstreamTarget:
    credential = Credential.of("black-forest-labs", {"api_key": KEY}, ["api_key"])
    return UpstreamTarget(credential=credential, timeout=timeout, jobs=JobProgress(), **kwargs)


async def refused(adapter: BlackForestLabsAdapter, request: ImageRequest, **kwargs: Any) -> ProviderError:
    return await generate_fails(adapter, request, target(**kwargs), KEY)


async def test_a_task_is_submitted_polled_and_its_signed_result_fetched_without_the_key(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    where = target()
    result = await adapter.generate(ImageRequest(prompt="a fox", model="flux-2-pro", size="1024x1024"), where)
    submit, *polls = emu.requests
    assert submit.method == "POST" and submit.path == "/v1/flux-2-pro"
    assert submit.headers["x-key"] == KEY
    assert submit.json == {"prompt": "a fox", "width": 1024, "height": 1024}
    assert polls and all(p.path == "/v1/get_result" and p.headers["x-key"] == KEY for p in polls)
    (download,) = emu.delivery.requests
    assert "x-key" not in download.headers and "authorization" not in download.headers
    (image,) = result.images
    assert image.data is not None and image.data.startswith(JPEG)
    assert (image.provider, image.model, image.size) == ("black-forest-labs", "flux-2-pro", "1024x1024")
    assert result.provider_request_id == emu.jobs[0].id
    assert where.jobs is not None and where.jobs.polls == len(polls)
    assert where.jobs.wait_seconds() >= 0.15


async def test_n_fans_out_into_tasks_with_stepped_seeds_and_a_size_becomes_the_nearest_the_model_makes(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    request = ImageRequest(prompt="a fox", model="flux-pro-1.1", size="1792x1024", n=3, seed=7, output_format="png")
    result = await adapter.generate(request, target())
    bodies = sorted((r.json or {}).get("seed", 0) for r in emu.requests if r.method == "POST")
    assert bodies == [7, 8, 9]
    assert {(r.json or {}).get("width") for r in emu.requests if r.method == "POST"} == {1344}
    assert result.translations == ("n=3->3x1", "size=1792x1024->1344x768")
    assert [image.mime_type for image in result.images] == ["image/png"] * 3
    assert sorted(image.seed or 0 for image in result.images) == [7, 8, 9]


async def test_ultra_and_kontext_are_sized_by_aspect_ratio(adapter: BlackForestLabsAdapter, emu: BFLEmulator) -> None:
    result = await adapter.generate(
        ImageRequest(prompt="a fox", model="flux-pro-1.1-ultra", size="1792x1024"), target()
    )
    assert emu.requests[0].json == {"prompt": "a fox", "aspect_ratio": "16:9"}
    assert result.translations == ("size=1792x1024->16:9",)
    await adapter.generate(ImageRequest(prompt="a fox", model="flux-kontext-pro", aspect_ratio="9:16"), target())
    assert emu.requests[-1].path == "/v1/get_result"
    assert [r.json for r in emu.requests if r.path == "/v1/flux-kontext-pro"] == [
        {"prompt": "a fox", "aspect_ratio": "9:16"}
    ]


async def test_flex_takes_steps_and_guidance_and_cfg_scale_is_its_guidance(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    request = ImageRequest(
        prompt="a fox", model="flux-2-flex", cfg_scale=4.5, extra={"steps": 30, "safety_tolerance": 1}
    )
    await adapter.generate(request, target())
    assert emu.requests[0].json == {"prompt": "a fox", "guidance": 4.5, "steps": 30, "safety_tolerance": 1}


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        (ImageRequest(prompt="x", model="flux-2-pro", quality="hd"), "quality"),
        (ImageRequest(prompt="x", model="flux-2-pro", negative_prompt="blur"), "negative_prompt"),
        (ImageRequest(prompt="x", model="flux-2-pro", style="vivid"), "style"),
        (ImageRequest(prompt="x", model="flux-2-pro", extra={"steps": 20}), "steps"),
        (ImageRequest(prompt="x", model="flux-pro-1.1", cfg_scale=3.0), "cfg_scale"),
        (ImageRequest(prompt="x", model="flux-2-pro", extra={"safety_tolerance": 6}), "safety_tolerance"),
        (ImageRequest(prompt="x", model="flux-pro-1.1", output_format="webp"), "output_format"),
        (ImageRequest(prompt="x", model="flux-2-flex", extra={"guidance": 20}), "guidance"),
        (ImageRequest(prompt="x", model="flux-pro-1.1", aspect_ratio="16:9"), "aspect_ratio"),
        (ImageRequest(prompt="x", model="flux-2-pro", extra={"webhook_url": "https://x.example"}), "webhook_url"),
        (ImageRequest(prompt="x", model="flux-dev-unknown"), "model"),
    ],
)
async def test_what_a_model_does_not_take_is_refused_by_name_before_any_call(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator, request_: ImageRequest, param: str
) -> None:
    error = await refused(adapter, request_)
    assert (error.kind, error.status_code, error.param) == (ErrorKind.BAD_REQUEST, 400, param)
    assert not emu.requests


async def test_strict_mode_refuses_a_size_instead_of_translating_it(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    error = await refused(adapter, ImageRequest(prompt="x", model="flux-pro-1.1", size="1792x1024"), strict=True)
    assert error.param == "size" and not emu.requests


@pytest.mark.parametrize("fault", [JobFault.REQUEST_MODERATED, JobFault.CONTENT_MODERATED])
async def test_a_moderated_task_is_a_content_policy_failure(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator, fault: JobFault
) -> None:
    emu.fail_next_jobs(fault)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.CONTENT_POLICY, 400, "content_policy_violation")
    assert "Moderated" in error.message and not emu.delivery.requests


@pytest.mark.parametrize(
    ("fault", "code"), [(JobFault.FAILS, "task_failed"), (JobFault.TASK_NOT_FOUND, "task_not_found")]
)
async def test_a_failed_or_lost_task_is_unavailable(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator, fault: JobFault, code: str
) -> None:
    emu.fail_next_jobs(fault)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, code)


async def test_a_task_that_never_finishes_times_out_within_the_attempts_bound(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    emu.fail_next_jobs(JobFault.NEVER_FINISHES)
    loop = asyncio.get_running_loop()
    started = loop.time()
    where = target(timeout=0.6)
    with pytest.raises(ProviderError) as raised:
        await adapter.generate(ImageRequest(prompt="x"), where)
    assert raised.value.kind is ErrorKind.TIMEOUT and raised.value.status_code == 408
    assert 0.6 <= loop.time() - started < 0.6 + 0.1
    assert where.jobs is not None and where.jobs.polls >= 1


async def test_too_many_active_tasks_on_submit_is_a_rate_limit(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    emu.inject(Fault.rate_limited(retry_after=2))
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code, error.retry_after) == (ErrorKind.RATE_LIMITED, 429, 2.0)
    assert "active tasks" in error.message


async def test_the_emulators_active_task_limit_answers_429(emu: BFLEmulator) -> None:
    emu.max_active = 1
    made = BlackForestLabsAdapter(base_url=emu.base_url, client=guarded_client(UpstreamHostPolicy(["127.0.0.1"])))
    try:
        outcomes = await asyncio.gather(
            *(made.generate(ImageRequest(prompt="x"), target()) for _ in range(2)), return_exceptions=True
        )
    finally:
        await made.aclose()
    kinds = sorted(o.kind.name if isinstance(o, ProviderError) else "ok" for o in outcomes)
    assert kinds == ["RATE_LIMITED", "ok"]


async def test_429s_and_503s_on_polls_are_polled_through(adapter: BlackForestLabsAdapter, emu: BFLEmulator) -> None:
    emu.inject_on_polls(Fault.rate_limited(), times=2)
    emu.inject_on_polls(Fault.status(503))
    where = target()
    result = await adapter.generate(ImageRequest(prompt="x"), where)
    assert result.images[0].data
    assert where.jobs is not None and where.jobs.polls >= 4


async def test_a_wrong_key_is_refused(emu: BFLEmulator) -> None:
    made = BlackForestLabsAdapter(base_url=emu.base_url, client=guarded_client(UpstreamHostPolicy(["127.0.0.1"])))
    try:
        credential = Credential.of("black-forest-labs", {"api_key": "wrong-key-0123456789"}, ["api_key"])
        with pytest.raises(ProviderError) as raised:
            await made.generate(ImageRequest(prompt="x"), UpstreamTarget(credential=credential))
    finally:
        await made.aclose()
    assert raised.value.kind is ErrorKind.PERMISSION_DENIED and "wrong-key-0123456789" not in raised.value.message


async def test_a_polling_url_elsewhere_is_refused_and_never_polled(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    emu.fail_next_jobs(JobFault.POLLING_URL_ELSEWHERE)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UPSTREAM_BUG, 502, "upstream_url_refused")
    assert "polling_url" in error.message and "images.attacker.example" in error.message
    assert [r.method for r in emu.requests] == ["POST"]
    assert any(getattr(r, "url_field", "") == "polling_url" for r in caplog.records)


async def test_a_result_url_elsewhere_is_refused_and_never_fetched(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    emu.fail_next_jobs(JobFault.RESULT_URL_ELSEWHERE)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert error.code == "upstream_url_refused" and "result.sample" in error.message
    assert not emu.delivery.requests


async def test_a_delivery_host_off_the_allow_list_is_refused(emu: BFLEmulator) -> None:
    # The delivery host is a second port: without 127.0.0.1 on the allow list it is a host like any other.
    made = BlackForestLabsAdapter(base_url=emu.base_url, client=UpstreamClient())
    try:
        with pytest.raises(ProviderError) as raised:
            await made.generate(ImageRequest(prompt="x"), target())
    finally:
        await made.aclose()
    assert raised.value.code == "upstream_url_refused" and not emu.delivery.requests


async def test_an_expired_result_url_is_unavailable(adapter: BlackForestLabsAdapter, emu: BFLEmulator) -> None:
    emu.fail_next_jobs(JobFault.RESULT_EXPIRED)
    error = await refused(adapter, ImageRequest(prompt="x"))
    assert (error.kind, error.status_code, error.code) == (ErrorKind.UNAVAILABLE, 502, "result_unavailable")
    assert "expired" in error.message


async def test_a_caller_asking_for_urls_gets_the_signed_url_unfetched(
    adapter: BlackForestLabsAdapter, emu: BFLEmulator
) -> None:
    request = ImageRequest(prompt="x", response_format=ResponseFormat.URL)
    result = await adapter.generate(request, target())
    (image,) = result.images
    assert image.data is None and image.url is not None and image.url.startswith(emu.delivery.origin)
    assert "sig=" in image.url and not emu.delivery.requests


async def test_a_cancelled_attempt_stops_polling(adapter: BlackForestLabsAdapter, emu: BFLEmulator) -> None:
    emu.fail_next_jobs(JobFault.NEVER_FINISHES)
    task = asyncio.ensure_future(adapter.generate(ImageRequest(prompt="x"), target()))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    polls = len(emu.requests)
    await asyncio.sleep(0.5)
    assert len(emu.requests) == polls
