"""Turns an OpenAI images request body and Portkey headers into domain objects."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from imagegateway_server.api.auth import bearer_token
from imagegateway_server.api.config_json import parse_inline_config
from imagegateway_server.api.rest_image_shape import native_format
from imagegateway_server.domain.calls import RoutingSpec
from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.input_limits import DEFAULT_MAX_METADATA_BYTES, check_trace_id
from imagegateway_server.domain.request import KNOWN_PARAMS, ImageRequest, ResponseFormat, coerce_param
from imagegateway_server.providers.registry import CREDENTIAL_HEADERS, KEYLESS_CREDENTIAL_FIELDS

TRACE_ID_HEADER = "x-portkey-trace-id"
STREAM_FALLBACK_HEADER = "x-imagegw-stream-fallback"


class RequestHeaders(dict[str, str]):
    """A request's headers, decoded once into a dict (Starlette's ``Headers`` decodes and scans the whole
    list on every look-up, and a request looks up about fifteen).

    Names are lower-case. A look-up gives a repeated header's first value, as ``Headers.get`` does;
    ``last`` (what the core's ``headers`` carry) keeps the last, as ``dict(Headers.items())`` did.
    """

    __slots__ = ("last",)

    def __init__(self, raw: Sequence[tuple[bytes, bytes]]) -> None:
        last = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in raw}
        if len(last) == len(raw):
            super().__init__(last)
        else:  # a repeated name: the first value answers look-ups
            super().__init__({name.decode("latin-1").lower(): value.decode("latin-1") for name, value in reversed(raw)})
        self.last: dict[str, str] = last


def image_request(body: Any) -> ImageRequest:
    """Builds the request from OpenAI's JSON body; unknown fields go on to the adapter as extras."""
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object", param=None)
    if body.get("prompt") is None:  # absent or null: both mean no prompt
        raise InvalidArgument("you must provide a prompt", param="prompt", code="missing_required_parameter")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, value in body.items():
        refuse_lone_surrogates(value, param=name)
        if name in _STREAM_FIELDS:
            if value is not None:
                fields[name] = _stream_field(name, value)
        elif name in KNOWN_PARAMS:
            if value is None:
                continue
            fields[name] = coerce_param(name, value, path=name)
        elif value is not None:
            extra[name] = value
    response_format = fields.pop("response_format", None)
    if fields.get("stream"):
        # A streamed answer carries base64 images in its events, as OpenAI's does.
        if response_format is ResponseFormat.URL:
            raise InvalidArgument("must be 'b64_json' when stream is true", param="response_format")
        response_format = ResponseFormat.B64_JSON
    elif response_format is None:
        # OpenAI answers without response_format in the model's own shape (b64_json for gpt-image).
        model = fields.get("model")
        response_format = native_format(model) if model else ResponseFormat.MODEL_DEFAULT
    if "n" in fields and fields["n"] is None:
        fields.pop("n")
    return ImageRequest(**fields, response_format=response_format, extra=MappingProxyType(extra))


_STREAM_FIELDS = frozenset({"stream", "partial_images"})


def _stream_field(name: str, value: Any) -> bool | int:
    """``stream`` (a boolean) or ``partial_images`` (an integer; its range is checked with the request)."""
    if name == "stream":
        if not isinstance(value, bool):
            raise InvalidArgument("must be a boolean", param=name, code="invalid_type")
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument("must be an integer", param=name, code="invalid_type")
    return value


def stream_fallback(headers: Mapping[str, str]) -> bool:
    """Whether ``x-imagegw-stream-fallback: complete`` lets a target that cannot stream answer a streamed
    request as one completed event (``skip``, the default, skips such a target as a failed attempt)."""
    value = headers.get(STREAM_FALLBACK_HEADER)
    if value is None:
        return False
    choice = value.strip().lower()
    if choice not in ("complete", "skip"):
        raise InvalidArgument("must be 'complete' or 'skip'", param=STREAM_FALLBACK_HEADER)
    return choice == "complete"


def refuse_lone_surrogates(value: Any, *, param: str) -> None:
    """Refuses a JSON string, anywhere in ``value``, that spells a lone UTF-16 surrogate ("\\ud800").

    JSON allows the escape, but no UTF-8 text can hold it: not a provider's request, the request
    log or a gRPC string. Refused at the edge with the field named, not deep inside as a gateway fault.
    """
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise InvalidArgument(
                    "must be valid Unicode text (it holds a lone surrogate escape)", param=param
                ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_lone_surrogates(key, param=param)
            refuse_lone_surrogates(item, param=param)
    elif isinstance(value, list):
        for item in value:
            refuse_lone_surrogates(item, param=param)


# Where a bare provider's credential fields arrive on REST, to name in an error about one: Portkey's
# header for each field that has one, and Authorization for the API key.
_CREDENTIAL_PARAMS: Mapping[str, str] = MappingProxyType(
    {**{field: header for header, field in CREDENTIAL_HEADERS.items()}, API_KEY: "authorization"}
)


def routing_spec(headers: Mapping[str, str]) -> RoutingSpec:
    """Portkey's routing headers: config (id or inline JSON) > virtual key > provider."""
    config = headers.get("x-portkey-config", "").strip()
    custom_host = headers.get("x-portkey-custom-host") or None
    if config:
        if config.startswith("{"):
            return RoutingSpec(config=parse_inline_config(config, param="x-portkey-config"))
        return RoutingSpec(config_id=config)
    virtual_key = headers.get("x-portkey-virtual-key") or None
    provider = headers.get("x-portkey-provider") or None
    if virtual_key:
        return RoutingSpec(virtual_key=virtual_key, provider=provider, custom_host=custom_host)
    if provider:
        fields = {field: value for header, field in CREDENTIAL_HEADERS.items() if (value := headers.get(header))}
        token = bearer_token(headers.get("authorization"))
        if token and token.startswith("igw_"):
            token = None  # that is our own key, never a provider's
        # A token header stands in for the key: the Authorization is then only the OpenAI SDK's.
        if KEYLESS_CREDENTIAL_FIELDS & fields.keys():
            return RoutingSpec(
                provider=provider,
                provider_credential=fields,
                custom_host=custom_host,
                credential_params=_CREDENTIAL_PARAMS,
            )
        if not token:
            raise InvalidArgument(
                "with x-portkey-provider and no virtual key, send the provider's API key as Authorization: Bearer "
                "(or, for a provider with a typed credential, its x-portkey-* credential headers)",
                param="authorization",
                code="missing_required_parameter",
            )
        return RoutingSpec(
            provider=provider,
            provider_credential={API_KEY: token, **fields},
            custom_host=custom_host,
            credential_params=_CREDENTIAL_PARAMS,
        )
    raise InvalidArgument(
        "send x-portkey-config, x-portkey-virtual-key or x-portkey-provider to route the request",
        param="x-portkey-config",
    )


def metadata(headers: Mapping[str, str], max_bytes: int = DEFAULT_MAX_METADATA_BYTES) -> dict[str, str]:
    """x-portkey-metadata: a JSON object of string values, at most ``max_bytes`` (IMAGEGW_MAX_METADATA_BYTES)."""
    raw = headers.get("x-portkey-metadata")
    if not raw:
        return {}
    if len(raw.encode()) > max_bytes:
        raise InvalidArgument(f"must be at most {max_bytes} bytes", param="x-portkey-metadata")
    try:
        value = json.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("not an object")
        refuse_lone_surrogates(value, param="x-portkey-metadata")
        return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in value.items()}
    except (ValueError, RecursionError):  # RecursionError: brackets nested past what json can take
        raise InvalidArgument("must be a JSON object", param="x-portkey-metadata") from None


def trace_id(headers: Mapping[str, str]) -> str | None:
    """x-portkey-trace-id, if sent: 1-128 printable ASCII characters."""
    value = headers.get(TRACE_ID_HEADER)
    return check_trace_id(value, param=TRACE_ID_HEADER) if value else None


def flag_header(headers: Mapping[str, str], name: str) -> bool:
    """A true/false header (absent is false); anything else is a 400 naming the header."""
    raw = headers.get(name, "").strip().lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise InvalidArgument("must be true or false", param=name)


def cache_force_refresh(headers: Mapping[str, str]) -> bool:
    """x-portkey-cache-force-refresh: "true" (what Portkey's SDK sends for True) or "false"."""
    return flag_header(headers, "x-portkey-cache-force-refresh")


def gateway_key(headers: Mapping[str, str]) -> str | None:
    """The gateway key: x-portkey-api-key, x-imagegw-api-key, or an igw_ bearer token."""
    key = headers.get("x-portkey-api-key") or headers.get("x-imagegw-api-key")
    if key:
        return key.strip()
    token = bearer_token(headers.get("authorization"))
    return token if token and token.startswith("igw_") else None
