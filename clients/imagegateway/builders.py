"""The clients' typed keyword arguments, and how each becomes a request message.

``GenerateFields`` and ``LogFilters`` are the keyword fields of the image and log calls;
``build_generate_request`` is public so a request can be built once and sent many times. The rest
is shared by both clients and not meant to be called directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypedDict, Unpack

from google.protobuf import json_format

from imagegateway.v1 import analytics_pb2, configs_pb2, images_pb2, keys_pb2, logs_pb2

ScopeName = Literal["admin", "generate"]
ConfigLike = configs_pb2.RoutingConfig | Mapping[str, object]

_SCOPES: dict[str, keys_pb2.Scope.ValueType] = {
    "admin": keys_pb2.SCOPE_ADMIN,
    "generate": keys_pb2.SCOPE_GENERATE,
}
_OUTCOMES: dict[str, logs_pb2.RequestOutcome.ValueType] = {
    "success": logs_pb2.REQUEST_OUTCOME_SUCCESS,
    "failure": logs_pb2.REQUEST_OUTCOME_FAILURE,
}


class GenerateFields(TypedDict, total=False):
    """Keyword fields of an image request; everything but ``prompt`` is optional."""

    prompt: str
    model: str
    n: int
    size: str
    # Routing: at most one of config_id, config, virtual_key and provider.
    config_id: str
    config: ConfigLike
    virtual_key: str
    provider: str
    provider_api_key: str
    # A bare provider's other credential fields by name ({"aws_region": ..., "aws_access_key_id": ...}).
    provider_credential: Mapping[str, str]
    custom_host: str
    trace_id: str
    metadata: Mapping[str, str]
    # Further ImageParameters fields.
    quality: str
    style: str
    user: str
    negative_prompt: str
    seed: int
    cfg_scale: float
    style_preset: str
    background: str
    output_format: str
    output_compression: int
    moderation: str
    aspect_ratio: str
    safety_identifier: str
    input_fidelity: str
    extra_params: Mapping[str, Any]


class AnalyticsFilters(TypedDict, total=False):
    """Filters of ``get_analytics``: those of ``list_logs`` but the time range, which it takes apart."""

    trace_id: str
    status_code: int
    outcome: Literal["success", "failure"]
    provider: str
    model: str
    config_id: str
    fallback_used: bool
    caller_key_id: str  # admin keys only; a generate key always sees only its own requests


class LogFilters(AnalyticsFilters, total=False):
    """Filters of ``list_logs`` / ``iter_logs``; naive datetimes are taken as UTC."""

    start_time: datetime
    end_time: datetime


# GetAnalytics' group_by by name (``metadata`` needs ``metadata_key``).
GroupByName = Literal["provider", "model", "config", "api_key", "target", "metadata"]
_GROUP_BY: dict[str, analytics_pb2.AnalyticsGroupBy.ValueType] = {
    "provider": analytics_pb2.ANALYTICS_GROUP_BY_PROVIDER,
    "model": analytics_pb2.ANALYTICS_GROUP_BY_MODEL,
    "config": analytics_pb2.ANALYTICS_GROUP_BY_CONFIG,
    "api_key": analytics_pb2.ANALYTICS_GROUP_BY_API_KEY,
    "target": analytics_pb2.ANALYTICS_GROUP_BY_TARGET,
    "metadata": analytics_pb2.ANALYTICS_GROUP_BY_METADATA,
}


_ROUTING_SOURCES = ("config_id", "config", "virtual_key", "provider")
_ROUTING_FIELDS = (*_ROUTING_SOURCES, "provider_api_key", "custom_host")
_NOT_PARAMETERS = {*_ROUTING_FIELDS, "provider_credential", "trace_id", "metadata", "extra_params"}


def build_generate_request(**fields: Unpack[GenerateFields]) -> images_pb2.GenerateImageRequest:
    """Builds a ``GenerateImageRequest``; ``config`` may be Portkey JSON (a dict) or a RoutingConfig."""
    values: dict[str, object] = {k: v for k, v in fields.items() if v is not None}
    sources = [k for k in _ROUTING_SOURCES if k in values]
    if len(sources) > 1:
        raise ValueError(f"give at most one routing source, not {' and '.join(sources)}")
    request = images_pb2.GenerateImageRequest(
        trace_id=fields.get("trace_id") or "", metadata=dict(fields.get("metadata") or {})
    )
    config = fields.get("config")
    if config is not None:
        request.routing.config.CopyFrom(routing_config(config))
    for key in _ROUTING_FIELDS:
        if key in values and key != "config":
            setattr(request.routing, key, values[key])
    request.routing.provider_credential.update(fields.get("provider_credential") or {})
    params = request.parameters
    params.extra_params.update(fields.get("extra_params") or {})
    for key, value in values.items():
        if key in _NOT_PARAMETERS:
            continue
        if key not in params.DESCRIPTOR.fields_by_name:
            raise TypeError(f"unknown image parameter {key!r}; put provider-specific ones in extra_params")
        setattr(params, key, value)
    return request


def generate_request(
    request: images_pb2.GenerateImageRequest | None, fields: GenerateFields
) -> images_pb2.GenerateImageRequest:
    """The prebuilt request an image call was given, or one built from its keyword fields."""
    if request is not None and fields:
        raise TypeError("pass either a prebuilt request or request fields, not both")
    return request if request is not None else build_generate_request(**fields)


def stream_request(request: images_pb2.GenerateImageRequest) -> images_pb2.StreamGenerateImageRequest:
    # The stream's request starts as the unary one's fields (same numbers and types); its own fields
    # (progress, partial_images, stream_fallback) are set by ``events.stream_request``.
    return images_pb2.StreamGenerateImageRequest.FromString(request.SerializeToString())


def routing_config(config: ConfigLike) -> configs_pb2.RoutingConfig:
    """A RoutingConfig as is, or Portkey JSON (a dict) parsed through the proto's JSON mapping.

    Raises ``google.protobuf.json_format.ParseError`` (naming the field) for unknown fields or bad values.
    """
    if isinstance(config, configs_pb2.RoutingConfig):
        return config
    return json_format.ParseDict(dict(config), configs_pb2.RoutingConfig())


def scope(scope: ScopeName | keys_pb2.Scope.ValueType) -> keys_pb2.Scope.ValueType:
    """A gateway key scope given by name (``admin``, ``generate``) or as the enum value."""
    if isinstance(scope, str):
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {', '.join(_SCOPES)}, not {scope!r}")
        return _SCOPES[scope]
    return scope


def _set_filters(request: logs_pb2.ListLogsRequest | analytics_pb2.GetAnalyticsRequest, filters: LogFilters) -> None:
    """Copies the filters into a request that has ListLogs' filter fields (naive datetimes as UTC)."""
    for key in ("trace_id", "provider", "model", "config_id", "caller_key_id", "status_code"):
        value = filters.get(key)
        if value:
            setattr(request, key, value)
    fallback_used = filters.get("fallback_used")
    if fallback_used is not None:
        request.fallback_used = fallback_used
    outcome = filters.get("outcome")
    if outcome is not None:
        if outcome not in _OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(_OUTCOMES)}, not {outcome!r}")
        request.outcome = _OUTCOMES[outcome]
    for key in ("start_time", "end_time"):
        when = filters.get(key)
        if isinstance(when, datetime):
            getattr(request, key).FromDatetime(when if when.tzinfo else when.replace(tzinfo=UTC))


