"""``imagegw logs list`` filters and ``imagegw logs tail`` against a fake gateway on a loopback socket."""

from __future__ import annotations

import json
import os
import types
from collections.abc import Iterator

import pytest

from imagegateway import ImageGatewayClient
from imagegateway_server.cli import follow, main
from tests.unit.test_client_fake_server import ADMIN_KEY, FakeGateway, serving


@pytest.fixture
def gw(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    fake = FakeGateway()
    with serving(fake) as target:
        monkeypatch.setenv("IMAGEGW_SERVER", target)
        monkeypatch.setenv("IMAGEGW_API_KEY", ADMIN_KEY)
        yield fake


def test_logs_list_sends_the_model_config_fallback_and_caller_filters(
    gw: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    gw.add_logs(2)
    code = main(
        [
            "logs",
            "list",
            "--model",
            "dall-e-3",
            "--config",
            "cfg-1",
            "--no-fallback",
            "--caller-key-id",
            "key_7",
            "-o",
            "json",
        ]
    )
    assert code == 0 and len(json.loads(capsys.readouterr().out)) == 2
    request = gw.last("ListLogs").request
    assert (request.model, request.config_id, request.caller_key_id) == ("dall-e-3", "cfg-1", "key_7")
    assert request.HasField("fallback_used") and request.fallback_used is False
    assert main(["logs", "list", "--fallback"]) == 0
    request = gw.last("ListLogs").request
    assert request.HasField("fallback_used") and request.fallback_used is True
    assert main(["logs", "list"]) == 0
    assert not gw.last("ListLogs").request.HasField("fallback_used")


def test_the_client_passes_the_new_filters(gw: FakeGateway) -> None:
    with ImageGatewayClient(os.environ["IMAGEGW_SERVER"], api_key=ADMIN_KEY) as client:
        client.list_logs(model="gpt-image-1", config_id="c", fallback_used=True, caller_key_id="k")
    request = gw.last("ListLogs").request
    assert (request.model, request.config_id, request.fallback_used, request.caller_key_id) == (
        "gpt-image-1",
        "c",
        True,
        "k",
    )


def test_logs_tail_rejects_a_negative_backlog_and_a_silly_interval(
    gw: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", "tail", "-n", "-1"]) == 2
    assert main(["logs", "tail", "--interval", "0"]) == 2
    assert "INVALID_ARGUMENT" in capsys.readouterr().err


def test_logs_tail_prints_the_backlog_and_exits_0_on_ctrl_c(
    gw: FakeGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gw.add_logs(3)
    pauses: list[float] = []

    def interrupted(seconds: float) -> None:
        pauses.append(seconds)
        raise KeyboardInterrupt  # Ctrl-C while waiting for the next poll

    monkeypatch.setattr(follow, "time", types.SimpleNamespace(sleep=interrupted))
    code = main(["logs", "tail", "-n", "2", "--interval", "0.5", "-o", "json"])
    out = capsys.readouterr().out
    assert code == 0 and pauses == [0.5]
    assert len([json.loads(line) for line in out.splitlines()]) == 2  # one JSON object per line
