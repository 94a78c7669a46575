"""Sync and asyncio clients for the ImageGateway gRPC API.

A thin, typed layer over the generated stub: it adds the gateway API key as
``authorization: Bearer`` metadata on every call (rotatable with ``set_api_key``), per-method
default deadlines, message-size limits large enough for images, pagers that hide page tokens, and
``ImageGatewayError`` instead of raw ``grpc.RpcError``. Methods return the resource, not the
response wrapper, except where the wrapper carries more (``create_api_key``, ``rotate_api_key``, image
calls, list pages).
"""

# ``timeout`` is the gRPC deadline sent with each call (the server sees it), not a local wait:
# ruff: noqa: ASYNC109
from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypedDict, TypeVar, Unpack

import grpc
import grpc.aio
from google.protobuf import json_format

from imagegateway.errors import from_rpc_error
from imagegateway.v1 import configs_pb2, health_pb2, images_pb2, keys_pb2, logs_pb2, service_pb2_grpc

DEFAULT_TARGET = "127.0.0.1:50051"
IMAGE_TIMEOUT = 300.0  # seconds; image calls wait on providers and fallbacks
ADMIN_TIMEOUT = 10.0  # seconds; admin calls only touch the store
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)

ScopeName = Literal["admin", "generate"]
_SCOPES: dict[str, keys_pb2.Scope.ValueType] = {
    "admin": keys_pb2.SCOPE_ADMIN,
    "generate": keys_pb2.SCOPE_GENERATE,
}
_OUTCOMES: dict[str, logs_pb2.RequestOutcome.ValueType] = {
    "success": logs_pb2.REQUEST_OUTCOME_SUCCESS,
    "failure": logs_pb2.REQUEST_OUTCOME_FAILURE,
}
ConfigLike = configs_pb2.RoutingConfig | Mapping[str, object]


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
    extra_params: Mapping[str, Any]


class LogFilters(TypedDict, total=False):
    """Filters of ``list_logs`` / ``iter_logs``; naive datetimes are taken as UTC."""

    trace_id: str
    status_code: int
    outcome: Literal["success", "failure"]
    provider: str
    start_time: datetime
    end_time: datetime
    model: str
    config_id: str
    fallback_used: bool
    caller_key_id: str  # admin keys only; a generate key always sees only its own requests


_ROUTING_SOURCES = ("config_id", "config", "virtual_key", "provider")
_ROUTING_FIELDS = (*_ROUTING_SOURCES, "provider_api_key", "custom_host")
_NOT_PARAMETERS = {*_ROUTING_FIELDS, "trace_id", "metadata", "extra_params"}


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
        request.routing.config.CopyFrom(_routing_config(config))
    for key in _ROUTING_FIELDS:
        if key in values and key != "config":
            setattr(request.routing, key, values[key])
    params = request.parameters
    params.extra_params.update(fields.get("extra_params") or {})
    for key, value in values.items():
        if key in _NOT_PARAMETERS:
            continue
        if key not in params.DESCRIPTOR.fields_by_name:
            raise TypeError(f"unknown image parameter {key!r}; put provider-specific ones in extra_params")
        setattr(params, key, value)
    return request


def _request(
    request: images_pb2.GenerateImageRequest | None, fields: GenerateFields
) -> images_pb2.GenerateImageRequest:
    if request is not None and fields:
        raise TypeError("pass either a prebuilt request or request fields, not both")
    return request if request is not None else build_generate_request(**fields)


def _stream_request(request: images_pb2.GenerateImageRequest) -> images_pb2.StreamGenerateImageRequest:
    # The two request messages are field-for-field identical by design (same numbers and types).
    return images_pb2.StreamGenerateImageRequest.FromString(request.SerializeToString())


def _routing_config(config: ConfigLike) -> configs_pb2.RoutingConfig:
    """A RoutingConfig as is, or Portkey JSON (a dict) parsed through the proto's JSON mapping.

    Raises ``google.protobuf.json_format.ParseError`` (naming the field) for unknown fields or bad values.
    """
    if isinstance(config, configs_pb2.RoutingConfig):
        return config
    return json_format.ParseDict(dict(config), configs_pb2.RoutingConfig())


def _scope(scope: ScopeName | keys_pb2.Scope.ValueType) -> keys_pb2.Scope.ValueType:
    if isinstance(scope, str):
        if scope not in _SCOPES:
            raise ValueError(f"scope must be one of {', '.join(_SCOPES)}, not {scope!r}")
        return _SCOPES[scope]
    return scope


