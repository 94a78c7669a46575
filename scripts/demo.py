"""make demo: the cookbook's Stability -> DALL-E 3 fallback end to end, with no keys and no network;
then a chain across the clouds, Azure DALL-E 3 -> Vertex AI Imagen -> Bedrock Nova Canvas, and one
across the FLUX hosts, FLUX.2 on Black Forest Labs (asynchronous) -> FLUX on Together -> DALL-E 3.

Starts the local provider emulators and a gateway on free loopback ports, stores virtual keys (typed
credentials for the clouds: an Azure resource and deployment, a Vertex project and region, an AWS key
pair checked by SigV4), saves the configs, makes the first targets fail, and shows who answered and
what the request log recorded.
"""

from __future__ import annotations

import base64
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openai import OpenAI  # noqa: E402
from portkey_ai import createHeaders  # noqa: E402

from imagegateway import ImageGatewayClient  # noqa: E402
from imagegateway_server.cli import main as imagegw  # noqa: E402
from tests.emulators import (  # noqa: E402
    AzureOpenAIEmulator,
    BedrockEmulator,
    BFLEmulator,
    Fault,
    OpenAIEmulator,
    StabilityEmulator,
    TogetherEmulator,
    VertexEmulator,
)
from tests.emulators.async_jobs import JobFault  # noqa: E402
from tests.harness import running_gateway  # noqa: E402

DEMO_AWS_KEY_ID, DEMO_AWS_SECRET = "AKIAIMAGEGWDEMO00001", "demo/aws+secret-0123456789abcdef"
DEMO_VERTEX_TOKEN = "ya29.demo-vertex-access-token"
CLOUD_CONFIG = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"virtual_key": "azure-dalle3", "override_params": {"model": "dall-e-3"}},
        {"virtual_key": "vertex-imagen", "override_params": {"model": "imagen-4.0-fast-generate-001"}},
        {"virtual_key": "bedrock-nova", "override_params": {"model": "amazon.nova-canvas-v1:0"}},
    ],
}
FLUX_CONFIG = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"virtual_key": "bfl-flux", "override_params": {"model": "flux-2-pro"}},
        {"virtual_key": "together-flux", "override_params": {"model": "black-forest-labs/FLUX.1-schnell"}},
        {"virtual_key": "open-ai-virtual-key", "override_params": {"model": "dall-e-3"}},
    ],
}
COOKBOOK_CONFIG = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"virtual_key": "stability-ai-virtualkey", "override_params": {"model": "stable-diffusion-v1-6"}},
        {"virtual_key": "open-ai-virtual-key", "override_params": {"model": "dall-e-3"}},
    ],
}


