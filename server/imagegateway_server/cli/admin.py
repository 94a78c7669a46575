"""``imagegw admin``: operations on the gateway's own data, run in this process against the database.

``rotate-master-key`` re-wraps every sealed secret under IMAGEGW_MASTER_KEY (see
``core.master_key_rotation`` for the no-downtime procedure). It talks to the database, not to
a gateway, so it takes no client options.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from imagegateway_server.cli import output
from imagegateway_server.cli.arguments import CommandTree
from imagegateway_server.cli.errors import CommandError
from imagegateway_server.settings import Settings


def _rotate_master_key(args: argparse.Namespace) -> int:
    # Imported here so the client commands do not load the store.
    from imagegateway_server.core.master_key_rotation import rotate_with_settings

    try:
        settings = Settings.load()
        report = asyncio.run(rotate_with_settings(settings, dry_run=args.dry_run))
    except ValueError as exc:
        raise CommandError("FAILED_PRECONDITION", str(exc)) from None
    if args.output == "json":
        output.print_json(report.as_dict(), sys.stdout)
    else:
        note = " (dry run: nothing written)" if args.dry_run else ""
        sys.stdout.write(f"active master key: {report.active_key_id}{note}\n")
        for label, rows in (("virtual keys", report.virtual_keys), ("config versions", report.config_versions)):
            before = ", ".join(f"{k}={n}" for k, n in sorted(rows.key_ids_before.items())) or "none"
            sys.stdout.write(
                f"{label}: {'would re-wrap' if args.dry_run else 're-wrapped'} {rows.rewrapped}, "
                f"already current {rows.already_current}, gone {rows.gone}, "
                f"failed {len(rows.failed)} (master key ids before: {before})\n"
            )
    for failure in (*report.virtual_keys.failed, *report.config_versions.failed):
        sys.stderr.write(f"error: FAILED_PRECONDITION: {failure}\n")
    return 0 if report.ok else 1


def register(commands: CommandTree) -> None:
    admin = commands.group("admin", "operations on the gateway's own data (offline, against the database)")
    sub = admin.local_command(
        "rotate-master-key",
        "re-wrap every stored secret under IMAGEGW_MASTER_KEY, opening old rows with "
        "IMAGEGW_PREVIOUS_MASTER_KEYS; safe while gateways serve and safe to re-run",
        _rotate_master_key,
        client_options=False,
    )
    sub.add_argument("--dry-run", action="store_true", help="count what would be re-wrapped; write nothing")
    sub.add_argument(
        "-o", "--output", choices=("table", "json"), default=argparse.SUPPRESS, help="output format (default table)"
    )
