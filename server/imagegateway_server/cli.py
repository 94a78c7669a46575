"""The ``imagegw`` command: run the gateway (``serve``) and administer one over gRPC.

Every command but ``serve`` and ``configs validate`` is one or a few calls through
``imagegateway.ImageGatewayClient``. Exit codes: 0 success, 1 the command ran and failed (an RPC
error, an invalid config, a file that cannot be read or written), 2 the command line is wrong.
Errors are one ``error: CODE: message`` line on stderr, never a traceback, and never contain a
secret: provider secrets are read only from stdin.
"""

from __future__ import annotations

import argparse
import errno
import getpass
import json
import mimetypes
import os
import re
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, NoReturn

from google.protobuf.message import Message

from imagegateway import GenerateFields, ImageGatewayClient, ImageGatewayError
from imagegateway.v1 import configs_pb2, health_pb2, images_pb2, keys_pb2, logs_pb2
from imagegateway_server import cli_output as show
from imagegateway_server.settings import SETTINGS, Settings

Handler = Callable[[argparse.Namespace, ImageGatewayClient], int]


class CommandError(Exception):
    """An expected failure: printed as ``error: CODE: message``, exit code 1 (ran) or 2 (usage)."""

    def __init__(self, code: str, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code


def _usage(message: str) -> CommandError:
    return CommandError("INVALID_ARGUMENT", message, exit_code=2)


class _Parser(argparse.ArgumentParser):
    """Reports command-line mistakes in the same ``error: CODE: message`` form, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"error: INVALID_ARGUMENT: {message}\n")


# Input parsing


def _timestamp(text: str) -> datetime:
    """ISO 8601 (naive = UTC) or a duration ago: 30s, 15m, 2h, 7d."""
    match = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
        return datetime.now(UTC) - timedelta(**{unit: int(match[1])})
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time or a duration like 2h: {text!r}") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, not {text!r}")
    return key, value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


def _grace_seconds(text: str) -> int:
    # Only what the int32 field can carry is checked here; the server owns the 7-day cap and says so.
    value = _non_negative(text)
    if value > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"must be at most 604800 (7 days), not {value}")
    return value


def _poll_interval(text: str) -> float:
    value = float(text)
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"must be between 0.05 and 3600 seconds, not {text}")
    return value


def _read_secret(prompt: str) -> str:
    """A secret from stdin (a prompt without echo on a terminal), without its trailing newline."""
    value = getpass.getpass(f"{prompt}: ") if sys.stdin.isatty() else sys.stdin.read()
    value = value.rstrip("\r\n")
    if not value:
        raise _usage(f"no {prompt} on stdin")
    return value


def _os_error(action: str, path: str, exc: OSError) -> CommandError:
    code = {errno.ENOENT: "NOT_FOUND", errno.EACCES: "PERMISSION_DENIED"}.get(exc.errno or 0, "UNKNOWN")
    return CommandError(code, f"cannot {action} {path}: {exc.strerror or exc}")


def _read_config(path: str) -> configs_pb2.RoutingConfig:
    """A routing config from a Portkey JSON file (``-`` = stdin), checked against the proto schema
    by the same parser the server uses, so errors name the field path before anything is sent."""
    from imagegateway_server.api.config_json import parse_config_message as parse_config
    from imagegateway_server.domain.errors import InvalidArgument

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise _os_error("read", path, exc) from None
    try:
        return parse_config(text, param=path)
    except InvalidArgument as exc:
        raise CommandError("INVALID_ARGUMENT", exc.message) from None


# Output


def _emit(args: argparse.Namespace, msg: Message, extra: dict[str, Any] | None = None) -> None:
    """Prints one resource: proto JSON (plus ``extra`` fields) or ``field: value`` lines."""
    if args.output == "json":
        show.print_json({**show.to_json(msg), **(extra or {})}, sys.stdout)
    else:
        show.print_fields([*show.resource_rows(msg), *(extra or {}).items()], sys.stdout)


def _emit_list(args: argparse.Namespace, msgs: Sequence[Message], kind: type[Message]) -> None:
    if args.output == "json":
        show.print_json([show.to_json(m) for m in msgs], sys.stdout)
    else:
        show.print_resources(msgs, kind, sys.stdout)


def _emit_deleted(args: argparse.Namespace, what: str, id: str) -> None:
    if args.output == "json":
        show.print_json({}, sys.stdout)
    else:
        sys.stdout.write(f"deleted {what} {id}\n")


# Commands


def _generate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    out = Path(args.out)
    if not out.parent.is_dir():
        raise _usage(f"--out: directory {out.parent} does not exist")
    if args.provider_api_key_stdin and not args.provider:
        raise _usage("--provider-api-key-stdin needs --provider")
    fields: GenerateFields = {"prompt": args.prompt, "n": args.n, "metadata": dict(args.metadata or [])}
    for name in ("model", "size", "quality", "style", "trace_id", "virtual_key", "provider"):
        if getattr(args, name):
            fields[name] = getattr(args, name)
    if args.config:
        fields["config_id"] = args.config
    if args.provider_api_key_stdin:
        fields["provider_api_key"] = _read_secret("provider API key")
    # Always the streaming RPC: one image per message never meets the message-size cap,
    # whatever n and size are, and n=1 takes the same path. The last message has the outcome.
    images: list[images_pb2.Image] = []
    outcome = images_pb2.RoutingOutcome()
    for message in client.stream_generate_image(**fields):
        if message.HasField("image"):
            images.append(message.image)
        if message.HasField("outcome"):
            outcome = message.outcome
    if not images:
        raise CommandError("INTERNAL", "the gateway answered without images")
    files = list(zip(_image_paths(out, images), sorted(images, key=lambda i: i.index), strict=True))
    for path, image in files:
        try:
            path.write_bytes(image.data)
        except OSError as exc:
            raise _os_error("write", str(path), exc) from None
    if args.output == "json":
        show.print_json({**show.to_json(outcome), "files": [str(p) for p, _ in files]}, sys.stdout)
    else:
        show.print_outcome(outcome, files, sys.stdout)
    return 0


def _image_paths(out: Path, images: Sequence[images_pb2.Image]) -> list[Path]:
    """FILE for one image; FILE-1.ext, FILE-2.ext ... for several, keeping FILE's extension."""
    if len(images) == 1:
        return [out]
    stem = out.name.removesuffix(out.suffix)
    ordered = sorted(images, key=lambda i: i.index)
    return [
        out.with_name(f"{stem}-{n}{out.suffix or mimetypes.guess_extension(image.mime_type) or ''}")
        for n, image in enumerate(ordered, 1)
    ]


def _limits(args: argparse.Namespace) -> keys_pb2.Limits:
    # Checked by the server, whose refusal names the field (limits.usd_per_day: must not be negative).
    return keys_pb2.Limits(requests_per_minute=args.rpm, usd_per_day=args.usd_per_day,
                           usd_per_month=args.usd_per_month)


def _limit_flags(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--rpm", type=int, default=0, metavar="N", help="requests per minute (default 0: unlimited)")
    sub.add_argument("--usd-per-day", type=float, default=0.0, metavar="USD",
                     help="spend per UTC day, by the price table (default 0: unlimited)")
    sub.add_argument("--usd-per-month", type=float, default=0.0, metavar="USD",
                     help="spend per UTC month (default 0: unlimited)")


def _vk_create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    secret = _read_secret("provider API key")
    key = client.create_virtual_key(args.name, args.provider, secret, base_url=args.base_url, virtual_key_id=args.id,
                                    limits=_limits(args))
    _emit(args, key)
    return 0


def _vk_get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit(args, client.get_virtual_key(args.id))
    return 0


def _vk_list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit_list(args, list(client.iter_virtual_keys()), keys_pb2.VirtualKey)
    return 0


def _vk_rotate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit(args, client.rotate_virtual_key(args.id, _read_secret("provider API key")))
    return 0


def _vk_delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_virtual_key(args.id)
    _emit_deleted(args, "virtual key", args.id)
    return 0


def _config_create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit(args, client.create_config(args.name, _read_config(args.file)))
    return 0


def _config_get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit(args, client.get_config(args.id, args.version))
    return 0


def _config_list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit_list(args, list(client.iter_configs()), configs_pb2.Config)
    return 0


def _config_update(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit(args, client.update_config(args.id, _read_config(args.file), name=args.name or ""))
    return 0


def _config_delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_config(args.id)
    _emit_deleted(args, "config", args.id)
    return 0


def _config_validate(args: argparse.Namespace) -> int:
    """Offline: the proto schema, then the gateway's own checks (no server needed). Upstream hosts
    are checked against IMAGEGW_ALLOWED_UPSTREAM_HOSTS as the server on this machine would."""
    from imagegateway_server.api.config_proto import config_from_proto
    from imagegateway_server.domain.errors import InvalidArgument
    from imagegateway_server.routing.validation import validate_config

    config = _read_config(args.file)
    try:
        settings = Settings.load()
    except ValueError as exc:
        raise _usage(str(exc)) from None
    try:
        validate_config(config_from_proto(config), settings.allowed_upstream_hosts,
                        max_depth=settings.max_config_depth, max_targets=settings.max_targets)
    except InvalidArgument as exc:
        raise CommandError("INVALID_ARGUMENT", exc.message) from None
    except ValueError as exc:  # a malformed IMAGEGW_ALLOWED_UPSTREAM_HOSTS entry
        raise _usage(str(exc)) from None
    if args.output == "json":
        show.print_json({"valid": True}, sys.stdout)
    else:
        sys.stdout.write(f"{args.file}: valid\n")
    return 0


def _apikey_create(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    created = client.create_api_key(args.name, args.scope, limits=_limits(args))
    _emit(args, created.api_key, {"key": created.key})
    sys.stderr.write("Store the key now: it is shown only this once.\n")
    return 0


def _apikey_list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit_list(args, list(client.iter_api_keys()), keys_pb2.ApiKey)
    return 0


def _apikey_get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    # There is no GetApiKey RPC: the listing (admin only, like every key command) holds every key.
    for key in client.iter_api_keys():
        if key.id == args.id:
            _emit(args, key)
            return 0
    raise CommandError("NOT_FOUND", f"API key {args.id!r} not found")


def _admin_rotate_master_key(args: argparse.Namespace) -> int:
    """Offline: re-wraps every sealed secret in the database under IMAGEGW_MASTER_KEY (see
    security.master_key_rotation for the no-downtime procedure)."""
    import asyncio

    from imagegateway_server.security.master_key_rotation import rotate_with_settings

    try:
        settings = Settings.load()
        report = asyncio.run(rotate_with_settings(settings, dry_run=args.dry_run))
    except ValueError as exc:
        raise CommandError("FAILED_PRECONDITION", str(exc)) from None
    if args.output == "json":
        show.print_json(report.as_dict(), sys.stdout)
    else:
        note = " (dry run: nothing written)" if args.dry_run else ""
        sys.stdout.write(f"active master key: {report.active_key_id}{note}\n")
        for label, rows in (("virtual keys", report.virtual_keys), ("config versions", report.config_versions)):
            before = ", ".join(f"{k}={n}" for k, n in sorted(rows.key_ids_before.items())) or "none"
            sys.stdout.write(f"{label}: {'would re-wrap' if args.dry_run else 're-wrapped'} {rows.rewrapped}, "
                             f"already current {rows.already_current}, gone {rows.gone}, "
                             f"failed {len(rows.failed)} (master key ids before: {before})\n")
    for failure in (*report.virtual_keys.failed, *report.config_versions.failed):
        sys.stderr.write(f"error: FAILED_PRECONDITION: {failure}\n")
    return 0 if report.ok else 1


def _apikey_revoke(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit(args, client.revoke_api_key(args.id))
    return 0


def _apikey_rotate(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    rotated = client.rotate_api_key(args.id, previous_key_valid_seconds=args.previous_valid_seconds)
    _emit(args, rotated.api_key, {"key": rotated.key})
    sys.stderr.write("Store the new key now: it is shown only this once.\n")
    return 0


def _apikey_delete(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    client.delete_api_key(args.id)
    _emit_deleted(args, "API key", args.id)
    return 0


def _log_filters(args: argparse.Namespace) -> dict[str, Any]:
    """The ListLogs filters the flags set (``--no-fallback`` is a filter too, hence ``is not None``)."""
    filters: dict[str, Any] = {
        "trace_id": args.trace_id,
        "status_code": args.status,
        "outcome": args.outcome,
        "provider": args.provider,
        "model": args.model,
        "config_id": args.config,
        "fallback_used": args.fallback,
        "caller_key_id": args.caller_key_id,
    }
    return {k: v for k, v in filters.items() if v is not None and v != ""}


def _logs_list(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    filters = _log_filters(args)
    for key, value in (("start_time", args.since), ("end_time", args.until)):
        if value is not None:
            filters[key] = value
    page_size = min(args.limit, 200) if args.limit else 0
    logs: list[logs_pb2.RequestLog] = []
    for log in client.iter_logs(page_size=page_size, **filters):
        if args.limit and len(logs) >= args.limit:
            break
        logs.append(log)
    _emit_list(args, logs, logs_pb2.RequestLog)
    return 0


def _logs_tail(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    from imagegateway_server.log_follow import follow_logs

    filters = _log_filters(args)

    def list_since(since: datetime | None, limit: int) -> list[logs_pb2.RequestLog]:
        window = {**filters, "start_time": since} if since is not None else filters
        found: list[logs_pb2.RequestLog] = []
        for log in client.iter_logs(page_size=min(limit, 200) if limit else 200, **window):
            found.append(log)
            if limit and len(found) >= limit:
                break
        return found

    try:
        for log in follow_logs(list_since, backlog=args.lines, interval=args.interval):
            if args.output == "json":  # one JSON object per line, so a stream can be piped to jq
                sys.stdout.write(json.dumps(show.to_json(log), ensure_ascii=False) + "\n")
            else:
                sys.stdout.write(show.log_line(log) + "\n")
            sys.stdout.flush()
    except KeyboardInterrupt:  # Ctrl-C is how a tail ends
        return 0
    return 0


def _logs_get(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    log = client.get_log(args.id)
    if args.output == "json":
        show.print_json(show.to_json(log), sys.stdout)
    else:
        show.print_log(log, sys.stdout)
    return 0


def _targets_health(args: argparse.Namespace, client: ImageGatewayClient) -> int:
    _emit_list(args, client.list_target_health(args.provider or ""), health_pb2.TargetHealth)
    return 0


def _serve(args: argparse.Namespace) -> int:
    overrides = {spec.field: getattr(args, spec.field) for spec in SETTINGS}
    try:
        settings = Settings.load(overrides)
    except ValueError as exc:
        raise _usage(str(exc)) from None
    from imagegateway_server.app import serve

    return serve(settings)


# The parser


def _client_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Accepted before and after the subcommand; a leaf's absent option must not reset the top's.
    default: Any = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--server",
        default=default,
        metavar="HOST:PORT",
        help="gateway gRPC address (env IMAGEGW_SERVER; default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--api-key",
        default=default,
        metavar="KEY",
        help="gateway API key (env IMAGEGW_API_KEY, preferred: command lines are visible to other users)",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table" if top else argparse.SUPPRESS,
        help="output format (default table)",
    )
    parser.add_argument("--tls-ca", default=default, metavar="FILE",
                        help="connect over TLS, trusting this PEM CA bundle (with --tls: the system roots)")
    parser.add_argument("--tls", action="store_true", default=False if top else argparse.SUPPRESS,
                        help="connect over TLS, trusting the system roots")
    parser.add_argument("--tls-cert", default=default, metavar="FILE",
                        help="PEM client certificate for mutual TLS (with --tls-key)")
    parser.add_argument("--tls-key", default=default, metavar="FILE", help="PEM key of --tls-cert")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="imagegw", description="ImageGateway: serve the gateway or administer one.", allow_abbrev=False
    )
    _client_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def leaf(
        group: Any, name: str, help: str, run: Any, *, client: bool = True, options: bool = True
    ) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = group.add_parser(name, help=help, description=help, allow_abbrev=False)
        if options:
            _client_options(sub, top=False)
        sub.set_defaults(run=run, needs_client=client)
        return sub

    def group(name: str, help: str) -> Any:
        sub = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    # serve takes no client options: an --api-key there would read as the admin key, which it is not.
    serve_help = "run the gateway (every flag defaults to its env var)"
    serve = leaf(commands, "serve", serve_help, _serve, client=False, options=False)
    for spec in SETTINGS:
        serve.add_argument(
            "--" + spec.field.replace("_", "-"),
            dest=spec.field,
            default=None,
            metavar=spec.field.upper(),
            help=f"{spec.help} (env {spec.env}; default {spec.default or 'unset'})".replace("%", "%%"),
        )

    gen = leaf(commands, "generate", "generate images and write them to files", _generate)
    gen.add_argument("--prompt", required=True)
    route = gen.add_mutually_exclusive_group()
    route.add_argument("--config", metavar="ID[@VERSION]", help="a saved routing config")
    route.add_argument("--virtual-key", metavar="ID", help="a stored virtual key")
    route.add_argument("--provider", metavar="NAME", help="a bare provider (openai, stability-ai, ...)")
    gen.add_argument(
        "--provider-api-key-stdin",
        action="store_true",
        help="read the provider's API key from stdin (with --provider)",
    )
    gen.add_argument("--model")
    gen.add_argument("--size", metavar="WxH")
    gen.add_argument("-n", type=_positive, default=1, help="number of images (default 1)")
    gen.add_argument("--quality")
    gen.add_argument("--style")
    gen.add_argument("--trace-id")
    gen.add_argument("--metadata", type=_key_value, action="extend", nargs="+", metavar="KEY=VALUE")
    gen.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file; several images go to FILE-1.ext, FILE-2.ext, ...",
    )

    vks = group("virtual-keys", "stored provider credentials")
    sub = leaf(vks, "create", "store a provider secret (read from stdin) as a virtual key", _vk_create)
    sub.add_argument("--name", required=True)
    sub.add_argument("--provider", required=True)
    sub.add_argument("--base-url", metavar="URL")
    sub.add_argument("--id", metavar="ID", help="the id to use (default: derived from the name)")
    sub.add_argument(
        "--api-key-stdin",
        action="store_true",
        required=True,
        help="read the provider secret from stdin (the only way to pass it)",
    )
    _limit_flags(sub)
    leaf(vks, "get", "show a virtual key", _vk_get).add_argument("id")
    leaf(vks, "list", "list virtual keys", _vk_list)
    sub = leaf(vks, "rotate", "replace a virtual key's secret (read from stdin)", _vk_rotate)
    sub.add_argument("id")
    sub.add_argument(
        "--api-key-stdin", action="store_true", required=True, help="read the new provider secret from stdin"
    )
    leaf(vks, "delete", "delete a virtual key", _vk_delete).add_argument("id")

    cfg = group("configs", "saved routing configs (Portkey JSON)")
    sub = leaf(cfg, "create", "save a routing config", _config_create)
    sub.add_argument("--name", required=True)
    sub.add_argument("--file", required=True, metavar="FILE", help="Portkey config JSON; - reads stdin")
    sub = leaf(cfg, "get", "show a config (latest version unless one is named)", _config_get)
    sub.add_argument("id", metavar="ID[@VERSION]")
    sub.add_argument("--version", type=_positive, default=0)
    leaf(cfg, "list", "list configs (latest versions)", _config_list)
    sub = leaf(cfg, "update", "save a new version of a config", _config_update)
    sub.add_argument("id")
    sub.add_argument("--file", required=True, metavar="FILE", help="Portkey config JSON; - reads stdin")
    sub.add_argument("--name")
    leaf(cfg, "delete", "delete a config and all its versions", _config_delete).add_argument("id")
    sub = leaf(cfg, "validate", "check a config file offline (no server needed)", _config_validate, client=False)
    sub.add_argument("--file", required=True, metavar="FILE", help="Portkey config JSON; - reads stdin")

    keys = group("api-keys", "gateway API keys")
    sub = leaf(keys, "create", "create a gateway API key (shown once)", _apikey_create)
    sub.add_argument("--name", required=True)
    sub.add_argument("--scope", choices=("admin", "generate"), default="generate")
    _limit_flags(sub)
    leaf(keys, "list", "list gateway API keys", _apikey_list)
    leaf(keys, "get", "show a gateway API key", _apikey_get).add_argument("id")
    leaf(keys, "revoke", "revoke a gateway API key", _apikey_revoke).add_argument("id")
    sub = leaf(keys, "rotate", "give a gateway API key a new secret, same id (shown once)", _apikey_rotate)
    sub.add_argument("id")
    sub.add_argument("--previous-valid-seconds", type=_grace_seconds, default=0, metavar="N",
                     help="how long the old secret keeps working (default 0: stops at once; at most 604800)")
    leaf(keys, "delete", "delete a gateway API key (its request logs stay)", _apikey_delete).add_argument("id")

    logs = group("logs", "request logs")

    def log_filter_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--trace-id")
        sub.add_argument("--status", type=int, metavar="CODE", help="HTTP-style status, e.g. 200 or 503")
        sub.add_argument("--outcome", choices=("success", "failure"))
        sub.add_argument("--provider")
        sub.add_argument("--model", help="the model that served (or was last tried)")
        sub.add_argument("--config", metavar="ID", help="a saved routing config id")
        sub.add_argument("--fallback", action=argparse.BooleanOptionalAction, default=None,
                         help="only requests that fell back (--no-fallback: only those that did not)")
        sub.add_argument("--caller-key-id", metavar="ID", help="requests made with this gateway key (admin keys)")

    sub = leaf(logs, "list", "list request logs, newest first", _logs_list)
    log_filter_flags(sub)
    sub.add_argument(
        "--since",
        "--start-time",
        dest="since",
        type=_timestamp,
        metavar="TIME",
        help="ISO 8601 (naive = UTC) or a duration ago (30m, 2h, 7d)",
    )
    sub.add_argument("--until", "--end-time", dest="until", type=_timestamp, metavar="TIME")
    sub.add_argument("--limit", type=int, default=50, help="at most this many records (0: all; default 50)")
    leaf(logs, "get", "show one request log with every attempt", _logs_get).add_argument("id")
    sub = leaf(logs, "tail", "print request logs as they are written, until Ctrl-C", _logs_tail)
    log_filter_flags(sub)
    sub.add_argument("-n", "--lines", type=_non_negative, default=10,
                     help="start with this many recent records (default 10)")
    sub.add_argument("--interval", type=_poll_interval, default=1.0, metavar="SECONDS",
                     help="how often to poll for new records (default 1)")

    targets = group("targets", "routing targets as the gateway sees them")
    sub = leaf(targets, "health", "circuit-breaker state per provider, host, key fingerprint and model",
               _targets_health)
    sub.add_argument("--provider", help="only this provider")

    admin_group = group("admin", "operations on the gateway's own data (offline, against the database)")
    sub = leaf(admin_group, "rotate-master-key",
               "re-wrap every stored secret under IMAGEGW_MASTER_KEY, opening old rows with "
               "IMAGEGW_PREVIOUS_MASTER_KEYS; safe while gateways serve and safe to re-run",
               _admin_rotate_master_key, client=False, options=False)
    sub.add_argument("--dry-run", action="store_true", help="count what would be re-wrapped; write nothing")
    sub.add_argument("-o", "--output", choices=("table", "json"), default=argparse.SUPPRESS,
                     help="output format (default table)")
    return parser


def _report(exc: ImageGatewayError, args: argparse.Namespace, client: ImageGatewayClient, err: IO[str]) -> None:
    hint = ""
    if exc.code.name == "UNAUTHENTICATED" and not client.has_api_key:
        hint = " (set IMAGEGW_API_KEY or pass --api-key)"
    elif exc.code.name == "UNAVAILABLE" and exc.failure is None:
        hint = f" (is the gateway running at {client.target}?)"
    err.write(f"error: {exc.code.name}: {exc.message}{hint}\n")
    if exc.failure is not None:
        show.print_failure(exc.failure, err)


def _credentials(args: argparse.Namespace) -> Any:
    """TLS channel credentials when any --tls option is given; None for a plaintext channel."""
    if not (args.tls or args.tls_ca or args.tls_cert or args.tls_key):
        return None
    from imagegateway_server.security.tls import client_credentials

    if bool(args.tls_cert) != bool(args.tls_key):
        raise _usage("--tls-cert and --tls-key must be given together")
    try:
        return client_credentials(args.tls_ca, args.tls_cert, args.tls_key)
    except ValueError as exc:  # a file that cannot be read or is not PEM
        raise CommandError("INVALID_ARGUMENT", str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one command; returns the process exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if not args.needs_client:
            return int(args.run(args))
        with ImageGatewayClient(args.server, api_key=args.api_key, credentials=_credentials(args)) as client:
            try:
                return int(args.run(args, client))
            except ImageGatewayError as exc:
                _report(exc, args, client, sys.stderr)
                return 1
    except CommandError as exc:
        sys.stderr.write(f"error: {exc.code}: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `imagegw logs list | head`
        sys.stdout = open(os.devnull, "w")  # the interpreter would fail flushing the closed pipe at exit
        return 141


if __name__ == "__main__":
    sys.exit(main())