def _logs_request(page_size: int, page_token: str, filters: LogFilters) -> logs_pb2.ListLogsRequest:
    request = logs_pb2.ListLogsRequest(
        page_size=page_size,
        page_token=page_token,
        trace_id=filters.get("trace_id", ""),
        status_code=filters.get("status_code", 0),
        provider=filters.get("provider", ""),
        model=filters.get("model", ""),
        config_id=filters.get("config_id", ""),
        caller_key_id=filters.get("caller_key_id", ""),
    )
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
    return request


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


_P = TypeVar("_P", bound=_Page)


def _walk(fetch: Callable[[str], _P], items: Callable[[_P], Iterable[_T]]) -> Iterator[_T]:
    token = ""
    while True:
        page = fetch(token)
        yield from items(page)
        token = page.next_page_token
        if not token:
            return


async def _awalk(fetch: Callable[[str], Awaitable[_P]], items: Callable[[_P], Iterable[_T]]) -> AsyncIterator[_T]:
    token = ""
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        token = page.next_page_token
        if not token:
            return


class _ServerStream(Protocol[_T_co]):
    def __iter__(self) -> Iterator[_T_co]: ...
    def cancel(self) -> bool: ...


def _read_stream(call: _ServerStream[_T]) -> Iterator[_T]:
    try:
        yield from call
    except grpc.RpcError as err:
        raise from_rpc_error(err) from err
    finally:
        call.cancel()  # a no-op when the stream is done; frees it when the caller stops early


async def _aread_stream(call: grpc.aio.UnaryStreamCall[_Req, _T]) -> AsyncIterator[_T]:
    try:
        async for item in call:
            yield item
    except grpc.RpcError as err:
        raise from_rpc_error(err) from err
    finally:
        call.cancel()


class _ClientBase:
    """Settings and per-call metadata shared by both clients."""

    def __init__(
        self,
        target: str | None,
        api_key: str | None,
        timeout: float | None,
        max_message_bytes: int,
    ) -> None:
        self.target = target or os.environ.get("IMAGEGW_SERVER") or DEFAULT_TARGET
        self._api_key = api_key if api_key is not None else os.environ.get("IMAGEGW_API_KEY")
        self._timeout = timeout
        self._options = [
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.max_receive_message_length", max_message_bytes),
        ]

    @property
    def has_api_key(self) -> bool:
        return bool(self._api_key)

    def set_api_key(self, api_key: str | None) -> None:
        """Replaces the gateway API key; later calls use the new one (in-flight calls keep theirs)."""
        self._api_key = api_key

    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self._api_key}"),) if self._api_key else ()

    def _deadline(self, timeout: float | None, default: float) -> float:
        if timeout is not None:
            return timeout
        return self._timeout if self._timeout is not None else default


