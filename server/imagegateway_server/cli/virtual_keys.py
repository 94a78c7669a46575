"""``imagegw virtual-keys``: provider credentials stored (encrypted) in the gateway.

The secret is read from stdin only and is never shown again: get and list return the key
without it.
"""

from __future__ import annotations

import argparse

from imagegateway import ImageGatewayClient
from imagegateway.types import VirtualKey
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree
from imagegateway_server.cli.inputs import read_secret
from imagegateway_server.cli.limits import add_limit_flags, limits_from

_BASE_URL_HELP = (
    "send this key's requests here instead of the provider's public API: for OpenAI the URL includes "
    "/v1 (http://HOST:PORT/v1), for Stability it does not (http://HOST:PORT); a host other than the "
    "provider's public one must be on IMAGEGW_ALLOWED_UPSTREAM_HOSTS where the gateway runs (read at start)"
)


def _create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    secret = read_secret("provider API key")
    key = client.create_virtual_key(args.name, args.provider, secret, base_url=args.base_url, virtual_key_id=args.id,
                                    limits=limits_from(args))
    output.emit(args.output, key)
    return 0


def _get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.get_virtual_key(args.id))
    return 0


def _list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit_list(args.output, list(client.iter_virtual_keys()), VirtualKey)
    return 0


def _rotate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.rotate_virtual_key(args.id, read_secret("provider API key")))
    return 0


def _delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_virtual_key(args.id)
    output.emit_deleted(args.output, "virtual key", args.id)
    return 0


def register(commands: CommandTree) -> None:
    vks = commands.group("virtual-keys", "stored provider credentials")
    sub = vks.command("create", "store a provider secret (read from stdin) as a virtual key", _create)
    sub.add_argument("--name", required=True, help="a human-readable name; the id is derived from it unless --id")
    sub.add_argument("--provider", required=True,
                     help="the provider the secret is for (openai, stability-ai, ...)")
    sub.add_argument("--base-url", metavar="URL", help=_BASE_URL_HELP)
    sub.add_argument("--id", metavar="ID", help="the id to use (default: derived from the name)")
    sub.add_argument(
        "--api-key-stdin",
        action="store_true",
        required=True,
        help="read the provider secret from stdin (the only way to pass it)",
    )
    add_limit_flags(sub)
    vks.command("get", "show a virtual key", _get).add_argument("id", help="the virtual key's id")
    vks.command("list", "list virtual keys", _list)
    sub = vks.command("rotate", "replace a virtual key's secret (read from stdin)", _rotate)
    sub.add_argument("id", help="the virtual key's id")
    sub.add_argument(
        "--api-key-stdin", action="store_true", required=True, help="read the new provider secret from stdin"
    )
    vks.command("delete", "delete a virtual key", _delete).add_argument("id", help="the virtual key's id")
