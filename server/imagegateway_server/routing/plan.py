"""Compiles a routing config (domain/routing_config.py) into an immutable plan the router walks.

Everything knowable before a request runs is checked here, so a saved config cannot fail
half-way through a request for a reason we could have told its author.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.input_limits import DEFAULT_MAX_CONFIG_DEPTH, DEFAULT_MAX_TARGETS
from imagegateway_server.domain.request import KNOWN_PARAMS, coerce_param
from imagegateway_server.domain.routing_config import RetrySettings, RoutingConfig, Strategy, thaw_json
from imagegateway_server.providers.kit.spec import API_KEY_SCHEMA, CredentialSchema
from imagegateway_server.routing.breakers import overrides_from_config
from imagegateway_server.routing.cache_policy import CachePolicy, cache_policy
from imagegateway_server.routing.conditions import ConditionalRoutes, compile_conditional
from imagegateway_server.routing.finite_numbers import is_finite_json, refuse_non_finite_numbers
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.state.breakers import BreakerOverrides

MODES = ("single", "fallback", "loadbalance", "conditional")
DEFAULT_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_RETRY_ATTEMPTS = 5
MAX_DEPTH = DEFAULT_MAX_CONFIG_DEPTH
MAX_TARGETS = DEFAULT_MAX_TARGETS


@dataclasses.dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Extra attempts on one target and the statuses that earn one."""

    attempts: int
    on_status_codes: frozenset[int]
    use_retry_after_header: bool = True


@dataclasses.dataclass(frozen=True, slots=True)
class Leaf:
    """One concrete provider target. ``path`` is Portkey's ``config.targets[i]`` form.

    ``credential`` is the inline credential of a target without a virtual key, already checked
    against its provider's schema (None for a virtual-key target).
    """

    path: str
    provider: str
    virtual_key: str | None
    credential: Credential | None
    custom_host: str | None
    override_params: Mapping[str, Any]
    request_timeout_ms: int | None
    retry: RetryPolicy | None
    forward_headers: tuple[str, ...]
    name: str = ""
    # The cache policy this target inherited or set: whether, and how long, its answers are kept.
    cache: CachePolicy | None = None
    # Circuit-breaker thresholds this target inherited or set (None: the global defaults).
    circuit_breaker: BreakerOverrides | None = None
    # Refuse, rather than translate, parameters the model cannot take as given (inherited like custom_host).
    strict: bool = False
    # A retired model may be served by its successor (``routing.model_successors``); inherited.
    model_successor: bool = True

    def __repr__(self) -> str:
        return f"Leaf({self.path}, {self.provider}, vk={self.virtual_key})"


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    """A strategy over children: try in order (fallback), pick by weight (loadbalance) or by rule (conditional)."""

    path: str
    mode: str
    on_status_codes: frozenset[int] | None
    children: tuple[Node, ...]
    weights: tuple[float, ...]
    routes: ConditionalRoutes | None = None


Node = Leaf | Group


@dataclasses.dataclass(frozen=True, slots=True)
class _Lookups:
    """What compiling asks of the provider registry: a provider's canonical name and credential schema."""

    canonical_provider: Callable[[str], str]
    credential_schema: Callable[[str], CredentialSchema]


# What a group without a strategy block reads (it is then refused for having no mode).
_NO_STRATEGY = Strategy()


@dataclasses.dataclass(frozen=True, slots=True)
class _Inherited:
    custom_host: str | None = None
    request_timeout_ms: int | None = None
    retry: RetryPolicy | None = None
    forward_headers: tuple[str, ...] = ()
    override_params: Mapping[str, Any] = dataclasses.field(default_factory=lambda: MappingProxyType({}))
    cache: CachePolicy | None = None
    circuit_breaker: BreakerOverrides | None = None
    strict: bool = False
    model_successor: bool = True


def api_key_schema(provider: str) -> CredentialSchema:
    """The credential schema assumed when none is given: one secret ``api_key``, whatever the provider."""
    return API_KEY_SCHEMA


def compile_plan(
    config: RoutingConfig,
    *,
    canonical_provider: Callable[[str], str],
    host_policy: UpstreamHostPolicy,
    credential_schema: Callable[[str], CredentialSchema] = api_key_schema,
    root: str = "config",
    max_depth: int = MAX_DEPTH,
    max_targets: int = MAX_TARGETS,
) -> Node:
    """Validates ``config`` and returns its plan; raises InvalidArgument naming the field path.

    ``credential_schema`` gives a (canonical) provider's credential schema, which checks every
    inline credential. ``max_depth`` bounds how deep targets nest, ``max_targets`` how many targets
    the whole config has (IMAGEGW_MAX_CONFIG_DEPTH, IMAGEGW_MAX_TARGETS).
    """
    _check_shape(config, "", 0, max_depth, max_targets, [0])
    plan = _compile(config, root, "", _Inherited(), 0, _Lookups(canonical_provider, credential_schema), host_policy)
    # After compiling, so that the checks of the fields a strategy reads name the problem first.
    refuse_non_finite_numbers(config)
    return plan


