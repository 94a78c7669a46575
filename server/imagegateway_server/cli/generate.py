"""``imagegw generate``: one image request through the gateway, the images written to files.

While it waits, its progress (attempts, queue places, polls, fallbacks, partial images) shows on
stderr: one live status line on a terminal, plain lines otherwise (``status_line``); stdout keeps
the outcome alone.
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
from collections.abc import Sequence
from pathlib import Path

from imagegateway import GenerateFields, ImageGatewayClient
from imagegateway.events import FinalImage
from imagegateway.types import Image, RoutingOutcome
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree, positive
from imagegateway_server.cli.errors import CommandError, file_error, usage_error
from imagegateway_server.cli.inputs import read_secret
from imagegateway_server.cli.status_line import StatusLine


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, not {text!r}")
    return key, value


def _generate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    out = Path(args.out)
    if not out.parent.is_dir():
        raise usage_error(f"--out: directory {out.parent} does not exist")
    if args.provider_api_key_stdin and not args.provider:
        raise usage_error("--provider-api-key-stdin needs --provider")
    fields: GenerateFields = {"prompt": args.prompt, "n": args.n, "metadata": dict(args.metadata or [])}
    for name in ("model", "size", "quality", "style", "trace_id", "virtual_key", "provider"):
        if getattr(args, name):
            fields[name] = getattr(args, name)
    if args.config:
        fields["config_id"] = args.config
    if args.provider_api_key_stdin:
        fields["provider_api_key"] = read_secret("provider API key")
    # Always the streaming RPC: one image per message never meets the message-size cap,
    # whatever n and size are, and n=1 takes the same path. The last message has the outcome.
    images: list[Image] = []
    outcome = RoutingOutcome()
    status = StatusLine(sys.stderr)
    try:
        for event in client.generate_events(
            partial_images=args.partial_images, stream_fallback=args.stream_fallback, **fields
        ):
            if not isinstance(event, FinalImage):
                status.report(event)
                continue
            images.append(event.image)
            if event.outcome is not None:
                outcome = event.outcome
    finally:
        status.close()
    if not images:
        raise CommandError("INTERNAL", "the gateway answered without images")
    files = list(zip(_image_paths(out, images), sorted(images, key=lambda i: i.index), strict=True))
    for path, image in files:
        try:
            path.write_bytes(image.data)
        except OSError as exc:
            raise file_error("write", str(path), exc) from None
    if args.output == "json":
        output.print_json({**output.to_json(outcome), "files": [str(p) for p, _ in files]}, sys.stdout)
    else:
        output.print_outcome(outcome, files, sys.stdout)
    return 0


def _image_paths(out: Path, images: Sequence[Image]) -> list[Path]:
    """FILE for one image; FILE-1.ext, FILE-2.ext ... for several, keeping FILE's extension."""
    if len(images) == 1:
        return [out]
    stem = out.name.removesuffix(out.suffix)
    ordered = sorted(images, key=lambda i: i.index)
    return [
        out.with_name(f"{stem}-{n}{out.suffix or mimetypes.guess_extension(image.mime_type) or ''}")
        for n, image in enumerate(ordered, 1)
    ]


def register(commands: CommandTree) -> None:
    gen = commands.command("generate", "generate images and write them to files", _generate)
    gen.add_argument("--prompt", required=True, help="what the image should show")
    route = gen.add_mutually_exclusive_group()
    route.add_argument("--config", metavar="ID[@VERSION]", help="a saved routing config")
    route.add_argument("--virtual-key", metavar="ID", help="a stored virtual key")
    route.add_argument("--provider", metavar="NAME", help="a bare provider (openai, stability-ai, ...)")
    gen.add_argument(
        "--provider-api-key-stdin",
        action="store_true",
        help="read the provider's API key from stdin (with --provider)",
    )
    gen.add_argument(
        "--model",
        help="the model in the provider's spelling (default: the provider's; "
        "a config's override_params may replace it)",
    )
    gen.add_argument(
        "--size", metavar="WxH", help="image size as WIDTHxHEIGHT, e.g. 1024x1024, or auto (default: the provider's)"
    )
    gen.add_argument("-n", type=positive, default=1, help="number of images (default 1)")
    gen.add_argument("--quality", help="OpenAI's quality: standard, hd, low, medium, high or auto")
    gen.add_argument("--style", help="OpenAI's style for dall-e-3: vivid or natural")
    gen.add_argument("--trace-id", help="the trace id to record in the request log (default: generated)")
    gen.add_argument(
        "--partial-images",
        type=int,
        choices=range(4),
        metavar="0-3",
        help="ask a model that streams them (gpt-image) for partial images first; their arrival is shown",
    )
    gen.add_argument(
        "--stream-fallback",
        choices=("skip", "complete"),
        help="with --partial-images, what a target that cannot stream does: skip it (default) "
        "or let it answer without partial images",
    )
    gen.add_argument(
        "--metadata",
        type=_key_value,
        action="extend",
        nargs="+",
        metavar="KEY=VALUE",
        help="caller metadata recorded in the request log (and matched by conditional routing)",
    )
    gen.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file; several images go to FILE-1.ext, FILE-2.ext, ...",
    )
