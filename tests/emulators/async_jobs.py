"""What the asynchronous provider emulators (BFL, fal) share: jobs that take time, job faults, poll faults
and a delivery host for the results.

A submit creates a `Job` that is done `job_seconds` later. Job faults (`fail_next_jobs`) shape the
next jobs: one that never finishes, one moderated, one that fails, one whose polling or result URL
points somewhere else, one whose signed result URL has already expired. Request faults
(`Fault.status(...)`, `Fault.rate_limited()`, ...) apply to submits through `inject` and to polls
through `inject_on_polls`, each from its own schedule.
"""

from __future__ import annotations

import enum
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .delivery import DeliveryServer
from .emulator import Emulator
from .faults import Fault, FaultSchedule
from .recording import RecordedRequest

# Where a job's URLs point when a fault sends them "elsewhere": a public name the gateway must not follow.
ELSEWHERE = "https://images.attacker.example"


class JobFault(enum.Enum):
    """How a job misbehaves."""

    NEVER_FINISHES = "never_finishes"
    REQUEST_MODERATED = "request_moderated"
    CONTENT_MODERATED = "content_moderated"
    FAILS = "fails"
    POLLING_URL_ELSEWHERE = "polling_url_elsewhere"
    RESULT_URL_ELSEWHERE = "result_url_elsewhere"
    RESULT_EXPIRED = "result_expired"
    TASK_NOT_FOUND = "task_not_found"


@dataclass
class Job:
    """One submitted job: when it was made, how long it takes, its fault and what it was asked."""

    id: str
    model: str
    body: dict[str, Any]
    created: float
    seconds: float
    fault: JobFault | None = None
    cancelled: bool = False
    result: Any = None  # set once, when the job is first seen done
    polls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        if self.fault is JobFault.NEVER_FINISHES or self.cancelled:
            return False
        return time.monotonic() >= self.created + self.seconds

    @property
    def progress(self) -> float:
        if self.seconds <= 0:
            return 1.0
        return min(1.0, (time.monotonic() - self.created) / self.seconds)


class AsyncJobEmulator(Emulator):
    """Base of the asynchronous emulators; `delivery` serves the results on a second port."""

    def __init__(
        self, api_key: str | None = None, *, job_seconds: float = 0.2, result_ttl: float = 600.0, **kwargs: Any
    ) -> None:
        super().__init__(api_key, **kwargs)
        self.job_seconds = job_seconds
        self.delivery = DeliveryServer(kwargs.get("host", "127.0.0.1"), ttl=result_ttl)
        self._poll_faults = FaultSchedule()
        self._job_faults: deque[JobFault] = deque()
        self._jobs_lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._max_jobs = 20_000

    async def start(self) -> None:
        await super().start()
        await self.delivery.start()

    async def stop(self) -> None:
        await self.delivery.stop()
        await super().stop()

    def reset(self) -> None:
        super().reset()
        self._poll_faults.clear()
        self.delivery.reset()
        with self._jobs_lock:
            self._job_faults.clear()
            self._jobs.clear()

    def inject_on_polls(self, fault: Fault, times: int | None = 1) -> None:
        """Applies `fault` to the next `times` status polls (None: until cleared)."""
        self._poll_faults.inject(fault, times)

    def fail_next_jobs(self, fault: JobFault, times: int = 1) -> None:
        """The next `times` jobs submitted misbehave as `fault` says."""
        with self._jobs_lock:
            self._job_faults.extend([fault] * times)

    @property
    def jobs(self) -> list[Job]:
        with self._jobs_lock:
            return list(self._jobs.values())

    def _new_job(self, model: str, body: dict[str, Any], fault: JobFault | None = None) -> Job:
        with self._jobs_lock:
            if fault is None and self._job_faults:
                fault = self._job_faults.popleft()
            job = Job(secrets.token_hex(16), model, body, time.monotonic(), self.job_seconds, fault)
            self._jobs[job.id] = job
            if len(self._jobs) > self._max_jobs:
                del self._jobs[next(iter(self._jobs))]
        return job

    def _job(self, job_id: str) -> Job | None:
        with self._jobs_lock:
            return self._jobs.get(job_id)

    def _active_jobs(self) -> int:
        with self._jobs_lock:
            return sum(1 for job in self._jobs.values() if not job.done and not job.cancelled)

    def _is_poll(self, request: RecordedRequest) -> bool:
        """Whether a request is a status poll (its faults come from the poll schedule)."""
        raise NotImplementedError

    def _schedule_for(self, request: RecordedRequest) -> FaultSchedule:
        return self._poll_faults if self._is_poll(request) else self._faults
