"""The gRPC server of a gateway process: its options, the ImageGateway service, health and reflection.

Process wiring (``app.py``) asks for a server here and never touches generated code.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from imagegateway.v1 import service_pb2, service_pb2_grpc
from imagegateway_server.api.grpc_health import DrainingHealthServicer, HealthDetails
from imagegateway_server.api.grpc_interceptors import SERVICE_NAME, GatewayInterceptor
from imagegateway_server.api.grpc_service import ImageGatewayService

# go-grpc-middleware's grpc_type by (client streams, server streams); the interceptor labels calls the same.
_GRPC_TYPES = {
    (False, False): "unary",
    (False, True): "server_stream",
    (True, False): "client_stream",
    (True, True): "bidi_stream",
}


def grpc_methods() -> dict[str, str]:
    """Every ImageGateway method by name, with its kind ("unary", "server_stream", "client_stream" or
    "bidi_stream"), for the metrics."""
    service = service_pb2.DESCRIPTOR.services_by_name["ImageGateway"]
    return {m.name: _GRPC_TYPES[m.client_streaming, m.server_streaming] for m in service.methods}


def build_grpc_server(
    servicer: ImageGatewayService,
    interceptor: GatewayInterceptor,
    *,
    max_message_bytes: int,
    reuse_port: bool = False,
    health_details: HealthDetails | None = None,
) -> tuple[grpc.aio.Server, DrainingHealthServicer]:
    """A server (not yet bound or started) with the gateway service, health checking and reflection.

    ``reuse_port`` lets sibling worker processes listen on the same port (SO_REUSEPORT: the kernel
    spreads connections over them); off, binding a port that is already taken fails as it should.
    ``health_details`` is what health Check answers carry in their trailing metadata (grpc_health.py)."""
    server = grpc.aio.server(
        interceptors=[interceptor],
        options=[
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
            # Each stream is read ahead by at most 1 MiB, fixed: with BDP probing grpc widens a stream's
            # window by itself, and the chunks of uploads waiting for IMAGEGW_UPLOAD_MEMORY_BYTES piled
            # up in the transport instead of waiting with their client (32 uploads of 32 MiB: a peak
            # of 0.6-1.3 GB RSS, against about 490 MB so). 1 MiB per round trip still carries ~20 MB/s
            # per upload at 50 ms; responses are paced by the client's window, not this one.
            ("grpc.http2.bdp_probe", 0),
            ("grpc.http2.lookahead_bytes", 1024 * 1024),
            # Image calls are slow, so thousands may wait at once: grpc's defaults would start
            # refusing calls past 1,000 pending and cancel any left unrequested for 30 s.
            ("grpc.server.max_pending_requests", 100_000),
            ("grpc.server.max_pending_requests_hard_limit", 100_000),
            ("grpc.server_max_unrequested_time_in_server", 600),
        ],
    )
    service_pb2_grpc.add_ImageGatewayServicer_to_server(servicer, server)
    health = DrainingHealthServicer(health_details)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME), server
    )
    return server, health


async def mark_serving(health: DrainingHealthServicer) -> None:
    """Tells health checkers the process and the ImageGateway service are serving."""
    await health.set("", health_pb2.HealthCheckResponse.SERVING)
    await health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
