"""The routing config: the one typed, immutable model both front ends parse into.

A config arrives as Portkey JSON (REST's ``x-portkey-config``, the CLI, stored documents) or as an
``imagegateway.v1.RoutingConfig`` message (gRPC); ``api/`` maps both to these classes, and the
routing code reads nothing else. The classes mirror ``protos/imagegateway/v1/configs.proto`` field
for field, presence included: a message field is None when absent, an ``optional`` scalar is None
when unset, a plain scalar is its zero value when unset (proto3 cannot tell), repeated fields are
tuples and ``google.protobuf.Struct`` fields are read-only mappings of plain JSON values.

Struct numbers are doubles in the proto, so they arrive here as floats, NaN and infinity included
(a gRPC message can carry them): the compiler refuses them naming the field, so nothing downstream
ever sees one. Equality is by value, as for any dataclass; note that it inherits Python's
``True == 1.0`` inside Struct values, so it is not a key for caching (see ``ConfigService.compile_inline``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

from imagegateway_server.domain.credentials import API_KEY

# The config fields that make up a target's inline credential, by the names the providers' schemas use.
CREDENTIAL_FIELDS = (
    API_KEY,
    "azure_ad_token",
    "resource_name",
    "deployment_id",
    "api_version",
    "vertex_project_id",
    "vertex_region",
    "vertex_service_account_json",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region",
)
# Those of them that are secrets whatever the provider: sealed at rest, never returned.
SECRET_CREDENTIAL_FIELDS = frozenset(
    {API_KEY, "azure_ad_token", "vertex_service_account_json", "aws_secret_access_key", "aws_session_token"}
)

# A value of a ``google.protobuf.Struct``, frozen: objects are read-only mappings, lists are tuples.
JsonValue: TypeAlias = "bool | int | float | str | tuple[JsonValue, ...] | Mapping[str, JsonValue] | None"
JsonObject: TypeAlias = Mapping[str, JsonValue]


def freeze_json(value: Any) -> JsonValue:
    """A JSON value (dicts, lists, scalars) as a deeply read-only one (mappings and tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: freeze_json(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(item) for item in value)
    scalar: JsonValue = value  # None, a bool, a number or a string
    return scalar


def thaw_json(value: JsonValue) -> Any:
    """A frozen JSON value as plain, new dicts and lists: what ``json.dumps`` and the request code take."""
    if isinstance(value, Mapping):
        return {key: thaw_json(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw_json(item) for item in value]
    return value


def _frozen_object(value: JsonObject | None) -> JsonObject | None:
    if value is None:
        return None
    frozen = freeze_json(value)
    assert isinstance(frozen, Mapping)  # a mapping freezes to a mapping
    return frozen


@dataclasses.dataclass(frozen=True, slots=True)
class Condition:
    """One rule of conditional routing: when ``query`` matches, use the target named ``then``."""

    # The query over metadata.* and params.*; None when absent (the compiler requires one).
    query: JsonObject | None = None
    then: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "query", _frozen_object(self.query))


@dataclasses.dataclass(frozen=True, slots=True)
class Strategy:
    """How a config picks among its targets."""

    mode: str = ""
    on_status_codes: tuple[int, ...] = ()
    conditions: tuple[Condition, ...] = ()
    default: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class RetrySettings:
    """Retries on one target."""

    attempts: int = 0
    on_status_codes: tuple[int, ...] = ()
    use_retry_after_header: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CacheSettings:
    """Response caching (``max_age`` in seconds)."""

    mode: str = ""
    max_age: int | None = None
    include_seeded_and_multi_image: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class CircuitBreakerSettings:
    """Circuit-breaker thresholds for a target and its children; 0 means the global default."""

    consecutive_failures: int = 0
    failure_rate: float = 0.0
    window: int = 0
    cooldown_seconds: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class RoutingConfig:
    """A routing config in Portkey's vocabulary; every target is itself a full config."""

    strategy: Strategy | None = None
    targets: tuple[RoutingConfig, ...] = ()
    name: str = ""
    provider: str = ""
    # A provider secret: kept out of reprs, sealed at rest by ConfigService.
    api_key: str = dataclasses.field(default="", repr=False)
    virtual_key: str = ""
    override_params: JsonObject | None = None
    weight: float | None = None
    custom_host: str = ""
    retry: RetrySettings | None = None
    request_timeout: int | None = None  # milliseconds
    cache: CacheSettings | None = None
    forward_headers: tuple[str, ...] = ()
    circuit_breaker: CircuitBreakerSettings | None = None
    strict: bool | None = None
    # False: never serve a retired model by its successor on this target (None: inherit; default true).
    model_successor: bool | None = None
    # Azure OpenAI's credential fields (``CREDENTIAL_FIELDS``); the token is a secret like ``api_key``.
    resource_name: str = ""
    deployment_id: str = ""
    api_version: str = ""
    azure_ad_token: str = dataclasses.field(default="", repr=False)
    # Vertex AI's credential fields; the service account key (its JSON text) is a secret.
    vertex_project_id: str = ""
    vertex_region: str = ""
    vertex_service_account_json: str = dataclasses.field(default="", repr=False)
    # Amazon Bedrock's credential fields; the secret key and the session token are secrets.
    aws_access_key_id: str = ""
    aws_secret_access_key: str = dataclasses.field(default="", repr=False)
    aws_session_token: str = dataclasses.field(default="", repr=False)
    aws_region: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "override_params", _frozen_object(self.override_params))

    def walk(self, path: str = "") -> Iterator[tuple[str, RoutingConfig]]:
        """This config and every target below it, depth first, each with its field path
        (``""`` for this one, then ``targets[0]``, ``targets[0].targets[1]``, ...)."""
        yield path, self
        for i, child in enumerate(self.targets):
            yield from child.walk(f"{path}.targets[{i}]" if path else f"targets[{i}]")

    def credential_fields(self) -> dict[str, str]:
        """This target's inline credential fields that are set, by name (the provider's schema checks them).

        The one place that knows which config fields make up a credential: a field added to the
        model for a provider's credential is added to ``CREDENTIAL_FIELDS`` too.
        """
        return {name: value for name in CREDENTIAL_FIELDS if (value := getattr(self, name))}

    def redacted(self, secret_names: frozenset[str] = SECRET_CREDENTIAL_FIELDS) -> RoutingConfig:
        """The same config with every credential field in ``secret_names`` removed, at every depth."""
        return self._with_fields(lambda path: dict.fromkeys(secret_names, ""), "")

    def with_credential_fields(self, fields: Mapping[str, Mapping[str, str]]) -> RoutingConfig:
        """The same config with credential fields set at the field paths ``fields`` names (see ``walk``)."""
        return self._with_fields(lambda path: fields.get(path, {}), "")

    def _with_fields(self, choose: Callable[[str], Mapping[str, str]], path: str) -> RoutingConfig:
        targets = tuple(
            child._with_fields(choose, f"{path}.targets[{i}]" if path else f"targets[{i}]")
            for i, child in enumerate(self.targets)
        )
        changes: dict[str, Any] = {name: value for name, value in choose(path).items() if name in CREDENTIAL_FIELDS}
        return dataclasses.replace(self, targets=targets, **changes)
