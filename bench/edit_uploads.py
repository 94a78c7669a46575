"""Memory of concurrent edit uploads: 32 edits of 16 x 2 MiB images each through the REST shim at once.

    PYTHONPATH=server:clients python bench/edit_uploads.py [--concurrency 32] [--images 16] [--image-mib 2]
        [--transport rest|grpc]

With ``--transport grpc`` the same edits go as chunked EditImageUpload calls from the async client
(which announces each upload's size), against the same budget.

Starts the OpenAI emulator and an ``imagegw serve`` as their own processes, sends the edits
(multipart, as OpenAI's SDK sends them) all at once, samples the gateway's resident memory while
they run and reports its peak (VmHWM) against the target of 600 MB. The upload memory budget
(IMAGEGW_UPLOAD_MEMORY_BYTES, default 256 MiB) is what keeps the peak bounded: uploads beyond it
wait, unread, in their sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

from imagegateway import AsyncImageGatewayClient

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import ADMIN_KEY, EMULATOR_KEY, start_emulator, start_gateway

TARGET_RSS_MB = 600.0
MIB = 1024 * 1024


def noise_png(nbytes: int) -> bytes:
    """A PNG of about ``nbytes``: random pixels, stored uncompressed (3 bytes a pixel)."""
    side = int((nbytes / 3) ** 0.5)
    pixels = os.urandom(side * side * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(buffer, "PNG", compress_level=0)
    return buffer.getvalue()


def multipart(images: list[bytes], boundary: str) -> bytes:
    parts = []
    for name, value in (("model", "gpt-image-1.5"), ("prompt", "make it brighter"), ("quality", "low")):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for index, data in enumerate(images):
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image[]"; filename="{index}.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        )
        parts += (head.encode(), data, b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


async def run(args: argparse.Namespace) -> dict[str, float]:
    images = [noise_png(int(args.image_mib * MIB)) for _ in range(args.images)]
    boundary = "imagegw-bench-boundary"
    body = multipart(images, boundary)
    with tempfile.TemporaryDirectory(prefix="imagegw-edits-bench-") as temp:
        workdir = Path(temp)
        emulator = start_emulator(workdir)
        os.environ["IMAGEGW_MAX_BODY_BYTES"] = str(len(body) + MIB)
        gateway = start_gateway(workdir)
        try:
            headers = {
                "x-portkey-api-key": ADMIN_KEY,
                "x-portkey-provider": "openai",
                "authorization": f"Bearer {EMULATOR_KEY}",
                "x-portkey-custom-host": emulator.info["base_url"],
                "content-type": f"multipart/form-data; boundary={boundary}",
            }
            url = f"{gateway.info['rest_base_url']}/images/edits"
            limits = httpx.Limits(max_connections=args.concurrency)
            grpc_client = AsyncImageGatewayClient(gateway.info["grpc_target"], api_key=ADMIN_KEY)
            target = {"provider": "openai", "api_key": EMULATOR_KEY, "custom_host": emulator.info["base_url"]}

            async def edit() -> int:
                if args.transport == "rest":
                    return (await client.post(url, headers=headers, content=body)).status_code
                await grpc_client.edit_image(
                    images, prompt="make it brighter", model="gpt-image-1.5", quality="low", config=target, chunked=True
                )
                return 200

            async with httpx.AsyncClient(timeout=600.0, limits=limits) as client, grpc_client:
                if await edit() != 200:  # one first, to warm the process up
                    raise SystemExit("the warm-up edit failed")
                rss_before = gateway.status_kb("VmRSS")
                gateway.reset_peak_rss()
                samples: list[int] = []
                done = asyncio.Event()

                async def sample() -> None:
                    while not done.is_set():
                        samples.append(gateway.status_kb("VmRSS"))
                        await asyncio.sleep(0.05)

                sampler = asyncio.create_task(sample())
                started = time.monotonic()
                answers = await asyncio.gather(*(edit() for _ in range(args.concurrency)))
                elapsed = time.monotonic() - started
                done.set()
                await sampler
            failed = [status for status in answers if status != 200]
            if failed:
                raise SystemExit(f"{len(failed)} edits failed: {failed[:5]}")
            peak_kb = max(gateway.status_kb("VmHWM"), *samples)
            return {
                "body_mib": len(body) / MIB,
                "rss_before_mb": rss_before / 1024,
                "rss_peak_mb": peak_kb / 1024,
                "seconds": elapsed,
            }
        finally:
            gateway.stop()
            emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--image-mib", type=float, default=2.0)
    parser.add_argument("--transport", choices=("rest", "grpc"), default="rest")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    verdict = "within" if figures["rss_peak_mb"] < TARGET_RSS_MB else "OVER"
    print(
        f"{args.concurrency} concurrent {args.transport} edits of {args.images} x {args.image_mib:g} MiB images "
        f"({figures['body_mib']:.1f} MiB each) in {figures['seconds']:.1f} s: gateway RSS "
        f"{figures['rss_before_mb']:.0f} MB before, peak {figures['rss_peak_mb']:.0f} MB "
        f"({verdict} the {TARGET_RSS_MB:.0f} MB target)"
    )


if __name__ == "__main__":
    main()
