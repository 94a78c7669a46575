"""The stored form of a routing config: a JSON document, written and read without protobuf.

Saved configs were first stored as ``json_format.MessageToDict(config, preserving_proto_field_name=True)``
and existing databases hold exactly that, so ``config_document`` writes the same dict: fields in
proto field-number order, only the fields a proto would list (set message fields, even empty; set
``optional`` scalars, even zero; other scalars and repeated fields when not empty), 64-bit integers
(``request_timeout``, ``cache.max_age``) as decimal strings, doubles as floats. Only the key order
inside ``override_params`` and ``query`` objects may differ, and it never meant anything: protobuf's
map order is a hash order that changes from process to process.

``config_from_document`` reads such a document back. Stored documents were validated before they
were written, so a document that does not fit is a fault of the store (ValueError), not of a caller.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.routing_config import (
    CREDENTIAL_FIELDS,
    CacheSettings,
    CircuitBreakerSettings,
    Condition,
    JsonObject,
    JsonValue,
    RetrySettings,
    RoutingConfig,
    Strategy,
)

_T = TypeVar("_T")
# A provider's typed credential fields (api_key, the first of them, has its own place in a target).
_TYPED_CREDENTIAL_FIELDS = tuple(name for name in CREDENTIAL_FIELDS if name != API_KEY)


def config_document(config: RoutingConfig) -> dict[str, Any]:
    """The config as its stored JSON object (what protobuf's JSON mapping wrote; see the module doc)."""
    out: dict[str, Any] = {}
    if config.strategy is not None:
        out["strategy"] = _strategy_document(config.strategy)
    if config.targets:
        out["targets"] = [config_document(child) for child in config.targets]
    _put_text(out, "name", config.name)
    _put_text(out, "provider", config.provider)
    _put_text(out, "api_key", config.api_key)
    _put_text(out, "virtual_key", config.virtual_key)
    if config.override_params is not None:
        out["override_params"] = _struct_document(config.override_params)
    if config.weight is not None:
        out["weight"] = float(config.weight)
    _put_text(out, "custom_host", config.custom_host)
    if config.retry is not None:
        out["retry"] = _retry_document(config.retry)
    if config.request_timeout is not None:
        out["request_timeout"] = str(config.request_timeout)
    if config.cache is not None:
        out["cache"] = _cache_document(config.cache)
    if config.forward_headers:
        out["forward_headers"] = list(config.forward_headers)
    if config.circuit_breaker is not None:
        out["circuit_breaker"] = _breaker_document(config.circuit_breaker)
    if config.strict is not None:
        out["strict"] = config.strict
    if config.model_successor is not None:
        out["model_successor"] = config.model_successor
    for name in _TYPED_CREDENTIAL_FIELDS:
        _put_text(out, name, getattr(config, name))
    return out


def _put_text(out: dict[str, Any], name: str, value: str) -> None:
    if value:
        out[name] = value


def _put_number(out: dict[str, Any], name: str, value: float) -> None:
    # A proto3 scalar without presence is listed when it is not zero; -0.0 is not zero to protobuf.
    if value or math.copysign(1.0, value) < 0:
        out[name] = value


def _strategy_document(strategy: Strategy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_text(out, "mode", strategy.mode)
    if strategy.on_status_codes:
        out["on_status_codes"] = list(strategy.on_status_codes)
    if strategy.conditions:
        out["conditions"] = [_condition_document(condition) for condition in strategy.conditions]
    _put_text(out, "default", strategy.default)
    return out


def _condition_document(condition: Condition) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if condition.query is not None:
        out["query"] = _struct_document(condition.query)
    _put_text(out, "then", condition.then)
    return out


def _struct_document(value: JsonObject) -> dict[str, Any]:
    # A Struct holds doubles: an integer read from JSON comes back as a float, as protobuf wrote it.
    return {key: _struct_value(item) for key, item in value.items()}


def _struct_value(value: JsonValue) -> Any:
    if isinstance(value, Mapping):
        return _struct_document(value)
    if isinstance(value, tuple):
        return [_struct_value(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _retry_document(retry: RetrySettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_number(out, "attempts", retry.attempts)
    if retry.on_status_codes:
        out["on_status_codes"] = list(retry.on_status_codes)
    if retry.use_retry_after_header is not None:
        out["use_retry_after_header"] = retry.use_retry_after_header
    return out


def _cache_document(cache: CacheSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_text(out, "mode", cache.mode)
    if cache.max_age is not None:
        out["max_age"] = str(cache.max_age)
    if cache.include_seeded_and_multi_image is not None:
        out["include_seeded_and_multi_image"] = cache.include_seeded_and_multi_image
    return out


def _breaker_document(breaker: CircuitBreakerSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put_number(out, "consecutive_failures", breaker.consecutive_failures)
    _put_number(out, "failure_rate", float(breaker.failure_rate))
    _put_number(out, "window", breaker.window)
    _put_number(out, "cooldown_seconds", float(breaker.cooldown_seconds))
    return out


# Reading


class _Reader:
    """One stored object, read field by field; what is left over at the end is an error."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ValueError(f"stored config document: {path or 'the document'} is not an object")
        self._fields = dict(value)
        self._path = path

    def _take(self, name: str, kind: type | tuple[type, ...], default: Any) -> Any:
        value = self._fields.pop(name, None)
        if value is None:
            return default
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise ValueError(f"stored config document: {self._field(name)} has the wrong type")
        return value

    def _field(self, name: str) -> str:
        return f"{self._path}.{name}" if self._path else name

    def text(self, name: str) -> str:
        return str(self._take(name, str, ""))

    def integer(self, name: str) -> int:
        return int(self._take(name, (int, str), 0))

    def optional_integer(self, name: str) -> int | None:
        value = self._take(name, (int, str), None)
        return None if value is None else int(value)

    def number(self, name: str) -> float:
        return float(self._take(name, (int, float), 0.0))

    def optional_number(self, name: str) -> float | None:
        value = self._take(name, (int, float), None)
        return None if value is None else float(value)

    def optional_flag(self, name: str) -> bool | None:
        value = self._take(name, bool, None)
        return None if value is None else bool(value)

    def integers(self, name: str) -> tuple[int, ...]:
        return tuple(int(item) for item in self._take(name, list, []))

    def texts(self, name: str) -> tuple[str, ...]:
        return tuple(str(item) for item in self._take(name, list, []))

    def struct(self, name: str) -> dict[str, Any] | None:
        value = self._take(name, dict, None)
        return None if value is None else {key: _struct_read(item) for key, item in value.items()}

    def message(self, name: str, read: Callable[[_Reader], _T]) -> _T | None:
        value = self._fields.pop(name, None)
        return None if value is None else self.nested(value, self._field(name), read)

    def messages(self, name: str, read: Callable[[_Reader], _T]) -> tuple[_T, ...]:
        items = self._take(name, list, [])
        return tuple(self.nested(item, f"{self._field(name)}[{i}]", read) for i, item in enumerate(items))

    @staticmethod
    def nested(value: Any, path: str, read: Callable[[_Reader], _T]) -> _T:
        reader = _Reader(value, path)
        result = read(reader)
        if reader._fields:
            raise ValueError(f"stored config document: unknown field {reader._field(next(iter(reader._fields)))}")
        return result


def config_from_document(document: Mapping[str, Any]) -> RoutingConfig:
    """Reads a stored document back into the model; ValueError if it is not one ``config_document`` writes."""
    return _Reader.nested(document, "", _read_config)


def _struct_read(value: Any) -> Any:
    # As protobuf parsed it: every number of a Struct is a double.
    if isinstance(value, dict):
        return {key: _struct_read(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_struct_read(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _read_config(reader: _Reader) -> RoutingConfig:
    return RoutingConfig(
        strategy=reader.message("strategy", _read_strategy),
        targets=reader.messages("targets", _read_config),
        name=reader.text("name"),
        provider=reader.text("provider"),
        api_key=reader.text("api_key"),
        virtual_key=reader.text("virtual_key"),
        override_params=reader.struct("override_params"),
        weight=reader.optional_number("weight"),
        custom_host=reader.text("custom_host"),
        retry=reader.message("retry", _read_retry),
        request_timeout=reader.optional_integer("request_timeout"),
        cache=reader.message("cache", _read_cache),
        forward_headers=reader.texts("forward_headers"),
        circuit_breaker=reader.message("circuit_breaker", _read_breaker),
        strict=reader.optional_flag("strict"),
        model_successor=reader.optional_flag("model_successor"),
        **{name: reader.text(name) for name in _TYPED_CREDENTIAL_FIELDS},
    )


def _read_strategy(reader: _Reader) -> Strategy:
    return Strategy(
        mode=reader.text("mode"),
        on_status_codes=reader.integers("on_status_codes"),
        conditions=reader.messages("conditions", _read_condition),
        default=reader.text("default"),
    )


def _read_condition(reader: _Reader) -> Condition:
    return Condition(query=reader.struct("query"), then=reader.text("then"))


def _read_retry(reader: _Reader) -> RetrySettings:
    return RetrySettings(
        attempts=reader.integer("attempts"),
        on_status_codes=reader.integers("on_status_codes"),
        use_retry_after_header=reader.optional_flag("use_retry_after_header"),
    )


def _read_cache(reader: _Reader) -> CacheSettings:
    return CacheSettings(
        mode=reader.text("mode"),
        max_age=reader.optional_integer("max_age"),
        include_seeded_and_multi_image=reader.optional_flag("include_seeded_and_multi_image"),
    )


def _read_breaker(reader: _Reader) -> CircuitBreakerSettings:
    return CircuitBreakerSettings(
        consecutive_failures=reader.integer("consecutive_failures"),
        failure_rate=reader.number("failure_rate"),
        window=reader.integer("window"),
        cooldown_seconds=reader.number("cooldown_seconds"),
    )
