"""Calls the fuzz gateway's REST app in process, on the gateway's own loop, with no socket between.

Fuzzing the shim's handling of bodies and headers needs no TCP: an ASGI call is ten times cheaper
than a round trip through uvicorn, which is what lets CI afford thousands of cases. Every call has a
deadline, so a request that hangs fails the test instead of stalling the suite.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from typing import Any

import httpx

from tests.harness import GatewayThread

CALL_TIMEOUT = 15.0


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    headers: httpx.Headers
    body: bytes


class InProcessRest:
    """POSTs to /v1/images/generations of a running gateway's Starlette app."""

    def __init__(self, gateway: GatewayThread) -> None:
        # The app uvicorn serves; reached through the process because the harness does not expose it.
        uvicorn_server: Any = gateway.process._uvicorn
        self._app = uvicorn_server.config.app
        self._loop: asyncio.AbstractEventLoop = gateway._loop
        self._client = self._run(self._open())

    async def _open(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self._app), base_url="http://gateway.test")

    def _run(self, coroutine: Any) -> Any:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(CALL_TIMEOUT)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise AssertionError(f"the gateway did not answer within {CALL_TIMEOUT} s") from None

    async def _post(self, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> Answer:
        response = await self._client.post("/v1/images/generations", headers=list(headers), content=body)
        return Answer(response.status_code, response.headers, response.content)

    def post(self, headers: tuple[tuple[bytes, bytes], ...], body: bytes) -> Answer:
        return self._run(self._post(headers, body))  # type: ignore[no-any-return]

    def close(self) -> None:
        self._run(self._client.aclose())
