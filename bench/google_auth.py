"""What a Vertex AI call's credential costs on the hot path: a cached service-account token against an
access token given as ``api_key``, and one whole adapter call of each against the Vertex emulator.

    PYTHONPATH=server:clients:. python bench/google_auth.py [--calls 300]

A service account's token is fetched once (the key loaded off the loop, the assertion signed, the
exchange made) and then read from the adapter's cache, so a call signs nothing. The first figures
are ``authorize`` alone (the credential's headers), the next a full ``generate`` of one Imagen image
over loopback (the emulator's own time included, the same for both), and the last the one-off cost
of the first token.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.providers.kit.interface import UpstreamTarget
from imagegateway_server.providers.registry import PROVIDER_SPECS
from imagegateway_server.providers.vertex_ai.adapter import VertexAIAdapter
from imagegateway_server.security.ssrf_transport import guarded_client
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from tests.emulators.vertex import VertexEmulator, service_account_key

ACCOUNT = "bench@imagegw-bench.iam.gserviceaccount.com"
PROJECT = "imagegw-bench"
STATIC_TOKEN = "ya29.bench-static-token"


async def measure(calls: int) -> None:
    emulator = VertexEmulator(project=PROJECT, static_tokens=(STATIC_TOKEN,))
    await emulator.start()
    key, public_pem = service_account_key(ACCOUNT, PROJECT, emulator.token_uri)
    emulator.add_account(ACCOUNT, public_pem)
    adapter = VertexAIAdapter(base_url=emulator.origin, client=guarded_client(UpstreamHostPolicy(("127.0.0.1",))))
    schema = PROVIDER_SPECS["vertex-ai"].credentials
    place = {"vertex_project_id": PROJECT, "vertex_region": "us-central1"}
    targets = {
        "service account": UpstreamTarget(
            credential=schema.parse({**place, "vertex_service_account_json": json.dumps(key)}, provider="vertex-ai")
        ),
        "access token": UpstreamTarget(
            credential=schema.parse({**place, "api_key": STATIC_TOKEN}, provider="vertex-ai")
        ),
    }
    try:
        started = time.perf_counter()
        await adapter.authorize(targets["service account"])
        first_token = time.perf_counter() - started
        for name, target in targets.items():
            rounds = 20_000
            started = time.perf_counter()
            for _ in range(rounds):
                await adapter.authorize(target)
            print(f"authorize, {name}: {(time.perf_counter() - started) / rounds * 1e6:.2f} us")
        request = ImageRequest(prompt="a lighthouse", model="imagen-4.0-fast-generate-001")
        for name, target in (*targets.items(), *targets.items()):  # twice, interleaved, for warm-up effects
            seconds = []
            for _ in range(calls):
                started = time.perf_counter()
                await adapter.generate(request, target)
                seconds.append(time.perf_counter() - started)
            print(f"generate, {name}: median {statistics.median(seconds) * 1e3:.3f} ms over {calls} calls")
        print(f"first token: {first_token * 1e3:.1f} ms; token requests in all: {emulator.token_requests}")
    finally:
        await adapter.aclose()
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    asyncio.run(measure(parser.parse_args().calls))


if __name__ == "__main__":
    main()
