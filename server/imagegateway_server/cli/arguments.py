"""Building blocks of the ``imagegw`` command line, shared by every command group.

``CommandParser`` reports mistakes as ``error: INVALID_ARGUMENT: ...`` with exit code 2;
``CommandTree`` adds commands and records each one's handler; ``add_client_options`` adds the
options of commands that call a gateway; ``positive`` and ``non_negative`` are argument types
several groups use.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from imagegateway import ImageGatewayClient

# A command that calls the gateway gets a connected client; a local one (serve, offline checks) does not.
ClientHandler = Callable[[argparse.Namespace, ImageGatewayClient], int]
LocalHandler = Callable[[argparse.Namespace], int]


class CommandParser(argparse.ArgumentParser):
    """Reports command-line mistakes in the same ``error: CODE: message`` form, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: INVALID_ARGUMENT: {message}\n")


def add_client_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """Where the gateway is, how to authenticate, TLS and the output format."""
    # Accepted before and after the subcommand; a leaf's absent option must not reset the top's.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--server",
        default=default,
        metavar="HOST:PORT",
        help="gateway gRPC address (env IMAGEGW_SERVER; default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--api-key",
        default=default,
        metavar="KEY",
        help="gateway API key (env IMAGEGW_API_KEY, preferred: command lines are visible to other users)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table" if top else argparse.SUPPRESS,
        help="output format (default table)",
    )
    parser.add_argument(
        "--tls-ca",
        default=default,
        metavar="FILE",
        help="connect over TLS, trusting this PEM CA bundle (with --tls: the system roots)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help="connect over TLS, trusting the system roots",
    )
    parser.add_argument(
        "--tls-cert", default=default, metavar="FILE", help="PEM client certificate for mutual TLS (with --tls-key)"
    )
    parser.add_argument("--tls-key", default=default, metavar="FILE", help="PEM key of --tls-cert")
    parser.add_argument(
        "--max-message-bytes",
        type=positive,
        default=default,
        metavar="BYTES",
        help="the gateway's message limit (env IMAGEGW_MAX_MESSAGE_BYTES, as the gateway reads it; default "
        "64 MiB): edits and variations whose images are over half of it are uploaded in chunks",
    )


class CommandTree:
    """The commands under one parser: each records its handler and whether it needs a client."""

    def __init__(self, subparsers: argparse._SubParsersAction[CommandParser]) -> None:
        self._subparsers = subparsers

    def _add(self, name: str, help: str) -> CommandParser:
        return self._subparsers.add_parser(name, help=help, description=help, allow_abbrev=False)

    def command(self, name: str, help: str, run: ClientHandler) -> argparse.ArgumentParser:
        """A command that calls the gateway; it accepts the client options after its name too."""
        sub = self._add(name, help)
        add_client_options(sub, top=False)
        sub.set_defaults(run=run, needs_client=True)
        return sub

    def local_command(
        self, name: str, help: str, run: LocalHandler, *, client_options: bool
    ) -> argparse.ArgumentParser:
        """A command that runs in this process; ``client_options`` accepts (and ignores all but ``-o``
        of) the client options, so a command line that works for its siblings works for it."""
        sub = self._add(name, help)
        if client_options:
            add_client_options(sub, top=False)
        sub.set_defaults(run=run, needs_client=False)
        return sub

    def group(self, name: str, help: str) -> CommandTree:
        """A command group (``imagegw NAME ACTION``)."""
        sub = self._add(name, help)
        return CommandTree(sub.add_subparsers(dest="action", required=True, metavar="ACTION"))


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value
