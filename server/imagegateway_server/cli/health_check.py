"""``imagegw health-check``: exits 0 when the gateway's gRPC health service says SERVING.

What a container HEALTHCHECK or a process supervisor runs; Kubernetes asks the same service with
its built-in grpc probes. Prints nothing on success, one line naming the state otherwise.
"""

from __future__ import annotations

import argparse
import sys

from imagegateway import ImageGatewayClient
from imagegateway.errors import ImageGatewayError
from imagegateway_server.cli.arguments import CommandTree


def _check(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    try:
        serving = client.is_serving(timeout=args.timeout)
    except ImageGatewayError as exc:
        print(f"not serving: {exc.code.name}", file=sys.stderr)
        return 1
    if not serving:
        print("not serving", file=sys.stderr)
        return 1
    return 0


def register(commands: CommandTree) -> None:
    sub = commands.command("health-check", "exit 0 when the gateway's gRPC health service says SERVING", _check)
    sub.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the answer (default 3)")
