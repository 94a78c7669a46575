"""``imagegw generate``'s progress: one live line on a terminal, plain lines of each change otherwise."""

from __future__ import annotations

import io

from imagegateway.types import ErrorKind, Progress, ProgressKind
from imagegateway_server.cli.progress_line import ProgressLine, describe

STARTED = Progress(
    kind=ProgressKind.PROGRESS_KIND_ATTEMPT_STARTED, target="config.targets[0]", provider="fal-ai", model="flux"
)


def queued(position: int, polls: int) -> Progress:
    return Progress(
        kind=ProgressKind.PROGRESS_KIND_QUEUED,
        provider="fal-ai",
        model="flux",
        queue_position=position,
        poll_count=polls,
    )


def running(polls: int) -> Progress:
    return Progress(
        kind=ProgressKind.PROGRESS_KIND_RUNNING, provider="fal-ai", model="flux", status="IN_PROGRESS", poll_count=polls
    )


FAILED = Progress(
    kind=ProgressKind.PROGRESS_KIND_ATTEMPT_FAILED,
    provider="black-forest-labs",
    model="flux-2-pro",
    error_kind=ErrorKind.ERROR_KIND_CONTENT_POLICY,
    error="moderated",
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_step_reads_as_words() -> None:
    assert describe(STARTED) == "calling fal-ai flux (config.targets[0])"
    assert describe(queued(2, 1)) == "fal-ai flux: queued, position 2 (1 poll)"
    assert describe(running(3)) == "fal-ai flux: running (IN_PROGRESS) (3 polls)"
    assert describe(FAILED).startswith("black-forest-labs flux-2-pro failed (content_policy): moderated; trying")


def test_a_terminal_gets_one_line_rewritten_with_the_elapsed_time_and_cleared_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine(out, tty=True, clock=clock)
    line.show(STARTED)
    clock.now += 2.5
    line.show(queued(1, 2))
    line.finish()
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") == 3 and text.endswith("\r\x1b[K")
    assert "[  2.5s] fal-ai flux: queued, position 1 (2 polls)" in text


def test_a_pipe_gets_a_plain_line_per_change_not_per_poll() -> None:
    out, clock = io.StringIO(), Clock()
    line = ProgressLine(out, tty=False, clock=clock)
    for step in (STARTED, queued(2, 1), queued(2, 2), queued(1, 3), running(4), running(5), FAILED):
        clock.now += 1
        line.show(step)
    line.finish()
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and "\x1b" not in out.getvalue()
    assert lines[0] == "[  1.0s] calling fal-ai flux (config.targets[0])"
    assert lines[1].endswith("queued, position 2 (1 poll)") and lines[2].endswith("queued, position 1 (3 polls)")
    assert lines[3].endswith("running (IN_PROGRESS) (4 polls)") and "failed" in lines[4]
