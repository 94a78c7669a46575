"""Waiting for an asynchronous upstream job: poll with backoff until done, within the attempt's deadline.

Asynchronous providers (Black Forest Labs, fal) answer a submit with a job to poll. ``poll_job``
polls it: a first poll soon, then slower, up to a cap (``Backoff``); never past the attempt's
deadline (``attempt_deadline``: the router's ``UpstreamTarget.timeout``, which is already the
caller's remaining time when that is shorter); a poll that fails transiently (429, 5xx, a reset, a
poll that times out) is tried again on the same schedule, or after its Retry-After when that is
longer; a poll that says the job failed ends the wait with its classified error.

Giving up (the deadline) and being cancelled (the caller left, or the router's timer fired) both
stop polling at once and start the provider's ``cancel`` hook (fal: ``PUT cancel_url``) as a
background task that nobody waits for, so the caller's cancellation is never held up by the
provider. Every poll and the time waited are counted in the attempt's ``JobProgress`` (the attempt
log's poll count and wait), and every poll is reported to a watching caller through the attempt's
progress hook (``kit/progress.py``): QUEUED while the provider says a place in its queue, else RUNNING.

A job in flight is one coroutine asleep on the event loop: thousands cost memory, not threads.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from imagegateway_server.domain.errors import ErrorKind, ProviderError
from imagegateway_server.domain.job_progress import JobProgress
from imagegateway_server.providers.kit.progress import AttemptEvents
from imagegateway_server.providers.kit.transport import DEFAULT_ATTEMPT_TIMEOUT_SECONDS

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# How long a cancel hook may take in the background before it is dropped.
CANCEL_HOOK_SECONDS = 10.0
# Consecutive transient poll failures tolerated before the last one ends the wait.
MAX_TRANSIENT_POLL_FAILURES = 5
_TRANSIENT_KINDS = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.UNAVAILABLE, ErrorKind.TIMEOUT})

# Cancel hooks running in the background: the loop keeps only weak references to tasks.
_background: set[asyncio.Task[None]] = set()


@dataclasses.dataclass(frozen=True, slots=True)
class Backoff:
    """The wait before each poll: ``first``, then times ``factor`` each poll, at most ``cap`` seconds.

    Each wait is drawn from ``[wait * (1 - jitter), wait]`` so that jobs submitted together do not
    poll in lock-step.
    """

    first: float = 0.3
    factor: float = 1.5
    cap: float = 3.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.first <= self.cap and self.factor >= 1 and 0 <= self.jitter < 1):
            raise ValueError(f"invalid backoff {self}")

    def wait(self, index: int, rng: random.Random | None = None) -> float:
        """The wait before poll number ``index`` (0: the first poll after the submit)."""
        # min() before the power would overflow: the cap is reached after a few dozen polls anyway.
        base = min(self.cap, self.first * self.factor ** min(index, 64))
        draw = (rng or random).random()
        return base * (1.0 - self.jitter * draw)


DEFAULT_BACKOFF = Backoff()


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """A poll's answer while the job runs: its ``status`` and, when queued, its place in the queue."""

    status: str
    queue_position: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Done(Generic[_T]):
    """A poll's answer once the job finished: its final ``status`` and what the provider returned."""

    status: str
    value: _T


PollFn = Callable[[], Awaitable["Pending | Done[_T]"]]
CancelHook = Callable[[], Awaitable[object]]


