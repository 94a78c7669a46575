"""Process wiring: one asyncio loop serving gRPC, the REST shim and metrics; one shutdown path."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import uvicorn
from prometheus_client import start_http_server

from imagegateway_server.api.auth import Authenticator
from imagegateway_server.api.dashboard import Dashboard, breaker_health
from imagegateway_server.api.grpc_health import DrainingHealthServicer
from imagegateway_server.api.grpc_interceptors import SERVICE_NAME, GatewayInterceptor
from imagegateway_server.api.grpc_server import build_grpc_server, grpc_methods, mark_serving
from imagegateway_server.api.grpc_service import ImageGatewayService
from imagegateway_server.api.rest import RestShim
from imagegateway_server.api.rest_protocol import BoundedHttpToolsProtocol
from imagegateway_server.api.upload_budget import UploadBudget
from imagegateway_server.core.gateway import Gateway
from imagegateway_server.core.limits import Limiter
from imagegateway_server.core.pricing import load_price_table
from imagegateway_server.event_loop import loop_factory, loop_name
from imagegateway_server.gc_tuning import tune_garbage_collector
from imagegateway_server.memory_tuning import tune_malloc_for_large_buffers
from imagegateway_server.observability.log_retention import LogRetention
from imagegateway_server.observability.logging import configure_logging
from imagegateway_server.observability.metrics import Metrics
from imagegateway_server.observability.otel import start_tracing
from imagegateway_server.observability.process_age import seconds_since_launch
from imagegateway_server.observability.request_log import RequestLogWriter
from imagegateway_server.providers.kit.model_aliases import load_model_aliases
from imagegateway_server.providers.kit.retired_models import load_retired_models
from imagegateway_server.providers.registry import canonical_provider, default_registry
from imagegateway_server.routing.cache import ResponseCache
from imagegateway_server.routing.config_service import ConfigService
from imagegateway_server.routing.credentials import VaultCredentialResolver
from imagegateway_server.routing.model_successors import ModelSuccessors
from imagegateway_server.routing.router import Router
from imagegateway_server.security.api_keys import ApiKeyService
from imagegateway_server.security.ssrf_transport import guarded_client_factory
from imagegateway_server.security.tls import ServerTls
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.vault import load_vault
from imagegateway_server.security.virtual_keys import VirtualKeyService
from imagegateway_server.settings import Settings
from imagegateway_server.state.changes import RecordKind
from imagegateway_server.state.factory import BackendHealth, open_kept_images, open_state
from imagegateway_server.storage.factory import open_store
from imagegateway_server.storage.kept_images import DEFAULT_MAX_IMAGE_BYTES, KEEPABLE_TYPES, ImageKeeper, is_log_id
from imagegateway_server.storage.reachability import DatabaseWatch

log = logging.getLogger(__name__)


class EmbeddedUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the process has one shutdown coordinator."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def keepable_image(log_id: str, data: bytes, mime_type: str) -> bool:
    """The on-disk keeper's rule, for kept images held elsewhere (Redis)."""
    return mime_type in KEEPABLE_TYPES and is_log_id(log_id) and 0 < len(data) <= DEFAULT_MAX_IMAGE_BYTES


