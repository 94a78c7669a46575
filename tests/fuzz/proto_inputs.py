"""Generators of gRPC request messages, built from the message descriptors.

Every field of a message may be set (each oneof to at most one member): scalars get boundary and
random values, enums get known and unknown numbers, ``Struct`` fields get arbitrary JSON,
``Timestamp`` fields get seconds far outside what a datetime can hold, and nested messages recurse
to a bounded depth. Fields where a random string would only ever be refused (provider names,
virtual keys, models, hosts) draw from ``FieldHints`` most of the time, so requests get past the
first checks and reach the router, the store and the emulators.

A client-streaming RPC (the chunked uploads) gets a sequence of messages: mostly a fuzzed header then
fuzzed chunks, whose bytes are often a small real PNG, sometimes any messages in any order.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from imagegateway.v1 import images_pb2, service_pb2
from tests.fuzz.choosers import Chooser
from tests.fuzz.json_inputs import json_value
from tests.fuzz.rest_inputs import MODELS, PROVIDERS, REFUSED_HOSTS, SIZES
from tests.fuzz.routes import FuzzTargets
from tests.image_fixtures import mask_png, png

SERVICE = service_pb2.DESCRIPTOR.services_by_name["ImageGateway"]
_INT_BOUNDS = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
Hint = Callable[[Chooser], Any]
# Mostly fine prompts: an empty or oversized one stops a request before anything interesting happens.
# Image bytes: small real PNGs (square, so dall-e-2 takes them; a mask) most of the time, else noise.
_IMAGES = (png(16, 16), png(64, 64), mask_png(64, 64), png(64, 32))
_PROMPTS = ("a cat", "a red fox", "a lighthouse at dusk", "ein Hund", "猫", "a cat", "a red fox", " ", "x" * 40_000)


def message_class(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


@dataclasses.dataclass(frozen=True)
class FieldHints:
    """Plausible values for fields named like these (any message), used most of the time."""

    targets: FuzzTargets

    def for_field(self, field: FieldDescriptor) -> Hint | None:
        name = field.name
        t = self.targets
        if name == "provider":
            return lambda ch: ch.choice(PROVIDERS)
        if name == "virtual_key":
            return lambda ch: ch.choice((t.openai_vk, t.stability_vk, t.openai_vk, "no-such-vk"))
        if name == "config_id":
            return lambda ch: ch.choice((t.config_id, t.config_id + "@1", t.config_id + "@9", "cfg-nope", ""))
        if name == "model":
            return lambda ch: ch.choice(MODELS)
        if name == "size":
            return lambda ch: ch.choice(SIZES)
        if name in ("custom_host", "base_url"):
            return lambda ch: ch.choice((t.openai_url, t.stability_url, *REFUSED_HOSTS))
        if name == "prompt":
            return lambda ch: ch.choice(_PROMPTS) if ch.chance(80) else ch.text(40)
        if name == "n":
            return lambda ch: ch.choice((0, 1, 1, 1, 2, 3, 10, 11, -1))
        if name == "mode":
            return lambda ch: ch.choice(("fallback", "loadbalance", "single", "conditional", "bogus", ""))
        if name == "trace_id":
            return lambda ch: ch.text(32, "0123456789abcdef-") if ch.chance(80) else ch.text(40)
        if name in ("data", "chunk") and field.type == FieldDescriptor.TYPE_BYTES:
            return lambda ch: ch.choice(_IMAGES)
        if name == "image_count":
            return lambda ch: ch.choice((1, 1, 1, 2, 3, 0, 17, -1))
        if name == "image_index":
            return lambda ch: ch.choice((0, 0, 0, 1, 2, -1, 16))
        if name == "upload_bytes":
            return lambda ch: ch.choice((0, 0, 0, 100, 70_000, -1, 2**40))
        if name == "page_size":
            return lambda ch: ch.choice((0, 1, 200, 201, -1, 2**31 - 1))
        if name == "version":
            return lambda ch: ch.choice((0, 1, 2, -1, 2**31 - 1))
        return None

    @staticmethod
    def presence(field: FieldDescriptor) -> int:
        """How often (percent) a field is set: the ones a request needs to get anywhere, mostly."""
        if (
            field.containing_type is not None
            and field.containing_type.name == "ImageParameters"
            and field.name not in ("prompt", "model", "size", "n")
        ):
            return 10  # each one is a chance of a refusal: few at a time, so some requests reach a provider
        return _PRESENCE.get(field.name, 45)


_PRESENCE = {
    "parameters": 92,
    "routing": 92,
    "prompt": 92,
    "config": 85,
    "secret": 80,
    "name": 75,
    "targets": 70,
    "strategy": 70,
    "images": 85,
    "image": 85,
    "image_count": 85,
    "data": 90,
}


def _scalar(ch: Chooser, field: FieldDescriptor) -> Any:
    kind = field.type
    if kind in _INT_BOUNDS:
        low, high = _INT_BOUNDS[kind]
        pick = ch.integer(0, 3)
        if pick == 0:
            return ch.choice((low, high, 0, -1 if low < 0 else 1))
        return ch.integer(max(low, -1000), min(high, 100_000)) if pick < 3 else ch.integer(low, high)
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        value = ch.real()
        if kind == FieldDescriptor.TYPE_FLOAT and math.isfinite(value) and abs(value) > 3.4e38:
            return math.copysign(3.4e38, value)
        return value
    if kind == FieldDescriptor.TYPE_BOOL:
        return ch.chance(50)
    if kind == FieldDescriptor.TYPE_STRING:
        return ch.text(40)
    if kind == FieldDescriptor.TYPE_BYTES:
        return ch.raw(40)
    if kind == FieldDescriptor.TYPE_ENUM:
        enum_type = field.enum_type
        assert enum_type is not None
        known = [v.number for v in enum_type.values]
        return ch.choice(known) if ch.chance(85) else ch.integer(-5, 50)
    raise AssertionError(f"unhandled field type {kind}")


def _struct_value(ch: Chooser) -> dict[str, Any]:
    value = json_value(ch, 8)
    if not isinstance(value, dict):
        value = {"value": value}
    return value


def fill(ch: Chooser, message: Message, hints: FieldHints, depth: int = 0) -> Message:
    """Sets a random selection of ``message``'s fields, recursing into nested messages."""
    descriptor = message.DESCRIPTOR
    if descriptor.full_name == "google.protobuf.Struct":
        try:
            message.update(_struct_value(ch))  # type: ignore[attr-defined]
        except (ValueError, TypeError, OverflowError):
            pass  # a value a Struct cannot hold (an int past 2**1023): leave it empty
        return message
    if descriptor.full_name == "google.protobuf.Timestamp":
        message.seconds = (
            ch.choice((0, 1_700_000_000, -62_135_596_801, 253_402_300_800, -(2**63), 2**63 - 1))
            if ch.chance(50)
            else ch.integer(0, 2_000_000_000)
        )  # type: ignore[attr-defined]
        message.nanos = ch.choice((0, 999_999_999, 1_000_000_000, -1))  # type: ignore[attr-defined]
        return message
    chosen_oneofs = {
        oneof.name: ch.choice([*oneof.fields, *oneof.fields, None])
        for oneof in descriptor.oneofs
        if not oneof.name.startswith("_")
    }
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and not oneof.name.startswith("_") and chosen_oneofs[oneof.name] is not field:
            continue
        if (oneof is None or oneof.name.startswith("_")) and not ch.chance(hints.presence(field)):
            continue  # (a name starting with "_" is proto3 optional's synthetic oneof of one)
        _set_field(ch, message, field, hints, depth)
    return message