def logs_request(page_size: int, page_token: str, filters: LogFilters) -> logs_pb2.ListLogsRequest:
    """One ListLogs page request carrying the filters (they travel with every page)."""
    request = logs_pb2.ListLogsRequest(page_size=page_size, page_token=page_token)
    _set_filters(request, filters)
    return request


def analytics_request(
    since: timedelta | None,
    start_time: datetime | None,
    end_time: datetime | None,
    group_by: GroupByName,
    metadata_key: str,
    filters: AnalyticsFilters,
) -> analytics_pb2.GetAnalyticsRequest:
    """A GetAnalytics request: the range as ``since`` or ``start_time`` (and ``end_time``), a grouping, filters."""
    if (since is None) == (start_time is None):
        raise ValueError("give either since or start_time")
    if group_by not in _GROUP_BY:
        raise ValueError(f"group_by must be one of {', '.join(_GROUP_BY)}, not {group_by!r}")
    request = analytics_pb2.GetAnalyticsRequest(group_by=_GROUP_BY[group_by], metadata_key=metadata_key)
    if since is not None:
        request.since.FromTimedelta(since)
    times: LogFilters = {}
    if start_time is not None:
        times["start_time"] = start_time
    if end_time is not None:
        times["end_time"] = end_time
    _set_filters(request, {**filters, **times})
    return request