def attempt_deadline(timeout: float | None) -> float:
    """The event-loop time an attempt bounded by ``timeout`` seconds (None: the default) must end by."""
    seconds = DEFAULT_ATTEMPT_TIMEOUT_SECONDS if timeout is None else timeout
    return asyncio.get_running_loop().time() + seconds


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (event-loop time), never negative."""
    return max(0.0, deadline - asyncio.get_running_loop().time())


async def poll_job(
    poll: PollFn[_T],
    *,
    provider: str,
    deadline: float,
    jobs: JobProgress | None = None,
    events: AttemptEvents | None = None,
    cancel: CancelHook | None = None,
    backoff: Backoff = DEFAULT_BACKOFF,
    max_transient_failures: int = MAX_TRANSIENT_POLL_FAILURES,
    rng: random.Random | None = None,
) -> _T:
    """Polls an accepted job until ``poll`` answers ``Done``; returns its value.

    ``poll`` makes one status request and answers ``Pending`` or ``Done``, or raises a classified
    ProviderError: a transient one (rate limited, unavailable, timed out) is tried again, up to
    ``max_transient_failures`` in a row; any other ends the wait (the job failed, was moderated,
    is unknown). Past ``deadline`` (event-loop time) raises TIMEOUT (408). On TIMEOUT and on
    cancellation, ``cancel`` is started in the background and not awaited. ``jobs`` and ``events``
    are the attempt's ``UpstreamTarget.jobs`` and ``UpstreamTarget.events``.
    """
    loop = asyncio.get_running_loop()
    # Counted even when the router gave no JobProgress: the progress reports carry the poll count.
    counts = jobs if jobs is not None else JobProgress()
    counts.job_accepted()
    failures = 0
    index = 0
    last_status = "submitted"
    try:
        while True:
            wait = backoff.wait(index, rng)
            index += 1
            left = deadline - loop.time()
            if left <= wait:
                # The next poll would come at or after the deadline: wait out the deadline, then give up.
                await asyncio.sleep(max(0.0, left))
                raise _gave_up(provider, counts, last_status)
            await asyncio.sleep(wait)
            try:
                async with asyncio.timeout_at(deadline):
                    answer = await poll()
            except TimeoutError:
                raise _gave_up(provider, counts, last_status) from None
            except ProviderError as error:
                _polled(counts, events, f"poll failed: HTTP {error.status_code}")
                failures += 1
                if error.kind not in _TRANSIENT_KINDS or failures > max_transient_failures:
                    raise
                if error.retry_after is not None and error.retry_after > wait:
                    # Honour a Retry-After longer than the schedule, within the deadline.
                    extra = min(error.retry_after - wait, max(0.0, deadline - loop.time()))
                    await asyncio.sleep(extra)
                continue
            failures = 0
            last_status = answer.status
            _polled(counts, events, answer.status, answer.queue_position if isinstance(answer, Pending) else None)
            if isinstance(answer, Done):
                return answer.value
    except asyncio.CancelledError:
        _start_cancel(cancel, provider, "the attempt was cancelled")
        raise
    except JobTimedOut:
        _start_cancel(cancel, provider, "the attempt's deadline passed")
        raise
    finally:
        counts.job_settled()


def _polled(jobs: JobProgress, events: AttemptEvents | None, status: str, queue_position: int | None = None) -> None:
    """Counts one answered poll and tells a watching caller of it."""
    jobs.polled(status, queue_position)
    if events is None:
        return
    if queue_position is not None:
        events.queued(queue_position, polls=jobs.polls, status=status)
    else:
        events.running(jobs.polls, status=status)


class JobTimedOut(ProviderError):
    """TIMEOUT (408): the job was still running when the attempt's deadline came."""


def _gave_up(provider: str, counts: JobProgress, last_status: str) -> JobTimedOut:
    return JobTimedOut(
        ErrorKind.TIMEOUT,
        f"{provider}: the job did not finish before the attempt's deadline "
        f"({counts.polls} polls, last status {last_status})",
        provider=provider,
        status_code=408,
        code="timeout",
    )


def _start_cancel(cancel: CancelHook | None, provider: str, why: str) -> None:
    """Runs ``cancel`` in the background, bounded in time; its failures are logged, never raised."""
    if cancel is None:
        return
    task = asyncio.get_running_loop().create_task(_run_cancel(cancel, provider, why))
    _background.add(task)
    task.add_done_callback(_background.discard)


async def _run_cancel(cancel: CancelHook, provider: str, why: str) -> None:
    try:
        async with asyncio.timeout(CANCEL_HOOK_SECONDS):
            await cancel()
    except Exception as exc:  # the job may finish anyway; nothing waits on this
        log.info("cancelling a %s job (%s) failed: %s", provider, why, type(exc).__name__)
    else:
        log.info("cancelled a %s job: %s", provider, why)


async def drain_cancellations() -> None:
    """Waits for cancel hooks still running (tests, and a graceful shutdown that wants them sent)."""
    if _background:
        await asyncio.gather(*list(_background), return_exceptions=True)
