"""make emulators: the OpenAI and Stability emulators on fixed local ports, to try the gateway without provider keys.

    .venv/bin/python scripts/emulators.py                 # runs until Ctrl-C; prints the lines to paste
    .venv/bin/python scripts/emulators.py --print-only    # only prints them
    make emulators EMULATORS_ARGS="--openai-port 9201 --stability-port 9202"

The emulators (`tests/emulators`) speak the providers' real HTTP APIs, answer with generated images
and take injected faults through their `/_emulator/faults` control route. This script starts both,
prints the exact commands that point `make run` and two virtual keys at them (the virtual-key names
of the README's cookbook), and one line per request they receive with its answer, so a fallback
shows as a Stability 503 followed by an OpenAI 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulators import Emulator, OpenAIEmulator, StabilityEmulator  # noqa: E402
from tests.emulators.control import PREFIX  # noqa: E402
from tests.emulators.server import HttpRequest, Outcome, Response  # noqa: E402

OPENAI_PORT = 9101
STABILITY_PORT = 9102
# Fake provider keys: the emulators refuse any other, so a key stored wrongly shows up as a 401.
OPENAI_KEY = "sk-emulator-openai"
STABILITY_KEY = "sk-emulator-stability"


def instructions(host: str, openai_port: int, stability_port: int) -> str:
    """What to paste, in order, with the ports filled in."""
    openai_url = f"http://{host}:{openai_port}/v1"
    stability_url = f"http://{host}:{stability_port}"
    faults = f"{stability_url}/_emulator/faults"
    fail_every_request = '{"faults": [{"kind": "status", "status": 503}], "times": null}'
    width = len(openai_url) + 2
    return f"""\
{"OpenAI emulator":20}{openai_url:{width}}(provider key {OPENAI_KEY})
{"Stability emulator":20}{stability_url:{width}}(provider key {STABILITY_KEY})

1. In another terminal, start the gateway allowed to reach them (plain http to loopback is refused
   unless listed). The first start prints an admin key once:

   IMAGEGW_ALLOWED_UPSTREAM_HOSTS={host}:{openai_port},{host}:{stability_port} make run
   export IMAGEGW_API_KEY=igw_...        # the printed admin key

2. Store the emulators' keys as the cookbook's virtual keys. --base-url is where the provider's API
   lives: OpenAI's ends in /v1, Stability's is the bare origin (its paths start with /v1 or /v2beta):

   printf %s {STABILITY_KEY} | .venv/bin/imagegw virtual-keys create --name stability-ai-virtualkey \
--provider stability-ai --base-url {stability_url} --api-key-stdin
   printf %s {OPENAI_KEY} | .venv/bin/imagegw virtual-keys create --name open-ai-virtual-key \
--provider openai --base-url {openai_url} --api-key-stdin

3. Follow the cookbook from step 3 (README: "The cookbook, on your own machine"). To see the
   fallback, make Stability fail every request until you clear it:

   curl -s {faults} -H 'content-type: application/json' -d '{fail_every_request}'
   curl -s -X DELETE {faults}           # Stability answers again

   Other faults: {{"kind": "reset"}}, {{"kind": "latency", "ms": 3000}}, {{"kind": "rate_limited", "retry_after": 2}};
   "times": 1 fails only the next request. Faults queue in order: clear a "times": null one before
   adding another (tests/emulators/faults.py lists them all).
"""


class _PrintsRequests(Emulator):
    """Prints one line per provider request and what it was answered (a status, or a fault like a reset)."""

    async def _handle(self, http_request: HttpRequest) -> Outcome:
        outcome = await super()._handle(http_request)
        if not http_request.path.startswith(PREFIX):
            answer = str(outcome.status) if isinstance(outcome, Response) else type(outcome).__name__.lower()
            model = _json_model(http_request.body)
            print(
                f"  {self.provider}: {http_request.method} {http_request.path}"
                f"{f' (model {model})' if model else ''} -> {answer}",
                flush=True,
            )
        return outcome


def _json_model(body: bytes) -> str:
    """The `model` of a JSON body (OpenAI's); Stability's v1 names it in the path, v2beta in a form."""
    try:
        value = json.loads(body)
    except ValueError:
        return ""
    model = value.get("model") if isinstance(value, dict) else None
    return model if isinstance(model, str) else ""


class _OpenAI(_PrintsRequests, OpenAIEmulator):
    pass


class _Stability(_PrintsRequests, StabilityEmulator):
    pass


async def run(host: str, openai_port: int, stability_port: int) -> int:
    emulators: list[Emulator] = [
        _OpenAI(OPENAI_KEY, host=host, port=openai_port),
        _Stability(STABILITY_KEY, host=host, port=stability_port),
    ]
    started: list[Emulator] = []
    try:
        for emulator, port in zip(emulators, (openai_port, stability_port), strict=True):
            try:
                await emulator.start()
            except OSError as exc:
                print(
                    f"cannot listen on {host}:{port} for the {emulator.provider} emulator ({exc.strerror}); "
                    "is another copy running? Choose other ports with --openai-port / --stability-port "
                    '(make emulators EMULATORS_ARGS="--openai-port N --stability-port M").',
                    file=sys.stderr,
                )
                return 1
            started.append(emulator)
        print(instructions(host, openai_port, stability_port))
        print("Emulators running; the requests they receive are listed below. Ctrl-C stops them.", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        for emulator in started:
            await emulator.stop()
    print("emulators stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/emulators.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--openai-port", type=int, default=OPENAI_PORT, help=f"default {OPENAI_PORT}")
    parser.add_argument("--stability-port", type=int, default=STABILITY_PORT, help=f"default {STABILITY_PORT}")
    parser.add_argument("--print-only", action="store_true", help="print the commands to paste and exit")
    args = parser.parse_args(argv)
    if args.print_only:
        print(instructions(args.host, args.openai_port, args.stability_port))
        return 0
    return asyncio.run(run(args.host, args.openai_port, args.stability_port))


if __name__ == "__main__":
    sys.exit(main())
