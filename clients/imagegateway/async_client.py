"""The asyncio ImageGateway client (grpc.aio): the methods of ``ImageGatewayClient``, awaitable.

Image streams and ``iter_*`` pagers are async iterators; everything else is a coroutine. See
client.py for what the layer adds over the generated stub.
"""

# ``timeout`` is the gRPC deadline sent with each call (the server sees it), not a local wait:
# ruff: noqa: ASYNC109
from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self, TypeVar, Unpack

import grpc
import grpc.aio

from imagegateway import builders, events, pagers, uploads
from imagegateway.builders import (
    AnalyticsFilters,
    ConfigLike,
    GenerateFields,
    GroupByName,
    LogFilters,
    ScopeName,
)
from imagegateway.connection import ADMIN_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES, IMAGE_TIMEOUT, ClientBase
from imagegateway.errors import from_rpc_error
from imagegateway.events import GenerationEvent, StreamFallbackName
from imagegateway.uploads import InputFile
from imagegateway.v1 import analytics_pb2, configs_pb2, health_pb2, images_pb2, keys_pb2, logs_pb2, service_pb2_grpc

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T")


async def _aread_stream(
    call: grpc.aio.UnaryStreamCall[_Req, _T] | grpc.aio.StreamStreamCall[_Req, _T],
) -> AsyncIterator[_T]:
    try:
        async for item in call:
            yield item
    except grpc.RpcError as err:
        raise from_rpc_error(err) from err
    finally:
        call.cancel()


