"""``imagegw edit`` and ``imagegw vary``: an edit of input images (under a mask), or variations of one
image, through the gateway; the results are written to files as ``imagegw generate`` writes them.

``imagegw edit --partial-images N`` streams the edit (StreamEditImage) and shows its progress and
partial images on stderr as ``imagegw generate`` does (``status_line``); without it the edit is one
call. Either way, and for ``vary``, inputs over half the message limit (``--max-message-bytes``) go in
chunks: the client picks StreamEditImageUpload, EditImageUpload or CreateImageVariationUpload."""

from __future__ import annotations

import argparse
from pathlib import Path

from imagegateway import ImageGatewayClient
from imagegateway.uploads import InputFile
from imagegateway_server.cli.arguments import CommandTree, positive
from imagegateway_server.cli.errors import file_error, usage_error
from imagegateway_server.cli.image_output import check_out, key_value, read_events, request_fields, write_images

# The optional flags edits and variations send when given (vary has no --quality or --input-fidelity).
EDIT_FIELDS = ("model", "size", "quality", "input_fidelity")


def _read(path_text: str, flag: str) -> InputFile:
    path = Path(path_text)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise file_error("read", f"{flag} {path}", exc) from None


def _edit(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    check_out(args)
    images = [_read(path, "--image") for path in args.image]
    mask = _read(args.mask, "--mask") if args.mask else None
    markup = _read(args.markup, "--markup") if args.markup else None
    fields = request_fields(args, EDIT_FIELDS)
    fields["prompt"] = args.prompt
    if args.partial_images is None:
        if args.stream_fallback:
            raise usage_error("--stream-fallback needs --partial-images")
        response = client.edit_image(images, mask=mask, markup=markup, **fields)
        return write_images(args, list(response.images), response.outcome)
    events = client.edit_events(
        images,
        mask=mask,
        markup=markup,
        partial_images=args.partial_images,
        stream_fallback=args.stream_fallback,
        **fields,
    )
    return write_images(args, *read_events(events))


def _vary(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    check_out(args)
    response = client.create_image_variation(_read(args.image, "--image"), **request_fields(args, EDIT_FIELDS))
    return write_images(args, list(response.images), response.outcome)


def _common(command: argparse.ArgumentParser) -> None:
    route = command.add_mutually_exclusive_group()
    route.add_argument("--config", metavar="ID[@VERSION]", help="a saved routing config")
    route.add_argument("--virtual-key", metavar="ID", help="a stored virtual key")
    route.add_argument("--provider", metavar="NAME", help="a bare provider (openai, stability-ai, ...)")
    command.add_argument(
        "--provider-api-key-stdin", action="store_true", help="read the provider's API key from stdin (with --provider)"
    )
    command.add_argument("--model", help="the model in the provider's spelling (default: the provider's)")
    command.add_argument("--size", metavar="WxH", help="image size as WIDTHxHEIGHT (default: the provider's)")
    command.add_argument("-n", type=positive, default=1, help="number of images (default 1)")
    command.add_argument("--trace-id", help="the trace id to record in the request log (default: generated)")
    command.add_argument(
        "--metadata",
        type=key_value,
        action="extend",
        nargs="+",
        metavar="KEY=VALUE",
        help="caller metadata recorded in the request log",
    )
    command.add_argument(
        "--out", required=True, metavar="FILE", help="output file; several images go to FILE-1.ext, FILE-2.ext, ..."
    )


def register(commands: CommandTree) -> None:
    edit = commands.command("edit", "edit images (under an optional mask) and write the results to files", _edit)
    edit.add_argument(
        "--image", required=True, action="append", metavar="FILE", help="an image to edit (repeat for several)"
    )
    marks = edit.add_mutually_exclusive_group()
    marks.add_argument("--mask", metavar="FILE", help="a PNG the size of the first image; alpha 0 marks where to edit")
    marks.add_argument(
        "--markup",
        metavar="FILE",
        help="a transparent PNG the size of the first image with marks drawn where to edit (gpt-image-2.5 and later)",
    )
    edit.add_argument("--prompt", required=True, help="what the edit should do")
    edit.add_argument("--quality", help="OpenAI's quality: low, medium, high or auto")
    edit.add_argument("--input-fidelity", choices=("high", "low"), help="how closely gpt-image keeps the inputs")
    edit.add_argument(
        "--partial-images",
        type=int,
        choices=range(4),
        metavar="0-3",
        help="stream the edit: ask a model that streams edits (gpt-image) for partial images first; "
        "the progress and their arrival are shown",
    )
    edit.add_argument(
        "--stream-fallback",
        choices=("skip", "complete"),
        help="with --partial-images, what a target that cannot stream does: skip it (default) "
        "or let it answer without partial images",
    )
    _common(edit)
    vary = commands.command("vary", "make variations of one image and write them to files", _vary)
    vary.add_argument("--image", required=True, metavar="FILE", help="the image to vary (dall-e-2: a square PNG)")
    _common(vary)
