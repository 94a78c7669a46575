"""Turns gRPC messages into domain objects and results back into messages."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format

from imagegateway.v1 import images_pb2, keys_pb2
from imagegateway_server.api.config_proto import inline_config
from imagegateway_server.api.log_mapping import CACHE_STATUS_PROTO, attempt_proto
from imagegateway_server.domain.calls import GenerationOutcome, RoutingSpec
from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.image_inputs import InputImage, Operation, input_image
from imagegateway_server.domain.input_limits import InputLimits
from imagegateway_server.domain.limits import Limits
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.domain.result import GeneratedImage, ImageResult
from imagegateway_server.domain.usage import token_counts


def time_filter(message: Any, field: str) -> datetime | None:
    """A Timestamp field of a request as a datetime, or None when unset; INVALID_ARGUMENT when out of range."""
    if not message.HasField(field):
        return None
    try:
        return getattr(message, field).ToDatetime(tzinfo=UTC)  # type: ignore[no-any-return]
    except (ValueError, OverflowError):  # seconds past year 9999, nanos outside 0..999,999,999
        raise InvalidArgument("must be a valid timestamp between years 1 and 9999", param=field) from None


def _opt(message: Any, field: str) -> Any:
    return getattr(message, field) if message.HasField(field) else None


def image_request(params: images_pb2.ImageParameters, *, stream: StreamSettings | None = None) -> ImageRequest:
    """The domain request; empty strings mean "not set", as proto3 has no presence for them. ``stream``:
    a streaming RPC's settings (``stream_settings``), built in rather than applied to a copy."""
    extra: dict[str, Any] = {}
    if params.HasField("extra_params"):
        try:
            extra = json_format.MessageToDict(params.extra_params)
        except ValueError:  # a NaN or infinity in the Struct has no JSON form to send upstream
            raise InvalidArgument("numbers must be finite", param="parameters.extra_params") from None
    if params.HasField("cfg_scale") and not math.isfinite(params.cfg_scale):
        raise InvalidArgument("must be a finite number", param="parameters.cfg_scale")
    if params.n < 0:
        raise InvalidArgument("must be at least 1", param="parameters.n")
    request = ImageRequest(
        prompt=params.prompt,
        model=params.model or None,
        n=params.n or 1,
        size=params.size or None,
        quality=params.quality or None,
        style=params.style or None,
        user=params.user or None,
        negative_prompt=params.negative_prompt or None,
        seed=_opt(params, "seed"),
        cfg_scale=_opt(params, "cfg_scale"),
        style_preset=params.style_preset or None,
        background=params.background or None,
        output_format=params.output_format or None,
        output_compression=_opt(params, "output_compression"),
        moderation=params.moderation or None,
        aspect_ratio=params.aspect_ratio or None,
        safety_identifier=params.safety_identifier or None,
        input_fidelity=params.input_fidelity or None,
        response_format=ResponseFormat.BYTES,
        strict=params.strict,
        stream=stream is not None and stream.stream,
        partial_images=stream.partial_images if stream is not None else None,
    )
    # A known parameter sent in extra_params (one this proto has no field for yet, or a caller's
    # habit) is set as that parameter, never left where no adapter reads it. response_format stays
    # an extra: gRPC always answers with bytes, so an adapter refuses it by name.
    known = {name: value for name, value in extra.items() if name != "response_format"}
    request = request.with_overrides(known, path="parameters.extra_params")
    if "response_format" in extra:
        request = dataclasses.replace(
            request, extra=MappingProxyType({**request.extra, "response_format": extra["response_format"]})
        )
    return request


def edit_request(
    params: images_pb2.ImageParameters,
    images: Sequence[tuple[bytes, str]],
    mask: tuple[bytes, str] | None,
    limits: InputLimits,
    markup: tuple[bytes, str] | None = None,
    digests: Sequence[str] = (),
) -> ImageRequest:
    """An edit: the parameters, and the images, mask and markup as (bytes, file name) pairs; ``digests``
    are their SHA-256s in that order when the caller already has them."""
    files = [*images, *([mask] if mask is not None else []), *([markup] if markup is not None else [])]
    known = list(digests) if len(digests) == len(files) else [None] * len(files)

    def described(index: int, param: str) -> InputImage:
        data, name = files[index]
        return input_image(
            data, param=param, filename=name, max_bytes=limits.max_input_image_bytes, sha256=known[index]
        )

    inputs = tuple(described(index, f"images[{index}]") for index in range(len(images)))
    described_mask = described(len(images), "mask") if mask is not None else None
    described_markup = described(len(files) - 1, "markup") if markup is not None else None
    return dataclasses.replace(
        image_request(params), operation=Operation.EDIT, images=inputs, mask=described_mask, markup=described_markup
    )


def variation_request(
    params: images_pb2.ImageParameters, image: tuple[bytes, str], limits: InputLimits, digest: str | None = None
) -> ImageRequest:
    """A variation of one image; a variation takes no prompt."""
    if params.prompt:
        raise InvalidArgument("is not taken by image variations", param="parameters.prompt")
    data, name = image
    described = input_image(data, param="image", filename=name, max_bytes=limits.max_input_image_bytes, sha256=digest)
    return dataclasses.replace(image_request(params), operation=Operation.VARIATION, images=(described,))


@dataclasses.dataclass(frozen=True, slots=True)
class StreamSettings:
    """What a streaming RPC asked of the stream: ``ImageRequest.stream`` and ``partial_images``, and
    ``stream_complete`` (``GenerationCall.stream_complete``)."""

    stream: bool
    partial_images: int | None
    stream_complete: bool


