"""NaN and infinity are refused anywhere in a routing config, with the field named, before compiling.

gRPC configs can carry them (JSON cannot); found by the gRPC fuzzer: a NaN inside the conditions of a
non-conditional config passed compilation and then failed to serialise as a gateway fault.
"""

from __future__ import annotations

import math

import pytest

from imagegateway.v1 import configs_pb2
from imagegateway_server.api.config_proto import config_from_proto
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.finite_numbers import refuse_non_finite_numbers
from imagegateway_server.routing.plan import compile_plan
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy


def compile_config(config: configs_pb2.RoutingConfig) -> None:
    compile_plan(config_from_proto(config), canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(()))


def with_query_nan() -> configs_pb2.RoutingConfig:
    config = configs_pb2.RoutingConfig(virtual_key="vk")  # single mode: its conditions are never read
    condition = config.strategy.conditions.add(then="x")
    condition.query.update({"metadata.tier": {"$in": ["gold", 1.0]}})
    condition.query["metadata.tier"]["$in"][1] = math.nan
    return config


@pytest.mark.parametrize(
    ("build", "param"),
    [
        (with_query_nan, "strategy.conditions[0].query.metadata.tier.$in[1]"),
        (lambda: _override(math.inf), "targets[0].override_params"),  # named by the compiler's own check
        (lambda: _breaker(math.nan), "circuit_breaker.failure_rate"),
    ],
)
def test_a_non_finite_number_is_refused_naming_its_field(build, param) -> None:  # type: ignore[no-untyped-def]
    config = build()
    with pytest.raises(InvalidArgument) as raised:
        compile_config(config)
    assert (raised.value.param or "").startswith(param)


def test_finite_numbers_pass() -> None:
    config = _override(7.5)
    refuse_non_finite_numbers(config_from_proto(config))
    config.circuit_breaker.failure_rate = 0.5
    refuse_non_finite_numbers(config_from_proto(config))


def _override(value: float) -> configs_pb2.RoutingConfig:
    config = configs_pb2.RoutingConfig()
    config.strategy.mode = "fallback"
    target = config.targets.add(virtual_key="vk")
    target.override_params.update({"cfg_scale": value, "model": "sd"})
    config.targets.add(virtual_key="vk2")
    return config


def _breaker(value: float) -> configs_pb2.RoutingConfig:
    config = configs_pb2.RoutingConfig(virtual_key="vk")
    config.circuit_breaker.failure_rate = value
    return config
