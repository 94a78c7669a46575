"""``imagegw api-keys``: the gateway's own API keys (admin or generate scope).

A key's plaintext is printed once, when it is created or rotated; the gateway stores only its hash.
"""

from __future__ import annotations

import argparse
import sys

from imagegateway import ImageGatewayClient
from imagegateway.types import ApiKey
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree, non_negative
from imagegateway_server.cli.errors import CommandError
from imagegateway_server.cli.limits import add_limit_flags, limits_from


def _grace_seconds(text: str) -> int:
    # Only what the int32 field can carry is checked here; the server owns the 7-day cap and says so.
    value = non_negative(text)
    if value > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"must be at most 604800 (7 days), not {value}")
    return value


def _create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    created = client.create_api_key(args.name, args.scope, limits=limits_from(args))
    output.emit(args.output, created.api_key, {"key": created.key})
    sys.stderr.write("Store the key now: it is shown only this once.\n")
    return 0


def _list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit_list(args.output, list(client.iter_api_keys()), ApiKey)
    return 0


def _get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    # There is no GetApiKey RPC: the listing (admin only, like every key command) holds every key.
    for key in client.iter_api_keys():
        if key.id == args.id:
            output.emit(args.output, key)
            return 0
    raise CommandError("NOT_FOUND", f"API key {args.id!r} not found")


def _revoke(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.revoke_api_key(args.id))
    return 0


def _rotate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    rotated = client.rotate_api_key(args.id, previous_key_valid_seconds=args.previous_valid_seconds)
    output.emit(args.output, rotated.api_key, {"key": rotated.key})
    sys.stderr.write("Store the new key now: it is shown only this once.\n")
    return 0


def _delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_api_key(args.id)
    output.emit_deleted(args.output, "API key", args.id)
    return 0


def register(commands: CommandTree) -> None:
    keys = commands.group("api-keys", "gateway API keys")
    sub = keys.command("create", "create a gateway API key (shown once)", _create)
    sub.add_argument("--name", required=True, help="a human-readable name")
    sub.add_argument(
        "--scope",
        choices=("admin", "generate"),
        default="generate",
        help="admin: every call; generate: image calls and the logs of its own requests (default generate)",
    )
    add_limit_flags(sub)
    keys.command("list", "list gateway API keys", _list)
    keys.command("get", "show a gateway API key", _get).add_argument("id", help="the key's id")
    keys.command("revoke", "revoke a gateway API key", _revoke).add_argument("id", help="the key's id")
    sub = keys.command("rotate", "give a gateway API key a new secret, same id (shown once)", _rotate)
    sub.add_argument("id", help="the key's id")
    sub.add_argument(
        "--previous-valid-seconds",
        type=_grace_seconds,
        default=0,
        metavar="N",
        help="how long the old secret keeps working (default 0: stops at once; at most 604800)",
    )
    keys.command("delete", "delete a gateway API key (its request logs stay)", _delete).add_argument(
        "id", help="the key's id"
    )
