"""Command line: run one emulator until SIGTERM/SIGINT.

python -m tests.emulators openai --port 9101 [--api-key K]
python -m tests.emulators stability --port 9102 [--api-key K]
python -m tests.emulators azure-openai --port 9103 [--api-key K]   (deployments dalle3, gpt-image)
python -m tests.emulators together-ai|fireworks-ai|x-ai|recraft-ai --port N [--api-key K]
python -m tests.emulators google --port 9104 [--api-key K]         (the Gemini API)
python -m tests.emulators vertex-ai --port 9105 [--api-key TOKEN]  (project imagegw-test; the key: an access token)
python -m tests.emulators bedrock --port 9104 [--api-key K] [--aws-access-key-id ID --aws-secret-access-key S
    [--aws-session-token T]] [--aws-region us-east-1]   (SigV4 checked against that key pair)
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
from .bedrock import BedrockEmulator
from .bfl import BFLEmulator
from .emulator import Emulator
from .fal import FalEmulator
from .fireworks import FireworksEmulator
from .gemini_api import GeminiApiEmulator
from .openai_images import OpenAIEmulator
from .recraft import RecraftEmulator
from .stability import StabilityEmulator
from .together import TogetherEmulator
from .vertex import VertexEmulator
from .xai import XAIEmulator

_EMULATORS: dict[str, type[Emulator]] = {
    "azure-openai": AzureOpenAIEmulator,
    "google": GeminiApiEmulator,
    "bedrock": BedrockEmulator,
    "black-forest-labs": BFLEmulator,
    "fal-ai": FalEmulator,
    "openai": OpenAIEmulator,
    "stability": StabilityEmulator,
    "together-ai": TogetherEmulator,
    "fireworks-ai": FireworksEmulator,
    "x-ai": XAIEmulator,
    "recraft-ai": RecraftEmulator,
    "vertex-ai": VertexEmulator,
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
    parser.add_argument("--aws-access-key-id", default=None, help="bedrock: the key pair SigV4 is checked against")
    parser.add_argument("--aws-secret-access-key", default=None)
    parser.add_argument("--aws-session-token", default=None)
    parser.add_argument("--aws-region", default="us-east-1")
    parser.add_argument(
        "--job-seconds", type=float, default=None, help="black-forest-labs, fal-ai: how long each job takes"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    emulator: Emulator
    if args.provider == "bedrock":
        emulator = BedrockEmulator(
            args.api_key,
            access_key_id=args.aws_access_key_id,
            secret_access_key=args.aws_secret_access_key,
            session_token=args.aws_session_token,
            region=args.aws_region,
            host=args.host,
            port=args.port,
        )
    else:
        emulator = _EMULATORS[args.provider](args.api_key, host=args.host, port=args.port)
    if isinstance(emulator, AsyncJobEmulator) and args.job_seconds is not None:
        emulator.job_seconds = args.job_seconds
    asyncio.run(_serve(emulator))


if __name__ == "__main__":
    main()
