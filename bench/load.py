"""Pure-Python load generators: sequential latency (sync clients) and concurrent load (asyncio clients).

Three ways to the same image: straight to the emulator with the body the gateway's OpenAI adapter
sends, through the REST shim, and through gRPC GenerateImage. Every timed call reads the whole
response; checking its content happens outside the timed section (once per phase) so the three
paths pay the same client-side cost.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import grpc
import grpc.aio
import httpx

from imagegateway import ImageGatewayClient, build_generate_request
from imagegateway.v1 import images_pb2, service_pb2_grpc

PROMPT = "a kraken in the milky way, benchmark"
MODEL = "dall-e-2"
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
MAX_MESSAGE = 64 * 1024 * 1024
CALL_TIMEOUT = 120.0


@dataclass(frozen=True)
class Targets:
    emulator_base_url: str
    emulator_key: str
    rest_base_url: str
    grpc_target: str
    gateway_key: str
    virtual_key: str

    @property
    def direct_url(self) -> str:
        return f"{self.emulator_base_url}/images/generations"

    @property
    def rest_url(self) -> str:
        return f"{self.rest_base_url}/images/generations"

    def direct_headers(self) -> dict[str, str]:
        # What the adapter sends (providers/openai.py: Authorization + Accept, JSON body).
        return {"authorization": f"Bearer {self.emulator_key}", "accept": "application/json"}

    def rest_headers(self) -> dict[str, str]:
        return {"x-portkey-api-key": self.gateway_key, "x-portkey-virtual-key": self.virtual_key}

    def grpc_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.gateway_key}"),)

    def grpc_request(self) -> images_pb2.GenerateImageRequest:
        return build_generate_request(prompt=PROMPT, model=MODEL, virtual_key=self.virtual_key)


# The exact body the gateway's OpenAI adapter builds for the REST/gRPC requests below.
UPSTREAM_BODY: dict[str, Any] = {"prompt": PROMPT, "model": MODEL, "n": 1, "response_format": "b64_json"}
REST_BODY: dict[str, Any] = {"prompt": PROMPT, "model": MODEL, "n": 1, "response_format": "b64_json"}


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted samples; NaN when empty."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _b64_image_size(body: bytes) -> int:
    payload = json.loads(body)
    return len(base64.b64decode(payload["data"][0]["b64_json"]))


# -- sequential latency (concurrency 1) ----------------------------------------------------------------


@dataclass
class PathSamples:
    seconds: list[float] = field(default_factory=list)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    image_bytes: int = 0


class LatencyProbe:
    """Sync clients for the three paths, each on one kept-alive connection."""

    PATHS = ("direct", "rest", "grpc")

    def __init__(self, targets: Targets) -> None:
        self.targets = targets
        self._direct = httpx.Client(
            transport=httpx.HTTPTransport(socket_options=NODELAY),
            timeout=CALL_TIMEOUT,
            headers=targets.direct_headers(),
        )
        self._rest = httpx.Client(
            transport=httpx.HTTPTransport(socket_options=NODELAY), timeout=CALL_TIMEOUT, headers=targets.rest_headers()
        )
        self._grpc = ImageGatewayClient(targets.grpc_target, api_key=targets.gateway_key, timeout=CALL_TIMEOUT)
        self._grpc_request = targets.grpc_request()
        self._calls: dict[str, Callable[[], Any]] = {
            "direct": self._call_direct,
            "rest": self._call_rest,
            "grpc": self._call_grpc,
        }

    def close(self) -> None:
        self._direct.close()
        self._rest.close()
        self._grpc.close()

    def _call_direct(self) -> httpx.Response:
        response = self._direct.post(self.targets.direct_url, json=UPSTREAM_BODY)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return response

    def _call_rest(self) -> httpx.Response:
        response = self._rest.post(self.targets.rest_url, json=REST_BODY)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return response

    def _call_grpc(self) -> images_pb2.GenerateImageResponse:
        return self._grpc.generate_image(self._grpc_request)

    def image_size(self, path: str) -> int:
        """One untimed call, checked: the size of the image it returned."""
        result = self._calls[path]()
        if path == "grpc":
            return len(result.images[0].data)
        return _b64_image_size(result.content)

    def run(self, requests: int, warmup: int) -> dict[str, PathSamples]:
        """`warmup` then `requests` rounds; each round calls direct, REST, gRPC once (interleaved)."""
        samples = {path: PathSamples() for path in self.PATHS}
        for path in self.PATHS:
            samples[path].image_bytes = self.image_size(path)
        for _ in range(warmup):
            for path in self.PATHS:
                self._calls[path]()
        clock = time.perf_counter
        for _ in range(requests):
            for path in self.PATHS:
                call = self._calls[path]
                started = clock()
                try:
                    call()
                except Exception as exc:  # counted, not fatal: the report shows it
                    samples[path].errors[type(exc).__name__ + ": " + str(exc)[:80]] += 1
                    continue
                samples[path].seconds.append(clock() - started)
        return samples


# -- concurrent load ---------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    transport: str
    concurrency: int
    window_seconds: float
    completed: int
    errors: collections.Counter[str]
    latencies: list[float]

    @property
    def rps(self) -> float:
        return self.completed / self.window_seconds if self.window_seconds else 0.0


class AsyncCaller:
    """One `call()` coroutine factory per transport; `aclose` frees connections."""

    def __init__(self, transport: str, targets: Targets, connections: int, channels: int = 2) -> None:
        self.transport = transport
        self._targets = targets
        self._closers: list[Callable[[], Awaitable[Any]]] = []
        if transport == "rest":
            # aiohttp, not httpx: it costs the load generator ~4x less CPU per request, CPU that the
            # gateway would otherwise lose on a small machine.
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=connections, force_close=False),
                timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT),
                headers={**targets.rest_headers(), "content-type": "application/json"},
            )
            self._closers.append(session.close)
            url = targets.rest_url
            body = json.dumps(REST_BODY).encode()

            async def rest_call() -> None:
                async with session.post(url, data=body) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"HTTP {response.status}")

            self.call: Callable[[], Awaitable[None]] = rest_call
        elif transport == "grpc":
            options = [
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.use_local_subchannel_pool", 1),
            ]  # one TCP connection per channel
            stubs = []
            for _ in range(max(1, channels)):
                channel = grpc.aio.insecure_channel(targets.grpc_target, options=options)
                self._closers.append(channel.close)
                stubs.append(service_pb2_grpc.ImageGatewayStub(channel))
            request = targets.grpc_request()
            metadata = targets.grpc_metadata()
            counter = iter(range(1 << 62))

            async def grpc_call() -> None:
                stub = stubs[next(counter) % len(stubs)]
                try:
                    response = await stub.GenerateImage(request, timeout=CALL_TIMEOUT, metadata=metadata)
                except grpc.aio.AioRpcError as err:
                    raise RuntimeError(f"gRPC {err.code().name}") from None
                if not response.images:
                    raise RuntimeError("no image")

            self.call = grpc_call
        else:
            raise ValueError(transport)

    async def aclose(self) -> None:
        for close in self._closers:
            await close()


async def closed_loop(caller: AsyncCaller, concurrency: int, duration: float, warmup: float) -> LoadResult:
    """`concurrency` workers call back to back; counts completions inside the window after `warmup`."""
    clock = time.perf_counter
    start = clock()
    window_from = start + warmup
    stop_at = window_from + duration
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    completed = 0

    async def worker() -> None:
        nonlocal completed
        while (began := clock()) < stop_at:
            try:
                await caller.call()
                failure = None
            except Exception as exc:
                failure = f"{type(exc).__name__}: {str(exc)[:80]}"
            ended = clock()
            if window_from <= ended < stop_at:
                if failure is None:
                    completed += 1
                    latencies.append(ended - began)
                else:
                    errors[failure] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return LoadResult(caller.transport, concurrency, duration, completed, errors, latencies)


async def burst(
    caller: AsyncCaller, requests: int, sample: Callable[[], Awaitable[None]] | None = None
) -> tuple[int, collections.Counter[str], float, list[float]]:
    """Starts `requests` calls at once and waits for all of them; `sample` runs every 0.1 s meanwhile."""
    clock = time.perf_counter
    errors: collections.Counter[str] = collections.Counter()
    latencies: list[float] = []
    ok = 0

    async def one() -> None:
        nonlocal ok
        began = clock()
        try:
            await caller.call()
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
            return
        ok += 1
        latencies.append(clock() - began)

    done = asyncio.Event()

    async def sampler() -> None:
        while not done.is_set() and sample is not None:
            await sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), 0.1)

    sampling = asyncio.create_task(sampler())
    started = clock()
    await asyncio.gather(*(one() for _ in range(requests)))
    wall = clock() - started
    done.set()
    await sampling
    return ok, errors, wall, latencies