def _set_field(ch: Chooser, message: Message, field: FieldDescriptor, hints: FieldHints, depth: int) -> None:
    hint = hints.for_field(field)
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        target = getattr(message, field.name)
        for _ in range(ch.integer(0, 3)):
            target[ch.text(12)] = ch.text(30)
        return
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if depth >= 4:
            return
        if field.is_repeated:
            for _ in range(ch.integer(0, 3)):
                fill(ch, getattr(message, field.name).add(), hints, depth + 1)
        else:
            fill(ch, getattr(message, field.name), hints, depth + 1)
        return

    def value() -> Any:
        return hint(ch) if hint is not None and ch.chance(90) else _scalar(ch, field)

    if field.is_repeated:
        getattr(message, field.name).extend(value() for _ in range(ch.integer(0, 3)))
    else:
        setattr(message, field.name, value())


# Weights: generation is where the gateway does most with its input.
METHOD_WEIGHTS = {
    "GenerateImage": 8,
    "StreamGenerateImage": 4,
    "EditImage": 2,
    "StreamEditImage": 1,
    "EditImageUpload": 2,
    "StreamEditImageUpload": 1,
    "CreateImageVariation": 1,
    "CreateImageVariationUpload": 1,
    "ValidateConfig": 3,
    "CreateConfig": 3,
    "UpdateConfig": 2,
    "GetConfig": 1,
    "ListConfigs": 1,
    "DeleteConfig": 1,
    "CreateVirtualKey": 2,
    "GetVirtualKey": 1,
    "ListVirtualKeys": 1,
    "RotateVirtualKey": 1,
    "DeleteVirtualKey": 1,
    "CreateApiKey": 1,
    "ListApiKeys": 1,
    "RevokeApiKey": 1,
    "ListLogs": 3,
    "GetLog": 1,
    "ListTargetHealth": 1,
}
_WEIGHTED = [name for name, weight in METHOD_WEIGHTS.items() for _ in range(weight)]
_SEEDED_IDS = frozenset({"DeleteVirtualKey", "RotateVirtualKey", "DeleteConfig", "UpdateConfig"})


