"""How much a caller may send: body, prompt, config shape, metadata, images per request, input images, trace ids.

The sizes are settings (IMAGEGW_MAX_*), read once at start into one ``InputLimits`` that the front
ends, the gateway core and the config compiler are built with; requests never read settings. Every
violation is an InvalidArgument naming the field (the REST body's size is a 413, decided by the shim).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

from imagegateway_server.domain.errors import InvalidArgument

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_PROMPT_CHARS = 32_000
DEFAULT_MAX_CONFIG_DEPTH = 10
DEFAULT_MAX_TARGETS = 100
DEFAULT_MAX_METADATA_BYTES = 8 * 1024
DEFAULT_MAX_IMAGES = 10
# OpenAI's limits on edits: up to 16 input images (gpt-image), each under 50 MB.
DEFAULT_MAX_INPUT_IMAGES = 16
DEFAULT_MAX_INPUT_IMAGE_BYTES = 50 * 1024 * 1024
# Uploads (edits, variations; REST and gRPC) held in memory at once; more wait, so memory stays bounded.
DEFAULT_UPLOAD_MEMORY_BYTES = 256 * 1024 * 1024

# A trace id travels back in response headers and gRPC metadata and into every log line, so it is
# kept short and printable: what fits a header value everywhere and cannot forge a log line.
MAX_TRACE_ID_CHARS = 128


@dataclasses.dataclass(frozen=True, slots=True)
class InputLimits:
    """The bad-input limits of one gateway process."""

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_prompt_chars: int = DEFAULT_MAX_PROMPT_CHARS
    max_config_depth: int = DEFAULT_MAX_CONFIG_DEPTH
    max_targets: int = DEFAULT_MAX_TARGETS
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    max_images: int = DEFAULT_MAX_IMAGES
    max_input_images: int = DEFAULT_MAX_INPUT_IMAGES
    max_input_image_bytes: int = DEFAULT_MAX_INPUT_IMAGE_BYTES
    upload_memory_bytes: int = DEFAULT_UPLOAD_MEMORY_BYTES


DEFAULT_INPUT_LIMITS = InputLimits()


def check_trace_id(value: str, *, param: str) -> str:
    """Returns ``value`` if it is a usable trace id: 1-128 printable ASCII characters."""
    if len(value) > MAX_TRACE_ID_CHARS:
        raise InvalidArgument(
            f"must be at most {MAX_TRACE_ID_CHARS} characters", param=param, code="string_above_max_length"
        )
    if not all(" " <= c <= "~" for c in value):
        raise InvalidArgument("must be printable ASCII", param=param)
    return value


def check_metadata_size(metadata: Mapping[str, str], max_bytes: int, *, param: str) -> None:
    """Metadata is measured as its compact JSON, the form REST callers send in ``x-portkey-metadata``."""
    if not metadata:
        return
    size = len(json.dumps(dict(metadata), separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise InvalidArgument(f"must be at most {max_bytes} bytes as JSON, got {size}", param=param)