def step(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    with (
        StabilityEmulator.running_in_thread(api_key="sk-demo-stability") as stability,
        OpenAIEmulator.running_in_thread(api_key="sk-demo-openai") as openai_emulator,
        tempfile.TemporaryDirectory() as data_dir,
        AzureOpenAIEmulator.running_in_thread(api_key="demo-azure-key") as azure,
        VertexEmulator.running_in_thread(static_tokens=(DEMO_VERTEX_TOKEN,), project="imagegw-demo") as vertex,
        BedrockEmulator.running_in_thread(
            access_key_id=DEMO_AWS_KEY_ID, secret_access_key=DEMO_AWS_SECRET, region="us-east-1"
        ) as bedrock,
        BFLEmulator.running_in_thread(api_key="demo-bfl-key") as bfl,
        TogetherEmulator.running_in_thread(api_key="demo-together-key") as together,
        running_gateway(Path(data_dir), log_level="warning") as gateway,
        ImageGatewayClient(gateway.grpc_target, api_key=gateway.admin_key) as admin,
    ):
        step(f"gateway up: gRPC {gateway.grpc_target}, REST {gateway.rest_base_url}")
        step("1. store the provider keys as virtual keys")
        admin.create_virtual_key(
            "stability-ai-virtualkey", "stability-ai", "sk-demo-stability", base_url=stability.base_url
        )
        admin.create_virtual_key("open-ai-virtual-key", "openai", "sk-demo-openai", base_url=openai_emulator.base_url)
        for key in admin.iter_virtual_keys():
            print(f"   {key.id:28} {key.provider:14} {key.base_url}")

        step("2. call Stability through the OpenAI SDK with Portkey headers")
        client = OpenAI(
            api_key="REDUNDANT",
            base_url=gateway.rest_base_url,
            default_headers=createHeaders(
                provider="stabilityai", api_key=gateway.admin_key, virtual_key="stability-ai-virtualkey"
            ),
        )
        image = client.images.generate(
            model="stable-diffusion-v1-6",
            prompt="Kraken in the milkyway galaxy",
            n=1,
            size="1024x1024",
            response_format="b64_json",
        )
        png = base64.b64decode(image.data[0].b64_json or "")
        print(f"   got a {len(png)} byte image starting {png[:8]!r}")

        step("3. save the cookbook's fallback config")
        config = admin.create_config("sdxl-to-dalle", COOKBOOK_CONFIG)
        print(f"   config id {config.id}")

        step("4. Stability now fails with a 503; the same caller code is served by DALL-E 3")
        stability.inject(Fault.status(503))
        client = OpenAI(
            api_key="REDUNDANT",
            base_url=gateway.rest_base_url,
            default_headers=createHeaders(api_key=gateway.admin_key, config=config.id),
        )
        raw = client.images.with_raw_response.generate(
            model="stable-diffusion-v1-6",
            prompt="Harry Potter travelling the world using Portkey",
            n=1,
            size="1024x1024",
            response_format="b64_json",
        )
        for header in ("x-portkey-provider", "x-portkey-last-used-option-index", "x-portkey-trace-id"):
            print(f"   {header}: {raw.headers[header]}")

        step("5. the same over gRPC: imagegw generate --config ... (Stability resets the connection)")
        stability.inject(Fault.reset())
        out = Path(data_dir) / "image.png"
        common = ["--server", gateway.grpc_target, "--api-key", gateway.admin_key]
        imagegw(["generate", *common, "--config", config.id, "--prompt", "a kraken", "--out", str(out)])

        step("6. the request log records each attempt and the fallback")
        time.sleep(0.5)  # the log is written in batches, off the request path
        imagegw(["logs", "list", *common, "--limit", "5"])
        trace_id = raw.headers["x-portkey-trace-id"]
        (entry,) = admin.list_logs(trace_id=trace_id).logs
        imagegw(["logs", "get", *common, entry.id])

        step("7. across the clouds: Azure DALL-E 3 -> Vertex AI Imagen -> Bedrock Nova Canvas")
        admin.create_virtual_key(
            "azure-dalle3",
            "azure-openai",
            base_url=azure.base_url,
            credential_fields={"api_key": "demo-azure-key", "resource_name": "demo", "deployment_id": "dalle3"},
        )
        admin.create_virtual_key(
            "vertex-imagen",
            "vertex-ai",
            base_url=vertex.origin,
            credential_fields={
                "api_key": DEMO_VERTEX_TOKEN,
                "vertex_project_id": "imagegw-demo",
                "vertex_region": "us-central1",
            },
        )
        admin.create_virtual_key(
            "bedrock-nova",
            "bedrock",
            base_url=bedrock.origin,
            credential_fields={
                "aws_access_key_id": DEMO_AWS_KEY_ID,
                "aws_secret_access_key": DEMO_AWS_SECRET,
                "aws_region": "us-east-1",
            },
        )
        clouds = admin.create_config("azure-vertex-bedrock", CLOUD_CONFIG)
        print("   Azure's content filter refuses the prompt; Vertex answers 429 RESOURCE_EXHAUSTED")
        azure.inject(Fault.content_filter())
        vertex.inject(Fault.rate_limited())
        client = OpenAI(
            api_key="REDUNDANT",
            base_url=gateway.rest_base_url,
            default_headers=createHeaders(api_key=gateway.admin_key, config=clouds.id),
        )
        raw = client.images.with_raw_response.generate(prompt="a lighthouse at dusk", size="1024x1024")
        for header in ("x-portkey-provider", "x-portkey-last-used-option-index", "x-imagegw-cost-usd"):
            print(f"   {header}: {raw.headers[header]}")
        time.sleep(0.5)
        (entry,) = admin.list_logs(trace_id=raw.headers["x-portkey-trace-id"]).logs
        imagegw(["logs", "get", *common, entry.id])

        step("8. FLUX: Black Forest Labs (submit, then poll) -> Together -> DALL-E 3")
        admin.create_virtual_key("bfl-flux", "black-forest-labs", "demo-bfl-key", base_url=bfl.base_url)
        admin.create_virtual_key("together-flux", "together-ai", "demo-together-key", base_url=together.base_url)
        flux = admin.create_config("flux-bfl-together-dalle", FLUX_CONFIG)
        print("   BFL moderates the job after it was queued; Together answers 429")
        bfl.fail_next_jobs(JobFault.CONTENT_MODERATED)
        together.inject(Fault.rate_limited())
        imagegw(["generate", *common, "--config", flux.id, "--prompt", "a kraken", "--out", str(out)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