def _split_addr(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


class GatewayProcess:
    """Owns every long-lived part of a gateway process. ``start`` then ``stop``, once each."""

    def __init__(self, settings: Settings, *, reuse_port: bool = False) -> None:
        self.settings = settings
        # A worker of ``imagegw serve --workers N``: its siblings listen on the same ports (SO_REUSEPORT).
        self.reuse_port = reuse_port
        self.metrics = Metrics()
        self.grpc_port = 0
        self.http_port = 0
        self.metrics_port = 0
        self.bootstrap_admin_key: str | None = None
        self._stack = contextlib.AsyncExitStack()
        self._grpc_server: grpc.aio.Server | None = None
        self._health: DrainingHealthServicer | None = None
        self._uvicorn: EmbeddedUvicorn | None = None
        self._uvicorn_task: asyncio.Task[None] | None = None
        self._metrics_server: Any = None
        self._tls: ServerTls | None = None
        self._gateway: Gateway | None = None
        self.state_health: BackendHealth | None = None
        self.database_health: DatabaseWatch | None = None

    async def start(self) -> None:
        began = time.monotonic()
        settings = self.settings
        # Chosen first: an IMAGEGW_REDIS_URL that cannot be one stops the start with one line.
        backends = await open_state(
            settings,
            on_breaker_transition=lambda identity, circuit: self.metrics.circuit_transitions.labels(
                identity.provider, circuit.value
            ).inc(),
        )
        self._stack.push_async_callback(backends.close)
        self.breakers = backends.breakers
        self.state_health = backends.health
        if backends.health is not None:
            gauge = self.metrics.state_backend_up.labels("redis")
            gauge.set(1 if backends.health.up else 0)
            backends.health.add_listener(lambda up: gauge.set(1 if up else 0))
        # Checked before anything opens: bad certificate files stop the start with one clear line.
        self._tls = ServerTls.from_files(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
        data_dir = settings.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)

        store = await open_store(settings.effective_database_url)
        self._stack.push_async_callback(store.close)
        self.database_health = DatabaseWatch(store)
        await self.database_health.start()
        self._stack.push_async_callback(self.database_health.close)
        vault, generated = load_vault(settings.master_key or None, settings.previous_master_keys, data_dir)
        if generated:
            log.warning(
                "generated a new master key in %s; back it up or set IMAGEGW_MASTER_KEY", data_dir / "master.key"
            )
        host_policy = UpstreamHostPolicy(settings.allowed_upstream_hosts)

        changes = backends.changes
        # While the database is unreachable, what was read within this many seconds is still used.
        stale = settings.stale_config_max_age_seconds
        api_keys = ApiKeyService(
            store, stale_max_age=stale, on_change=lambda key_id: changes.publish(RecordKind.API_KEY, key_id)
        )
        changes.subscribe(RecordKind.API_KEY, api_keys.evict)
        self.bootstrap_admin_key = await api_keys.ensure_bootstrap_admin(settings.admin_key or None)
        if self.bootstrap_admin_key:
            # Printed once, to the terminal, never to the log: by the one process of the fleet that made it.
            print(
                f"Created the first admin API key (shown once): {self.bootstrap_admin_key}", file=sys.stderr, flush=True
            )
        elif not settings.admin_key.strip():
            # A replica that lost the race to an empty database, or any later start: nothing secret to say.
            log.info(
                "IMAGEGW_ADMIN_KEY is unset and gateway API keys exist already, so no admin key was made (the "
                "first one was printed once, by the start that made it). For a new admin key, run "
                "`imagegw api-keys create --name NAME --scope admin` with an admin key, or set "
                "IMAGEGW_ADMIN_KEY to a secret of your choosing and restart"
            )
        virtual_keys = VirtualKeyService(
            store,
            vault,
            canonicalize_provider=canonical_provider,
            stale_max_age=stale,
            on_change=lambda vk_id: changes.publish(RecordKind.VIRTUAL_KEY, vk_id),
        )
        changes.subscribe(RecordKind.VIRTUAL_KEY, virtual_keys.evict)
        configs = ConfigService(
            store,
            vault,
            canonical_provider=canonical_provider,
            host_policy=host_policy,
            virtual_key_exists=virtual_keys.get,
            max_depth=settings.max_config_depth,
            max_targets=settings.max_targets,
            stale_max_age=stale,
            on_change=lambda config_id: changes.publish(RecordKind.CONFIG, config_id),
        )
        changes.subscribe(RecordKind.CONFIG, configs.evict)
        registry = default_registry(
            client_factory=guarded_client_factory(host_policy),
            model_aliases=load_model_aliases(settings.model_aliases_file, canonical_provider=canonical_provider),
        )
        self._stack.push_async_callback(registry.aclose)
        self.metrics.watch_circuits(lambda: [(p, m, state.value) for p, m, state in self.breakers.states()])
        router = Router(
            registry.get,
            VaultCredentialResolver(virtual_keys),
            default_timeout=settings.upstream_timeout_seconds,
            breakers=self.breakers,
            successors=ModelSuccessors(
                load_retired_models(settings.retired_models_file, canonical_provider=canonical_provider),
                memory_seconds=settings.retired_model_memory_seconds,
                memory=backends.gone_models,
            ),
        )
        log_writer = RequestLogWriter(store, max_queue=settings.request_log_buffer)
        self.metrics.watch_request_log(
            dropped=lambda: log_writer.dropped,
            pending=lambda: log_writer.pending,
            # Only the PostgreSQL store can be unreachable; SQLite is a file of this process.
            database_up=lambda: bool(getattr(store, "reachable", True)),
        )
        await log_writer.start()
        self._stack.push_async_callback(log_writer.close)
        retention = LogRetention(
            store,
            max_age=timedelta(days=settings.log_retention_days) if settings.log_retention_days else None,
            max_records=settings.log_retention_max_records or None,
        )
        await retention.start()
        self._stack.push_async_callback(retention.close)
        # Read once: requests only look prices up in memory.
        prices = load_price_table(settings.price_table_file or None)
        self.metrics.set_known_models(prices.models())
        log.info("price table %s loaded", prices.version)
        cache = ResponseCache(
            backends.cache_store,
            VaultCredentialResolver(virtual_keys),
            shared_flights=backends.flights,
            concurrent_lookup=backends.health is not None,
        )
        limiter = Limiter(
            backends.limit_counters,
            prices,
            virtual_key_limits=virtual_keys.limits,
            on_refusal=self.metrics.count_limit_refusal,
        )
        # Today's and this month's spend per key, from the request log (again whenever Redis comes back empty).
        await limiter.restore(store)
        spans = start_tracing(os.environ)
        if spans is not None:
            self._stack.callback(spans.shutdown)  # flushes the spans still queued
        gateway = Gateway(
            router,
            configs,
            log_writer,
            self.metrics,
            host_policy,
            cache=cache,
            prices=prices,
            redact_prompts=settings.redact_prompts,
            limiter=limiter,
            input_limits=settings.input_limits,
            spans=spans,
        )
        self._gateway = gateway
        authenticator = Authenticator(api_keys, transport="grpc", metrics=self.metrics)
        rest_authenticator = Authenticator(api_keys, transport="rest", metrics=self.metrics)

        # One budget for the uploads of both front ends: IMAGEGW_UPLOAD_MEMORY_BYTES bounds the process.
        upload_budget = UploadBudget(settings.input_limits.upload_memory_bytes)
        self.metrics.watch_upload_memory(lambda: upload_budget.used)

        self.metrics.init_grpc_methods(SERVICE_NAME, grpc_methods())
        await self._start_grpc(
            gateway, configs, virtual_keys, api_keys, store, host_policy, authenticator, upload_budget
        )
        keeper = (
            open_kept_images(backends, ImageKeeper(data_dir / "kept-images"), keepable_image)
            if settings.keep_images
            else None
        )
        dashboard = Dashboard(
            store,
            rest_authenticator,
            sessions=backends.sessions,
            image_keeper=keeper,
            target_health=breaker_health(self.breakers),
        )
        await self._start_http(
            RestShim(
                gateway,
                rest_authenticator,
                self.metrics,
                dashboard,
                keeper,
                input_limits=settings.input_limits,
                health_details=self._health_details,
                upload_budget=upload_budget,
            )
        )
        self._start_metrics()
        log.info(
            "imagegateway serving",
            extra={
                "grpc_port": self.grpc_port,
                "http_port": self.http_port,
                "metrics_port": self.metrics_port,
                "event_loop": loop_name(asyncio.get_running_loop()),
                # Where a slow start went: this start (backends, ports) and the process's whole age
                # (the rest is the interpreter loading the server).
                "start_seconds": round(time.monotonic() - began, 3),
                "since_launch_seconds": seconds_since_launch(),
            },
        )

    def _health_details(self) -> dict[str, object]:
        """What /health and gRPC health Check answers add to their status: whether the database answers
        and whether the shared state backend is in use right now (no entry when state is kept in
        process). Neither turns the status away from serving: the replica serves on without them."""
        details: dict[str, object] = {}
        if self.database_health is not None:
            details["database"] = self.database_health.status()
        if self.state_health is not None:
            details["state_backend"] = self.state_health.status()
        return details

    async def _start_grpc(
        self,
        gateway: Gateway,
        configs: ConfigService,
        virtual_keys: VirtualKeyService,
        api_keys: ApiKeyService,
        store: Any,
        host_policy: UpstreamHostPolicy,
        authenticator: Authenticator,
        upload_budget: UploadBudget,
    ) -> None:
        servicer = ImageGatewayService(
            gateway,
            configs,
            virtual_keys,
            api_keys,
            store,
            host_policy,
            breakers=self.breakers,
            input_limits=self.settings.input_limits,
            upload_budget=upload_budget,
        )
        server, self._health = build_grpc_server(
            servicer,
            GatewayInterceptor(authenticator, self.metrics),
            max_message_bytes=self.settings.max_message_bytes,
            reuse_port=self.reuse_port,
            health_details=self._health_details,
        )
        host, port = _split_addr(self.settings.grpc_addr)
        if self._tls is not None:
            self.grpc_port = server.add_secure_port(f"{host}:{port}", self._tls.grpc_credentials())
        else:
            self.grpc_port = server.add_insecure_port(f"{host}:{port}")
        if self.grpc_port == 0:
            raise OSError(f"cannot listen on {self.settings.grpc_addr}")
        await server.start()
        self._grpc_server = server
        await mark_serving(self._health)

    async def _start_http(self, shim: RestShim) -> None:
        host, port = _split_addr(self.settings.http_addr)
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets that say so, and
        # without it every response waits ~40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
        self.http_port = sock.getsockname()[1]
        # uvicorn takes whole seconds: round up, since int(0.5) or None would have meant waiting forever.
        # httptools (a C parser, with our cap on the head) costs a fraction of h11 per request;
        # loop="none": the process owns the loop (uvloop unless IMAGEGW_EVENT_LOOP says otherwise).
        config = uvicorn.Config(
            shim.app(),
            http=BoundedHttpToolsProtocol,
            loop="none",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=math.ceil(self.settings.shutdown_grace_seconds),
            timeout_keep_alive=self.settings.http_keepalive_seconds,
            server_header=False,
            date_header=False,
            **(self._tls.uvicorn_options() if self._tls else {}),
        )
        self._uvicorn = EmbeddedUvicorn(config)
        self._uvicorn_task = asyncio.create_task(self._uvicorn.serve(sockets=[sock]))
        while not self._uvicorn.started:
            if self._uvicorn_task.done():
                self._uvicorn_task.result()
            await asyncio.sleep(0.01)

    def _start_metrics(self) -> None:
        host, port = _split_addr(self.settings.metrics_addr)
        server, _thread = start_http_server(port, addr=host, registry=self.metrics.registry)
        self._metrics_server = server
        self.metrics_port = server.server_port

    async def stop(self) -> None:
        """Stops taking work, lets in-flight requests finish within the grace period, flushes the log."""
        grace = self.settings.shutdown_grace_seconds
        if self._gateway is not None:
            self._gateway.shutting_down = True
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        waits = []
        if self._uvicorn is not None and self._uvicorn_task is not None:
            self._uvicorn.should_exit = True
            waits.append(self._uvicorn_task)
        if self._grpc_server is not None:
            waits.append(asyncio.ensure_future(self._grpc_server.stop(grace)))
        if waits:
            await asyncio.gather(*waits, return_exceptions=True)
        await self._stack.aclose()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        log.info("imagegateway stopped")


async def run(
    settings: Settings, *, reuse_port: bool = False, on_started: Callable[[GatewayProcess], None] | None = None
) -> None:
    """Serves until SIGTERM or SIGINT, then shuts down gracefully; ``on_started`` is told once it serves."""
    process = GatewayProcess(settings, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await process.start()
    scheme = "https" if settings.tls_cert_file else "http"
    print(
        f"imagegw serving gRPC on {settings.grpc_addr.rsplit(':', 1)[0]}:{process.grpc_port}, "
        f"REST on {scheme}://{settings.http_addr.rsplit(':', 1)[0]}:{process.http_port}/v1, "
        f"metrics on :{process.metrics_port}/metrics",
        file=sys.stderr,
        flush=True,
    )
    if on_started is not None:
        on_started(process)
    try:
        await stop.wait()
    finally:
        log.info("shutting down", extra={"grace_seconds": settings.shutdown_grace_seconds})
        await process.stop()


def serve(
    settings: Settings, *, reuse_port: bool = False, on_started: Callable[[GatewayProcess], None] | None = None
) -> int:
    """The ``imagegw serve`` entry point (and each worker's); returns the process exit code."""
    configure_logging(settings.log_level, settings.log_format)
    tune_malloc_for_large_buffers()
    tune_garbage_collector()
    try:
        with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
            runner.run(run(settings, reuse_port=reuse_port, on_started=on_started))
    except (OSError, ValueError) as exc:  # ports, files, keys: one line, no traceback
        log.error("cannot start: %s", exc)
        return 1
    return 0
