"""What authenticating one Bedrock call costs on the gateway's hot path: SigV4 by botocore, or a Bearer.

    PYTHONPATH=server:clients python bench/bedrock_signing.py [--calls 20000]

Times ``BedrockAuth.headers`` (the whole per-call cost: one botocore ``AWSRequest``, its SigV4
signature over a Nova Canvas body, the headers copied out) with the signer kept per credential, as
the adapter does, against a new botocore signer made for every call, and the Bearer of a Bedrock
API key. Prints microseconds per call, the best of five runs.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "server"), str(ROOT / "clients")]

from imagegateway_server.domain.request import ImageRequest  # noqa: E402
from imagegateway_server.providers.bedrock.models import MODELS, NOVA_CANVAS  # noqa: E402
from imagegateway_server.providers.bedrock.request import amazon_body  # noqa: E402
from imagegateway_server.providers.bedrock.signing import BedrockAuth  # noqa: E402
from imagegateway_server.providers.kit.bodies import json_bytes  # noqa: E402
from imagegateway_server.providers.registry import PROVIDER_SPECS  # noqa: E402

URL = "https://bedrock-runtime.us-east-1.amazonaws.com/model/amazon.nova-canvas-v1%3A0/invoke"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    calls = parser.parse_args().calls
    schema = PROVIDER_SPECS["bedrock"].credentials
    key_pair = {
        "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_region": "us-east-1",
    }
    long_term = schema.parse(key_pair, provider="bedrock")
    temporary = schema.parse({**key_pair, "aws_session_token": "IQoJb3JpZ2luX2Vj" + "x" * 900}, provider="bedrock")
    api_key = schema.parse({"api_key": "ABSK" + "k" * 120, "aws_region": "us-east-1"}, provider="bedrock")
    request = ImageRequest(prompt="a lighthouse on a cliff at dusk, oil painting " * 4, size="1024x1024")
    body = json_bytes(amazon_body(request, MODELS[NOVA_CANVAS], "1024x1024"))
    kept = BedrockAuth()
    cases = {
        "SigV4, signer kept per credential (the adapter)": lambda: kept.headers(long_term, URL, body),
        "SigV4 + session token, signer kept": lambda: kept.headers(temporary, URL, body),
        "SigV4, a new botocore signer every call": lambda: BedrockAuth().headers(long_term, URL, body),
        "Bedrock API key (Bearer)": lambda: kept.headers(api_key, URL, body),
    }
    print(f"{len(body)} byte Nova Canvas body, {calls} calls per run, best of 5")
    for name, call in cases.items():
        best = min(timeit.repeat(call, number=calls, repeat=5)) / calls
        print(f"{best * 1e6:8.1f} us  {name}")


if __name__ == "__main__":
    main()