def stream_settings(
    request: images_pb2.StreamGenerateImageRequest
    | images_pb2.StreamEditImageRequest
    | images_pb2.StreamEditImageUploadHeader,
) -> StreamSettings | None:
    """A StreamGenerateImage, StreamEditImage or StreamEditImageUpload call's (the last by its header):
    partial_images above 0 streams them from the serving model, and stream_fallback says what a target
    that cannot stream does; None when the call did not set partial_images (served as unary)."""
    if not request.HasField("partial_images"):
        return None
    partial = request.partial_images
    # A value out of 0-3 stays set, for the request's validation to refuse it naming the field.
    return StreamSettings(
        stream=partial > 0,
        partial_images=partial or None,
        stream_complete=request.stream_fallback == images_pb2.STREAM_FALLBACK_COMPLETE,
    )


def routing_spec(routing: images_pb2.Routing, *, max_targets: int | None = None) -> RoutingSpec:
    """Where the request goes; an inline config becomes the model (``max_targets``: see config_from_proto)."""
    source = routing.WhichOneof("source")
    fields, params = provider_credential(routing)
    if routing.provider_credential and source != "provider":
        raise InvalidArgument("is only used with a bare provider (routing.provider)", param="provider_credential")
    return RoutingSpec(
        config_id=routing.config_id if source == "config_id" else None,
        config=inline_config(routing.config, max_targets=max_targets) if source == "config" else None,
        virtual_key=routing.virtual_key if source == "virtual_key" else None,
        provider=routing.provider if source == "provider" else None,
        provider_credential=fields,
        custom_host=routing.custom_host or None,
        credential_params=params,
    )


def provider_credential(routing: images_pb2.Routing) -> tuple[dict[str, str], dict[str, str]]:
    """A bare provider's credential fields (``provider_credential`` and ``provider_api_key``), and
    the field each came in, for errors: ``provider_api_key`` or ``provider_credential.<name>``."""
    fields = dict(routing.provider_credential)
    if routing.provider_api_key:
        if fields.get(API_KEY):
            raise InvalidArgument(
                "is given twice: send the key as provider_api_key or as provider_credential.api_key, not both",
                param="provider_credential.api_key",
            )
        fields[API_KEY] = routing.provider_api_key
    key_param = "provider_credential.api_key" if API_KEY in routing.provider_credential else "provider_api_key"
    return fields, {API_KEY: key_param}


def fill_image_metadata(message: images_pb2.Image, image: GeneratedImage, index: int) -> None:
    """Sets every field of ``message`` but ``data`` from ``image`` (the bytes are spliced in by
    ``grpc_image_responses``)."""
    message.mime_type = image.mime_type
    message.width = image.width
    message.height = image.height
    message.revised_prompt = image.revised_prompt or ""
    message.index = index
    message.provider = image.provider
    message.model = image.model
    message.size = image.size
    if image.seed is not None:
        message.seed = image.seed


def fill_outcome(message: images_pb2.RoutingOutcome, outcome: GenerationOutcome) -> None:
    """Sets ``message`` (in place: a message built apart is copied when a response takes it)."""
    routed = outcome.routed
    message.trace_id = outcome.trace_id
    message.log_id = outcome.log_id
    message.provider = routed.provider
    message.model = routed.result.model
    message.served_target = routed.leaf.path
    message.fallback_used = routed.fallback_used
    message.retry_attempt_count = routed.retry_count
    message.cache_status = CACHE_STATUS_PROTO[outcome.cache_status]
    message.cost_usd = outcome.cost_usd
    message.attempts.extend(attempt_proto(a) for a in routed.attempts)
    if routed.substitution is not None:
        sub = routed.substitution
        message.model_substitution.model = sub.model
        message.model_substitution.successor = sub.successor
        message.model_substitution.reason = sub.reason
        message.model_substitution.retired_on = sub.retired_on


def fill_report(message: images_pb2.GenerationReport, result: ImageResult) -> None:
    """Sets what the provider said it made (OpenAI's response-level fields) and its token counts; leaves
    ``message`` unset (absent from the parent) when the provider said none of it."""
    report = images_pb2.GenerationReport(
        background=result.background or "",
        output_format=result.output_format or "",
        quality=result.quality or "",
        size=result.size or "",
        safety_identifier=result.safety_identifier or "",
    )
    for name, count in token_counts(result.usage).items():
        setattr(report.usage, name, count)
    if result.svg_usage is not None:
        _fill_svg_usage(report.svg_usage, result.svg_usage)
    if report.ByteSize():
        message.CopyFrom(report)


def _fill_svg_usage(message: images_pb2.SvgUsage, usage: Mapping[str, Any]) -> None:
    """OpenAI's ``svg_usage`` as sent; a field of another type than OpenAI's is left unset."""
    if isinstance(model := usage.get("model"), str):
        message.model = model
    for name in ("input_tokens", "output_tokens", "reasoning_tokens", "total_tokens"):
        count = usage.get(name)
        if isinstance(count, int) and not isinstance(count, bool):
            setattr(message, name, count)


def limits_from_proto(message: keys_pb2.Limits, param: str = "limits") -> Limits:
    """Checked key limits (zero means unlimited); InvalidArgument names the field (``limits.usd_per_day``)."""
    return Limits.checked(message.requests_per_minute, message.usd_per_day, message.usd_per_month, param=param)


def limits_proto(limits: Limits) -> keys_pb2.Limits:
    return keys_pb2.Limits(
        requests_per_minute=limits.requests_per_minute,
        usd_per_day=limits.usd_per_day,
        usd_per_month=limits.usd_per_month,
    )
