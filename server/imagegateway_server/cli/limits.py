"""The spend and rate limit flags of ``virtual-keys create`` and ``api-keys create``."""

from __future__ import annotations

import argparse

from imagegateway.types import Limits


def add_limit_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--rpm", type=int, default=0, metavar="N", help="requests per minute (default 0: unlimited)")
    sub.add_argument(
        "--usd-per-day",
        type=float,
        default=0.0,
        metavar="USD",
        help="spend per UTC day, by the price table (default 0: unlimited)",
    )
    sub.add_argument(
        "--usd-per-month", type=float, default=0.0, metavar="USD", help="spend per UTC month (default 0: unlimited)"
    )


def limits_from(args: argparse.Namespace) -> Limits:
    # Checked by the server, whose refusal names the field (limits.usd_per_day: must not be negative).
    return Limits(requests_per_minute=args.rpm, usd_per_day=args.usd_per_day, usd_per_month=args.usd_per_month)
