"""Offline config validation, shared by the server and ``imagegw configs validate``."""

from __future__ import annotations

from collections.abc import Iterable

from imagegateway_server.domain.routing_config import RoutingConfig
from imagegateway_server.providers.registry import canonical_provider, credential_schema
from imagegateway_server.routing.plan import MAX_DEPTH, MAX_TARGETS, Node, compile_plan
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy


def validate_config(
    config: RoutingConfig,
    allowed_hosts: Iterable[str] = (),
    *,
    max_depth: int = MAX_DEPTH,
    max_targets: int = MAX_TARGETS,
) -> Node:
    """Compiles the config (raising InvalidArgument with the field path) and returns its plan."""
    return compile_plan(
        config,
        canonical_provider=canonical_provider,
        host_policy=UpstreamHostPolicy(allowed_hosts),
        credential_schema=credential_schema,
        max_depth=max_depth,
        max_targets=max_targets,
    )
