"""``imagegw health-check``: the container HEALTHCHECK's command, against a real gateway and a closed port."""

from __future__ import annotations

import socket

import pytest

from imagegateway_server.cli import main as imagegw
from tests.harness import GatewayThread


def test_a_serving_gateway_passes_without_a_key(gateway: GatewayThread, capsys: pytest.CaptureFixture[str]) -> None:
    assert imagegw(["health-check", "--server", gateway.grpc_target]) == 0
    assert capsys.readouterr().err == ""


def test_nothing_listening_fails_with_the_state_named(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, so nothing answers on it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert imagegw(["health-check", "--server", f"127.0.0.1:{port}", "--timeout", "1"]) == 1
    assert "not serving: UNAVAILABLE" in capsys.readouterr().err
