"""Maps ``imagegateway.v1`` config messages to the routing-config model and back.

``config_from_proto`` keeps presence exactly as the message has it (see ``domain/routing_config``),
and NaN or infinity where a message carries them, for the compiler to refuse naming the field.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from google.protobuf import struct_pb2

from imagegateway.v1 import configs_pb2
from imagegateway_server.domain.config_document import config_from_document
from imagegateway_server.domain.routing_config import (
    CacheSettings,
    CircuitBreakerSettings,
    Condition,
    JsonObject,
    JsonValue,
    RetrySettings,
    RoutingConfig,
    Strategy,
)
from imagegateway_server.storage.records import ConfigRecord

# gRPC inline configs are cached by their wire form, up to this size and this many (see inline_config).
MAX_CACHED_MESSAGE_BYTES = 16 * 1024
INLINE_CACHE_ENTRIES = 256

_PLACEHOLDER = RoutingConfig()


@dataclasses.dataclass(slots=True)
class _TargetBudget:
    """Targets a conversion may still make before the compiler would refuse the config anyway."""

    remaining: int
    spent: bool = False


def config_from_proto(message: configs_pb2.RoutingConfig, *, max_targets: int | None = None) -> RoutingConfig:
    """The model of a RoutingConfig message.

    A message can hold millions of targets in its size limit, while the compiler refuses more than
    ``max_targets`` in all at the first target past that count (routing/plan.py ``_check_shape``,
    which counts each config's targets before walking into them). With ``max_targets``, converting
    stops there: the config where the count passes the bound keeps just enough targets to pass it,
    and targets after it in that walk become empty placeholders, so compiling refuses the model
    with the very same error as the message while a huge message costs no more than a small one.
    Give the bound the compiler uses, or a larger one.
    """
    budget = None if max_targets is None else _TargetBudget(max_targets)
    return _config(message, budget)


def _config(message: configs_pb2.RoutingConfig, budget: _TargetBudget | None) -> RoutingConfig:
    children: Any = message.targets
    if budget is not None:
        budget.remaining -= len(children)
        if budget.remaining < 0 and not budget.spent:
            budget.spent = True
            children = children[: len(children) + budget.remaining + 1]
    targets = tuple(
        _PLACEHOLDER if budget is not None and budget.spent else _config(child, budget) for child in children
    )
    return RoutingConfig(
        strategy=_strategy(message.strategy) if message.HasField("strategy") else None,
        targets=targets,
        name=message.name,
        provider=message.provider,
        api_key=message.api_key,
        virtual_key=message.virtual_key,
        override_params=_struct(message.override_params) if message.HasField("override_params") else None,
        weight=message.weight if message.HasField("weight") else None,
        custom_host=message.custom_host,
        retry=_retry(message.retry) if message.HasField("retry") else None,
        request_timeout=message.request_timeout if message.HasField("request_timeout") else None,
        cache=_cache(message.cache) if message.HasField("cache") else None,
        forward_headers=tuple(message.forward_headers),
        circuit_breaker=_breaker(message.circuit_breaker) if message.HasField("circuit_breaker") else None,
        strict=message.strict if message.HasField("strict") else None,
        model_successor=message.model_successor if message.HasField("model_successor") else None,
        resource_name=message.resource_name,
        deployment_id=message.deployment_id,
        api_version=message.api_version,
        azure_ad_token=message.azure_ad_token,
        vertex_project_id=message.vertex_project_id,
        vertex_region=message.vertex_region,
        vertex_service_account_json=message.vertex_service_account_json,
        aws_access_key_id=message.aws_access_key_id,
        aws_secret_access_key=message.aws_secret_access_key,
        aws_session_token=message.aws_session_token,
        aws_region=message.aws_region,
    )


def _strategy(message: configs_pb2.Strategy) -> Strategy:
    return Strategy(
        mode=message.mode,
        on_status_codes=tuple(message.on_status_codes),
        conditions=tuple(
            Condition(query=_struct(c.query) if c.HasField("query") else None, then=c.then) for c in message.conditions
        ),
        default=message.default,
    )


def _retry(message: configs_pb2.RetrySettings) -> RetrySettings:
    return RetrySettings(
        attempts=message.attempts,
        on_status_codes=tuple(message.on_status_codes),
        use_retry_after_header=(message.use_retry_after_header if message.HasField("use_retry_after_header") else None),
    )


def _cache(message: configs_pb2.CacheSettings) -> CacheSettings:
    return CacheSettings(
        mode=message.mode,
        max_age=message.max_age if message.HasField("max_age") else None,
        include_seeded_and_multi_image=(
            message.include_seeded_and_multi_image if message.HasField("include_seeded_and_multi_image") else None
        ),
    )


def _breaker(message: configs_pb2.CircuitBreakerSettings) -> CircuitBreakerSettings:
    return CircuitBreakerSettings(
        consecutive_failures=message.consecutive_failures,
        failure_rate=message.failure_rate,
        window=message.window,
        cooldown_seconds=message.cooldown_seconds,
    )


def _struct(message: struct_pb2.Struct) -> dict[str, Any]:
    # Not json_format.MessageToDict: that refuses NaN and infinity, which must reach the compiler's checks.
    return {key: _value(item) for key, item in message.fields.items()}


def _value(message: struct_pb2.Value) -> Any:
    kind = message.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(message.struct_value)
    if kind == "list_value":
        return [_value(item) for item in message.list_value.values]
    if kind == "number_value":
        return message.number_value
    if kind == "string_value":
        return message.string_value
    if kind == "bool_value":
        return message.bool_value
    return None  # null_value, or no kind at all


def config_to_proto(config: RoutingConfig) -> configs_pb2.RoutingConfig:
    """The RoutingConfig message of a model (``api_key`` included if the model has one)."""
    message = configs_pb2.RoutingConfig(
        targets=[config_to_proto(child) for child in config.targets],
        name=config.name,
        provider=config.provider,
        api_key=config.api_key,
        virtual_key=config.virtual_key,
        custom_host=config.custom_host,
        forward_headers=config.forward_headers,
        resource_name=config.resource_name,
        deployment_id=config.deployment_id,
        api_version=config.api_version,
        azure_ad_token=config.azure_ad_token,
        vertex_project_id=config.vertex_project_id,
        vertex_region=config.vertex_region,
        vertex_service_account_json=config.vertex_service_account_json,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=config.aws_secret_access_key,
        aws_session_token=config.aws_session_token,
        aws_region=config.aws_region,
    )
    if config.strategy is not None:
        strategy = config.strategy
        message.strategy.SetInParent()
        message.strategy.mode = strategy.mode
        message.strategy.on_status_codes.extend(strategy.on_status_codes)
        message.strategy.default = strategy.default
        for condition in strategy.conditions:
            added = message.strategy.conditions.add(then=condition.then)
            if condition.query is not None:
                _fill_struct(added.query, condition.query)
    if config.override_params is not None:
        _fill_struct(message.override_params, config.override_params)
    if config.weight is not None:
        message.weight = config.weight
    if config.retry is not None:
        message.retry.SetInParent()
        message.retry.attempts = config.retry.attempts
        message.retry.on_status_codes.extend(config.retry.on_status_codes)
        if config.retry.use_retry_after_header is not None:
            message.retry.use_retry_after_header = config.retry.use_retry_after_header
    if config.request_timeout is not None:
        message.request_timeout = config.request_timeout
    if config.cache is not None:
        message.cache.SetInParent()
        message.cache.mode = config.cache.mode
        if config.cache.max_age is not None:
            message.cache.max_age = config.cache.max_age
        if config.cache.include_seeded_and_multi_image is not None:
            message.cache.include_seeded_and_multi_image = config.cache.include_seeded_and_multi_image
    if config.circuit_breaker is not None:
        breaker = config.circuit_breaker
        message.circuit_breaker.SetInParent()
        message.circuit_breaker.consecutive_failures = breaker.consecutive_failures
        message.circuit_breaker.failure_rate = breaker.failure_rate
        message.circuit_breaker.window = breaker.window
        message.circuit_breaker.cooldown_seconds = breaker.cooldown_seconds
    if config.strict is not None:
        message.strict = config.strict
    if config.model_successor is not None:
        message.model_successor = config.model_successor
    return message


def _fill_struct(message: struct_pb2.Struct, value: JsonObject) -> None:
    message.SetInParent()  # an empty object is still a present field
    for key, item in value.items():
        _fill_value(message.fields[key], item)


def _fill_value(message: struct_pb2.Value, value: JsonValue) -> None:
    if value is None:
        message.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        message.bool_value = value
    elif isinstance(value, int | float):
        message.number_value = value
    elif isinstance(value, str):
        message.string_value = value
    elif isinstance(value, tuple):
        message.list_value.SetInParent()
        for item in value:
            _fill_value(message.list_value.values.add(), item)
    else:
        _fill_struct(message.struct_value, value)


def inline_config(message: configs_pb2.RoutingConfig, *, max_targets: int | None = None) -> RoutingConfig:
    """``config_from_proto`` for a config sent with a request: a message sent before (the same bytes)
    gives the same model object back, so the core finds the plan it compiled for it."""
    wire = message.SerializeToString(deterministic=True)
    if len(wire) > MAX_CACHED_MESSAGE_BYTES:
        return config_from_proto(message, max_targets=max_targets)
    return _cached_inline_config(wire, max_targets)


@functools.lru_cache(maxsize=INLINE_CACHE_ENTRIES)
def _cached_inline_config(wire: bytes, max_targets: int | None) -> RoutingConfig:
    # Keyed by the deterministic wire form: equal bytes are an equal message, NaN payloads and all.
    return config_from_proto(configs_pb2.RoutingConfig.FromString(wire), max_targets=max_targets)


def saved_config_proto(record: ConfigRecord) -> configs_pb2.Config:
    """The API view of a saved config (its document holds no api_key values)."""
    message = configs_pb2.Config(
        id=record.id,
        name=record.name,
        version=record.version,
        config=config_to_proto(config_from_document(json.loads(record.document))),
    )
    message.create_time.FromDatetime(record.create_time)
    message.first_create_time.FromDatetime(record.first_create_time)
    return message
