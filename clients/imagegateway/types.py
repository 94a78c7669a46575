"""The API's message and enum types, under one import: what the clients' methods take and return.

``from imagegateway.types import Config, RequestLog`` names a type without reaching into the
generated ``imagegateway.v1`` modules, as ``google.cloud.secretmanager.types`` does for its client.
"""

from imagegateway.v1.analytics_pb2 import (
    AnalyticsBucket,
    AnalyticsCounts,
    AnalyticsGroupBy,
    AnalyticsRow,
    ErrorKindCount,
    FallbackPair,
    GetAnalyticsResponse,
)
from imagegateway.v1.configs_pb2 import (
    CacheSettings,
    CircuitBreakerSettings,
    Condition,
    Config,
    ListConfigsResponse,
    RetrySettings,
    RoutingConfig,
    Strategy,
)
from imagegateway.v1.health_pb2 import CircuitState, TargetHealth
from imagegateway.v1.images_pb2 import (
    Attempt,
    CacheStatus,
    ErrorKind,
    GenerateImageFailure,
    GenerateImageRequest,
    GenerateImageResponse,
    Image,
    ImageParameters,
    Routing,
    RoutingOutcome,
    StreamGenerateImageResponse,
)
from imagegateway.v1.keys_pb2 import (
    ApiKey,
    CreateApiKeyResponse,
    Limits,
    ListApiKeysResponse,
    ListVirtualKeysResponse,
    RotateApiKeyResponse,
    Scope,
    VirtualKey,
)
from imagegateway.v1.logs_pb2 import ListLogsResponse, LoggedImage, RequestLog, RequestOutcome

__all__ = [
    "AnalyticsBucket",
    "AnalyticsCounts",
    "AnalyticsGroupBy",
    "AnalyticsRow",
    "ApiKey",
    "Attempt",
    "CacheSettings",
    "CacheStatus",
    "CircuitBreakerSettings",
    "CircuitState",
    "Condition",
    "Config",
    "CreateApiKeyResponse",
    "ErrorKind",
    "ErrorKindCount",
    "FallbackPair",
    "GenerateImageFailure",
    "GenerateImageRequest",
    "GenerateImageResponse",
    "GetAnalyticsResponse",
    "Image",
    "ImageParameters",
    "Limits",
    "ListApiKeysResponse",
    "ListConfigsResponse",
    "ListLogsResponse",
    "ListVirtualKeysResponse",
    "LoggedImage",
    "RequestLog",
    "RequestOutcome",
    "RetrySettings",
    "RotateApiKeyResponse",
    "Routing",
    "RoutingConfig",
    "RoutingOutcome",
    "Scope",
    "Strategy",
    "StreamGenerateImageResponse",
    "TargetHealth",
    "VirtualKey",
]
