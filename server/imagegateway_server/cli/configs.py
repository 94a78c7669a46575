"""``imagegw configs``: saved routing configs (Portkey JSON), and checking a config file offline.

A config file is parsed before anything is sent, so a mistake is reported with its field path
(``targets[1].strategy.mode: unknown field``) without a round trip. ``_load_config`` is the one
place the CLI uses the gateway's own config code rather than the client library.
"""

from __future__ import annotations

import argparse
import sys

from imagegateway import ImageGatewayClient
from imagegateway.types import Config, RoutingConfig
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree, positive
from imagegateway_server.cli.errors import CommandError, usage_error
from imagegateway_server.cli.inputs import read_text
from imagegateway_server.settings import Settings


def _load_config(path: str, *, validate: bool = False) -> RoutingConfig:
    """A routing config from a Portkey JSON file (``-`` = stdin), checked against the proto schema
    by the same parser the server uses, so errors name the field path before anything is sent.

    With ``validate``, also the gateway's own checks (no server needed), upstream hosts against
    IMAGEGW_ALLOWED_UPSTREAM_HOSTS as the server on this machine would.
    """
    # Imported here: the gateway's config code is loaded only by the commands that read a config.
    from imagegateway_server.api.config_json import parse_config_message
    from imagegateway_server.domain.errors import InvalidArgument

    text = read_text(path)
    try:
        config = parse_config_message(text, param=path)
    except InvalidArgument as exc:
        raise CommandError("INVALID_ARGUMENT", exc.message) from None
    if not validate:
        return config
    from imagegateway_server.api.config_proto import config_from_proto
    from imagegateway_server.routing.validation import validate_config

    try:
        settings = Settings.load()
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    try:
        validate_config(
            config_from_proto(config),
            settings.allowed_upstream_hosts,
            max_depth=settings.max_config_depth,
            max_targets=settings.max_targets,
        )
    except InvalidArgument as exc:
        raise CommandError("INVALID_ARGUMENT", exc.message) from None
    except ValueError as exc:  # a malformed IMAGEGW_ALLOWED_UPSTREAM_HOSTS entry
        raise usage_error(str(exc)) from None
    return config


def _create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.create_config(args.name, _load_config(args.file)))
    return 0


def _get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.get_config(args.id, args.version))
    return 0


def _list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit_list(args.output, list(client.iter_configs()), Config)
    return 0


def _update(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.update_config(args.id, _load_config(args.file), name=args.name or ""))
    return 0


def _delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_config(args.id)
    output.emit_deleted(args.output, "config", args.id)
    return 0


def _validate(args: argparse.Namespace) -> int:
    _load_config(args.file, validate=True)
    if args.output == "json":
        output.print_json({"valid": True}, sys.stdout)
    else:
        sys.stdout.write(f"{args.file}: valid\n")
    return 0


_FILE_HELP = "Portkey config JSON; - reads stdin"


def register(commands: CommandTree) -> None:
    cfg = commands.group("configs", "saved routing configs (Portkey JSON)")
    sub = cfg.command("create", "save a routing config", _create)
    sub.add_argument(
        "--name",
        required=True,
        help="a human-readable name, unique among configs (a taken name is ALREADY_EXISTS: change "
        "that config with 'configs update'); the gateway assigns the id",
    )
    sub.add_argument("--file", required=True, metavar="FILE", help=_FILE_HELP)
    sub = cfg.command("get", "show a config (latest version unless one is named)", _get)
    sub.add_argument("id", metavar="ID[@VERSION]", help="the config's id, optionally with @VERSION")
    sub.add_argument("--version", type=positive, default=0, help="this version (default: the latest)")
    cfg.command("list", "list configs (latest versions)", _list)
    sub = cfg.command("update", "save a new version of a config", _update)
    sub.add_argument("id", help="the config's id")
    sub.add_argument("--file", required=True, metavar="FILE", help=_FILE_HELP)
    sub.add_argument("--name", help="a new name, unique among configs (default: keep the current one)")
    cfg.command("delete", "delete a config and all its versions", _delete).add_argument("id", help="the config's id")
    sub = cfg.local_command(
        "validate", "check a config file offline (no server needed)", _validate, client_options=True
    )
    sub.add_argument("--file", required=True, metavar="FILE", help=_FILE_HELP)
