"""The gateway's CPU per upstream call, Bedrock (SigV4, or an API key) beside OpenAI, through the real adapters.

    PYTHONPATH=server:clients python bench/adapter_overhead.py [--calls 400]

Starts the OpenAI and Bedrock emulators as their own processes (``python -m tests.emulators``),
then makes ``--calls`` sequential calls through each adapter in this process and reports this
process's CPU time per call (``time.process_time``): building the body, signing, the HTTP round trip
on aiohttp, parsing and checking the image. The emulators' own time is in their processes and not
counted, so the difference between rows is what a Bedrock call adds to the gateway over an OpenAI
call. Small images (a 256x256 dall-e-2 PNG, a 320x320 Nova Canvas PNG) keep image handling out of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "server"), str(ROOT / "clients"), str(ROOT)]

from imagegateway_server.domain.credentials import Credential  # noqa: E402
from imagegateway_server.domain.request import ImageRequest  # noqa: E402
from imagegateway_server.providers.bedrock.adapter import BedrockAdapter  # noqa: E402
from imagegateway_server.providers.kit.interface import UpstreamTarget  # noqa: E402
from imagegateway_server.providers.openai.adapter import OpenAIAdapter  # noqa: E402
from imagegateway_server.providers.registry import PROVIDER_SPECS  # noqa: E402

OPENAI_KEY = "sk-bench-openai-0123456789"
ACCESS_KEY_ID = "AKIABENCHMARK0000001"
SECRET_ACCESS_KEY = "bench/secret+0123456789abcdefABCDEF0123"
BEDROCK_API_KEY = "ABSKbench0123456789"
RUNS = 5


@contextlib.contextmanager
def emulator(*args: str) -> Iterator[str]:
    """Runs ``python -m tests.emulators ARGS`` and yields its origin once it listens."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulators", *args, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening on "):
            raise RuntimeError(f"emulator {args[0]} did not start: {line!r}")
        yield line.removeprefix("listening on ").strip()
    finally:
        proc.terminate()
        proc.wait(10)


async def cpu_per_call(call: Callable[[], Awaitable[object]], calls: int) -> float:
    """The best of RUNS runs of ``calls`` sequential calls, as this process's CPU seconds per call."""
    for _ in range(20):
        await call()  # warm: connections pooled, signer made
    runs = []
    for _ in range(RUNS):
        started = time.process_time()
        for _ in range(calls):
            await call()
        runs.append((time.process_time() - started) / calls)
    return min(runs)


async def measure(openai_url: str, bedrock_url: str, calls: int) -> dict[str, float]:
    schema = PROVIDER_SPECS["bedrock"].credentials
    key_pair = schema.parse(
        {"aws_access_key_id": ACCESS_KEY_ID, "aws_secret_access_key": SECRET_ACCESS_KEY, "aws_region": "us-east-1"},
        provider="bedrock",
    )
    api_key = schema.parse({"api_key": BEDROCK_API_KEY, "aws_region": "us-east-1"}, provider="bedrock")
    openai_target = UpstreamTarget(credential=Credential.of("openai", {"api_key": OPENAI_KEY}, {"api_key"}))
    openai = OpenAIAdapter(base_url=f"{openai_url}/v1")
    bedrock = BedrockAdapter(base_url=bedrock_url)
    dalle2 = ImageRequest(prompt="a lighthouse", model="dall-e-2", size="256x256")
    nova = ImageRequest(prompt="a lighthouse", model="amazon.nova-canvas-v1:0", size="320x320")
    try:
        return {
            "OpenAI (dall-e-2, Bearer)": await cpu_per_call(lambda: openai.generate(dalle2, openai_target), calls),
            "Bedrock (Nova Canvas, SigV4)": await cpu_per_call(
                lambda: bedrock.generate(nova, UpstreamTarget(credential=key_pair)), calls
            ),
            "Bedrock (Nova Canvas, API key)": await cpu_per_call(
                lambda: bedrock.generate(nova, UpstreamTarget(credential=api_key)), calls
            ),
        }
    finally:
        await openai.aclose()
        await bedrock.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400)
    calls = parser.parse_args().calls
    with (
        emulator("openai", "--api-key", OPENAI_KEY) as openai_url,
        emulator(
            "bedrock",
            "--api-key",
            BEDROCK_API_KEY,
            "--aws-access-key-id",
            ACCESS_KEY_ID,
            "--aws-secret-access-key",
            SECRET_ACCESS_KEY,
        ) as bedrock_url,
    ):
        figures = asyncio.run(measure(openai_url, bedrock_url, calls))
    baseline = figures["OpenAI (dall-e-2, Bearer)"]
    print(f"gateway CPU per upstream call, {calls} sequential calls, best of {RUNS} runs")
    for name, seconds in figures.items():
        print(f"{seconds * 1e6:8.0f} us  {name}  ({(seconds - baseline) * 1e6:+.0f} us over OpenAI)")


if __name__ == "__main__":
    main()
