"""The dashboard's health rows over the circuit breakers: one per routing identity, no secret in them."""

from __future__ import annotations

import json

from imagegateway_server.api.dashboard import breaker_health
from imagegateway_server.state.breakers import BreakerPolicy, Outcome, TargetIdentity
from imagegateway_server.state.in_process.breakers import InProcessBreakers
from tests.credentials import api_key


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def test_an_open_breaker_shows_as_open_with_its_next_probe_time() -> None:
    clock, wall = Clock(100.0), Clock(1_750_000_000.0)
    breakers = InProcessBreakers(
        BreakerPolicy(consecutive_failures=2, cooldown_seconds=30), clock=clock, wall_clock=wall
    )
    failing = TargetIdentity.of(
        "stability-ai", "http://127.0.0.1:9000/v1", api_key("sk-secret-stability", "stability-ai"), "sd-v1-6"
    )
    healthy = TargetIdentity.of("openai", None, api_key("sk-secret-openai"), "dall-e-3")
    for _ in range(2):
        breakers.record(await breakers.acquire(failing, None), Outcome.FAILURE)
    breakers.record(await breakers.acquire(healthy, None), Outcome.SUCCESS)

    rows = await breaker_health(breakers)()
    assert [(r["provider"], r["model"], r["host"], r["state"]) for r in rows] == [
        ("openai", "dall-e-3", "(public API)", "closed"),
        ("stability-ai", "sd-v1-6", "127.0.0.1:9000", "open"),
    ]
    opened = rows[1]
    assert opened["consecutive_failures"] == 2 and opened["failure_rate"] == "100%" and opened["window_calls"] == 2
    assert opened["next_probe"] == "2025-06-15T15:07:10+00:00"  # wall clock + the 30 s cool-down
    assert rows[0]["next_probe"] == ""
    text = json.dumps(rows)
    assert "sk-secret" not in text and str(opened["key"]).startswith("sha256:")
