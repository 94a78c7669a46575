"""``imagegw edit`` and ``imagegw vary``: an edit of input images (under a mask), or variations of one
image, through the gateway; the results are written to files as ``imagegw generate`` writes them.

``imagegw edit --partial-images N`` streams the edit (StreamEditImage) and shows its progress and
partial images on stderr as ``imagegw generate`` does (``status_line``); without it the edit is one
call, chunked when its inputs are larger than one message may hold."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imagegateway import GenerateFields, ImageGatewayClient
from imagegateway.events import FinalImage
from imagegateway.types import Image, RoutingOutcome
from imagegateway.uploads import InputFile
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree, positive
from imagegateway_server.cli.errors import CommandError, file_error, usage_error
from imagegateway_server.cli.generate import _image_paths, _key_value
from imagegateway_server.cli.inputs import read_secret
from imagegateway_server.cli.status_line import StatusLine


def _read(path_text: str, flag: str) -> InputFile:
    path = Path(path_text)
    try:
        return path.name, path.read_bytes()
    except OSError as exc:
        raise file_error("read", f"{flag} {path}", exc) from None


def _fields(args: argparse.Namespace) -> GenerateFields:
    if args.provider_api_key_stdin and not args.provider:
        raise usage_error("--provider-api-key-stdin needs --provider")
    fields: GenerateFields = {"n": args.n, "metadata": dict(args.metadata or [])}
    for name in ("model", "size", "quality", "input_fidelity", "trace_id", "virtual_key", "provider"):
        if getattr(args, name, None):
            fields[name] = getattr(args, name)
    if args.config:
        fields["config_id"] = args.config
    if args.provider_api_key_stdin:
        fields["provider_api_key"] = read_secret("provider API key")
    return fields


def _write(args: argparse.Namespace, images: list[Image], outcome: RoutingOutcome) -> int:
    if not images:
        raise CommandError("INTERNAL", "the gateway answered without images")
    out = Path(args.out)
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


def _check_out(args: argparse.Namespace) -> None:
    if not Path(args.out).parent.is_dir():
        raise usage_error(f"--out: directory {Path(args.out).parent} does not exist")


def _edit(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _check_out(args)
    images = [_read(path, "--image") for path in args.image]
    mask = _read(args.mask, "--mask") if args.mask else None
    markup = _read(args.markup, "--markup") if args.markup else None
    fields = _fields(args)
    fields["prompt"] = args.prompt
    if args.partial_images is None:
        if args.stream_fallback:
            raise usage_error("--stream-fallback needs --partial-images")
        response = client.edit_image(images, mask=mask, markup=markup, **fields)
        return _write(args, list(response.images), response.outcome)
    edited: list[Image] = []
    outcome = RoutingOutcome()
    status = StatusLine(sys.stderr)
    try:
        for event in client.edit_events(
            images,
            mask=mask,
            markup=markup,
            partial_images=args.partial_images,
            stream_fallback=args.stream_fallback,
            **fields,
        ):
            if not isinstance(event, FinalImage):
                status.report(event)
                continue
            edited.append(event.image)
            if event.outcome is not None:
                outcome = event.outcome
    finally:
        status.close()
    return _write(args, edited, outcome)


def _vary(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _check_out(args)
    response = client.create_image_variation(_read(args.image, "--image"), **_fields(args))
    return _write(args, list(response.images), response.outcome)


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
        type=_key_value,
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