@dataclasses.dataclass(frozen=True)
class GrpcCall:
    """One fuzzed RPC: the method, its request (a sequence of them for a client-streaming RPC), and who calls."""

    method: str
    request: Message | tuple[Message, ...]
    auth: str  # "admin", "generate", "none" or "wrong"

    def __repr__(self) -> str:
        requests = self.request if isinstance(self.request, tuple) else (self.request,)
        text = " | ".join(str(request) for request in requests)
        return f"GrpcCall({self.method}, auth={self.auth}, request=<{text[:2500]}>)"


_PLAUSIBLE = {
    "openai": ("dall-e-2", "dall-e-3", "gpt-image-1", ""),
    "stability": ("stable-diffusion-v1-6", "core", "sd3", ""),
}


def _plausible_generate(ch: Chooser, request: Message, hints: FieldHints) -> None:
    """A request that should reach a provider, with one fuzzed field: the adapters see odd but valid input."""
    t = hints.targets
    params = request.parameters  # type: ignore[attr-defined]
    params.prompt = ch.choice(_PROMPTS[:5])
    routing = ch.integer(0, 2)
    if routing == 0:
        request.routing.virtual_key = t.openai_vk  # type: ignore[attr-defined]
        params.model = ch.choice(_PLAUSIBLE["openai"])
    elif routing == 1:
        request.routing.virtual_key = t.stability_vk  # type: ignore[attr-defined]
        params.model = ch.choice(_PLAUSIBLE["stability"])
    else:
        request.routing.config_id = t.config_id  # type: ignore[attr-defined]
    if ch.chance(30):
        params.n = ch.choice((1, 2, 3))
    fields = [f for f in params.DESCRIPTOR.fields if f.name not in ("prompt", "model")]
    _set_field(ch, params, ch.choice(fields), hints, 1)


def _plausible_inputs(ch: Chooser, request: Message) -> None:
    """An edit's or a variation's input: one to three small PNGs and sometimes a mask, or one image."""
    fields = request.DESCRIPTOR.fields_by_name
    if "images" in fields:
        for _ in range(ch.integer(1, 3)):
            request.images.add(data=ch.choice(_IMAGES), filename=ch.choice(("a.png", "", "b.PNG")))  # type: ignore[attr-defined]
        if ch.chance(30):
            request.mask.data = mask_png(64, 64)  # type: ignore[attr-defined]
    elif "image" in fields:
        request.parameters.ClearField("prompt")  # type: ignore[attr-defined] # a variation takes none
        request.image.data = ch.choice(_IMAGES)  # type: ignore[attr-defined]
        request.image.filename = "a.png"  # type: ignore[attr-defined]


