"""The polling kit: backoff, the attempt's deadline, transient poll failures, cancellation and its hook."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections.abc import Awaitable, Callable

import pytest

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.domain.progress import PartialImage, ProgressEvent, ProgressKind
from imagegateway_server.providers.kit.polling import (
    Backoff,
    Done,
    JobTimedOut,
    Pending,
    drain_cancellations,
    poll_job,
)
from imagegateway_server.providers.kit.progress import AttemptEvents

FAST = Backoff(first=0.01, factor=2.0, cap=0.04, jitter=0.0)
# Loop timers fire on time when nothing else runs; the gateway's promise is 100 ms.
DEADLINE_TOLERANCE = 0.1


PollFn = Callable[[], Awaitable[Pending | Done[str]]]


def script(*answers: Pending | Done[str] | ProviderError) -> tuple[list[float], PollFn]:
    """A poll function answering ``answers`` in order (the last one forever), and the loop times it ran at."""
    times: list[float] = []
    queue = list(answers)

    async def poll() -> Pending | Done[str]:
        times.append(asyncio.get_running_loop().time())
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, ProviderError):
            raise answer
        return answer

    return times, poll


def rate_limited(retry_after: float | None = None) -> ProviderError:
    return ProviderError(ErrorKind.RATE_LIMITED, "429", provider="p", status_code=429, retry_after=retry_after)


class CancelHook:
    def __init__(self, takes: float = 0.0) -> None:
        self.calls = 0
        self.finished = 0
        self.takes = takes

    async def __call__(self) -> None:
        self.calls += 1
        await asyncio.sleep(self.takes)
        self.finished += 1


def test_the_backoff_starts_soon_grows_and_is_capped() -> None:
    backoff = Backoff(first=0.25, factor=2.0, cap=2.0, jitter=0.0)
    assert [backoff.wait(i) for i in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    assert backoff.wait(10_000) == 2.0  # no overflow however long a job runs


def test_jitter_only_shortens_a_wait_and_by_at_most_its_share() -> None:
    backoff = Backoff(first=1.0, factor=1.0, cap=1.0, jitter=0.2)
    rng = random.Random(7)
    waits = [backoff.wait(3, rng) for _ in range(200)]
    assert all(0.8 <= wait <= 1.0 for wait in waits) and len(set(waits)) > 100


@pytest.mark.parametrize("bad", [{"first": 0}, {"first": 2, "cap": 1}, {"factor": 0.5}, {"jitter": 1.0}])
def test_a_backoff_that_would_not_make_sense_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**bad)


async def test_polls_until_done_and_reports_each_poll_and_the_wait() -> None:
    times, poll = script(Pending("IN_QUEUE", 3), Pending("IN_PROGRESS"), Done("COMPLETED", "image"))
    progress = JobProgress()
    loop = asyncio.get_running_loop()
    value = await poll_job(poll, provider="p", deadline=loop.time() + 5, jobs=progress, backoff=FAST)
    assert value == "image"
    assert progress.polls == 3 and progress.status == "COMPLETED"
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[1] >= gaps[0] * 1.5  # slower as it goes
    assert progress.wait_seconds() >= sum(gaps)


class Heard:
    """A listener that keeps what it hears."""

    images_sent = 0

    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def progress(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def partial_image(self, image: PartialImage) -> None:
        raise AssertionError("a polled job streams no partial images")


async def test_each_poll_is_counted_for_the_log_and_told_to_a_watching_caller() -> None:
    _, poll = script(
        Pending("IN_QUEUE", 2),
        Pending("IN_QUEUE", 1),
        ProviderError(ErrorKind.RATE_LIMITED, "slow down", provider="p", status_code=429),
        Pending("IN_PROGRESS"),
        Done("COMPLETED", "x"),
    )
    jobs, heard = JobProgress(), Heard()
    events = AttemptEvents(heard, target="config.targets[1]", provider="p", model="m", retry_index=1)
    deadline = asyncio.get_running_loop().time() + 5
    await poll_job(poll, provider="p", deadline=deadline, jobs=jobs, events=events, backoff=FAST)
    assert jobs.polls == 5
    assert [(e.kind, e.queue_position, e.poll_count, e.status) for e in heard.events] == [
        (ProgressKind.QUEUED, 2, 1, "IN_QUEUE"),
        (ProgressKind.QUEUED, 1, 2, "IN_QUEUE"),
        (ProgressKind.RUNNING, None, 3, "poll failed: HTTP 429"),
        (ProgressKind.RUNNING, None, 4, "IN_PROGRESS"),
        (ProgressKind.RUNNING, None, 5, "COMPLETED"),
    ]
    assert all(
        (e.target, e.provider, e.model, e.retry_index) == ("config.targets[1]", "p", "m", 1) for e in heard.events
    )
    elapsed = [e.elapsed_seconds for e in heard.events]
    assert elapsed == sorted(elapsed) and elapsed[0] > 0


async def test_the_queue_position_is_reported_while_queued() -> None:
    seen: list[int | None] = []
    progress = JobProgress()

    async def poll() -> Pending | Done[str]:
        seen.append(progress.queue_position)
        return Pending("IN_QUEUE", 2) if len(seen) < 2 else Done("COMPLETED", "x")

    await poll_job(poll, provider="p", deadline=asyncio.get_running_loop().time() + 5, jobs=progress, backoff=FAST)
    assert seen == [None, 2] and progress.queue_position is None


async def test_a_job_that_never_finishes_times_out_at_the_deadline_and_is_cancelled_upstream() -> None:
    _, poll = script(Pending("Pending"))
    hook = CancelHook()
    progress = JobProgress()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.3
    with pytest.raises(JobTimedOut) as raised:
        await poll_job(poll, provider="p", deadline=deadline, jobs=progress, cancel=hook, backoff=FAST)
    ended = loop.time()
    assert deadline - 0.001 <= ended <= deadline + DEADLINE_TOLERANCE
    assert raised.value.kind is ErrorKind.TIMEOUT and raised.value.status_code == 408
    assert "last status Pending" in raised.value.message and f"{progress.polls} polls" in raised.value.message
    await drain_cancellations()
    assert hook.calls == 1 and hook.finished == 1


async def test_a_poll_that_hangs_is_cut_at_the_deadline() -> None:
    async def hangs() -> Pending | Done[str]:
        await asyncio.sleep(60)
        raise AssertionError("unreachable")

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.2
    with pytest.raises(JobTimedOut):
        await poll_job(hangs, provider="p", deadline=deadline, backoff=FAST)
    assert loop.time() <= deadline + DEADLINE_TOLERANCE


async def test_transient_poll_failures_are_polled_again() -> None:
    _, poll = script(rate_limited(), ProviderError(ErrorKind.UNAVAILABLE, "503", provider="p"), Done("Ready", "ok"))
    progress = JobProgress()
    value = await poll_job(
        poll,
        provider="p",
        deadline=asyncio.get_running_loop().time() + 5,
        jobs=progress,
        backoff=FAST,
    )
    assert value == "ok" and progress.polls == 3


async def test_a_poll_429_waits_its_retry_after_within_the_deadline() -> None:
    times, poll = script(rate_limited(retry_after=0.3), Done("Ready", "ok"))
    await poll_job(poll, provider="p", deadline=asyncio.get_running_loop().time() + 5, backoff=FAST)
    assert times[1] - times[0] >= 0.3


async def test_too_many_transient_failures_in_a_row_end_the_wait_with_the_last() -> None:
    _, poll = script(rate_limited())
    hook = CancelHook()
    with pytest.raises(ProviderError) as raised:
        await poll_job(
            poll,
            provider="p",
            deadline=asyncio.get_running_loop().time() + 5,
            backoff=FAST,
            max_transient_failures=3,
            cancel=hook,
        )
    assert raised.value.kind is ErrorKind.RATE_LIMITED
    await drain_cancellations()
    assert hook.calls == 0


async def test_a_poll_saying_the_job_failed_ends_the_wait_at_once_without_cancelling() -> None:
    moderated = ProviderError(ErrorKind.CONTENT_POLICY, "moderated", provider="p", status_code=400)
    times, poll = script(Pending("Pending"), moderated)
    hook = CancelHook()
    with pytest.raises(ProviderError) as raised:
        await poll_job(poll, provider="p", deadline=asyncio.get_running_loop().time() + 5, backoff=FAST, cancel=hook)
    assert raised.value is moderated and len(times) == 2
    await drain_cancellations()
    assert hook.calls == 0


async def test_cancelling_stops_polling_at_once_and_runs_the_cancel_hook_without_waiting_for_it() -> None:
    times, poll = script(Pending("IN_PROGRESS"))
    hook = CancelHook(takes=5.0)  # a slow provider must not hold the caller's cancellation up
    progress = JobProgress()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(
        poll_job(poll, provider="p", deadline=loop.time() + 30, jobs=progress, cancel=hook, backoff=FAST)
    )
    await asyncio.sleep(0.1)
    polled = len(times)
    cancelled_at = loop.time()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert loop.time() - cancelled_at < 1.0
    await asyncio.sleep(0.1)
    assert len(times) == polled  # no poll after the cancellation
    assert hook.calls == 1 and hook.finished == 0
    waited = progress.wait_seconds()
    await asyncio.sleep(0.05)
    assert progress.wait_seconds() == waited  # the job is settled: its wait no longer grows


async def test_a_failing_cancel_hook_is_logged_not_raised() -> None:
    async def fails() -> None:
        raise OSError("connection refused")

    _, poll = script(Pending("Pending"))
    with pytest.raises(JobTimedOut):
        await poll_job(
            poll, provider="p", deadline=asyncio.get_running_loop().time() + 0.05, cancel=fails, backoff=FAST
        )
    await drain_cancellations()


async def test_thousands_of_jobs_wait_on_the_loop_without_threads() -> None:
    threads = threading.active_count()
    progress = JobProgress()

    async def one() -> str:
        polls = 0

        async def poll() -> Pending | Done[str]:
            nonlocal polls
            polls += 1
            return Done("Ready", "ok") if polls >= 3 else Pending("Pending")

        return await poll_job(
            poll, provider="p", deadline=asyncio.get_running_loop().time() + 30, jobs=progress, backoff=FAST
        )

    results = await asyncio.gather(*(one() for _ in range(3000)))
    assert results == ["ok"] * 3000 and progress.polls == 9000
    assert threading.active_count() == threads