class ImageGatewayClient(_ClientBase):
    """Blocking client. ``target`` defaults to $IMAGEGW_SERVER, ``api_key`` to $IMAGEGW_API_KEY;
    ``timeout`` (seconds) replaces the per-method defaults (300 s image calls, 10 s admin calls)."""

    def __init__(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(target, api_key, timeout, max_message_bytes)
        if credentials is not None:
            self._channel = grpc.secure_channel(self.target, credentials, self._options)
        else:
            self._channel = grpc.insecure_channel(self.target, self._options)
        self._stub = service_pb2_grpc.ImageGatewayStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(
        self,
        rpc: grpc.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        timeout: float | None,
        default: float = ADMIN_TIMEOUT,
    ) -> _Resp:
        try:
            return rpc(request, timeout=self._deadline(timeout, default), metadata=self._metadata())
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    # Images

    def generate_image(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> images_pb2.GenerateImageResponse:
        """Generates images in one response; pass a prebuilt request or its fields."""
        return self._call(self._stub.GenerateImage, _request(request, fields), timeout, IMAGE_TIMEOUT)

    def stream_generate_image(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> Iterator[images_pb2.StreamGenerateImageResponse]:
        """Generates images one per message; the last message carries the outcome."""
        call = self._stub.StreamGenerateImage(
            _stream_request(_request(request, fields)),
            timeout=self._deadline(timeout, IMAGE_TIMEOUT),
            metadata=self._metadata(),
        )
        return _read_stream(call)

    # Configs

    def create_config(self, name: str, config: ConfigLike, *, timeout: float | None = None) -> configs_pb2.Config:
        request = configs_pb2.CreateConfigRequest(name=name, config=_routing_config(config))
        return self._call(self._stub.CreateConfig, request, timeout).config

    def get_config(self, id: str, version: int = 0, *, timeout: float | None = None) -> configs_pb2.Config:
        """Reads the latest version, or ``version``, or the one named in ``id@version``."""
        request = configs_pb2.GetConfigRequest(id=id, version=version)
        return self._call(self._stub.GetConfig, request, timeout).config

    def list_configs(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> configs_pb2.ListConfigsResponse:
        request = configs_pb2.ListConfigsRequest(page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListConfigs, request, timeout)

    def iter_configs(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[configs_pb2.Config]:
        return _walk(
            lambda token: self.list_configs(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.configs,
        )

    def update_config(
        self, id: str, config: ConfigLike, *, name: str = "", timeout: float | None = None
    ) -> configs_pb2.Config:
        request = configs_pb2.UpdateConfigRequest(id=id, config=_routing_config(config), name=name)
        return self._call(self._stub.UpdateConfig, request, timeout).config

    def delete_config(self, id: str, *, timeout: float | None = None) -> None:
        self._call(self._stub.DeleteConfig, configs_pb2.DeleteConfigRequest(id=id), timeout)

    def validate_config(self, config: ConfigLike, *, timeout: float | None = None) -> None:
        """Returns when the server accepts the config; raises ``InvalidArgumentError`` otherwise."""
        request = configs_pb2.ValidateConfigRequest(config=_routing_config(config))
        self._call(self._stub.ValidateConfig, request, timeout)

    # Virtual keys

    def create_virtual_key(
        self,
        name: str,
        provider: str,
        secret: str,
        base_url: str | None = None,
        virtual_key_id: str | None = None,
        *,
        limits: keys_pb2.Limits | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.VirtualKey:
        request = keys_pb2.CreateVirtualKeyRequest(
            name=name,
            provider=provider,
            secret=secret,
            base_url=base_url or "",
            virtual_key_id=virtual_key_id or "",
            limits=limits,
        )
        return self._call(self._stub.CreateVirtualKey, request, timeout).virtual_key

    def get_virtual_key(self, id: str, *, timeout: float | None = None) -> keys_pb2.VirtualKey:
        return self._call(self._stub.GetVirtualKey, keys_pb2.GetVirtualKeyRequest(id=id), timeout).virtual_key

    def list_virtual_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListVirtualKeysResponse:
        request = keys_pb2.ListVirtualKeysRequest(page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListVirtualKeys, request, timeout)

    def iter_virtual_keys(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[keys_pb2.VirtualKey]:
        return _walk(
            lambda token: self.list_virtual_keys(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.virtual_keys,
        )

    def rotate_virtual_key(self, id: str, secret: str, *, timeout: float | None = None) -> keys_pb2.VirtualKey:
        request = keys_pb2.RotateVirtualKeyRequest(id=id, secret=secret)
        return self._call(self._stub.RotateVirtualKey, request, timeout).virtual_key

    def delete_virtual_key(self, id: str, *, timeout: float | None = None) -> None:
        self._call(self._stub.DeleteVirtualKey, keys_pb2.DeleteVirtualKeyRequest(id=id), timeout)

    # Gateway API keys

    def create_api_key(
        self,
        name: str,
        scope: ScopeName | keys_pb2.Scope.ValueType = "generate",
        *,
        limits: keys_pb2.Limits | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.CreateApiKeyResponse:
        """Creates a key; the response's ``key`` is the plaintext, returned this once. ``limits``: requests
        per minute and USD per UTC day / month (0 = unlimited)."""
        request = keys_pb2.CreateApiKeyRequest(name=name, scope=_scope(scope), limits=limits)
        return self._call(self._stub.CreateApiKey, request, timeout)

    def list_api_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListApiKeysResponse:
        request = keys_pb2.ListApiKeysRequest(page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListApiKeys, request, timeout)

    def iter_api_keys(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[keys_pb2.ApiKey]:
        return _walk(
            lambda token: self.list_api_keys(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.api_keys,
        )

    def revoke_api_key(self, id: str, *, timeout: float | None = None) -> keys_pb2.ApiKey:
        return self._call(self._stub.RevokeApiKey, keys_pb2.RevokeApiKeyRequest(id=id), timeout).api_key

    def rotate_api_key(
        self, id: str, *, previous_key_valid_seconds: int = 0, timeout: float | None = None
    ) -> keys_pb2.RotateApiKeyResponse:
        """Gives the key a new secret under the same id; the response's ``key`` is the new plaintext,
        returned this once. The old secret stays accepted for ``previous_key_valid_seconds`` (0-604800)."""
        request = keys_pb2.RotateApiKeyRequest(id=id, previous_key_valid_seconds=previous_key_valid_seconds)
        return self._call(self._stub.RotateApiKey, request, timeout)

    def delete_api_key(self, id: str, *, timeout: float | None = None) -> None:
        """Deletes the key (its request logs stay); refused for the last active admin key."""
        self._call(self._stub.DeleteApiKey, keys_pb2.DeleteApiKeyRequest(id=id), timeout)

    # Request logs

    def list_logs(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
        **filters: Unpack[LogFilters],
    ) -> logs_pb2.ListLogsResponse:
        return self._call(self._stub.ListLogs, _logs_request(page_size, page_token, filters), timeout)

    def iter_logs(
        self, *, page_size: int = 0, timeout: float | None = None, **filters: Unpack[LogFilters]
    ) -> Iterator[logs_pb2.RequestLog]:
        """Every matching record, newest first, fetching pages as needed."""
        return _walk(
            lambda token: self.list_logs(page_size=page_size, page_token=token, timeout=timeout, **filters),
            lambda page: page.logs,
        )

    def get_log(self, id: str, *, timeout: float | None = None) -> logs_pb2.RequestLog:
        return self._call(self._stub.GetLog, logs_pb2.GetLogRequest(id=id), timeout).log

    # Target health

    def list_target_health(self, provider: str = "", *, timeout: float | None = None) -> list[health_pb2.TargetHealth]:
        """Circuit-breaker state of every routing identity the gateway has called (of one provider)."""
        request = health_pb2.ListTargetHealthRequest(provider=provider)
        return list(self._call(self._stub.ListTargetHealth, request, timeout).targets)


class AsyncImageGatewayClient(_ClientBase):
    """asyncio client (grpc.aio) with the same methods as ``ImageGatewayClient``, awaitable."""

    def __init__(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        super().__init__(target, api_key, timeout, max_message_bytes)
        if credentials is not None:
            self._channel = grpc.aio.secure_channel(self.target, credentials, self._options)
        else:
            self._channel = grpc.aio.insecure_channel(self.target, self._options)
        self._stub = service_pb2_grpc.ImageGatewayStub(self._channel)

    async def close(self) -> None:
        await self._channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _call(
        self,
        rpc: grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp],
        request: _Req,
        timeout: float | None,
        default: float = ADMIN_TIMEOUT,
    ) -> _Resp:
        try:
            return await rpc(request, timeout=self._deadline(timeout, default), metadata=self._metadata())
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err

    # Images

    async def generate_image(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> images_pb2.GenerateImageResponse:
        return await self._call(self._stub.GenerateImage, _request(request, fields), timeout, IMAGE_TIMEOUT)

    def stream_generate_image(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> AsyncIterator[images_pb2.StreamGenerateImageResponse]:
        call = self._stub.StreamGenerateImage(
            _stream_request(_request(request, fields)),
            timeout=self._deadline(timeout, IMAGE_TIMEOUT),
            metadata=self._metadata(),
        )
        return _aread_stream(call)

    # Configs

    async def create_config(self, name: str, config: ConfigLike, *, timeout: float | None = None) -> configs_pb2.Config:
        request = configs_pb2.CreateConfigRequest(name=name, config=_routing_config(config))
        return (await self._call(self._stub.CreateConfig, request, timeout)).config

    async def get_config(self, id: str, version: int = 0, *, timeout: float | None = None) -> configs_pb2.Config:
        request = configs_pb2.GetConfigRequest(id=id, version=version)
        return (await self._call(self._stub.GetConfig, request, timeout)).config

    async def list_configs(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> configs_pb2.ListConfigsResponse:
        request = configs_pb2.ListConfigsRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListConfigs, request, timeout)

    def iter_configs(self, *, page_size: int = 0, timeout: float | None = None) -> AsyncIterator[configs_pb2.Config]:
        return _awalk(
            lambda token: self.list_configs(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.configs,
        )

    async def update_config(
        self, id: str, config: ConfigLike, *, name: str = "", timeout: float | None = None
    ) -> configs_pb2.Config:
        request = configs_pb2.UpdateConfigRequest(id=id, config=_routing_config(config), name=name)
        return (await self._call(self._stub.UpdateConfig, request, timeout)).config

    async def delete_config(self, id: str, *, timeout: float | None = None) -> None:
        await self._call(self._stub.DeleteConfig, configs_pb2.DeleteConfigRequest(id=id), timeout)

    async def validate_config(self, config: ConfigLike, *, timeout: float | None = None) -> None:
        request = configs_pb2.ValidateConfigRequest(config=_routing_config(config))
        await self._call(self._stub.ValidateConfig, request, timeout)

    # Virtual keys

    async def create_virtual_key(
        self,
        name: str,
        provider: str,
        secret: str,
        base_url: str | None = None,
        virtual_key_id: str | None = None,
        *,
        limits: keys_pb2.Limits | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.VirtualKey:
        request = keys_pb2.CreateVirtualKeyRequest(
            name=name,
            provider=provider,
            secret=secret,
            base_url=base_url or "",
            virtual_key_id=virtual_key_id or "",
            limits=limits,
        )
        return (await self._call(self._stub.CreateVirtualKey, request, timeout)).virtual_key

    async def get_virtual_key(self, id: str, *, timeout: float | None = None) -> keys_pb2.VirtualKey:
        request = keys_pb2.GetVirtualKeyRequest(id=id)
        return (await self._call(self._stub.GetVirtualKey, request, timeout)).virtual_key

    async def list_virtual_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListVirtualKeysResponse:
        request = keys_pb2.ListVirtualKeysRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListVirtualKeys, request, timeout)

    def iter_virtual_keys(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> AsyncIterator[keys_pb2.VirtualKey]:
        return _awalk(
            lambda token: self.list_virtual_keys(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.virtual_keys,
        )

    async def rotate_virtual_key(self, id: str, secret: str, *, timeout: float | None = None) -> keys_pb2.VirtualKey:
        request = keys_pb2.RotateVirtualKeyRequest(id=id, secret=secret)
        return (await self._call(self._stub.RotateVirtualKey, request, timeout)).virtual_key

    async def delete_virtual_key(self, id: str, *, timeout: float | None = None) -> None:
        await self._call(self._stub.DeleteVirtualKey, keys_pb2.DeleteVirtualKeyRequest(id=id), timeout)

    # Gateway API keys

    async def create_api_key(
        self,
        name: str,
        scope: ScopeName | keys_pb2.Scope.ValueType = "generate",
        *,
        limits: keys_pb2.Limits | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.CreateApiKeyResponse:
        request = keys_pb2.CreateApiKeyRequest(name=name, scope=_scope(scope), limits=limits)
        return await self._call(self._stub.CreateApiKey, request, timeout)

    async def list_api_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListApiKeysResponse:
        request = keys_pb2.ListApiKeysRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListApiKeys, request, timeout)

    def iter_api_keys(self, *, page_size: int = 0, timeout: float | None = None) -> AsyncIterator[keys_pb2.ApiKey]:
        return _awalk(
            lambda token: self.list_api_keys(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.api_keys,
        )

    async def revoke_api_key(self, id: str, *, timeout: float | None = None) -> keys_pb2.ApiKey:
        request = keys_pb2.RevokeApiKeyRequest(id=id)
        return (await self._call(self._stub.RevokeApiKey, request, timeout)).api_key

    async def rotate_api_key(
        self, id: str, *, previous_key_valid_seconds: int = 0, timeout: float | None = None
    ) -> keys_pb2.RotateApiKeyResponse:
        """Gives the key a new secret under the same id; the response's ``key`` is the new plaintext,
        returned this once. The old secret stays accepted for ``previous_key_valid_seconds`` (0-604800)."""
        request = keys_pb2.RotateApiKeyRequest(id=id, previous_key_valid_seconds=previous_key_valid_seconds)
        return await self._call(self._stub.RotateApiKey, request, timeout)

    async def delete_api_key(self, id: str, *, timeout: float | None = None) -> None:
        """Deletes the key (its request logs stay); refused for the last active admin key."""
        await self._call(self._stub.DeleteApiKey, keys_pb2.DeleteApiKeyRequest(id=id), timeout)

    # Request logs

    async def list_logs(
        self,
        *,
        page_size: int = 0,
        page_token: str = "",
        timeout: float | None = None,
        **filters: Unpack[LogFilters],
    ) -> logs_pb2.ListLogsResponse:
        return await self._call(self._stub.ListLogs, _logs_request(page_size, page_token, filters), timeout)

    def iter_logs(
        self, *, page_size: int = 0, timeout: float | None = None, **filters: Unpack[LogFilters]
    ) -> AsyncIterator[logs_pb2.RequestLog]:
        return _awalk(
            lambda token: self.list_logs(page_size=page_size, page_token=token, timeout=timeout, **filters),
            lambda page: page.logs,
        )

    async def get_log(self, id: str, *, timeout: float | None = None) -> logs_pb2.RequestLog:
        return (await self._call(self._stub.GetLog, logs_pb2.GetLogRequest(id=id), timeout)).log

    # Target health

    async def list_target_health(
        self, provider: str = "", *, timeout: float | None = None
    ) -> list[health_pb2.TargetHealth]:
        request = health_pb2.ListTargetHealthRequest(provider=provider)
        return list((await self._call(self._stub.ListTargetHealth, request, timeout)).targets)
