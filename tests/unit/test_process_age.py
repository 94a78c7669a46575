"""seconds_since_launch: the process's age from /proc, counted from its launch, not from the call."""

from __future__ import annotations

import subprocess
import sys

from imagegateway_server.observability.process_age import seconds_since_launch


def test_a_process_that_slept_before_asking_is_at_least_that_old() -> None:
    script = (
        "import time; time.sleep(0.5)\n"
        "from imagegateway_server.observability.process_age import seconds_since_launch\n"
        "print(seconds_since_launch())"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert float(shown.stdout) >= 0.5


def test_this_process_is_older_than_nothing() -> None:
    age = seconds_since_launch()
    assert age is not None and age > 0
