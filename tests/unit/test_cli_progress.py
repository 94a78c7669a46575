"""``imagegw generate``'s status line: each step in words, one live line on a terminal, plain lines of each
change otherwise."""

from __future__ import annotations

import io

from imagegateway.events import PartialImage, Progress
from imagegateway_server.cli.status_line import StatusLine, describe

STARTED = Progress("attempt_started", "config.targets[0]", "fal-ai", "flux")
FAILED = Progress(
    "attempt_failed",
    "config.targets[0]",
    "black-forest-labs",
    "flux-2-pro",
    error_kind="content_policy",
    error="moderated",
)
FELL_BACK = Progress(
    "fallback",
    "config.targets[0]",
    "black-forest-labs",
    "flux-2-pro",
    error="moderated",
    next_target="config.targets[1]",
)


def queued(position: int, polls: int) -> Progress:
    return Progress("queued", "config.targets[0]", "fal-ai", "flux", queue_position=position, poll_count=polls)


def running(polls: int) -> Progress:
    return Progress("running", "config.targets[0]", "fal-ai", "flux", status="IN_PROGRESS", poll_count=polls)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_step_reads_as_words() -> None:
    assert describe(STARTED) == "calling fal-ai flux (config.targets[0])"
    retried = Progress("attempt_started", "config.targets[0]", "fal-ai", "flux", retry_index=2)
    assert describe(retried) == "calling fal-ai flux (config.targets[0], retry 2)"
    assert describe(queued(2, 1)) == "fal-ai flux: queued, position 2 (1 poll)"
    assert describe(running(3)) == "fal-ai flux: running (IN_PROGRESS) (3 polls)"
    assert describe(FAILED) == "black-forest-labs flux-2-pro failed (content_policy): moderated"
    assert describe(FELL_BACK) == "falling back from config.targets[0] to config.targets[1]"
    partial = PartialImage(index=0, data=b"", mime_type="image/png", provider="openai", model="gpt-image-1.5")
    assert describe(partial) == "partial image 1 from openai gpt-image-1.5"


def test_a_terminal_gets_one_line_rewritten_with_the_elapsed_time_and_erased_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    line = StatusLine(out, live=True, clock=clock)
    line.report(STARTED)
    clock.now += 2.5
    line.report(queued(1, 2))
    line.close()
    text = out.getvalue()
    assert "\n" not in text
    assert text.count("\r\x1b[K") >= 4 and text.endswith("\r\x1b[K")  # drawn at start, twice, erased
    assert "[2.5s] fal-ai flux: queued, position 1 (2 polls)" in text
    line.close()
    assert out.getvalue() == text  # closing twice writes nothing more


def test_a_pipe_gets_a_plain_line_per_change_not_per_poll() -> None:
    out, clock = io.StringIO(), Clock()
    line = StatusLine(out, live=False, clock=clock)
    for step in (STARTED, queued(2, 1), queued(2, 2), queued(1, 3), running(4), running(5), FAILED, FELL_BACK):
        clock.now += 1
        line.report(step)
    line.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 6 and "\x1b" not in out.getvalue()
    assert lines[0] == "[1.0s] calling fal-ai flux (config.targets[0])"
    assert lines[1].endswith("queued, position 2 (1 poll)") and lines[2].endswith("queued, position 1 (3 polls)")
    assert lines[3].endswith("running (IN_PROGRESS) (4 polls)")
    assert "failed (content_policy)" in lines[4] and lines[5].endswith("to config.targets[1]")
