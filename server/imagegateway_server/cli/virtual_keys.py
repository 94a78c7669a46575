"""``imagegw virtual-keys``: provider credentials stored (encrypted) in the gateway.

A credential is an API key (``--api-key-stdin``) or, for providers whose credential has several
fields, a JSON object of fields (``--fields-json-stdin``); public fields (a region, a project) may
also be given as ``--field NAME=VALUE``. Secrets are read from stdin only and are never shown
again: get and list return the key with its public fields only.
"""

from __future__ import annotations

import argparse
import json

from imagegateway import ImageGatewayClient
from imagegateway.types import VirtualKey
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree
from imagegateway_server.cli.errors import usage_error
from imagegateway_server.cli.inputs import read_secret
from imagegateway_server.cli.limits import add_limit_flags, limits_from

_BASE_URL_HELP = (
    "send this key's requests here instead of the provider's public API: for OpenAI the URL includes "
    "/v1 (http://HOST:PORT/v1), for Stability it does not (http://HOST:PORT); a host other than the "
    "provider's public one must be on IMAGEGW_ALLOWED_UPSTREAM_HOSTS where the gateway runs (read at start)"
)


def _public_fields(args: argparse.Namespace) -> dict[str, str]:
    """The ``--field NAME=VALUE`` flags, by name."""
    fields: dict[str, str] = {}
    for flag in args.field or ():
        name, sep, value = flag.partition("=")
        if not sep or not name:
            raise usage_error("--field takes NAME=VALUE")
        fields[name] = value
    return fields


def _fields_from_stdin() -> dict[str, str]:
    """A JSON object of credential fields (strings by name) from stdin; its values are never echoed."""
    text = read_secret("credential fields JSON object")
    try:
        document = json.loads(text)
    except ValueError:
        raise usage_error("stdin is not a JSON object of credential fields") from None
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise usage_error("stdin must be a JSON object whose values are strings")
    return document


def _credential(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """The secret (API key) and the credential fields the flags ask for, secrets read from stdin."""
    public = _public_fields(args)
    if args.fields_json_stdin:
        from_stdin = _fields_from_stdin()
        clash = sorted(public.keys() & from_stdin.keys())
        if clash:
            raise usage_error(f"credential field {clash[0]!r} is given both by --field and on stdin")
        return "", {**from_stdin, **public}
    return read_secret("provider API key"), public


def _add_credential_flags(sub: argparse.ArgumentParser, what: str) -> None:
    source = sub.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--api-key-stdin", action="store_true", help=f"read {what} API key from stdin (the only way to pass a secret)"
    )
    source.add_argument(
        "--fields-json-stdin",
        action="store_true",
        help=f"read {what} credential from stdin as a JSON object of fields by name, secrets "
        'included (e.g. {"region": "eu-west-1", "access_key_id": "...", ...})',
    )
    sub.add_argument(
        "--field",
        action="append",
        metavar="NAME=VALUE",
        help="a public credential field (a region, a project); repeatable; never a secret",
    )


def _create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    secret, fields = _credential(args)
    key = client.create_virtual_key(
        args.name,
        args.provider,
        secret,
        base_url=args.base_url,
        virtual_key_id=args.id,
        limits=limits_from(args),
        credential_fields=fields,
    )
    output.emit(args.output, key)
    return 0


def _get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit(args.output, client.get_virtual_key(args.id))
    return 0


def _list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit_list(args.output, list(client.iter_virtual_keys()), VirtualKey)
    return 0


def _rotate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    secret, fields = _credential(args)
    output.emit(args.output, client.rotate_virtual_key(args.id, secret, credential_fields=fields))
    return 0


def _delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_virtual_key(args.id)
    output.emit_deleted(args.output, "virtual key", args.id)
    return 0


def register(commands: CommandTree) -> None:
    vks = commands.group("virtual-keys", "stored provider credentials")
    sub = vks.command("create", "store a provider secret (read from stdin) as a virtual key", _create)
    sub.add_argument("--name", required=True, help="a human-readable name; the id is derived from it unless --id")
    sub.add_argument("--provider", required=True, help="the provider the secret is for (openai, stability-ai, ...)")
    sub.add_argument("--base-url", metavar="URL", help=_BASE_URL_HELP)
    sub.add_argument("--id", metavar="ID", help="the id to use (default: derived from the name)")
    _add_credential_flags(sub, "the provider")
    add_limit_flags(sub)
    vks.command("get", "show a virtual key", _get).add_argument("id", help="the virtual key's id")
    vks.command("list", "list virtual keys", _list)
    sub = vks.command("rotate", "replace a virtual key's credential (secrets read from stdin)", _rotate)
    sub.add_argument("id", help="the virtual key's id")
    _add_credential_flags(sub, "the new")
    vks.command("delete", "delete a virtual key", _delete).add_argument("id", help="the virtual key's id")
