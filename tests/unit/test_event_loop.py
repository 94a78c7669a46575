"""The process's event loop: uvloop by default, the standard loop on request or where uvloop is missing."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from imagegateway_server.event_loop import loop_factory, loop_name
from imagegateway_server.settings import Settings


def run_on(name: str) -> str:
    with asyncio.Runner(loop_factory=loop_factory(name)) as runner:
        return runner.run(_running_loop_name())


async def _running_loop_name() -> str:
    return loop_name(asyncio.get_running_loop())


def test_uvloop_is_the_default_and_asyncio_can_be_chosen() -> None:
    assert Settings.load(environ={}).event_loop == "uvloop"
    assert Settings().event_loop == "uvloop"
    assert run_on("uvloop") == "uvloop"
    assert isinstance(loop_factory("uvloop")(), uvloop.Loop)
    chosen = Settings.load(environ={"IMAGEGW_EVENT_LOOP": " AsyncIO "})
    assert chosen.event_loop == "asyncio"
    assert run_on(chosen.event_loop) == "asyncio"


def test_an_unknown_loop_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="IMAGEGW_EVENT_LOOP must be one of uvloop, asyncio"):
        Settings.load(environ={"IMAGEGW_EVENT_LOOP": "trio"})
    with pytest.raises(ValueError, match="unknown event loop"):
        loop_factory("trio")


def test_without_uvloop_the_standard_loop_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # what a platform without a uvloop build sees
    assert loop_factory("uvloop") is asyncio.new_event_loop
    assert run_on("uvloop") == "asyncio"
