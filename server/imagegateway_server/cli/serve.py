"""``imagegw serve``: runs the gateway in this process, one flag per setting.

Every flag defaults to its env var (``--grpc-addr`` to IMAGEGW_GRPC_ADDR, ...): an unset flag
leaves the environment in charge. The flags and their help come from ``settings.SETTINGS``.
"""

from __future__ import annotations

import argparse

from imagegateway_server.cli.arguments import CommandTree
from imagegateway_server.cli.errors import usage_error
from imagegateway_server.settings import SETTINGS, Settings


def _serve(args: argparse.Namespace) -> int:
    overrides = {spec.field: getattr(args, spec.field) for spec in SETTINGS}
    try:
        settings = Settings.load(overrides)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    # Imported here so the client commands do not load the server.
    from imagegateway_server.workers.supervisor import WorkersNeedSharedState, supervise

    try:
        return supervise(settings)
    except WorkersNeedSharedState as exc:
        raise usage_error(str(exc)) from None


def register(commands: CommandTree) -> None:
    # serve takes no client options: an --api-key there would read as the admin key, which it is not.
    serve = commands.local_command(
        "serve", "run the gateway (every flag defaults to its env var)", _serve, client_options=False
    )
    for spec in SETTINGS:
        serve.add_argument(
            "--" + spec.field.replace("_", "-"),
            dest=spec.field,
            default=None,
            metavar=spec.field.upper(),
            help=f"{spec.help} (env {spec.env}; default {spec.default or 'unset'})".replace("%", "%%"),
        )
