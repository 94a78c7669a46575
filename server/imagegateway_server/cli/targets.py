"""``imagegw targets``: routing targets as the gateway sees them (circuit-breaker state)."""

from __future__ import annotations

import argparse

from imagegateway import ImageGatewayClient
from imagegateway.types import TargetHealth
from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree


def _health(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    output.emit_list(args.output, client.list_target_health(args.provider or ""), TargetHealth)
    return 0


def register(commands: CommandTree) -> None:
    targets = commands.group("targets", "routing targets as the gateway sees them")
    sub = targets.command("health", "circuit-breaker state per provider, host, key fingerprint and model", _health)
    sub.add_argument("--provider", help="only this provider")
