"""The ``imagegw`` command: run the gateway (``serve``) and administer one over gRPC.

Every command but ``serve``, ``configs validate`` and ``admin`` is a client of the gateway: one
or a few calls through the client library (``imagegateway.ImageGatewayClient``); none of them
touches generated code. Exit codes: 0 success, 1 the command ran and failed (an RPC error, an
invalid config, a file that cannot be read or written), 2 the command line is wrong. Errors are
one ``error: CODE: message`` line on stderr, never a traceback, and never contain a secret:
provider secrets are read only from stdin.

parser.py assembles the command line from one module per command group; output.py prints what
the gateway returns; follow.py follows the request log for ``logs tail``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import IO

from imagegateway import (
    DEFAULT_MAX_MESSAGE_BYTES,
    CredentialsFileError,
    ImageGatewayClient,
    ImageGatewayError,
    tls_credentials,
)
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import positive
from imagegateway_server.cli.errors import CommandError, usage_error
from imagegateway_server.cli.parser import build_parser

__all__ = ["build_parser", "main"]

# The flag each TLS file of the client library comes from, to name it in an error.
_TLS_FLAGS = {"ca_file": "--tls-ca", "cert_file": "--tls-cert", "key_file": "--tls-key"}


def _report(exc: ImageGatewayError, client: ImageGatewayClient, err: IO[str]) -> None:
    hint = ""
    if exc.code.name == "UNAUTHENTICATED" and not client.has_api_key:
        hint = " (set IMAGEGW_API_KEY or pass --api-key)"
    elif exc.code.name == "UNAVAILABLE" and exc.failure is None:
        hint = f" (is the gateway running at {client.target}?)"
    err.write(f"error: {exc.code.name}: {exc.message}{hint}\n")
    if exc.failure is not None:
        output.print_failure(exc.failure, err)


def _max_message_bytes(args: argparse.Namespace) -> int:
    """--max-message-bytes, else the gateway's own setting when it is in the environment, else the default."""
    if args.max_message_bytes is not None:
        return int(args.max_message_bytes)
    text = os.environ.get("IMAGEGW_MAX_MESSAGE_BYTES", "")
    if not text:
        return DEFAULT_MAX_MESSAGE_BYTES
    try:
        return positive(text)
    except (ValueError, argparse.ArgumentTypeError):
        raise usage_error(f"IMAGEGW_MAX_MESSAGE_BYTES must be a positive number of bytes, not {text!r}") from None


def _client(args: argparse.Namespace) -> ImageGatewayClient:
    """A client for the gateway the options name: over TLS when any --tls option is given."""
    limit = _max_message_bytes(args)
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return ImageGatewayClient(args.server, api_key=args.api_key, max_message_bytes=limit)
    if bool(args.tls_cert) != bool(args.tls_key):
        raise usage_error("--tls-cert and --tls-key must be given together")
    try:
        credentials = tls_credentials(args.tls_ca, args.tls_cert, args.tls_key)
    except CredentialsFileError as exc:  # a file that cannot be read or is not PEM
        raise CommandError("INVALID_ARGUMENT", f"{_TLS_FLAGS[exc.parameter]} {exc.path}: {exc.reason}") from None
    return ImageGatewayClient(args.server, api_key=args.api_key, max_message_bytes=limit, credentials=credentials)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if not args.needs_client:
            return int(args.run(args))
        with _client(args) as client:
            try:
                return int(args.run(args, client))
            except ImageGatewayError as exc:
                _report(exc, client, sys.stderr)
                return 1
    except CommandError as exc:
        sys.stderr.write(f"error: {exc.code}: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `imagegw logs list | head`
        sys.stdout = open(os.devnull, "w")  # the interpreter would fail flushing the closed pipe at exit
        return 141