class AsyncImageGatewayClient(ClientBase):
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
        request = builders.generate_request(request, fields)
        return await self._call(self._stub.GenerateImage, request, timeout, IMAGE_TIMEOUT)

    async def edit_image(
        self,
        images: Sequence[InputFile],
        *,
        mask: InputFile | None = None,
        markup: InputFile | None = None,
        chunked: bool | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> images_pb2.EditImageResponse:
        """As ``ImageGatewayClient.edit_image``."""
        if not uploads.sends_chunked(uploads.input_bytes(images, mask, markup), self.max_message_bytes, chunked):
            request = uploads.edit_request(images, mask, markup, **fields)
            return await self._call(self._stub.EditImage, request, timeout, IMAGE_TIMEOUT)
        messages = uploads.edit_upload_messages(images, mask, markup, **fields)
        try:
            response = await self._stub.EditImageUpload(
                messages, timeout=self._deadline(timeout, IMAGE_TIMEOUT), metadata=self._metadata()
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return uploads.as_edit_response(response)

    async def edit_events(
        self,
        images: Sequence[InputFile],
        *,
        mask: InputFile | None = None,
        markup: InputFile | None = None,
        partial_images: int | None = None,
        stream_fallback: StreamFallbackName | None = None,
        chunked: bool | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> AsyncIterator[GenerationEvent]:
        """As ``ImageGatewayClient.edit_events``."""
        deadline = self._deadline(timeout, IMAGE_TIMEOUT)
        responses: (
            AsyncIterator[images_pb2.StreamEditImageResponse] | AsyncIterator[images_pb2.StreamEditImageUploadResponse]
        )
        if uploads.sends_chunked(uploads.input_bytes(images, mask, markup), self.max_message_bytes, chunked):
            messages = uploads.stream_edit_upload_messages(
                images, mask, markup, partial_images=partial_images, stream_fallback=stream_fallback, **fields
            )
            responses = _aread_stream(
                self._stub.StreamEditImageUpload(messages, timeout=deadline, metadata=self._metadata())
            )
        else:
            message = events.stream_request(
                uploads.stream_edit_request(images, mask, markup, **fields), partial_images, stream_fallback
            )
            responses = _aread_stream(self._stub.StreamEditImage(message, timeout=deadline, metadata=self._metadata()))
        async for response in responses:
            yield events.event_of(response)

    async def create_image_variation(
        self,
        image: InputFile,
        *,
        chunked: bool | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> images_pb2.CreateImageVariationResponse:
        """As ``ImageGatewayClient.create_image_variation``."""
        if not uploads.sends_chunked(uploads.input_bytes([image], None), self.max_message_bytes, chunked):
            request = uploads.variation_request(image, **fields)
            return await self._call(self._stub.CreateImageVariation, request, timeout, IMAGE_TIMEOUT)
        messages = uploads.variation_upload_messages(image, **fields)
        try:
            response = await self._stub.CreateImageVariationUpload(
                messages, timeout=self._deadline(timeout, IMAGE_TIMEOUT), metadata=self._metadata()
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return uploads.as_variation_response(response)

    def stream_generate_image(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> AsyncIterator[images_pb2.StreamGenerateImageResponse]:
        call = self._stub.StreamGenerateImage(
            builders.stream_request(builders.generate_request(request, fields)),
            timeout=self._deadline(timeout, IMAGE_TIMEOUT),
            metadata=self._metadata(),
        )
        return _aread_stream(call)

    async def generate_events(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        partial_images: int | None = None,
        stream_fallback: StreamFallbackName | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> AsyncIterator[GenerationEvent]:
        """Generates images as typed events (``imagegateway.events``): progress reports, partial images
        (``partial_images`` 1-3, from a model that streams them), then the final images."""
        message = events.stream_request(
            builders.stream_request(builders.generate_request(request, fields)), partial_images, stream_fallback
        )
        call = self._stub.StreamGenerateImage(
            message, timeout=self._deadline(timeout, IMAGE_TIMEOUT), metadata=self._metadata()
        )
        async for response in _aread_stream(call):
            yield events.event_of(response)

    # Configs

    async def create_config(self, name: str, config: ConfigLike, *, timeout: float | None = None) -> configs_pb2.Config:
        request = configs_pb2.CreateConfigRequest(name=name, config=builders.routing_config(config))
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
        return pagers.awalk(
            lambda token: self.list_configs(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.configs,
        )

    async def update_config(
        self, id: str, config: ConfigLike, *, name: str = "", timeout: float | None = None
    ) -> configs_pb2.Config:
        request = configs_pb2.UpdateConfigRequest(id=id, config=builders.routing_config(config), name=name)
        return (await self._call(self._stub.UpdateConfig, request, timeout)).config

    async def delete_config(self, id: str, *, timeout: float | None = None) -> None:
        await self._call(self._stub.DeleteConfig, configs_pb2.DeleteConfigRequest(id=id), timeout)

    async def validate_config(self, config: ConfigLike, *, timeout: float | None = None) -> None:
        request = configs_pb2.ValidateConfigRequest(config=builders.routing_config(config))
        await self._call(self._stub.ValidateConfig, request, timeout)

    # Virtual keys

    async def create_virtual_key(
        self,
        name: str,
        provider: str,
        secret: str = "",
        base_url: str | None = None,
        virtual_key_id: str | None = None,
        *,
        limits: keys_pb2.Limits | None = None,
        credential_fields: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.VirtualKey:
        """Stores a provider account. ``secret`` is its API key; ``credential_fields`` are the fields of a
        credential that is more than one key (secret and public fields by name, as the provider's schema
        names them). Secrets are stored encrypted and never returned."""
        request = keys_pb2.CreateVirtualKeyRequest(
            name=name,
            provider=provider,
            secret=secret,
            base_url=base_url or "",
            virtual_key_id=virtual_key_id or "",
            limits=limits,
            credential_fields=credential_fields,
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
        return pagers.awalk(
            lambda token: self.list_virtual_keys(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.virtual_keys,
        )

    async def rotate_virtual_key(
        self,
        id: str,
        secret: str = "",
        *,
        credential_fields: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.VirtualKey:
        """Replaces the key's whole credential: ``secret`` (its API key) and/or ``credential_fields``."""
        request = keys_pb2.RotateVirtualKeyRequest(id=id, secret=secret, credential_fields=credential_fields)
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
        request = keys_pb2.CreateApiKeyRequest(name=name, scope=builders.scope(scope), limits=limits)
        return await self._call(self._stub.CreateApiKey, request, timeout)

    async def list_api_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListApiKeysResponse:
        request = keys_pb2.ListApiKeysRequest(page_size=page_size, page_token=page_token)
        return await self._call(self._stub.ListApiKeys, request, timeout)

    def iter_api_keys(self, *, page_size: int = 0, timeout: float | None = None) -> AsyncIterator[keys_pb2.ApiKey]:
        return pagers.awalk(
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
        return await self._call(self._stub.ListLogs, builders.logs_request(page_size, page_token, filters), timeout)

    def iter_logs(
        self, *, page_size: int = 0, timeout: float | None = None, **filters: Unpack[LogFilters]
    ) -> AsyncIterator[logs_pb2.RequestLog]:
        return pagers.awalk(
            lambda token: self.list_logs(page_size=page_size, page_token=token, timeout=timeout, **filters),
            lambda page: page.logs,
        )

    async def get_log(self, id: str, *, timeout: float | None = None) -> logs_pb2.RequestLog:
        return (await self._call(self._stub.GetLog, logs_pb2.GetLogRequest(id=id), timeout)).log

    # Analytics

    async def get_analytics(
        self,
        *,
        since: timedelta | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        group_by: GroupByName = "provider",
        metadata_key: str = "",
        timeout: float | None = None,
        **filters: Unpack[AnalyticsFilters],
    ) -> analytics_pb2.GetAnalyticsResponse:
        """Counts, cost and latency of the request log over ``since`` (ending now) or from
        ``start_time`` to ``end_time`` (default now), grouped by ``group_by`` (``metadata`` with
        ``metadata_key``), in UTC-aligned buckets. A generate key sees only its own requests."""
        request = builders.analytics_request(since, start_time, end_time, group_by, metadata_key, filters)
        return await self._call(self._stub.GetAnalytics, request, timeout)

    # Target health

    async def list_target_health(
        self, provider: str = "", *, timeout: float | None = None
    ) -> list[health_pb2.TargetHealth]:
        request = health_pb2.ListTargetHealthRequest(provider=provider)
        return list((await self._call(self._stub.ListTargetHealth, request, timeout)).targets)
