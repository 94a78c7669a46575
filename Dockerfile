# syntax=docker/dockerfile:1
# ImageGateway: a slim, non-root image. Build from the repository root:
#   docker build -t imagegateway .
# Stage 1 builds the wheel and installs it with its dependencies into a virtualenv;
# stage 2 copies only that virtualenv onto a clean slim base (no compiler, no pip cache, no sources).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
RUN python -m venv /opt/imagegateway \
 && /opt/imagegateway/bin/pip install --upgrade pip \
 && /opt/imagegateway/bin/pip install '.[otel]'

FROM python:3.11-slim-bookworm AS runtime
# A fixed, unprivileged uid so Kubernetes' runAsNonRoot can check it without a name lookup.
RUN groupadd --system --gid 10001 imagegw \
 && useradd --system --uid 10001 --gid imagegw --home-dir /var/lib/imagegw --create-home imagegw
COPY --from=build /opt/imagegateway /opt/imagegateway
ENV PATH=/opt/imagegateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IMAGEGW_GRPC_ADDR=0.0.0.0:50051 \
    IMAGEGW_HTTP_ADDR=0.0.0.0:8787 \
    IMAGEGW_METRICS_ADDR=0.0.0.0:9464 \
    IMAGEGW_DATA_DIR=/var/lib/imagegw
USER 10001:10001
WORKDIR /var/lib/imagegw
VOLUME ["/var/lib/imagegw"]
EXPOSE 50051 8787 9464
# The standard gRPC health service (grpc.health.v1), as Kubernetes' grpc probes ask it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["imagegw", "health-check", "--address", "127.0.0.1:50051"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["imagegw", "serve"]
