"""How an attempt's asynchronous upstream jobs are going: polls made, time spent waiting, last state.

An asynchronous provider (submit, then poll until done) reports into the ``JobProgress`` the router
hands it with each attempt (``UpstreamTarget.jobs``); the router copies the poll count and the
wait into the attempt's record whatever the attempt's end (served, failed, timed out, cancelled).
A synchronous provider leaves it untouched. One attempt may run several jobs at once (``n`` fanned
out): polls add up, and the wait runs from the first job accepted to the last job settled.

It only counts: telling a watching caller of each poll is the progress hook's job
(``providers/kit/progress.py``), which the polling kit feeds from the same polls.
"""

from __future__ import annotations

import time


class JobProgress:
    """One attempt's jobs, as the provider's polling reports them. Not thread-safe: one event loop."""

    __slots__ = ("_first_accepted", "_last_settled", "_open_jobs", "polls", "queue_position", "status")

    def __init__(self) -> None:
        self.polls = 0
        # The last state a poll reported ("IN_QUEUE", "Pending", ...) and the queue position, if any.
        self.status = ""
        self.queue_position: int | None = None
        self._first_accepted: float | None = None
        self._last_settled: float | None = None
        self._open_jobs = 0

    def job_accepted(self, now: float | None = None) -> None:
        """A job was submitted and accepted (``time.monotonic()``); its waiting starts."""
        when = time.monotonic() if now is None else now
        if self._first_accepted is None:
            self._first_accepted = when
        self._open_jobs += 1

    def polled(self, status: str, queue_position: int | None = None) -> None:
        """One poll answered, saying the job's ``status`` (and place in the queue when it says one)."""
        self.polls += 1
        self.status = status
        self.queue_position = queue_position

    def job_settled(self, now: float | None = None) -> None:
        """A job finished, failed or was given up on; the wait ends when the last one does."""
        self._open_jobs = max(0, self._open_jobs - 1)
        self._last_settled = time.monotonic() if now is None else now

    def wait_seconds(self, now: float | None = None) -> float:
        """Seconds from the first job accepted to the last settled (to ``now`` while one is open)."""
        if self._first_accepted is None:
            return 0.0
        if self._open_jobs or self._last_settled is None:
            end = time.monotonic() if now is None else now
        else:
            end = self._last_settled
        return max(0.0, end - self._first_accepted)

    def __repr__(self) -> str:
        return f"JobProgress(polls={self.polls}, status={self.status!r}, wait={self.wait_seconds():.3f}s)"
