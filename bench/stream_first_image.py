"""Time to the first partial image of a streamed gpt-image request: straight to the emulator, through
the REST shim (OpenAI's server-sent events) and through gRPC StreamGenerateImage.

Run by ``bench/run.py`` as its ``stream`` phase (``bench/run.py --phases stream`` alone). The
emulator answers with its head at once, then streams two partial images and the final image, the
first event 20 ms after the head and each next one 20 ms after the one before (the ``stream_gap``
fault), as a provider does that works on the image before its first partial image. So the first
partial image arrives well before the answer ends (a gateway that buffered the stream would show the
gap in its time to first partial image), and what either path does with the head while the provider
still works is not counted. Each image is a random-noise PNG of about 164 kB (~214 KiB of base64 in
each event, a realistic partial image), so copies and re-encodings of the image on
the way show in the figures. Each timed call reads up to the end of the first partial image event
(gRPC: its message), then drains the rest untimed. The target: within 1 ms of direct at the median.

Given the floors (bench/stream_floor.py: the gateway's stack passing the bytes through with no gateway
work, and the same stack doing only what every gateway must), the same rounds time them too, over REST
and gRPC, so the report shows what of the added time the stack alone, and the least work on it, take
on this machine.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import grpc
import httpx
import orjson
from load import MAX_MESSAGE, PROMPT, Targets, percentile
from stream_floor import ESSENTIAL_METHOD, FLOOR_KEY_HEADER, GRPC_METHOD

from imagegateway import ImageGatewayClient, PartialImage
from tests.emulators.images import noise_png

STREAM_MODEL = "gpt-image-1.5"
PARTIAL_IMAGES = 2
EVENT_GAP_MS = 20.0
IMAGE_BYTES = 150_000  # the emulator's image_bytes: PNGs of ~164 kB, ~214 KiB of base64 in each event
TARGET_ADDED_P50_MS = 1.0
_PARTIAL = b"event: image_generation.partial_image\n"


def emulator_fault() -> dict[str, Any]:
    """The emulator's fault (control-API form) for every request of the phase."""
    return {"kind": "stream_gap", "ms": EVENT_GAP_MS, "first_ms": EVENT_GAP_MS, "n": IMAGE_BYTES}


def _body() -> dict[str, Any]:
    return {"prompt": PROMPT, "model": STREAM_MODEL, "stream": True, "partial_images": PARTIAL_IMAGES}


def _first_partial_over_http(client: httpx.Client, url: str, headers: dict[str, str]) -> float:
    """Seconds until the first partial image event has fully arrived; the rest is drained untimed."""
    started = time.perf_counter()
    with client.stream("POST", url, json=_body(), headers=headers) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
        seen = b""
        chunks = response.iter_raw()
        for chunk in chunks:
            seen += chunk
            start = seen.find(_PARTIAL)
            if start >= 0 and seen.find(b"\n\n", start) >= 0:
                elapsed = time.perf_counter() - started
                break
        else:
            raise RuntimeError("the stream ended without a partial image")
        for _ in chunks:
            pass
    return elapsed


def _first_partial_over_grpc(client: ImageGatewayClient, targets: Targets) -> float:
    started = time.perf_counter()
    elapsed = None
    for event in client.generate_events(
        prompt=PROMPT, model=STREAM_MODEL, virtual_key=targets.virtual_key, partial_images=PARTIAL_IMAGES
    ):
        if elapsed is None and isinstance(event, PartialImage):
            elapsed = time.perf_counter() - started
    if elapsed is None:
        raise RuntimeError("the gRPC stream had no partial image")
    return elapsed


def _first_partial_over_raw_grpc(stream: grpc.UnaryStreamMultiCallable, authorization: str) -> float:
    """The floor's gRPC path: raw messages of the upstream's bytes, read until the first partial image
    event is whole; the rest drained untimed."""
    started = time.perf_counter()
    elapsed = None
    seen = b""
    for message in stream(orjson.dumps(_body()), metadata=(("authorization", authorization),)):
        if elapsed is None:
            seen += message
            start = seen.find(_PARTIAL)
            if start >= 0 and seen.find(b"\n\n", start) >= 0:
                elapsed = time.perf_counter() - started
    if elapsed is None:
        raise RuntimeError("the floor's gRPC stream had no partial image")
    return elapsed


def _first_message_over_raw_grpc(stream: grpc.UnaryStreamMultiCallable, key: str) -> float:
    """The essential floor's gRPC path: its first message is the first partial image; the rest drained
    untimed."""
    started = time.perf_counter()
    elapsed = None
    for _ in stream(orjson.dumps(_body()), metadata=((FLOOR_KEY_HEADER, key),)):
        if elapsed is None:
            elapsed = time.perf_counter() - started
    if elapsed is None:
        raise RuntimeError("the essential floor's gRPC stream had no message")
    return elapsed


