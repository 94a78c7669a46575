"""scripts/emulators.py (`make emulators`): the printed commands, and the emulators it runs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "emulators.py"


def _print_only(*args: str) -> str:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--print-only", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_print_only_names_the_ports_and_the_commands_to_paste() -> None:
    out = _print_only("--openai-port", "9201", "--stability-port", "9202")

    assert "IMAGEGW_ALLOWED_UPSTREAM_HOSTS=127.0.0.1:9201,127.0.0.1:9202 make run" in out
    assert (
        "printf %s sk-emulator-stability | .venv/bin/imagegw virtual-keys create --name stability-ai-virtualkey "
        "--provider stability-ai --base-url http://127.0.0.1:9202 --api-key-stdin"
    ) in out
    assert (
        "printf %s sk-emulator-openai | .venv/bin/imagegw virtual-keys create --name open-ai-virtual-key "
        "--provider openai --base-url http://127.0.0.1:9201/v1 --api-key-stdin"
    ) in out
    fail = next(line for line in out.splitlines() if "/_emulator/faults -H" in line)
    assert "http://127.0.0.1:9202/_emulator/faults" in fail
    assert json.loads(fail.split(" -d ", 1)[1].strip("'")) == {
        "faults": [{"kind": "status", "status": 503}],
        "times": None,
    }
    assert "curl -s -X DELETE http://127.0.0.1:9202/_emulator/faults" in out


def test_default_ports_are_fixed() -> None:
    out = _print_only()

    assert "IMAGEGW_ALLOWED_UPSTREAM_HOSTS=127.0.0.1:9101,127.0.0.1:9102 make run" in out


def test_runs_both_emulators_and_lists_each_request_until_interrupted() -> None:
    openai_port, stability_port = _free_port(), _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-u", str(SCRIPT), "--openai-port", str(openai_port), "--stability-port", str(stability_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        lines = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("Emulators running") or not line:
                break
        assert lines[-1].startswith("Emulators running"), "".join(lines)

        request = urllib.request.Request(
            f"http://127.0.0.1:{openai_port}/v1/images/generations",
            method="POST",
            data=json.dumps({"prompt": "a kraken", "model": "dall-e-2", "response_format": "b64_json"}).encode(),
            headers={"authorization": "Bearer sk-emulator-openai", "content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{stability_port}/_emulator/health", timeout=10) as response:
            assert json.loads(response.read())["provider"] == "stability"

        assert proc.stdout.readline().strip() == "openai: POST /v1/images/generations (model dall-e-2) -> 200"
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert rest.strip().endswith("emulators stopped")


def test_a_taken_port_is_named_with_the_way_out() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--openai-port", str(port), "--stability-port", str(_free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} for the openai emulator" in done.stderr
    assert "--openai-port" in done.stderr