def _check_shape(
    node: RoutingConfig, field_prefix: str, depth: int, max_depth: int, max_targets: int, seen: list[int]
) -> None:
    """Refuses a config nested too deep or with too many targets in all, before any other work on it
    (a per-group cap alone would let nesting multiply targets)."""
    if depth > max_depth:
        raise InvalidArgument(f"targets are nested deeper than {max_depth} levels", param=field_prefix or "targets")
    seen[0] += len(node.targets)
    if seen[0] > max_targets:
        raise InvalidArgument(
            f"a config may have at most {max_targets} targets in all", param=_field(field_prefix, "targets")
        )
    for i, child in enumerate(node.targets):
        _check_shape(child, _field(field_prefix, f"targets[{i}]"), depth + 1, max_depth, max_targets, seen)


def _field(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _compile(
    node: RoutingConfig,
    path: str,
    field_prefix: str,
    inherited: _Inherited,
    depth: int,
    lookups: _Lookups,
    host_policy: UpstreamHostPolicy,
) -> Node:
    here = _inherit(node, inherited, field_prefix, host_policy)
    if node.targets:
        return _compile_group(node, path, field_prefix, here, depth, lookups, host_policy)
    if node.strategy is not None and node.strategy.mode not in ("", "single"):
        raise InvalidArgument(f"mode {node.strategy.mode!r} needs targets", param=_field(field_prefix, "targets"))
    return _compile_leaf(node, path, field_prefix, here, lookups)


def _compile_group(
    node: RoutingConfig,
    path: str,
    field_prefix: str,
    here: _Inherited,
    depth: int,
    lookups: _Lookups,
    host_policy: UpstreamHostPolicy,
) -> Group:
    if node.provider or node.virtual_key or node.credential_fields():
        raise InvalidArgument(
            "a config with targets must not also set provider, virtual_key or api_key",
            param=_field(field_prefix, "targets"),
        )
    strategy = node.strategy or _NO_STRATEGY
    mode = strategy.mode
    mode_param = _field(field_prefix, "strategy.mode")
    if not mode:
        raise InvalidArgument(
            f"is required when targets are given; must be one of: {', '.join(MODES)}", param=mode_param
        )
    if mode not in MODES:
        raise InvalidArgument(f"must be one of: {', '.join(MODES)}; got {mode!r}", param=mode_param)
    if mode == "single" and len(node.targets) != 1:
        raise InvalidArgument("single mode takes exactly one target", param=_field(field_prefix, "targets"))
    on_status: frozenset[int] | None = None
    if strategy.on_status_codes:
        _check_statuses(strategy.on_status_codes, _field(field_prefix, "strategy.on_status_codes"))
        on_status = frozenset(strategy.on_status_codes)
    children = tuple(
        _compile(
            child, f"{path}.targets[{i}]", _field(field_prefix, f"targets[{i}]"), here, depth + 1, lookups, host_policy
        )
        for i, child in enumerate(node.targets)
    )
    weights = tuple(1.0 if child.weight is None else child.weight for child in node.targets)
    for i, weight in enumerate(weights):
        if weight < 0 or not math.isfinite(weight):
            raise InvalidArgument(
                "must be a finite number, not negative", param=_field(field_prefix, f"targets[{i}].weight")
            )
    if mode == "loadbalance" and not any(w > 0 for w in weights):
        raise InvalidArgument("at least one target needs a weight above zero", param=_field(field_prefix, "targets"))
    routes = None
    if mode == "conditional":
        routes = compile_conditional(strategy, [child.name for child in node.targets], field_prefix)
    elif strategy.conditions or strategy.default:
        field = "strategy.conditions" if strategy.conditions else "strategy.default"
        raise InvalidArgument("is only allowed with mode conditional", param=_field(field_prefix, field))
    return Group(path=path, mode=mode, on_status_codes=on_status, children=children, weights=weights, routes=routes)


def _compile_leaf(
    node: RoutingConfig,
    path: str,
    field_prefix: str,
    here: _Inherited,
    lookups: _Lookups,
) -> Leaf:
    provider = ""
    if node.provider:
        try:
            provider = lookups.canonical_provider(node.provider)
        except InvalidArgument as exc:
            raise InvalidArgument(exc.message.split(": ", 1)[-1], param=_field(field_prefix, "provider")) from None
    credential = None
    if not node.virtual_key:
        if not provider:
            raise InvalidArgument(
                "each target needs a provider or a virtual_key", param=_field(field_prefix, "provider")
            )
        fields = node.credential_fields()
        if not fields:
            raise InvalidArgument(
                "a target with a provider needs an api_key (or use a virtual_key)",
                param=_field(field_prefix, "api_key"),
            )
        # Checked now, so a bad credential fails when the config is saved or received, naming the field.
        credential = lookups.credential_schema(provider).parse(fields, provider=provider, param_prefix=field_prefix)
    return Leaf(
        path=path,
        provider=provider,
        virtual_key=node.virtual_key or None,
        credential=credential,
        custom_host=here.custom_host,
        override_params=here.override_params,
        request_timeout_ms=here.request_timeout_ms,
        retry=here.retry,
        forward_headers=here.forward_headers,
        name=node.name,
        cache=here.cache,
        circuit_breaker=here.circuit_breaker,
        strict=here.strict,
        model_successor=here.model_successor,
    )


def _inherit(node: RoutingConfig, parent: _Inherited, field_prefix: str, host_policy: UpstreamHostPolicy) -> _Inherited:
    custom_host = parent.custom_host
    if node.custom_host:
        custom_host = host_policy.check(node.custom_host, param=_field(field_prefix, "custom_host"))
    timeout = parent.request_timeout_ms
    if node.request_timeout is not None:
        if node.request_timeout <= 0:
            raise InvalidArgument(
                "must be a positive number of milliseconds", param=_field(field_prefix, "request_timeout")
            )
        timeout = node.request_timeout
    retry = parent.retry
    if node.retry is not None:
        retry = _retry_policy(node.retry, _field(field_prefix, "retry"))
    overrides = parent.override_params
    if node.override_params is not None:
        if not is_finite_json(node.override_params):  # JSON text "Infinity", or a gRPC Struct
            raise InvalidArgument("numbers must be finite", param=_field(field_prefix, "override_params"))
        own: dict[str, Any] = thaw_json(node.override_params)  # plain values, as providers send them on
        for name, value in own.items():
            param = _field(field_prefix, f"override_params.{name}")
            if name in KNOWN_PARAMS:
                own[name] = coerce_param(name, value, path=param)
        overrides = MappingProxyType({**parent.override_params, **own})
    forward = tuple(h.lower() for h in node.forward_headers) or parent.forward_headers
    cache = parent.cache
    if node.cache is not None:
        cache = cache_policy(node.cache, _field(field_prefix, "cache"))
    breaker = parent.circuit_breaker
    if node.circuit_breaker is not None:
        breaker = overrides_from_config(node.circuit_breaker, _field(field_prefix, "circuit_breaker"), breaker)
    strict = parent.strict if node.strict is None else node.strict
    successor = parent.model_successor if node.model_successor is None else node.model_successor
    return _Inherited(custom_host, timeout, retry, forward, overrides, cache, breaker, strict, successor)


def _retry_policy(retry: RetrySettings, param: str) -> RetryPolicy:
    if not 0 <= retry.attempts <= MAX_RETRY_ATTEMPTS:
        raise InvalidArgument(f"must be between 0 and {MAX_RETRY_ATTEMPTS}", param=f"{param}.attempts")
    statuses = DEFAULT_RETRY_STATUSES
    if retry.on_status_codes:
        _check_statuses(retry.on_status_codes, f"{param}.on_status_codes")
        statuses = frozenset(retry.on_status_codes)
    use_header = True if retry.use_retry_after_header is None else retry.use_retry_after_header
    return RetryPolicy(retry.attempts, statuses, use_header)


def _check_statuses(codes: Sequence[int], param: str) -> None:
    for i, code in enumerate(codes):
        if not 100 <= code <= 599:
            raise InvalidArgument(f"{code} is not an HTTP status code", param=f"{param}[{i}]")


def direct_leaf(
    provider: str,
    *,
    virtual_key: str | None = None,
    credential: Credential | None = None,
    custom_host: str | None = None,
) -> Leaf:
    """A one-target plan for requests routed by a bare provider or a virtual key (no config)."""
    return Leaf(
        path="",
        provider=provider,
        virtual_key=virtual_key,
        credential=credential,
        custom_host=custom_host,
        override_params=MappingProxyType({}),
        request_timeout_ms=None,
        retry=None,
        forward_headers=(),
    )


def leaves(node: Node) -> list[Leaf]:
    """Every leaf of a plan, in order."""
    if isinstance(node, Leaf):
        return [node]
    out: list[Leaf] = []
    for child in node.children:
        out.extend(leaves(child))
    return out
