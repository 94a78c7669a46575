"""``imagegw generate``: one image request through the gateway, the images written to files.

While it waits, its progress (attempts, queue places, polls, fallbacks, partial images) shows on
stderr: one live status line on a terminal, plain lines otherwise (``status_line``); stdout keeps
the outcome alone.
"""

from __future__ import annotations

import argparse

from imagegateway import ImageGatewayClient
from imagegateway_server.cli.arguments import CommandTree, positive
from imagegateway_server.cli.image_output import check_out, key_value, read_events, request_fields, write_images


def _generate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    check_out(args)
    fields = request_fields(args, ("model", "size", "quality", "style"))
    fields["prompt"] = args.prompt
    # Always the streaming RPC: one image per message never meets the message-size cap,
    # whatever n and size are, and n=1 takes the same path. The last message has the outcome.
    events = client.generate_events(partial_images=args.partial_images, stream_fallback=args.stream_fallback, **fields)
    return write_images(args, *read_events(events))


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
        type=key_value,
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
