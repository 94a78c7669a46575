"""What ``imagegw generate``, ``edit`` and ``vary`` share: the request fields every image command takes,
reading a stream of events under the status line, and writing the images to files with the outcome."""

from __future__ import annotations

import argparse
import mimetypes
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from imagegateway import GenerateFields
from imagegateway.events import FinalImage, GenerationEvent
from imagegateway.types import Image, RoutingOutcome
from imagegateway_server.cli import output
from imagegateway_server.cli.errors import CommandError, file_error, usage_error
from imagegateway_server.cli.inputs import read_secret
from imagegateway_server.cli.status_line import StatusLine


def key_value(text: str) -> tuple[str, str]:
    """argparse type of ``--metadata key=value``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, not {text!r}")
    return key, value


def check_out(args: argparse.Namespace) -> Path:
    """``--out``, refused before any call when its directory does not exist."""
    out = Path(args.out)
    if not out.parent.is_dir():
        raise usage_error(f"--out: directory {out.parent} does not exist")
    return out


def request_fields(args: argparse.Namespace, names: Sequence[str]) -> GenerateFields:
    """The routing and parameter fields the command's flags set (``names`` are the optional ones it has)."""
    if args.provider_api_key_stdin and not args.provider:
        raise usage_error("--provider-api-key-stdin needs --provider")
    fields: GenerateFields = {"n": args.n, "metadata": dict(args.metadata or [])}
    for name in (*names, "trace_id", "virtual_key", "provider"):
        if getattr(args, name, None):
            fields[name] = getattr(args, name)  # type: ignore[literal-required]
    if args.config:
        fields["config_id"] = args.config
    if args.provider_api_key_stdin:
        fields["provider_api_key"] = read_secret("provider API key")
    return fields


def read_events(events: Iterable[GenerationEvent]) -> tuple[list[Image], RoutingOutcome]:
    """The final images and the outcome of a streamed call; the rest is shown on stderr's status line."""
    images: list[Image] = []
    outcome = RoutingOutcome()
    status = StatusLine(sys.stderr)
    try:
        for event in events:
            if not isinstance(event, FinalImage):
                status.report(event)
                continue
            images.append(event.image)
            if event.outcome is not None:
                outcome = event.outcome
    finally:
        status.close()
    return images, outcome


def write_images(args: argparse.Namespace, images: list[Image], outcome: RoutingOutcome) -> int:
    """Writes the images to ``--out`` (numbered when several) and prints the outcome as ``--output`` asks."""
    if not images:
        raise CommandError("INTERNAL", "the gateway answered without images")
    files = list(zip(image_paths(Path(args.out), images), sorted(images, key=lambda i: i.index), strict=True))
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


def image_paths(out: Path, images: Sequence[Image]) -> list[Path]:
    """FILE for one image; FILE-1.ext, FILE-2.ext ... for several, keeping FILE's extension."""
    if len(images) == 1:
        return [out]
    stem = out.name.removesuffix(out.suffix)
    ordered = sorted(images, key=lambda i: i.index)
    return [
        out.with_name(f"{stem}-{n}{out.suffix or mimetypes.guess_extension(image.mime_type) or ''}")
        for n, image in enumerate(ordered, 1)
    ]
