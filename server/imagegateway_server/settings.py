"""Every setting of the gateway in one place: an env var and an ``imagegw serve`` flag each."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    """How one setting is spelled and what it means (drives the CLI flags and the README table)."""

    field: str
    env: str
    default: str
    help: str


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("grpc_addr", "IMAGEGW_GRPC_ADDR", "127.0.0.1:50051", "gRPC listen address"),
    SettingSpec("http_addr", "IMAGEGW_HTTP_ADDR", "127.0.0.1:8787",
                "REST shim; http://HOST:PORT/v1 is the OpenAI base_url"),
    SettingSpec("metrics_addr", "IMAGEGW_METRICS_ADDR", "127.0.0.1:9464",
                "Prometheus /metrics (separate from the public ports)"),
    SettingSpec("database_url", "IMAGEGW_DATABASE_URL", "",
                "sqlite:///path or postgresql://... (default: a sqlite file in the data dir)"),
    SettingSpec("data_dir", "IMAGEGW_DATA_DIR", "./.imagegw", "embedded data; created with 0700"),
    SettingSpec("redis_url", "IMAGEGW_REDIS_URL", "", "shared cache, limits and breakers (unset: in-process)"),
    SettingSpec("master_key", "IMAGEGW_MASTER_KEY", "",
                "base64url 32-byte key that encrypts provider secrets (default: generated into the data dir)"),
    SettingSpec("admin_key", "IMAGEGW_ADMIN_KEY", "",
                "bootstrap admin API key (default: generated and printed once on first start)"),
    SettingSpec("allowed_upstream_hosts", "IMAGEGW_ALLOWED_UPSTREAM_HOSTS", "",
                "comma-separated hosts, host:port or CIDRs custom hosts may point to"),
    SettingSpec("shutdown_grace_seconds", "IMAGEGW_SHUTDOWN_GRACE_SECONDS", "30",
                "how long in-flight requests may finish after SIGTERM"),
    SettingSpec("log_level", "IMAGEGW_LOG_LEVEL", "info", "process log level"),
    SettingSpec("log_format", "IMAGEGW_LOG_FORMAT", "json", "process log format: json or text"),
    SettingSpec("max_message_bytes", "IMAGEGW_MAX_MESSAGE_BYTES", str(64 * 1024 * 1024),
                "largest gRPC message the server sends or accepts"),
    SettingSpec("upstream_timeout_seconds", "IMAGEGW_UPSTREAM_TIMEOUT_SECONDS", "120",
                "default per-attempt upstream timeout when a config sets no request_timeout"),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Resolved settings. Build with ``Settings.load()``; tests may construct it directly."""

    grpc_addr: str = "127.0.0.1:50051"
    http_addr: str = "127.0.0.1:8787"
    metrics_addr: str = "127.0.0.1:9464"
    database_url: str = ""
    data_dir: Path = Path("./.imagegw")
    redis_url: str = ""
    master_key: str = ""
    admin_key: str = ""
    allowed_upstream_hosts: tuple[str, ...] = ()
    shutdown_grace_seconds: float = 30.0
    log_level: str = "info"
    log_format: str = "json"
    max_message_bytes: int = 64 * 1024 * 1024
    upstream_timeout_seconds: float = 120.0

    @classmethod
    def load(cls, overrides: Mapping[str, Any] | None = None,
             environ: Mapping[str, str] | None = None) -> Settings:
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
                data_dir=Path(raw["data_dir"]),
                redis_url=raw["redis_url"],
                master_key=raw["master_key"],
                admin_key=raw["admin_key"],
                allowed_upstream_hosts=tuple(
                    h.strip() for h in raw["allowed_upstream_hosts"].split(",") if h.strip()
                ),
                shutdown_grace_seconds=float(raw["shutdown_grace_seconds"]),
                log_level=raw["log_level"].lower(),
                log_format=raw["log_format"].lower(),
                max_message_bytes=int(raw["max_message_bytes"]),
                upstream_timeout_seconds=float(raw["upstream_timeout_seconds"]),
            )
        except ValueError as exc:
            raise ValueError(f"invalid setting: {exc}") from None

    @property
    def effective_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'imagegw.db').resolve()}"

    def __repr__(self) -> str:
        # Never print secrets, even in a debugger or a crash report.
        hidden = {"master_key", "admin_key"}
        parts = [
            f"{f.name}={'***' if f.name in hidden and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
        ]
        return f"Settings({', '.join(parts)})"
