"""Every setting of the gateway in one place: an env var and an ``imagegw serve`` flag each."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from imagegateway_server.domain.input_limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONFIG_DEPTH,
    DEFAULT_MAX_IMAGES,
    DEFAULT_MAX_INPUT_IMAGE_BYTES,
    DEFAULT_MAX_INPUT_IMAGES,
    DEFAULT_MAX_METADATA_BYTES,
    DEFAULT_MAX_PROMPT_CHARS,
    DEFAULT_MAX_TARGETS,
    DEFAULT_UPLOAD_MEMORY_BYTES,
    InputLimits,
)
from imagegateway_server.event_loop import EVENT_LOOPS, UVLOOP
from imagegateway_server.state.breakers import MAX_CONSECUTIVE_FAILURES, MAX_COOLDOWN_SECONDS, MAX_WINDOW


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """How one setting is spelled and what it means (drives the CLI flags and the README table)."""

    field: str
    env: str
    default: str
    help: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("grpc_addr", "IMAGEGW_GRPC_ADDR", "127.0.0.1:50051", "gRPC listen address"),
    SettingSpec(
        "http_addr", "IMAGEGW_HTTP_ADDR", "127.0.0.1:8787", "REST shim; http://HOST:PORT/v1 is the OpenAI base_url"
    ),
    SettingSpec(
        "metrics_addr", "IMAGEGW_METRICS_ADDR", "127.0.0.1:9464", "Prometheus /metrics (separate from the public ports)"
    ),
    SettingSpec(
        "database_url",
        "IMAGEGW_DATABASE_URL",
        "",
        "sqlite:///PATH (default: a sqlite file in the data dir), or postgresql://USER:PASSWORD@HOST:PORT/DB "
        "(libpq parameters such as sslmode in the query) for a database replicas share",
    ),
    SettingSpec(
        "stale_config_max_age_seconds",
        "IMAGEGW_STALE_CONFIG_MAX_AGE",
        "3600",
        "while the database is unreachable, saved configs, virtual keys and API keys read from it at most "
        "this many seconds ago are still used (0: not at all)",
    ),
    SettingSpec(
        "request_log_buffer",
        "IMAGEGW_REQUEST_LOG_BUFFER",
        "100000",
        "request log records kept in memory until the database takes them (it is slow or unreachable); "
        "past this, records are dropped and counted in imagegateway_request_log_dropped_total",
    ),
    SettingSpec("data_dir", "IMAGEGW_DATA_DIR", "./.imagegw", "embedded data; created with 0700"),
    SettingSpec(
        "workers",
        "IMAGEGW_WORKERS",
        "1",
        "processes serving the same ports (SO_REUSEPORT), each a full replica, supervised; `auto` = the CPUs "
        "this process may use; more than one needs IMAGEGW_REDIS_URL (shared limits, breakers and cache)",
    ),
    SettingSpec(
        "redis_url",
        "IMAGEGW_REDIS_URL",
        "",
        "redis://[:PASSWORD@]HOST:PORT/DB, rediss://... (TLS) or unix:///PATH: share the cache, breakers, "
        "limits, budgets and dashboard sessions across replicas (unset: kept in the process)",
    ),
    SettingSpec(
        "redis_timeout_seconds",
        "IMAGEGW_REDIS_TIMEOUT_SECONDS",
        "0.25",
        "longest wait for one Redis call before the request is served from in-process state",
    ),
    SettingSpec(
        "redis_failures_to_down",
        "IMAGEGW_REDIS_FAILURES_TO_DOWN",
        "3",
        "failed or slow Redis calls in a row before the replica serves from in-process state (until a probe answers)",
    ),
    SettingSpec(
        "master_key",
        "IMAGEGW_MASTER_KEY",
        "",
        "base64url 32-byte key that encrypts provider secrets (default: generated into the data dir)",
    ),
    SettingSpec(
        "previous_master_keys",
        "IMAGEGW_PREVIOUS_MASTER_KEYS",
        "",
        "comma-separated earlier master keys that may still open secrets (during a master-key rotation)",
    ),
    SettingSpec(
        "admin_key",
        "IMAGEGW_ADMIN_KEY",
        "",
        "bootstrap admin API key (default: generated and printed once on first start)",
    ),
    SettingSpec(
        "allowed_upstream_hosts",
        "IMAGEGW_ALLOWED_UPSTREAM_HOSTS",
        "",
        "comma-separated hosts, host:port or CIDRs custom hosts may point to",
    ),
    SettingSpec(
        "tls_cert_file",
        "IMAGEGW_TLS_CERT_FILE",
        "",
        "PEM certificate chain: serve gRPC over TLS and the REST shim over HTTPS (with the key file)",
    ),
    SettingSpec("tls_key_file", "IMAGEGW_TLS_KEY_FILE", "", "PEM private key of the TLS certificate"),
    SettingSpec(
        "tls_client_ca_file",
        "IMAGEGW_TLS_CLIENT_CA_FILE",
        "",
        "PEM CA bundle: require client certificates it signed on gRPC and REST (mutual TLS)",
    ),
    SettingSpec(
        "shutdown_grace_seconds",
        "IMAGEGW_SHUTDOWN_GRACE_SECONDS",
        "30",
        "how long in-flight requests may finish after SIGTERM",
    ),
    SettingSpec(
        "http_keepalive_seconds",
        "IMAGEGW_HTTP_KEEPALIVE_SECONDS",
        "75",
        "how long the REST shim keeps an idle client connection open",
    ),
    SettingSpec("log_level", "IMAGEGW_LOG_LEVEL", "info", "process log level"),
    SettingSpec("log_format", "IMAGEGW_LOG_FORMAT", "json", "process log format: json or text"),
    SettingSpec(
        "max_message_bytes",
        "IMAGEGW_MAX_MESSAGE_BYTES",
        str(64 * 1024 * 1024),
        "largest gRPC message the server sends or accepts",
    ),
    SettingSpec(
        "upstream_timeout_seconds",
        "IMAGEGW_UPSTREAM_TIMEOUT_SECONDS",
        "120",
        "default per-attempt upstream timeout when a config sets no request_timeout",
    ),
    SettingSpec(
        "cache_max_bytes",
        "IMAGEGW_CACHE_MAX_BYTES",
        str(256 * 1024 * 1024),
        "bytes of images the in-process response cache may hold (LRU; 0 keeps nothing)",
    ),
    SettingSpec(
        "breaker_consecutive_failures",
        "IMAGEGW_BREAKER_CONSECUTIVE_FAILURES",
        "5",
        "consecutive failures that open a target's circuit (0: this trigger off)",
    ),
    SettingSpec(
        "breaker_failure_rate",
        "IMAGEGW_BREAKER_FAILURE_RATE",
        "0.5",
        "failure rate over the window that opens a target's circuit (0: this trigger off)",
    ),
    SettingSpec("breaker_window", "IMAGEGW_BREAKER_WINDOW", "20", "calls in the failure-rate window"),
    SettingSpec(
        "breaker_cooldown_seconds",
        "IMAGEGW_BREAKER_COOLDOWN_SECONDS",
        "30",
        "how long an open circuit skips its target before one probe call",
    ),
    SettingSpec(
        "keep_images",
        "IMAGEGW_KEEP_IMAGES",
        "false",
        "keep the first image of REST requests sent with x-imagegw-keep-image: true, for the dashboard",
    ),
    SettingSpec(
        "model_aliases_file",
        "IMAGEGW_MODEL_ALIASES_FILE",
        "",
        "JSON table mapping retired models to successors (default: the built-in table, every alias off)",
    ),
    SettingSpec(
        "retired_models_file",
        "IMAGEGW_RETIRED_MODELS_FILE",
        "",
        "JSON table of retired models, their successors and shutdown dates (default: the built-in table)",
    ),
    SettingSpec(
        "retired_model_memory_seconds",
        "IMAGEGW_RETIRED_MODEL_MEMORY_SECONDS",
        "3600",
        "how long a provider's 'model not found' for a retired model sends that account straight to the "
        "successor, on every replica with IMAGEGW_REDIS_URL (0: ask every time)",
    ),
    SettingSpec(
        "log_retention_days",
        "IMAGEGW_LOG_RETENTION_DAYS",
        "30",
        "request log records older than this many days are deleted (0: kept forever)",
    ),
    SettingSpec(
        "log_retention_max_records",
        "IMAGEGW_LOG_RETENTION_MAX_RECORDS",
        "1000000",
        "at most this many request log records are kept, the oldest deleted first (0: no limit)",
    ),
    SettingSpec("redact_prompts", "IMAGEGW_REDACT_PROMPTS", "false", "store request log records without the prompt"),
    SettingSpec(
        "price_table_file",
        "IMAGEGW_PRICE_TABLE_FILE",
        "",
        "JSON price table used for cost accounting (default: the built-in list prices)",
    ),
    SettingSpec(
        "max_body_bytes",
        "IMAGEGW_MAX_BODY_BYTES",
        str(DEFAULT_MAX_BODY_BYTES),
        "largest REST request body (larger: 413)",
    ),
    SettingSpec(
        "max_prompt_chars", "IMAGEGW_MAX_PROMPT_CHARS", str(DEFAULT_MAX_PROMPT_CHARS), "longest prompt, in characters"
    ),
    SettingSpec(
        "max_config_depth",
        "IMAGEGW_MAX_CONFIG_DEPTH",
        str(DEFAULT_MAX_CONFIG_DEPTH),
        "how deep a routing config's targets may nest",
    ),
    SettingSpec(
        "max_targets",
        "IMAGEGW_MAX_TARGETS",
        str(DEFAULT_MAX_TARGETS),
        "most targets one routing config may have, nested ones included",
    ),
    SettingSpec(
        "max_metadata_bytes",
        "IMAGEGW_MAX_METADATA_BYTES",
        str(DEFAULT_MAX_METADATA_BYTES),
        "largest request metadata (x-portkey-metadata, or gRPC metadata as JSON)",
    ),
    SettingSpec("max_images", "IMAGEGW_MAX_IMAGES", str(DEFAULT_MAX_IMAGES), "most images (n) one request may ask for"),
    SettingSpec(
        "max_input_images",
        "IMAGEGW_MAX_INPUT_IMAGES",
        str(DEFAULT_MAX_INPUT_IMAGES),
        "most input images one edit may send",
    ),
    SettingSpec(
        "max_input_image_bytes",
        "IMAGEGW_MAX_INPUT_IMAGE_BYTES",
        str(DEFAULT_MAX_INPUT_IMAGE_BYTES),
        "largest input image (edits, variations, masks)",
    ),
    SettingSpec(
        "upload_memory_bytes",
        "IMAGEGW_UPLOAD_MEMORY_BYTES",
        str(DEFAULT_UPLOAD_MEMORY_BYTES),
        "edit and variation uploads (REST and gRPC) held in memory at once; further uploads wait their turn",
    ),
    SettingSpec(
        "event_loop",
        "IMAGEGW_EVENT_LOOP",
        UVLOOP,
        "the process's event loop: uvloop (faster; asyncio where uvloop is not installed) or asyncio",
    ),
)


def _flag(env: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered not in {"true", "false", "1", "0", "yes", "no", "on", "off"}:
        raise ValueError(f"{env} must be true or false, not {value!r}")
    return lowered in {"true", "1", "yes", "on"}


def _bounded(env: str, value: str, kind: type[int] | type[float], low: float, high: float) -> Any:
    number = kind(value)
    if not low <= number <= high:  # NaN fails this too
        raise ValueError(f"{env} must be between {low:g} and {high:g}, not {value!r}")
    return number


def _workers(value: str) -> int:
    """IMAGEGW_WORKERS: a count from 1 to 256, or ``auto`` for the CPUs this process may run on."""
    if value.strip().lower() == "auto":
        return max(1, len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return int(_bounded("IMAGEGW_WORKERS", value, int, 1, 256))


def _choice(env: str, value: str, choices: tuple[str, ...]) -> str:
    lowered = value.strip().lower()
    if lowered not in choices:
        raise ValueError(f"{env} must be one of {', '.join(choices)}, not {value!r}")
    return lowered


def _byte_count(env: str, value: str) -> int:
    count = int(value)
    if count < 0:
        raise ValueError(f"{env} must not be negative, not {value!r}")
    return count


def _price_table_file(value: str) -> str:
    # Checked here so a bad table stops `imagegw serve` with one clear line; the process loads it again.
    if value:
        from imagegateway_server.core.pricing import load_price_table

        load_price_table(value)
    return value


def _aliases_file(value: str) -> str:
    # Checked here so a bad table stops `imagegw serve` with one clear line; the process loads it again.
    if value:
        from imagegateway_server.providers.kit.model_aliases import load_model_aliases
        from imagegateway_server.providers.registry import canonical_provider

        load_model_aliases(value, canonical_provider=canonical_provider)
    return value


def _retired_models_file(value: str) -> str:
    # Checked here so a bad table stops `imagegw serve` with one clear line; the process loads it again.
    if value:
        from imagegateway_server.providers.kit.retired_models import load_retired_models
        from imagegateway_server.providers.registry import canonical_provider

        load_retired_models(value, canonical_provider=canonical_provider)
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with ``Settings.load()``; tests may construct it directly."""

    grpc_addr: str = "127.0.0.1:50051"
    http_addr: str = "127.0.0.1:8787"
    metrics_addr: str = "127.0.0.1:9464"
    database_url: str = ""
    stale_config_max_age_seconds: float = 3600.0
    request_log_buffer: int = 100_000
    data_dir: Path = Path("./.imagegw")
    redis_url: str = ""
    redis_timeout_seconds: float = 0.25
    redis_failures_to_down: int = 3
    master_key: str = ""
    admin_key: str = ""
    previous_master_keys: tuple[str, ...] = ()
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    allowed_upstream_hosts: tuple[str, ...] = ()
    shutdown_grace_seconds: float = 30.0
    # Longer than clients' and load balancers' idle timeouts (httpx 5 s, AWS ALB 60 s): the side that
    # closes an idle connection first must be the client, or a request sent as it closes is lost.
    http_keepalive_seconds: int = 75
    log_level: str = "info"
    log_format: str = "json"
    max_message_bytes: int = 64 * 1024 * 1024
    upstream_timeout_seconds: float = 120.0
    keep_images: bool = False
    cache_max_bytes: int = 256 * 1024 * 1024
    breaker_consecutive_failures: int = 5
    breaker_failure_rate: float = 0.5
    breaker_window: int = 20
    breaker_cooldown_seconds: float = 30.0
    model_aliases_file: str = ""
    retired_models_file: str = ""
    retired_model_memory_seconds: float = 3600.0
    log_retention_days: float = 30.0
    log_retention_max_records: int = 1_000_000
    redact_prompts: bool = False
    price_table_file: str = ""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    max_config_depth: int = DEFAULT_MAX_CONFIG_DEPTH
    max_targets: int = DEFAULT_MAX_TARGETS
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    max_images: int = DEFAULT_MAX_IMAGES
    max_input_images: int = DEFAULT_MAX_INPUT_IMAGES
    max_input_image_bytes: int = DEFAULT_MAX_INPUT_IMAGE_BYTES
    upload_memory_bytes: int = DEFAULT_UPLOAD_MEMORY_BYTES
    event_loop: str = UVLOOP
    workers: int = 1

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        """Reads env vars, then applies explicit overrides (CLI flags) that are not None."""
        env = os.environ if environ is None else environ
        raw: dict[str, str] = {spec.field: env.get(spec.env, spec.default) for spec in SETTINGS}
        for key, value in (overrides or {}).items():
            if value is not None:
                raw[key] = str(value)
        try:
            return cls(
                grpc_addr=raw["grpc_addr"],
                http_addr=raw["http_addr"],
                metrics_addr=raw["metrics_addr"],
                database_url=raw["database_url"],
                stale_config_max_age_seconds=_bounded(
                    "IMAGEGW_STALE_CONFIG_MAX_AGE", raw["stale_config_max_age_seconds"], float, 0, 7 * 86400
                ),
                request_log_buffer=_bounded("IMAGEGW_REQUEST_LOG_BUFFER", raw["request_log_buffer"], int, 1, 10**8),
                data_dir=Path(raw["data_dir"]),
                redis_url=raw["redis_url"],
                workers=_workers(raw["workers"]),
                redis_timeout_seconds=_bounded(
                    "IMAGEGW_REDIS_TIMEOUT_SECONDS", raw["redis_timeout_seconds"], float, 0.001, 60
                ),
                redis_failures_to_down=_bounded(
                    "IMAGEGW_REDIS_FAILURES_TO_DOWN", raw["redis_failures_to_down"], int, 1, 1000
                ),
                master_key=raw["master_key"],
                admin_key=raw["admin_key"],
                previous_master_keys=tuple(k.strip() for k in raw["previous_master_keys"].split(",") if k.strip()),
                tls_cert_file=raw["tls_cert_file"].strip(),
                tls_key_file=raw["tls_key_file"].strip(),
                tls_client_ca_file=raw["tls_client_ca_file"].strip(),
                allowed_upstream_hosts=tuple(h.strip() for h in raw["allowed_upstream_hosts"].split(",") if h.strip()),
                shutdown_grace_seconds=float(raw["shutdown_grace_seconds"]),
                http_keepalive_seconds=_bounded(
                    "IMAGEGW_HTTP_KEEPALIVE_SECONDS", raw["http_keepalive_seconds"], int, 1, 3600
                ),
                log_level=raw["log_level"].lower(),
                log_format=raw["log_format"].lower(),
                max_message_bytes=int(raw["max_message_bytes"]),
                upstream_timeout_seconds=float(raw["upstream_timeout_seconds"]),
                keep_images=_flag("IMAGEGW_KEEP_IMAGES", raw["keep_images"]),
                cache_max_bytes=_byte_count("IMAGEGW_CACHE_MAX_BYTES", raw["cache_max_bytes"]),
                breaker_consecutive_failures=_bounded(
                    "IMAGEGW_BREAKER_CONSECUTIVE_FAILURES",
                    raw["breaker_consecutive_failures"],
                    int,
                    0,
                    MAX_CONSECUTIVE_FAILURES,
                ),
                breaker_failure_rate=_bounded("IMAGEGW_BREAKER_FAILURE_RATE", raw["breaker_failure_rate"], float, 0, 1),
                breaker_window=_bounded("IMAGEGW_BREAKER_WINDOW", raw["breaker_window"], int, 1, MAX_WINDOW),
                breaker_cooldown_seconds=_bounded(
                    "IMAGEGW_BREAKER_COOLDOWN_SECONDS",
                    raw["breaker_cooldown_seconds"],
                    float,
                    0.001,
                    MAX_COOLDOWN_SECONDS,
                ),
                model_aliases_file=_aliases_file(raw["model_aliases_file"]),
                retired_models_file=_retired_models_file(raw["retired_models_file"]),
                retired_model_memory_seconds=_bounded(
                    "IMAGEGW_RETIRED_MODEL_MEMORY_SECONDS", raw["retired_model_memory_seconds"], float, 0, 30 * 86400
                ),
                log_retention_days=_bounded("IMAGEGW_LOG_RETENTION_DAYS", raw["log_retention_days"], float, 0, 36500),
                log_retention_max_records=_bounded(
                    "IMAGEGW_LOG_RETENTION_MAX_RECORDS", raw["log_retention_max_records"], int, 0, 10**12
                ),
                redact_prompts=_flag("IMAGEGW_REDACT_PROMPTS", raw["redact_prompts"]),
                price_table_file=_price_table_file(raw["price_table_file"]),
                # Bounded so a typo cannot switch a guard off: at least 1, at most what the process can bear
                # (configs nest by recursion; n images fan out into upstream calls).
                max_body_bytes=_bounded("IMAGEGW_MAX_BODY_BYTES", raw["max_body_bytes"], int, 1, 2**30),
                max_prompt_chars=_bounded("IMAGEGW_MAX_PROMPT_CHARS", raw["max_prompt_chars"], int, 1, 10**7),
                max_config_depth=_bounded("IMAGEGW_MAX_CONFIG_DEPTH", raw["max_config_depth"], int, 1, 50),
                max_targets=_bounded("IMAGEGW_MAX_TARGETS", raw["max_targets"], int, 1, 10_000),
                max_metadata_bytes=_bounded("IMAGEGW_MAX_METADATA_BYTES", raw["max_metadata_bytes"], int, 2, 2**20),
                max_images=_bounded("IMAGEGW_MAX_IMAGES", raw["max_images"], int, 1, 100),
                max_input_images=_bounded("IMAGEGW_MAX_INPUT_IMAGES", raw["max_input_images"], int, 1, 100),
                max_input_image_bytes=_bounded(
                    "IMAGEGW_MAX_INPUT_IMAGE_BYTES", raw["max_input_image_bytes"], int, 1, 2**30
                ),
                upload_memory_bytes=_bounded("IMAGEGW_UPLOAD_MEMORY_BYTES", raw["upload_memory_bytes"], int, 1, 2**40),
                event_loop=_choice("IMAGEGW_EVENT_LOOP", raw["event_loop"], EVENT_LOOPS),
            )
        except ValueError as exc:
            raise ValueError(f"invalid setting: {exc}") from None

    @property
    def input_limits(self) -> InputLimits:
        """The bad-input limits, as the front ends, the core and the config compiler take them."""
        return InputLimits(
            max_body_bytes=self.max_body_bytes,
            max_prompt_chars=self.max_prompt_chars,
            max_config_depth=self.max_config_depth,
            max_targets=self.max_targets,
            max_metadata_bytes=self.max_metadata_bytes,
            max_images=self.max_images,
            max_input_images=self.max_input_images,
            max_input_image_bytes=self.max_input_image_bytes,
            upload_memory_bytes=self.upload_memory_bytes,
        )

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'imagegw.db').resolve()}"

    def __repr__(self) -> str:
        # Never print secrets, even in a debugger or a crash report.
        hidden = {"master_key", "admin_key", "previous_master_keys"}
        urls = {"database_url", "redis_url"}  # may carry a password
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in hidden and value:
                parts.append(f"{f.name}='***'")
            elif f.name in urls:
                parts.append(f"{f.name}={_without_password(value)!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(parts)})"


def _without_password(url: str) -> str:
    """``url`` with the password of its user info (``postgresql://user:pw@host``) shown as ***, and a
    query that carries one (``unix:///run/redis.sock?password=pw``) left out."""
    base, question, query = url.partition("?")
    if question and "password" in query.lower():
        url = base + "?***"
    scheme, separator, rest = url.partition("://")
    # The last "@": a password may hold unescaped "@" and "/" characters.
    user_info, at, host_and_path = rest.rpartition("@")
    if not (separator and at):
        return url
    user, colon, _ = user_info.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host_and_path}"