def _upload_stream(ch: Chooser, message: type[Message], hints: FieldHints) -> tuple[Message, ...]:
    """A chunked upload's messages: a plausible header and whole files in pieces about a third of the time,
    else a fuzzed header then up to four fuzzed chunks; sometimes any messages in any order."""
    if ch.chance(15):
        return tuple(fill(ch, message(), hints) for _ in range(ch.integer(0, 4)))
    first = message()
    header = first.header  # type: ignore[attr-defined]
    header.SetInParent()
    variation = message.DESCRIPTOR.fields_by_name["chunk"].type == FieldDescriptor.TYPE_BYTES
    if not ch.chance(35):
        fill(ch, header, hints, 1)
        return (first, *(_fuzzed_chunk(ch, message, hints, variation) for _ in range(ch.integer(0, 4))))
    _plausible_generate(ch, header, hints)
    messages = [first]
    if variation:
        header.parameters.model = ch.choice(("dall-e-2", "dall-e-2", ""))
        header.parameters.ClearField("prompt")
        messages += [message(chunk=piece) for piece in _pieces(ch, ch.choice(_IMAGES[:3]))]  # type: ignore[call-arg]
    else:
        header.image_count = ch.integer(1, 3)
        header.has_mask = ch.chance(25)
        for index in range(header.image_count):
            chunks = [
                images_pb2.EditImageUploadChunk(image_index=index, data=p) for p in _pieces(ch, ch.choice(_IMAGES))
            ]
            messages += [message(chunk=chunk) for chunk in chunks]  # type: ignore[call-arg]
        if header.has_mask:
            mask = mask_png(64, 64)
            messages += [message(chunk=images_pb2.EditImageUploadChunk(mask=True, data=mask))]  # type: ignore[call-arg]
    if ch.chance(20):
        messages.insert(ch.integer(1, len(messages)), _fuzzed_chunk(ch, message, hints, variation))
    return tuple(messages)


def _pieces(ch: Chooser, data: bytes) -> list[bytes]:
    """``data`` cut in one to three pieces, in order."""
    cuts = sorted({ch.integer(1, len(data) - 1) for _ in range(ch.integer(0, 2))})
    return [data[start:end] for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True)]


def _fuzzed_chunk(ch: Chooser, message: type[Message], hints: FieldHints, variation: bool) -> Message:
    chunk = message()
    if variation:
        chunk.chunk = ch.choice(_IMAGES) if ch.chance(85) else ch.raw(40)  # type: ignore[attr-defined]
    else:
        fill(ch, chunk.chunk, hints, 1)  # type: ignore[attr-defined]
        chunk.chunk.SetInParent()  # type: ignore[attr-defined]
    return chunk


def _to_emulators(request: Message, hints: FieldHints) -> None:
    """A request's routing (if it has one) reaches the emulators, never a real host."""
    routing = getattr(request, "routing", None)
    if routing is not None and routing.WhichOneof("source") == "config":
        hints.targets.config_to_emulators(routing.config)
    elif routing is not None and routing.WhichOneof("source") == "provider" and not routing.custom_host:
        host = hints.targets.host_for(routing.provider)
        if host is not None:
            routing.custom_host = host


def grpc_call(ch: Chooser, hints: FieldHints) -> GrpcCall:
    name = ch.choice(_WEIGHTED)
    method = SERVICE.methods_by_name[name]
    if method.client_streaming:
        stream = _upload_stream(ch, message_class(method.input_type), hints)
        for message in stream:
            part = message.WhichOneof("part")
            if part == "header":
                _to_emulators(message.header, hints)  # type: ignore[attr-defined]
        auth = ch.choice(("admin",) * 16 + ("generate", "generate", "none", "wrong"))
        return GrpcCall(name, stream, auth)
    request = message_class(method.input_type)()
    if name in ("GenerateImage", "StreamGenerateImage", "EditImage", "StreamEditImage", "CreateImageVariation") and (
        ch.chance(35)
    ):
        _plausible_generate(ch, request, hints)
        _plausible_inputs(ch, request)
    else:
        fill(ch, request, hints)
    if name in _SEEDED_IDS and getattr(request, "id", "") in (
        hints.targets.openai_vk,
        hints.targets.stability_vk,
        hints.targets.config_id,
    ):
        request.id = "fuzz-" + request.id  # type: ignore[attr-defined] # keep the shared targets alive
    _to_emulators(request, hints)
    auth = ch.choice(("admin",) * 16 + ("generate", "generate", "none", "wrong"))
    return GrpcCall(name, request, auth)
