"""A small in-memory ImageGateway served over a real loopback gRPC socket (no tests here).

Shared by test_client*.py and test_cli*.py. It records every call with its metadata and the time
left before its deadline, pages lists two at a time so pagers must follow tokens, and fails image
requests whose prompt is "fail" with a rich google.rpc.Status (ErrorInfo + GenerateImageFailure).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, timestamp_pb2
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from imagegateway.v1 import configs_pb2, images_pb2, keys_pb2, logs_pb2, service_pb2_grpc

ADMIN_KEY = "igw_admin_test"
OTHER_KEY = "igw_rotated_test"
PAGE_SIZE = 2  # when the caller asks for none; small, so lists span several pages
_T = TypeVar("_T")


@dataclasses.dataclass
class Call:
    method: str
    request: Any
    metadata: dict[str, str]
    time_remaining: float | None


def _pack(msg: Message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(msg)
    return packed


def _now() -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromSeconds(1_767_225_600)  # 2026-01-01T00:00:00Z
    return ts


def _attempts() -> list[images_pb2.Attempt]:
    return [
        images_pb2.Attempt(
            target="config.targets[0]",
            provider="stability-ai",
            model="sd3",
            status_code=503,
            error_kind=images_pb2.ERROR_KIND_UNAVAILABLE,
            error="upstream said 503",
            latency_ms=120,
        ),
        images_pb2.Attempt(
            target="config.targets[1]",
            provider="openai",
            model="dall-e-3",
            status_code=200,
            latency_ms=900,
        ),
    ]


class FakeGateway(service_pb2_grpc.ImageGatewayServicer):
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.keys = {ADMIN_KEY, OTHER_KEY}
        self.configs: dict[str, list[configs_pb2.Config]] = {}
        self.virtual_keys: dict[str, keys_pb2.VirtualKey] = {}
        self.secrets: dict[str, str] = {}
        self.credential_fields: dict[str, dict[str, str]] = {}
        self.api_keys: dict[str, keys_pb2.ApiKey] = {}
        self.logs: list[logs_pb2.RequestLog] = []
        self.image_bytes = 16  # size of each generated image

    # helpers

    def _enter(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        metadata = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
        self.calls.append(Call(method, request, metadata, context.time_remaining()))
        if metadata.get("authorization", "").removeprefix("Bearer ") not in self.keys:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown gateway API key")

    def last(self, method: str) -> Call:
        return [c for c in self.calls if c.method == method][-1]

    @staticmethod
    def _page(items: Sequence[_T], size: int, token: str) -> tuple[Sequence[_T], str]:
        start = int(token or 0)
        end = start + (size or PAGE_SIZE)
        return items[start:end], str(end) if end < len(items) else ""

    def _images(self, params: images_pb2.ImageParameters) -> list[images_pb2.Image]:
        return [
            images_pb2.Image(
                data=bytes([i + 1]) * self.image_bytes, mime_type="image/png", width=64, height=64, index=i
            )
            for i in range(params.n or 1)
        ]

    def _outcome(self, trace_id: str) -> images_pb2.RoutingOutcome:
        return images_pb2.RoutingOutcome(
            trace_id=trace_id or "trace-generated",
            log_id="log_1",
            provider="openai",
            model="dall-e-3",
            served_target="config.targets[1]",
            fallback_used=True,
            cache_status=images_pb2.CACHE_STATUS_MISS,
            attempts=_attempts(),
        )

    def _fail_generation(self, context: grpc.ServicerContext, trace_id: str) -> None:
        failure = images_pb2.GenerateImageFailure(
            trace_id=trace_id,
            log_id="log_failed",
            attempts=_attempts()[:1],
            error_kind=images_pb2.ERROR_KIND_UNAVAILABLE,
            http_status=503,
        )
        info = error_details_pb2.ErrorInfo(
            reason="ALL_TARGETS_FAILED", domain="imagegateway", metadata={"provider": "stability-ai"}
        )
        status = status_pb2.Status(
            code=code_pb2.UNAVAILABLE,
            message="every target failed; last: stability-ai 503",
            details=[_pack(info), _pack(failure)],
        )
        context.abort_with_status(rpc_status.to_status(status))

    # images

    def GenerateImage(self, request: Any, context: Any) -> images_pb2.GenerateImageResponse:
        self._enter("GenerateImage", request, context)
        if request.parameters.prompt == "fail":
            self._fail_generation(context, request.trace_id)
        return images_pb2.GenerateImageResponse(
            images=self._images(request.parameters), outcome=self._outcome(request.trace_id), created=1
        )

    def StreamGenerateImage(self, request: Any, context: Any) -> Iterator[images_pb2.StreamGenerateImageResponse]:
        self._enter("StreamGenerateImage", request, context)
        if request.parameters.prompt == "fail":
            self._fail_generation(context, request.trace_id)
        images = self._images(request.parameters)
        for image in images[:-1]:
            yield images_pb2.StreamGenerateImageResponse(image=image, created=1)
        yield images_pb2.StreamGenerateImageResponse(
            image=images[-1], outcome=self._outcome(request.trace_id), created=1
        )

    # configs

    def _config(self, id: str, context: Any, version: int = 0) -> configs_pb2.Config:
        id, _, at = id.partition("@")
        versions = self.configs.get(id, [])
        if not versions:
            context.abort(grpc.StatusCode.NOT_FOUND, f'config "{id}" not found')
        version = version or int(at or 0)
        return versions[version - 1] if version else versions[-1]

    def _save(self, id: str, name: str, config: configs_pb2.RoutingConfig) -> configs_pb2.Config:
        versions = self.configs.setdefault(id, [])
        saved = configs_pb2.Config(
            id=id, name=name, version=len(versions) + 1, config=config, create_time=_now(), first_create_time=_now()
        )
        versions.append(saved)
        return saved

    def CreateConfig(self, request: Any, context: Any) -> configs_pb2.CreateConfigResponse:
        self._enter("CreateConfig", request, context)
        return configs_pb2.CreateConfigResponse(
            config=self._save(f"cfg_{len(self.configs) + 1}", request.name, request.config)
        )

    def GetConfig(self, request: Any, context: Any) -> configs_pb2.GetConfigResponse:
        self._enter("GetConfig", request, context)
        return configs_pb2.GetConfigResponse(config=self._config(request.id, context, request.version))

    def ListConfigs(self, request: Any, context: Any) -> configs_pb2.ListConfigsResponse:
        self._enter("ListConfigs", request, context)
        items, token = self._page([v[-1] for v in self.configs.values()], request.page_size, request.page_token)
        return configs_pb2.ListConfigsResponse(configs=items, next_page_token=token)

    def UpdateConfig(self, request: Any, context: Any) -> configs_pb2.UpdateConfigResponse:
        self._enter("UpdateConfig", request, context)
        current = self._config(request.id, context)
        return configs_pb2.UpdateConfigResponse(
            config=self._save(current.id, request.name or current.name, request.config)
        )

    def DeleteConfig(self, request: Any, context: Any) -> configs_pb2.DeleteConfigResponse:
        self._enter("DeleteConfig", request, context)
        self._config(request.id, context)
        del self.configs[request.id]
        return configs_pb2.DeleteConfigResponse()

    def ValidateConfig(self, request: Any, context: Any) -> configs_pb2.ValidateConfigResponse:
        self._enter("ValidateConfig", request, context)
        if request.config.strategy.mode not in ("", "single", "fallback", "loadbalance", "conditional"):
            message = "strategy.mode: must be one of single, fallback, loadbalance, conditional"
            violation = error_details_pb2.BadRequest.FieldViolation(field="strategy.mode", description=message)
            status = status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT,
                message=message,
                details=[_pack(error_details_pb2.BadRequest(field_violations=[violation]))],
            )
            context.abort_with_status(rpc_status.to_status(status))
        return configs_pb2.ValidateConfigResponse()

    # virtual keys

    def _vk(self, id: str, context: Any) -> keys_pb2.VirtualKey:
        if id not in self.virtual_keys:
            context.abort(grpc.StatusCode.NOT_FOUND, f'virtual key "{id}" not found')
        return self.virtual_keys[id]

    def CreateVirtualKey(self, request: Any, context: Any) -> keys_pb2.CreateVirtualKeyResponse:
        self._enter("CreateVirtualKey", request, context)
        id = request.virtual_key_id or request.name.lower().replace(" ", "-")
        key = keys_pb2.VirtualKey(
            id=id,
            name=request.name,
            provider=request.provider,
            base_url=request.base_url,
            create_time=_now(),
            rotate_time=_now(),
        )
        self.virtual_keys[id] = key
        self.secrets[id] = request.secret
        self.credential_fields[id] = dict(request.credential_fields)
        return keys_pb2.CreateVirtualKeyResponse(virtual_key=key)

    def GetVirtualKey(self, request: Any, context: Any) -> keys_pb2.GetVirtualKeyResponse:
        self._enter("GetVirtualKey", request, context)
        return keys_pb2.GetVirtualKeyResponse(virtual_key=self._vk(request.id, context))

    def ListVirtualKeys(self, request: Any, context: Any) -> keys_pb2.ListVirtualKeysResponse:
        self._enter("ListVirtualKeys", request, context)
        items, token = self._page(list(self.virtual_keys.values()), request.page_size, request.page_token)
        return keys_pb2.ListVirtualKeysResponse(virtual_keys=items, next_page_token=token)

    def RotateVirtualKey(self, request: Any, context: Any) -> keys_pb2.RotateVirtualKeyResponse:
        self._enter("RotateVirtualKey", request, context)
        key = self._vk(request.id, context)
        self.secrets[request.id] = request.secret
        self.credential_fields[request.id] = dict(request.credential_fields)
        return keys_pb2.RotateVirtualKeyResponse(virtual_key=key)

    def DeleteVirtualKey(self, request: Any, context: Any) -> keys_pb2.DeleteVirtualKeyResponse:
        self._enter("DeleteVirtualKey", request, context)
        self._vk(request.id, context)
        del self.virtual_keys[request.id]
        return keys_pb2.DeleteVirtualKeyResponse()

    # gateway API keys

    def CreateApiKey(self, request: Any, context: Any) -> keys_pb2.CreateApiKeyResponse:
        self._enter("CreateApiKey", request, context)
        id = f"key_{len(self.api_keys) + 1}"
        key = keys_pb2.ApiKey(
            id=id,
            name=request.name,
            scope=request.scope or keys_pb2.SCOPE_GENERATE,
            display_prefix="igw_abc",
            create_time=_now(),
        )
        self.api_keys[id] = key
        return keys_pb2.CreateApiKeyResponse(api_key=key, key=f"igw_abc_plaintext_{id}")

    def ListApiKeys(self, request: Any, context: Any) -> keys_pb2.ListApiKeysResponse:
        self._enter("ListApiKeys", request, context)
        items, token = self._page(list(self.api_keys.values()), request.page_size, request.page_token)
        return keys_pb2.ListApiKeysResponse(api_keys=items, next_page_token=token)

    def RevokeApiKey(self, request: Any, context: Any) -> keys_pb2.RevokeApiKeyResponse:
        self._enter("RevokeApiKey", request, context)
        if request.id not in self.api_keys:
            context.abort(grpc.StatusCode.NOT_FOUND, f'API key "{request.id}" not found')
        self.api_keys[request.id].revoke_time.CopyFrom(_now())
        return keys_pb2.RevokeApiKeyResponse(api_key=self.api_keys[request.id])

    # logs

    def add_logs(self, count: int) -> None:
        for i in range(count):
            self.logs.append(
                logs_pb2.RequestLog(
                    id=f"log_{len(self.logs) + 1}",
                    trace_id=f"trace-{i}",
                    create_time=_now(),
                    status_code=200,
                    transport="grpc",
                    provider="openai",
                    model="dall-e-3",
                    served_target="config.targets[1]",
                    fallback_used=True,
                    cache_status=images_pb2.CACHE_STATUS_MISS,
                    attempts=_attempts(),
                    images=[
                        logs_pb2.LoggedImage(sha256="ab" * 32, width=64, height=64, bytes=16, mime_type="image/png")
                    ],
                    latency_ms=1020,
                    prompt="a red fox",
                )
            )

    def ListLogs(self, request: Any, context: Any) -> logs_pb2.ListLogsResponse:
        self._enter("ListLogs", request, context)
        items, token = self._page(self.logs, request.page_size, request.page_token)
        return logs_pb2.ListLogsResponse(logs=items, next_page_token=token)

    def GetLog(self, request: Any, context: Any) -> logs_pb2.GetLogResponse:
        self._enter("GetLog", request, context)
        for log in self.logs:
            if log.id == request.id:
                return logs_pb2.GetLogResponse(log=log)
        context.abort(grpc.StatusCode.NOT_FOUND, f'log "{request.id}" not found')
        raise AssertionError("unreachable")


@contextmanager
def serving(fake: FakeGateway) -> Iterator[str]:
    """Serves ``fake`` on 127.0.0.1 (a free port); yields the target."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ],
    )
    service_pb2_grpc.add_ImageGatewayServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)
