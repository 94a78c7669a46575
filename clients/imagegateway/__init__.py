"""ImageGateway's Python client: sync and asyncio clients over the generated ``imagegateway.v1`` stubs.

``ImageGatewayClient`` (client.py) blocks, ``AsyncImageGatewayClient`` (async_client.py) awaits;
both share connection.py (target, API key, deadlines, TLS), builders.py (typed request fields) and
pagers.py. errors.py maps gRPC failures to one exception per status; types.py names the messages;
events.py types the events of ``generate_events`` and ``edit_events`` (progress, partial images, final
images).
"""

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
from imagegateway.client import ImageGatewayClient
from imagegateway.connection import (
    ADMIN_TIMEOUT,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TARGET,
    IMAGE_TIMEOUT,
    CredentialsFileError,
    tls_credentials,
)
from imagegateway.errors import (
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    ImageGatewayError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    from_rpc_error,
)
from imagegateway.events import FinalImage, GenerationEvent, PartialImage, Progress

__all__ = [
    "ADMIN_TIMEOUT",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_TARGET",
    "IMAGE_TIMEOUT",
    "AlreadyExistsError",
    "AnalyticsFilters",
    "AsyncImageGatewayClient",
    "ConfigLike",
    "CredentialsFileError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FinalImage",
    "GenerateFields",
    "GenerationEvent",
    "GroupByName",
    "ImageGatewayClient",
    "ImageGatewayError",
    "InternalError",
    "InvalidArgumentError",
    "LogFilters",
    "NotFoundError",
    "PartialImage",
    "PermissionDeniedError",
    "Progress",
    "ResourceExhaustedError",
    "ScopeName",
    "UnauthenticatedError",
    "UnavailableError",
    "build_generate_request",
    "from_rpc_error",
    "tls_credentials",
]
