"""Command line: run one emulator until SIGTERM/SIGINT.

python -m tests.emulators openai --port 9101 [--api-key K]
python -m tests.emulators stability --port 9102 [--api-key K]
python -m tests.emulators azure-openai --port 9103 [--api-key K]   (deployments dalle3, gpt-image)
python -m tests.emulators black-forest-labs --port 9104 [--api-key K]  (results on a second port)
python -m tests.emulators fal-ai --port 9105 [--api-key K]             (results on a second port)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from .async_jobs import AsyncJobEmulator
from .azure_openai import AzureOpenAIEmulator
from .bfl import BFLEmulator
from .emulator import Emulator
from .fal import FalEmulator
from .openai_images import OpenAIEmulator
from .stability import StabilityEmulator

_EMULATORS: dict[str, type[Emulator]] = {
    "azure-openai": AzureOpenAIEmulator,
    "black-forest-labs": BFLEmulator,
    "fal-ai": FalEmulator,
    "openai": OpenAIEmulator,
    "stability": StabilityEmulator,
}


async def _serve(emulator: Emulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await emulator.start()
    print(f"listening on {emulator.origin}", flush=True)
    if isinstance(emulator, AsyncJobEmulator):
        print(f"results on {emulator.delivery.origin}", flush=True)
    try:
        await stop.wait()
    finally:
        await emulator.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.emulators", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("provider", choices=sorted(_EMULATORS))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=None, help="required Bearer key; omitted accepts any")
    parser.add_argument(
        "--job-seconds", type=float, default=None, help="black-forest-labs, fal-ai: how long each job takes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator = _EMULATORS[args.provider](args.api_key, host=args.host, port=args.port)
    if isinstance(emulator, AsyncJobEmulator) and args.job_seconds is not None:
        emulator.job_seconds = args.job_seconds
    asyncio.run(_serve(emulator))


if __name__ == "__main__":
    main()
