"""The blocking ImageGateway client.

A thin, typed layer over the generated stub: it adds the gateway API key as
``authorization: Bearer`` metadata on every call (rotatable with ``set_api_key``), per-method
default deadlines, message-size limits large enough for images, pagers that hide page tokens, and
``ImageGatewayError`` instead of raw ``grpc.RpcError``. Methods return the resource, not the
response wrapper, except where the wrapper carries more (``create_api_key``, ``rotate_api_key``, image
calls, list pages). ``AsyncImageGatewayClient`` (async_client.py) has the same methods, awaitable.

The names this module held when it was the whole client are still importable from it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self, TypeVar, Unpack

import grpc

from imagegateway import builders, events, pagers, uploads
from imagegateway.async_client import AsyncImageGatewayClient
from imagegateway.builders import (
    AnalyticsFilters,
    ConfigLike,
    GenerateFields,
    GroupByName,
    LogFilters,
    ScopeName,
    build_generate_request,
)
from imagegateway.connection import (
    ADMIN_TIMEOUT,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TARGET,
    IMAGE_TIMEOUT,
    ClientBase,
)
from imagegateway.errors import from_rpc_error
from imagegateway.events import GenerationEvent, StreamFallbackName
from imagegateway.uploads import InputFile
from imagegateway.v1 import analytics_pb2, configs_pb2, health_pb2, images_pb2, keys_pb2, logs_pb2, service_pb2_grpc

__all__ = [
    "ADMIN_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TARGET",
    "IMAGE_TIMEOUT",
    "AsyncImageGatewayClient",
    "ConfigLike",
    "GenerateFields",
    "ImageGatewayClient",
    "LogFilters",
    "ScopeName",
    "build_generate_request",
    "from_rpc_error",
]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)


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


class ImageGatewayClient(ClientBase):
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
        return self._call(self._stub.GenerateImage, builders.generate_request(request, fields), timeout, IMAGE_TIMEOUT)

    def stream_generate_image(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> Iterator[images_pb2.StreamGenerateImageResponse]:
        """Generates images one per message; the last message carries the outcome.

        ``generate_events`` streams the same request with its progress and partial images, typed.
        """
        call = self._stub.StreamGenerateImage(
            builders.stream_request(builders.generate_request(request, fields)),
            timeout=self._deadline(timeout, IMAGE_TIMEOUT),
            metadata=self._metadata(),
        )
        return _read_stream(call)

    def edit_image(
        self,
        images: Sequence[InputFile],
        *,
        mask: InputFile | None = None,
        markup: InputFile | None = None,
        chunked: bool | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> images_pb2.EditImageResponse:
        """Edits ``images`` (bytes or ``(file name, bytes)``) under an optional ``mask`` or ``markup`` (OpenAI's
        transparent overlay marking where to edit, gpt-image-2.5 and later); ``prompt`` is required.

        Inputs over half the message limit go as a chunked EditImageUpload (``chunked`` forces either way).
        """
        if not uploads.sends_chunked(uploads.input_bytes(images, mask, markup), self.max_message_bytes, chunked):
            request = uploads.edit_request(images, mask, markup, **fields)
            return self._call(self._stub.EditImage, request, timeout, IMAGE_TIMEOUT)
        messages = uploads.edit_upload_messages(images, mask, markup, **fields)
        try:
            response = self._stub.EditImageUpload(
                messages, timeout=self._deadline(timeout, IMAGE_TIMEOUT), metadata=self._metadata()
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return uploads.as_edit_response(response)

    def edit_events(
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
    ) -> Iterator[GenerationEvent]:
        """Edits ``images`` as ``edit_image`` does, as typed events (``imagegateway.events``): progress
        reports, partial images (``partial_images`` 1-3, from a model that streams edits), then the final
        images. The files travel in one StreamEditImage message, or, over half the message limit, in
        chunks of a StreamEditImageUpload (``chunked`` forces either way)."""
        deadline = self._deadline(timeout, IMAGE_TIMEOUT)
        responses: Iterator[images_pb2.StreamEditImageResponse] | Iterator[images_pb2.StreamEditImageUploadResponse]
        if uploads.sends_chunked(uploads.input_bytes(images, mask, markup), self.max_message_bytes, chunked):
            messages = uploads.stream_edit_upload_messages(
                images, mask, markup, partial_images=partial_images, stream_fallback=stream_fallback, **fields
            )
            call = self._stub.StreamEditImageUpload(messages, timeout=deadline, metadata=self._metadata())
            responses = _read_stream(call)
        else:
            message = events.stream_request(
                uploads.stream_edit_request(images, mask, markup, **fields), partial_images, stream_fallback
            )
            responses = _read_stream(self._stub.StreamEditImage(message, timeout=deadline, metadata=self._metadata()))
        return (events.event_of(response) for response in responses)

    def create_image_variation(
        self,
        image: InputFile,
        *,
        chunked: bool | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> images_pb2.CreateImageVariationResponse:
        """Makes variations of ``image`` (dall-e-2 on OpenAI, image-to-image on Stability). An image over
        half the message limit goes as a chunked CreateImageVariationUpload (``chunked`` forces either way)."""
        if not uploads.sends_chunked(uploads.input_bytes([image], None), self.max_message_bytes, chunked):
            request = uploads.variation_request(image, **fields)
            return self._call(self._stub.CreateImageVariation, request, timeout, IMAGE_TIMEOUT)
        messages = uploads.variation_upload_messages(image, **fields)
        try:
            response = self._stub.CreateImageVariationUpload(
                messages, timeout=self._deadline(timeout, IMAGE_TIMEOUT), metadata=self._metadata()
            )
        except grpc.RpcError as err:
            raise from_rpc_error(err) from err
        return uploads.as_variation_response(response)

    def generate_events(
        self,
        request: images_pb2.GenerateImageRequest | None = None,
        *,
        partial_images: int | None = None,
        stream_fallback: StreamFallbackName | None = None,
        timeout: float | None = None,
        **fields: Unpack[GenerateFields],
    ) -> Iterator[GenerationEvent]:
        """Generates images as typed events (``imagegateway.events``): progress reports, partial images
        (``partial_images`` 1-3, from a model that streams them), then the final images."""
        message = events.stream_request(
            builders.stream_request(builders.generate_request(request, fields)), partial_images, stream_fallback
        )
        call = self._stub.StreamGenerateImage(
            message, timeout=self._deadline(timeout, IMAGE_TIMEOUT), metadata=self._metadata()
        )
        return (events.event_of(response) for response in _read_stream(call))

    # Configs

    def create_config(self, name: str, config: ConfigLike, *, timeout: float | None = None) -> configs_pb2.Config:
        request = configs_pb2.CreateConfigRequest(name=name, config=builders.routing_config(config))
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
        return pagers.walk(
            lambda token: self.list_configs(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.configs,
        )

    def update_config(
        self, id: str, config: ConfigLike, *, name: str = "", timeout: float | None = None
    ) -> configs_pb2.Config:
        request = configs_pb2.UpdateConfigRequest(id=id, config=builders.routing_config(config), name=name)
        return self._call(self._stub.UpdateConfig, request, timeout).config

    def delete_config(self, id: str, *, timeout: float | None = None) -> None:
        self._call(self._stub.DeleteConfig, configs_pb2.DeleteConfigRequest(id=id), timeout)

    def validate_config(self, config: ConfigLike, *, timeout: float | None = None) -> None:
        """Returns when the server accepts the config; raises ``InvalidArgumentError`` otherwise."""
        request = configs_pb2.ValidateConfigRequest(config=builders.routing_config(config))
        self._call(self._stub.ValidateConfig, request, timeout)

    # Virtual keys

    def create_virtual_key(
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
        return self._call(self._stub.CreateVirtualKey, request, timeout).virtual_key

    def get_virtual_key(self, id: str, *, timeout: float | None = None) -> keys_pb2.VirtualKey:
        return self._call(self._stub.GetVirtualKey, keys_pb2.GetVirtualKeyRequest(id=id), timeout).virtual_key

    def list_virtual_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListVirtualKeysResponse:
        request = keys_pb2.ListVirtualKeysRequest(page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListVirtualKeys, request, timeout)

    def iter_virtual_keys(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[keys_pb2.VirtualKey]:
        return pagers.walk(
            lambda token: self.list_virtual_keys(page_size=page_size, page_token=token, timeout=timeout),
            lambda page: page.virtual_keys,
        )

    def rotate_virtual_key(
        self,
        id: str,
        secret: str = "",
        *,
        credential_fields: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> keys_pb2.VirtualKey:
        """Replaces the key's whole credential: ``secret`` (its API key) and/or ``credential_fields``."""
        request = keys_pb2.RotateVirtualKeyRequest(id=id, secret=secret, credential_fields=credential_fields)
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
        request = keys_pb2.CreateApiKeyRequest(name=name, scope=builders.scope(scope), limits=limits)
        return self._call(self._stub.CreateApiKey, request, timeout)

    def list_api_keys(
        self, *, page_size: int = 0, page_token: str = "", timeout: float | None = None
    ) -> keys_pb2.ListApiKeysResponse:
        request = keys_pb2.ListApiKeysRequest(page_size=page_size, page_token=page_token)
        return self._call(self._stub.ListApiKeys, request, timeout)

    def iter_api_keys(self, *, page_size: int = 0, timeout: float | None = None) -> Iterator[keys_pb2.ApiKey]:
        return pagers.walk(
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
        return self._call(self._stub.ListLogs, builders.logs_request(page_size, page_token, filters), timeout)

    def iter_logs(
        self, *, page_size: int = 0, timeout: float | None = None, **filters: Unpack[LogFilters]
    ) -> Iterator[logs_pb2.RequestLog]:
        """Every matching record, newest first, fetching pages as needed."""
        return pagers.walk(
            lambda token: self.list_logs(page_size=page_size, page_token=token, timeout=timeout, **filters),
            lambda page: page.logs,
        )

    def get_log(self, id: str, *, timeout: float | None = None) -> logs_pb2.RequestLog:
        return self._call(self._stub.GetLog, logs_pb2.GetLogRequest(id=id), timeout).log

    # Analytics

    def get_analytics(
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
        return self._call(self._stub.GetAnalytics, request, timeout)

    # Target health

    def list_target_health(self, provider: str = "", *, timeout: float | None = None) -> list[health_pb2.TargetHealth]:
        """Circuit-breaker state of every routing identity the gateway has called (of one provider)."""
        request = health_pb2.ListTargetHealthRequest(provider=provider)
        return list(self._call(self._stub.ListTargetHealth, request, timeout).targets)

    def is_serving(self, service: str = "", *, timeout: float | None = None) -> bool:
        """Whether the gateway's standard gRPC health service (grpc.health.v1) says ``service`` (the
        whole server when empty) is SERVING: what container and Kubernetes probes ask. Needs no key."""
        # Imported here: only probes use it, and it is an optional dependency of the client.
        from grpc_health.v1 import health_pb2 as standard_health_pb2

        check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=standard_health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=standard_health_pb2.HealthCheckResponse.FromString,
        )
        try:
            answer = check(
                standard_health_pb2.HealthCheckRequest(service=service), timeout=self._deadline(timeout, 5.0)
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        return bool(answer.status == standard_health_pb2.HealthCheckResponse.SERVING)
