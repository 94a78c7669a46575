"""What a provider produced, and what the router did to get it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Protocol

from imagegateway_server.domain.error_kinds import ErrorKind


@dataclasses.dataclass(frozen=True, slots=True)
class GeneratedImage:
    """One image. ``data`` is set unless the caller asked for URLs and the provider gave one.

    ``provider``, ``model`` and ``size`` (WIDTHxHEIGHT) say what actually produced it: the size is
    the image's own when its pixels were seen, else the size asked of the provider ("" if unknown).
    """

    data: bytes | None
    mime_type: str
    width: int = 0
    height: int = 0
    url: str | None = None
    revised_prompt: str | None = None
    seed: int | None = None
    provider: str = ""
    model: str = ""
    size: str = ""
    # When ``url`` stops working (epoch seconds), if the provider says or documents it (BFL's signed
    # results: about ten minutes); the response cache keeps such an answer no longer than that.
    url_expires_at: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ImageResult:
    """A provider's successful answer. ``translations`` lists each parameter the adapter changed to
    make the request fit the model, as ``param=old->new`` (``size=1792x1024->1344x768``).

    ``usage`` is the provider's token count as it sent it (OpenAI's ``usage`` object: input_tokens,
    input_tokens_details, output_tokens, output_tokens_details, total_tokens). ``background``,
    ``output_format``, ``quality`` and ``size`` are what the provider said it made (OpenAI's
    response-level fields of the gpt-image models; None when it did not say).

    ``sent_size`` and ``sent_quality`` are what was asked of the provider after translation (""/None:
    nothing, the model's default): what a per-image price is billed by, whatever came back.

    ``safety_identifier`` is the end-user id OpenAI says it used for abuse monitoring (the request's
    ``safety_identifier``, else its ``user``), and ``svg_usage`` OpenAI's separate token count of an
    SVG answer's author model; both as the provider sent them, None when it did not.
    """

    images: tuple[GeneratedImage, ...]
    model: str
    created: int
    provider_request_id: str | None = None
    usage: Mapping[str, Any] | None = None
    translations: tuple[str, ...] = ()
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    sent_size: str = ""
    sent_quality: str | None = None
    safety_identifier: str | None = None
    svg_usage: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ModelSubstitution:
    """A retired model the router replaced with its successor for one request.

    ``reason`` is ``retired`` (the provider answered that the model does not exist, so the successor
    was tried at once) or ``remembered`` (an earlier answer for the same account said so, so the
    successor was called directly). ``retired_on`` is the table's retirement date (ISO), "" if unknown.
    """

    model: str
    successor: str
    reason: str
    retired_on: str = ""

    def describe(self) -> str:
        """``dall-e-3->gpt-image-2`` (what the response header and the log say)."""
        return f"{self.model}->{self.successor}"


@dataclasses.dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One upstream call made by the router."""

    target: str
    provider: str
    model: str
    status_code: int
    latency_ms: int
    retry_index: int = 0
    error_kind: ErrorKind | None = None
    error: str = ""
    # The target was skipped without a call because its circuit breaker was open.
    circuit_open: bool = False
    # The call was in flight when the request was cancelled (the caller left, or shutdown's grace ran out).
    cancelled: bool = False
    # Parameters the adapter translated for this target (empty unless it served).
    translations: tuple[str, ...] = ()
    # The virtual key the target called through ("" for an inline key): whose spend a cost is.
    virtual_key: str = ""
    # The call's time in seconds, unrounded, for the latency histogram (``latency_ms`` is whole
    # milliseconds, as logged; sub-millisecond calls would all observe 0 or 1 ms).
    seconds: float = 0.0
    # When the call began (``time.monotonic()``; 0 when no call was made), for trace spans.
    started: float = 0.0
    # Asynchronous providers (submit, then poll): the polls the attempt made and the seconds from
    # the job's acceptance to its end (``domain/job_progress.py``); 0 for a synchronous call.
    poll_count: int = 0
    poll_seconds: float = 0.0
    # A streamed request's image events already passed to the caller when this call failed: the
    # stream was cut after that many events, and no fallback could follow (docs/streaming.md).
    stream_events: int = 0

    @property
    def ok(self) -> bool:
        return self.error_kind is None


class ServedTarget(Protocol):
    """The target of a routing plan that served a request, as far as the core reads it."""

    @property
    def path(self) -> str:
        """Portkey's ``config.targets[i]`` form ("" when the request named no config)."""
        ...

    @property
    def virtual_key(self) -> str | None:
        """The virtual key the target called through (None for an inline key)."""
        ...

    @property
    def override_params(self) -> Mapping[str, Any]:
        """The parameters the target's config set over the caller's."""
        ...


@dataclasses.dataclass(frozen=True, slots=True)
class RoutedResult:
    """A served request: the result, the target that served it and every attempt made."""

    result: ImageResult
    leaf: ServedTarget
    provider: str
    attempts: tuple[AttemptRecord, ...]
    retry_count: int
    fallback_used: bool
    # Set when a retired model was served by its successor (``routing.model_successors``).
    substitution: ModelSubstitution | None = None
