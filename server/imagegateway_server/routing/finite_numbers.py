"""Refuses NaN and infinity anywhere in a routing config, naming the field.

JSON has neither, so a config holding one can be neither stored (as JSON) nor shown. A config that
arrives over gRPC can carry them in any double field and in ``google.protobuf.Value`` numbers, also
in parts the chosen strategy never reads (``conditions`` of a fallback): checked everywhere, once,
after the config is compiled (so a strategy's own checks name the problem first).

The walk visits fields in proto field-number order, as the first version (over the message) did,
so the first bad number found is the same one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import NoReturn

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.routing_config import CircuitBreakerSettings, JsonValue, RoutingConfig


def refuse_non_finite_numbers(config: RoutingConfig, path: str = "") -> None:
    """Raises InvalidArgument naming the first NaN or infinite number found in ``config``."""
    if config.strategy is not None:
        strategy_path = _join(path, "strategy")
        for index, condition in enumerate(config.strategy.conditions):
            if condition.query is not None:
                _check_json(condition.query, f"{strategy_path}.conditions[{index}].query")
    for index, child in enumerate(config.targets):
        refuse_non_finite_numbers(child, f"{_join(path, 'targets')}[{index}]")
    if config.override_params is not None:
        _check_json(config.override_params, _join(path, "override_params"))
    if config.weight is not None:
        _check(config.weight, _join(path, "weight"))
    if config.circuit_breaker is not None:
        _check_breaker(config.circuit_breaker, _join(path, "circuit_breaker"))


def is_finite_json(value: JsonValue) -> bool:
    """Whether every number in a JSON value (a Struct field of the config) is finite."""
    return _non_finite_at(value, "") is None


def _check_breaker(breaker: CircuitBreakerSettings, path: str) -> None:
    _check(breaker.failure_rate, f"{path}.failure_rate")
    _check(breaker.cooldown_seconds, f"{path}.cooldown_seconds")


def _check_json(value: JsonValue, path: str) -> None:
    found = _non_finite_at(value, path)
    if found is not None:
        _refuse(found)


def _non_finite_at(value: JsonValue, path: str) -> str | None:
    """The path of the first NaN or infinity in ``value``, or None."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if (found := _non_finite_at(item, _join(path, key))) is not None:
                return found
    elif isinstance(value, tuple):
        for index, item in enumerate(value):
            if (found := _non_finite_at(item, f"{path}[{index}]")) is not None:
                return found
    elif isinstance(value, float) and not math.isfinite(value):
        return path
    return None


def _check(number: float, path: str) -> None:
    if not math.isfinite(number):
        _refuse(path)


def _refuse(path: str) -> NoReturn:
    raise InvalidArgument("must be a finite number (JSON has no NaN or Infinity)", param=path)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