def measure(targets: Targets, rounds: int, warmup: int, floor: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows of the report: per path, the p50/p90 time to first partial image and what it adds to direct.
    ``floor``: the stream floor's ``info`` (``procs.start_stream_floor``), timed as four more paths."""
    direct_headers = {"authorization": f"Bearer {targets.emulator_key}", "accept": "text/event-stream"}
    samples: dict[str, list[float]] = {"direct": [], "rest": [], "grpc": []}
    if floor is not None:
        samples.update({"rest floor": [], "grpc floor": [], "rest essential floor": [], "grpc essential floor": []})
    with contextlib.ExitStack() as stack:
        http = stack.enter_context(httpx.Client(timeout=60.0))
        grpc_client = stack.enter_context(ImageGatewayClient(targets.grpc_target, api_key=targets.gateway_key))
        if floor is not None:
            options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
            floor_channel = stack.enter_context(grpc.insecure_channel(floor["grpc_target"], options))
            floor_stream = floor_channel.unary_stream(GRPC_METHOD)
            essential_stream = floor_channel.unary_stream(ESSENTIAL_METHOD)
            essential_headers = {FLOOR_KEY_HEADER: floor["key"], "accept": "text/event-stream"}
        for index in range(warmup + rounds):
            # Interleaved, so a slow patch of the machine hits every path alike.
            timings = {
                "direct": _first_partial_over_http(http, targets.direct_url, direct_headers),
                "rest": _first_partial_over_http(http, targets.rest_url, targets.rest_headers()),
                "grpc": _first_partial_over_grpc(grpc_client, targets),
            }
            if floor is not None:  # its streams and headers were set up above
                timings["rest floor"] = _first_partial_over_http(http, floor["rest_url"], direct_headers)
                timings["grpc floor"] = _first_partial_over_raw_grpc(floor_stream, direct_headers["authorization"])
                timings["rest essential floor"] = _first_partial_over_http(
                    http, floor["essential_rest_url"], essential_headers
                )
                timings["grpc essential floor"] = _first_message_over_raw_grpc(essential_stream, floor["key"])
            if index >= warmup:
                for path, seconds in timings.items():
                    samples[path].append(seconds)
    direct_p50 = percentile(samples["direct"], 50)
    rows = []
    for path, seconds in samples.items():
        row: dict[str, Any] = {
            "path": path,
            "requests": len(seconds),
            "p50_ms": percentile(seconds, 50) * 1000,
            "p90_ms": percentile(seconds, 90) * 1000,
            "mean_ms": statistics.fmean(seconds) * 1000,
        }
        if path != "direct":
            row["added_p50_ms"] = row["p50_ms"] - direct_p50 * 1000
            # Each round times every path back to back, so the round's own difference leaves out
            # the machine's drift between rounds (a VM's speed wanders by a millisecond over a minute);
            # its median is the figure judged, the difference of the medians is shown beside it.
            paired = [through - direct for through, direct in zip(seconds, samples["direct"], strict=True)]
            row["added_paired_p50_ms"] = percentile(paired, 50) * 1000
        rows.append(row)
    return rows


def report_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The RESULTS.md section."""
    png_bytes = len(noise_png(1024, 1024, IMAGE_BYTES))  # what the emulator sends for the default size
    lines = [
        "## Time to first partial image (streamed gpt-image)",
        "",
        f"`{STREAM_MODEL}`, `partial_images={PARTIAL_IMAGES}`, the emulator {EVENT_GAP_MS:g} ms between events "
        "(and between its head and the first), "
        f"random-noise PNG images of {png_bytes / 1000:.0f} kB ({png_bytes * 4 / 3 / 1024:.0f} KiB of base64 per "
        "event); "
        f"target: the gateway adds at most {TARGET_ADDED_P50_MS:g} ms at the median.",
        "",
        "*Added, paired* is the median over the rounds of each round's own difference (path minus direct,"
        " timed back to back), which the machine's drift between rounds does not move; it is the figure "
        "judged. *Added, p50s* is the difference of the two medians. The *floor* rows are the gateway's stack "
        "alone (`bench/stream_floor.py`: uvicorn, grpc.aio and aiohttp passing the bytes through, with no key, "
        "routing, parsing, checks or log), timed in the same rounds: what of the added time no gateway code "
        "can remove on this machine. The *essential floor* rows are the same stack doing only what no gateway "
        "can skip, with the gateway's own leanest parts: check the key, parse the body and build the "
        "upstream's, split the events, parse each with its base64 checked, frame it anew; no routing, "
        "breakers, limits, cache, metrics or log.",
        "",
        "| path | requests | p50 | p90 | added, paired (median) | added, p50s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        paired = f"{row['added_paired_p50_ms']:+.2f} ms" if "added_paired_p50_ms" in row else ""
        if paired and row["path"].endswith("floor"):
            paired += " (floor)"
        elif paired:
            paired += " ok" if row["added_paired_p50_ms"] <= TARGET_ADDED_P50_MS else " MISSED"
        of_medians = f"{row['added_p50_ms']:+.2f} ms" if "added_p50_ms" in row else ""
        lines.append(
            f"| {row['path']} | {row['requests']} | {row['p50_ms']:.2f} ms | {row['p90_ms']:.2f} ms | {paired} "
            f"| {of_medians} |"
        )
    return lines
