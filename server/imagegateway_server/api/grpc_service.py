"""The ImageGateway gRPC servicer: thin handlers that map messages to the core and back.

Authentication, scope checks and error mapping happen in ``grpc_interceptors``; handlers raise
domain errors and never build statuses themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import grpc

from imagegateway.v1 import analytics_pb2, configs_pb2, health_pb2, images_pb2, keys_pb2, logs_pb2, service_pb2_grpc
from imagegateway_server.api import grpc_mapping
from imagegateway_server.api.analytics_mapping import analytics_query, analytics_response
from imagegateway_server.api.auth import current_caller, visible_caller_key_id
from imagegateway_server.api.config_proto import config_from_proto, saved_config_proto
from imagegateway_server.api.grpc_image_responses import (
    SerializedMessage,
    generate_image_response,
    partial_image_response,
    progress_response,
    stream_image_response,
)
from imagegateway_server.api.grpc_upload import EditUpload, read_edit_upload, read_variation_upload
from imagegateway_server.api.log_mapping import log_from_record
from imagegateway_server.api.upload_budget import UploadBudget
from imagegateway_server.core.gateway import Gateway
from imagegateway_server.core.streaming import StreamItem, stream_generation
from imagegateway_server.domain.calls import GenerationCall, GenerationOutcome
from imagegateway_server.domain.errors import InvalidArgument, NotFound
from imagegateway_server.domain.image_inputs import digests
from imagegateway_server.domain.input_limits import (
    DEFAULT_INPUT_LIMITS,
    InputLimits,
    check_metadata_size,
    check_trace_id,
)
from imagegateway_server.domain.progress import PartialImage
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.routing_config import RoutingConfig
from imagegateway_server.domain.scopes import Scope
from imagegateway_server.observability.tracing import bind_trace_id, resolve_trace
from imagegateway_server.providers.registry import canonical_provider
from imagegateway_server.routing.config_service import ConfigService
from imagegateway_server.security.api_keys import ApiKeyService
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.virtual_keys import VirtualKeyService
from imagegateway_server.state.breakers import Breakers, BreakerView
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import ApiKeyRecord, LogFilter, VirtualKeyRecord

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def page_size(value: int) -> int:
    """AIP-158 style: 0 means the default, larger than the maximum is coerced down."""
    if value < 0:
        raise InvalidArgument("must not be negative", param="page_size")
    return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


# Says a retired model was served by its successor ("dall-e-3->gpt-image-2"), as REST's header does.
MODEL_SUBSTITUTED_METADATA = "x-imagegw-model-substituted"


def _metadata(context: Context) -> dict[str, str]:
    return {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}


def _deadline(context: Context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else asyncio.get_running_loop().time() + remaining


def _timestamp_from(when: datetime | None, target: Any) -> None:
    if when is not None:
        target.FromDatetime(when)


def virtual_key_proto(record: VirtualKeyRecord) -> keys_pb2.VirtualKey:
    message = keys_pb2.VirtualKey(
        id=record.id,
        name=record.name,
        provider=record.provider,
        base_url=record.base_url or "",
        limits=grpc_mapping.limits_proto(record.limits),
        public_credential_fields=dict(record.public_credential_fields or {}),
    )
    _timestamp_from(record.create_time, message.create_time)
    _timestamp_from(record.rotate_time, message.rotate_time)
    return message


def api_key_proto(record: ApiKeyRecord) -> keys_pb2.ApiKey:
    scope = keys_pb2.SCOPE_ADMIN if record.scope == Scope.ADMIN else keys_pb2.SCOPE_GENERATE
    message = keys_pb2.ApiKey(
        id=record.id,
        name=record.name,
        scope=scope,
        display_prefix=record.display_prefix,
        limits=grpc_mapping.limits_proto(record.limits),
    )
    _timestamp_from(record.create_time, message.create_time)
    _timestamp_from(record.revoke_time, message.revoke_time)
    _timestamp_from(record.rotate_time, message.rotate_time)
    if record.revoke_time is None and record.previous_key_valid_at(datetime.now(UTC)):
        _timestamp_from(record.previous_key_expire_time, message.previous_key_expire_time)
    return message


_CIRCUIT_STATES = {
    "closed": health_pb2.CIRCUIT_STATE_CLOSED,
    "half_open": health_pb2.CIRCUIT_STATE_HALF_OPEN,
    "open": health_pb2.CIRCUIT_STATE_OPEN,
}


def target_health_proto(view: BreakerView) -> health_pb2.TargetHealth:
    identity = view.identity
    message = health_pb2.TargetHealth(
        provider=identity.provider,
        host=identity.host,
        key_fingerprint=identity.key_fingerprint,
        model=identity.model,
        state=_CIRCUIT_STATES[view.state.value],
        consecutive_failures=view.consecutive_failures,
        failure_rate=view.failure_rate,
        window_calls=view.window_calls,
    )
    if view.opened_time:
        message.opened_time.FromDatetime(datetime.fromtimestamp(view.opened_time, UTC))
    if view.next_probe_time:
        message.next_probe_time.FromDatetime(datetime.fromtimestamp(view.next_probe_time, UTC))
    return message


class ImageGatewayService(service_pb2_grpc.ImageGatewayServicer):
    """Implements every RPC of imagegateway.v1.ImageGateway."""

    def __init__(
        self,
        gateway: Gateway,
        configs: ConfigService,
        virtual_keys: VirtualKeyService,
        api_keys: ApiKeyService,
        store: Store,
        host_policy: UpstreamHostPolicy,
        *,
        breakers: Breakers,
        input_limits: InputLimits = DEFAULT_INPUT_LIMITS,
        upload_budget: UploadBudget | None = None,
    ) -> None:
        self._input_limits = input_limits
        # The process's one budget, shared with the REST shim (app.py); a servicer built alone has its own.
        self._uploads = upload_budget or UploadBudget(input_limits.upload_memory_bytes)
        self._breakers = breakers
        self._gateway = gateway
        self._configs = configs
        self._virtual_keys = virtual_keys
        self._api_keys = api_keys
        self._store = store
        self._host_policy = host_policy

    # --- images -----------------------------------------------------------------------------

    async def _generate(
        self, request: Any, context: Context, build: Callable[[Any], ImageRequest] | None = None
    ) -> GenerationOutcome:
        """Serves a request to its outcome; ``_events`` with nothing to report before it."""
        outcome: GenerationOutcome | None = None
        async for item in self._events(request, context, stream=False, build=build):
            if isinstance(item, GenerationOutcome):
                outcome = item
        assert outcome is not None  # _events ends with the outcome or raises
        return outcome

    async def _events(
        self,
        request: Any,
        context: Context,
        *,
        stream: bool,
        build: Callable[[Any], ImageRequest] | None = None,
    ) -> AsyncGenerator[StreamItem, None]:
        """What serving ``request`` (any of the image RPCs' requests) yields: with ``stream``, its partial
        images and (if the caller asked) its progress as they come (``core.streaming``), and always its
        outcome last; a failure raises its domain error. Without either nothing listens, and the request
        costs what a unary one does. ``build`` turns the request into the domain request (default: a
        generation from its ``parameters``)."""
        metadata = _metadata(context)
        if request.trace_id:
            check_trace_id(request.trace_id, param="trace_id")
        elif "x-portkey-trace-id" in metadata:
            check_trace_id(metadata["x-portkey-trace-id"], param="x-portkey-trace-id")
        check_metadata_size(request.metadata, self._input_limits.max_metadata_bytes, param="metadata")
        trace = resolve_trace(request.trace_id or metadata.get("x-portkey-trace-id"), metadata)
        bind_trace_id(trace.trace_id)
        # The trace id goes out in the initial metadata while the request is served rather than before
        # (sending is a round trip through gRPC's completion queue, ~0.15 ms), and the send always ends
        # before the handler does, so a failed call carries the trace id as well.
        sent = asyncio.ensure_future(context.send_initial_metadata((("x-portkey-trace-id", trace.trace_id),)))
        try:
            if not request.HasField("parameters"):
                raise InvalidArgument("is required", param="parameters")
            settings = grpc_mapping.stream_settings(request) if stream else None
            if build is None:
                image_request = grpc_mapping.image_request(request.parameters, stream=settings)
            else:
                image_request = build(request)
                if settings is not None:
                    image_request = dataclasses.replace(
                        image_request, stream=settings.stream, partial_images=settings.partial_images
                    )
            call = GenerationCall(
                request=image_request,
                routing=grpc_mapping.routing_spec(request.routing, max_targets=self._input_limits.max_targets),
                caller=current_caller.get(),
                transport="grpc",
                trace_id=trace.trace_id,
                trace_parent=trace.parent,
                metadata=dict(request.metadata),
                deadline=_deadline(context),
                headers=metadata,
                cache_force_refresh=request.cache_force_refresh,
                stream_complete=settings is not None and settings.stream_complete,
            )
            if call.request.stream or (stream and request.progress):
                async for item in stream_generation(self._gateway, call, progress=bool(stream and request.progress)):
                    if isinstance(item, GenerationOutcome):
                        outcome = item
                    elif request.progress or isinstance(item, PartialImage):
                        await sent  # the initial metadata goes before the first message
                        yield item
            else:
                outcome = await self._gateway.generate(call)
        except BaseException:
            with contextlib.suppress(Exception):  # the request's own error is the one to report
                await sent
            raise
        await sent
        substitution = outcome.routed.substitution
        if substitution is not None:
            # Also in RoutingOutcome.model_substitution; as trailing metadata, as the REST shim's header.
            context.set_trailing_metadata(((MODEL_SUBSTITUTED_METADATA, substitution.describe()),))
        yield outcome

    # The two image RPCs answer their messages already serialized, image bytes spliced in rather than
    # copied through a message (grpc_image_responses); hence the overrides' return types.

    async def GenerateImage(  # type: ignore[override]
        self, request: images_pb2.GenerateImageRequest, context: Context
    ) -> SerializedMessage:
        return generate_image_response(await self._generate(request, context))

    async def StreamGenerateImage(  # type: ignore[override]
        self, request: images_pb2.StreamGenerateImageRequest, context: Context
    ) -> AsyncIterator[SerializedMessage]:
        async for message in self._streamed(request, context):
            yield message

    def _streamed(
        self, request: Any, context: Context, build: Callable[[Any], ImageRequest] | None = None
    ) -> AsyncIterator[SerializedMessage]:
        """What every streaming image RPC answers (StreamGenerateImage, StreamEditImage,
        StreamEditImageUpload): ``request`` (or an upload's header) served with its events, as messages."""
        return self._stream_messages(self._events(request, context, stream=True, build=build))

    async def _stream_messages(self, events: AsyncGenerator[StreamItem, None]) -> AsyncIterator[SerializedMessage]:
        """The messages of a streaming image RPC (StreamGenerateImageResponse's layout, which
        StreamEditImageResponse and StreamEditImageUploadResponse share): progress and partial images,
        then one image per message."""
        try:
            async for item in events:
                if isinstance(item, GenerationOutcome):
                    last = len(item.routed.result.images) - 1
                    for i in range(last + 1):
                        yield stream_image_response(item, i, last=i == last)
                elif isinstance(item, PartialImage):
                    yield partial_image_response(item)
                else:
                    yield progress_response(item)
        finally:
            await events.aclose()

    # Edits and variations (and their chunked uploads) answer in GenerateImageResponse's layout (the same
    # fields and numbers), so their messages are serialized by the same splicing code; StreamEditImage
    # and StreamEditImageUpload in StreamGenerateImage's.
    #
    # Each holds its inputs' memory against the upload budget (IMAGEGW_UPLOAD_MEMORY_BYTES, shared with
    # REST) until the request ends, however it ends, as the images stay in memory for retries and
    # fallbacks: a one-message RPC reserves its message's size at once (its turn waited for as REST's),
    # a chunked one grows its reservation as the chunks arrive (upload_budget).

    async def _edit_builder(
        self, request: images_pb2.EditImageRequest | images_pb2.StreamEditImageRequest
    ) -> Callable[[Any], ImageRequest]:
        """How an edit message becomes the domain request; its files are hashed first, a large upload
        off the event loop (a 64 MB message would otherwise stall every other call for tens of ms)."""
        limits = self._input_limits
        images = [(image.data, image.filename) for image in request.images]
        mask = (request.mask.data, request.mask.filename) if request.HasField("mask") else None
        markup = (request.markup.data, request.markup.filename) if request.HasField("markup") else None
        files = [*images, *([mask] if mask else []), *([markup] if markup else [])]
        known = await digests([data for data, _ in files])

        def build(message: Any) -> ImageRequest:
            return grpc_mapping.edit_request(message.parameters, images, mask, limits, markup, known)

        return build

    async def EditImage(  # type: ignore[override]
        self, request: images_pb2.EditImageRequest, context: Context
    ) -> SerializedMessage:
        async with self._uploads.reserve(request.ByteSize()):
            build = await self._edit_builder(request)
            return generate_image_response(await self._generate(request, context, build=build))

    async def StreamEditImage(  # type: ignore[override]
        self, request: images_pb2.StreamEditImageRequest, context: Context
    ) -> AsyncIterator[SerializedMessage]:
        async with self._uploads.reserve(request.ByteSize()):
            async for message in self._streamed(request, context, await self._edit_builder(request)):
                yield message

    def _upload_builder(self, upload: EditUpload) -> Callable[[Any], ImageRequest]:
        """How a chunked edit's header becomes the domain request, with the files read from its chunks
        (already hashed as they arrived)."""
        limits = self._input_limits

        def build(header: Any) -> ImageRequest:
            return grpc_mapping.edit_request(
                header.parameters, upload.images, upload.mask, limits, upload.markup, upload.digests
            )

        return build

    async def EditImageUpload(  # type: ignore[override]
        self, requests: AsyncIterator[images_pb2.EditImageUploadRequest], context: Context
    ) -> SerializedMessage:
        async with self._uploads.hold() as reservation:
            upload = await read_edit_upload(requests, self._input_limits, reservation)
            build = self._upload_builder(upload)
            return generate_image_response(await self._generate(upload.header, context, build=build))

    async def StreamEditImageUpload(  # type: ignore[override]
        self, requests: AsyncIterator[images_pb2.StreamEditImageUploadRequest], context: Context
    ) -> AsyncIterator[SerializedMessage]:
        # The whole upload is read before anything is served: the edit needs every file, and a bad
        # chunk is refused before any upstream call. Then it streams as StreamEditImage does.
        async with self._uploads.hold() as reservation:
            upload = await read_edit_upload(requests, self._input_limits, reservation)
            async for message in self._streamed(upload.header, context, self._upload_builder(upload)):
                yield message

    def _variation_builder(self, image: tuple[bytes, str] | None, digest: str) -> Callable[[Any], ImageRequest]:
        """How a variation message (or an upload's header) becomes the domain request, for ``image``."""
        limits = self._input_limits

        def build(message: Any) -> ImageRequest:
            if image is None:
                raise InvalidArgument("is required", param="image")
            return grpc_mapping.variation_request(message.parameters, image, limits, digest)

        return build

    async def CreateImageVariation(  # type: ignore[override]
        self, request: images_pb2.CreateImageVariationRequest, context: Context
    ) -> SerializedMessage:
        async with self._uploads.reserve(request.ByteSize()):
            (digest,) = await digests([request.image.data])
            image = (request.image.data, request.image.filename) if request.HasField("image") else None
            build = self._variation_builder(image, digest)
            return generate_image_response(await self._generate(request, context, build=build))

    async def CreateImageVariationUpload(  # type: ignore[override]
        self, requests: AsyncIterator[images_pb2.CreateImageVariationUploadRequest], context: Context
    ) -> SerializedMessage:
        async with self._uploads.hold() as reservation:
            upload = await read_variation_upload(requests, self._input_limits, reservation)
            build = self._variation_builder(upload.image, upload.digest)
            return generate_image_response(await self._generate(upload.header, context, build=build))

    # --- configs ----------------------------------------------------------------------------

    def _config(self, message: configs_pb2.RoutingConfig) -> RoutingConfig:
        return config_from_proto(message, max_targets=self._input_limits.max_targets)

    async def CreateConfig(
        self, request: configs_pb2.CreateConfigRequest, context: Context
    ) -> configs_pb2.CreateConfigResponse:
        if not request.HasField("config"):
            raise InvalidArgument("is required", param="config")
        record = await self._configs.create(request.name, self._config(request.config))
        return configs_pb2.CreateConfigResponse(config=saved_config_proto(record))

    async def GetConfig(self, request: configs_pb2.GetConfigRequest, context: Context) -> configs_pb2.GetConfigResponse:
        if request.version < 0:
            raise InvalidArgument("must not be negative", param="version")
        record = await self._configs.get(request.id, request.version or None)
        return configs_pb2.GetConfigResponse(config=saved_config_proto(record))

    async def ListConfigs(
        self, request: configs_pb2.ListConfigsRequest, context: Context
    ) -> configs_pb2.ListConfigsResponse:
        page = await self._configs.list(page_size(request.page_size), request.page_token)
        return configs_pb2.ListConfigsResponse(
            configs=[saved_config_proto(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def UpdateConfig(
        self, request: configs_pb2.UpdateConfigRequest, context: Context
    ) -> configs_pb2.UpdateConfigResponse:
        if not request.HasField("config"):
            raise InvalidArgument("is required", param="config")
        record = await self._configs.update(request.id, self._config(request.config), request.name)
        return configs_pb2.UpdateConfigResponse(config=saved_config_proto(record))

    async def DeleteConfig(
        self, request: configs_pb2.DeleteConfigRequest, context: Context
    ) -> configs_pb2.DeleteConfigResponse:
        await self._configs.delete(request.id)
        return configs_pb2.DeleteConfigResponse()

    async def ValidateConfig(
        self, request: configs_pb2.ValidateConfigRequest, context: Context
    ) -> configs_pb2.ValidateConfigResponse:
        self._configs.compile(self._config(request.config))
        return configs_pb2.ValidateConfigResponse()

    # --- virtual keys -----------------------------------------------------------------------

    async def CreateVirtualKey(
        self, request: keys_pb2.CreateVirtualKeyRequest, context: Context
    ) -> keys_pb2.CreateVirtualKeyResponse:
        base_url = self._host_policy.check(request.base_url, param="base_url") if request.base_url else None
        record = await self._virtual_keys.create(
            request.name,
            request.provider,
            request.secret,
            base_url,
            virtual_key_id=request.virtual_key_id or None,
            limits=grpc_mapping.limits_from_proto(request.limits),
            credential_fields=dict(request.credential_fields),
        )
        return keys_pb2.CreateVirtualKeyResponse(virtual_key=virtual_key_proto(record))

    async def GetVirtualKey(
        self, request: keys_pb2.GetVirtualKeyRequest, context: Context
    ) -> keys_pb2.GetVirtualKeyResponse:
        return keys_pb2.GetVirtualKeyResponse(virtual_key=virtual_key_proto(await self._virtual_keys.get(request.id)))

    async def ListVirtualKeys(
        self, request: keys_pb2.ListVirtualKeysRequest, context: Context
    ) -> keys_pb2.ListVirtualKeysResponse:
        page = await self._virtual_keys.list(page_size(request.page_size), request.page_token)
        return keys_pb2.ListVirtualKeysResponse(
            virtual_keys=[virtual_key_proto(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def RotateVirtualKey(
        self, request: keys_pb2.RotateVirtualKeyRequest, context: Context
    ) -> keys_pb2.RotateVirtualKeyResponse:
        record = await self._virtual_keys.rotate(request.id, request.secret, dict(request.credential_fields))
        return keys_pb2.RotateVirtualKeyResponse(virtual_key=virtual_key_proto(record))

    async def DeleteVirtualKey(
        self, request: keys_pb2.DeleteVirtualKeyRequest, context: Context
    ) -> keys_pb2.DeleteVirtualKeyResponse:
        await self._virtual_keys.delete(request.id)
        return keys_pb2.DeleteVirtualKeyResponse()

    # --- gateway API keys -------------------------------------------------------------------

    async def CreateApiKey(
        self, request: keys_pb2.CreateApiKeyRequest, context: Context
    ) -> keys_pb2.CreateApiKeyResponse:
        scope = "admin" if request.scope == keys_pb2.SCOPE_ADMIN else "generate"
        if not request.name.strip():
            raise InvalidArgument("is required", param="name")
        record, plaintext = await self._api_keys.create(
            request.name, scope, grpc_mapping.limits_from_proto(request.limits)
        )
        return keys_pb2.CreateApiKeyResponse(api_key=api_key_proto(record), key=plaintext)

    async def ListApiKeys(self, request: keys_pb2.ListApiKeysRequest, context: Context) -> keys_pb2.ListApiKeysResponse:
        page = await self._api_keys.list(page_size(request.page_size), request.page_token)
        return keys_pb2.ListApiKeysResponse(
            api_keys=[api_key_proto(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def RevokeApiKey(
        self, request: keys_pb2.RevokeApiKeyRequest, context: Context
    ) -> keys_pb2.RevokeApiKeyResponse:
        return keys_pb2.RevokeApiKeyResponse(api_key=api_key_proto(await self._api_keys.revoke(request.id)))

    async def RotateApiKey(
        self, request: keys_pb2.RotateApiKeyRequest, context: Context
    ) -> keys_pb2.RotateApiKeyResponse:
        record, plaintext = await self._api_keys.rotate(request.id, request.previous_key_valid_seconds)
        return keys_pb2.RotateApiKeyResponse(api_key=api_key_proto(record), key=plaintext)

    async def DeleteApiKey(
        self, request: keys_pb2.DeleteApiKeyRequest, context: Context
    ) -> keys_pb2.DeleteApiKeyResponse:
        await self._api_keys.delete(request.id)
        return keys_pb2.DeleteApiKeyResponse()

    # --- request logs -----------------------------------------------------------------------

    async def ListLogs(self, request: logs_pb2.ListLogsRequest, context: Context) -> logs_pb2.ListLogsResponse:
        caller = current_caller.get()
        success = {logs_pb2.REQUEST_OUTCOME_SUCCESS: True, logs_pb2.REQUEST_OUTCOME_FAILURE: False}.get(request.outcome)
        caller_key_id = visible_caller_key_id(caller, request.caller_key_id or None)
        log_filter = LogFilter(
            trace_id=request.trace_id or None,
            status_code=request.status_code or None,
            success=success,
            provider=canonical_provider(request.provider) if request.provider else None,
            caller_key_id=caller_key_id,
            start_time=grpc_mapping.time_filter(request, "start_time"),
            end_time=grpc_mapping.time_filter(request, "end_time"),
            model=request.model or None,
            config_id=request.config_id or None,
            fallback_used=request.fallback_used if request.HasField("fallback_used") else None,
        )
        page = await self._store.list_logs(log_filter, page_size(request.page_size), request.page_token)
        return logs_pb2.ListLogsResponse(
            logs=[log_from_record(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def GetLog(self, request: logs_pb2.GetLogRequest, context: Context) -> logs_pb2.GetLogResponse:
        caller = current_caller.get()
        record = await self._store.get_log(request.id)
        if caller.scope != Scope.ADMIN and record.caller_key_id != caller.key_id:
            raise NotFound(f"request log {request.id!r} was not found")  # do not reveal others' ids
        return logs_pb2.GetLogResponse(log=log_from_record(record))

    async def GetAnalytics(
        self, request: analytics_pb2.GetAnalyticsRequest, context: Context
    ) -> analytics_pb2.GetAnalyticsResponse:
        # A generate key's numbers are its own requests only, whatever it groups by (metadata too).
        caller_key_id = visible_caller_key_id(current_caller.get(), request.caller_key_id or None)
        query = analytics_query(request, caller_key_id)
        return analytics_response(query, await self._store.aggregate_logs(query))

    # --- target health ----------------------------------------------------------------------

    async def ListTargetHealth(
        self, request: health_pb2.ListTargetHealthRequest, context: Context
    ) -> health_pb2.ListTargetHealthResponse:
        provider = canonical_provider(request.provider) if request.provider else None
        views = await self._breakers.snapshot(provider)
        return health_pb2.ListTargetHealthResponse(targets=[target_health_proto(v) for v in views])
