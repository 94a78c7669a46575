"""The ``imagegw`` command line: the top-level parser, its global options and every command group.

Each group lives in its own module with a ``register`` function that adds its commands, their
flags and their handlers; a new group is one module and one line here.
"""

from __future__ import annotations

import argparse

from imagegateway_server.cli import (
    admin,
    analytics,
    api_keys,
    configs,
    edit,
    generate,
    health_check,
    logs,
    serve,
    targets,
    virtual_keys,
)
from imagegateway_server.cli.arguments import CommandParser, CommandTree, add_client_options

# In the order `imagegw --help` lists them.
_GROUPS = (serve, generate, edit, virtual_keys, configs, api_keys, logs, analytics, targets, admin, health_check)


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="imagegw", description="ImageGateway: serve the gateway or administer one.", allow_abbrev=False
    )
    add_client_options(parser, top=True)
    commands = CommandTree(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for group in _GROUPS:
        group.register(commands)
    return parser
