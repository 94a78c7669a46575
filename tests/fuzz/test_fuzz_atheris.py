"""Runs the atheris harness (tests/fuzz/atheris_inputs.py) for a bounded time: no input may crash it.

libFuzzer runs in its own process (it exits the interpreter when done), so the test starts it as a
subprocess with a run count and a time limit, and fails with the crashing input's report.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fuzz.budget import SCALE

pytest.importorskip("atheris", reason="atheris installs only where a wheel exists (CPython on x86-64 Linux)")

RUNS = round(300_000 * SCALE)
SECONDS = max(5, round(15 * SCALE))
ROOT = Path(__file__).resolve().parents[2]


def test_atheris_finds_no_crash_in_input_parsing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.fuzz.atheris_inputs",
            f"-runs={RUNS}",
            f"-max_total_time={SECONDS}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    report = result.stderr[-6000:]
    assert result.returncode == 0, report
    executed = re.search(r"stat::number_of_executed_units:\s*(\d+)", result.stderr)
    assert executed and int(executed.group(1)) > 1000, report
