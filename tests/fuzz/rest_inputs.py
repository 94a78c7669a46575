"""Generators of REST shim requests: OpenAI bodies and Portkey headers, valid, near-valid and wild.

Every request is one h11 would let through (header names are tokens, values have no CR, LF or NUL),
since the shim is what we fuzz, not uvicorn's parser. Routing only ever reaches the emulators, or
is refused before any call (see ``routes``); a request timeout, when one is sent and valid, is long.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from typing import Any

from tests.fuzz.choosers import HEADER_SAFE, Chooser
from tests.fuzz.json_inputs import PARAM_KEYS, as_text, base_configs, config_text, edge_value, json_value, mutate
from tests.fuzz.routes import FuzzTargets

MODELS = (
    "dall-e-2",
    "dall-e-3",
    "gpt-image-1",
    "stable-diffusion-v1-6",
    "stable-diffusion-xl-1024-v1-0",
    "core",
    "ultra",
    "sd3",
    "sd3.5-large",
    "sd3-bogus",
    "no-such-model",
    "",
)
SIZES = (
    "256x256",
    "512x512",
    "1024x1024",
    "1792x1024",
    "1024x1792",
    "1536x1024",
    "auto",
    "0x0",
    "1x99999",
    "999999999x2",
    "abc",
    "1024X1024",
    " 512x512",
    "",
)
FORMATS = ("b64_json", "url", "bytes", "png", "")
PROVIDERS = ("openai", "OpenAI", "stability-ai", "stabilityai", "stability", "azure-openai", "nope", "")
REFUSED_HOSTS = (
    "http://10.0.0.1",
    "http://169.254.169.254/latest",
    "http://example.com",
    "ftp://127.0.0.1",
    "http://[::ffff:10.0.0.1]",
    "http://user:pw@127.0.0.1",
    "not a url",
    "http://0x0a.1",
)
METHOD_TOKEN = "abcdefghijklmnopqrstuvwxyz0123456789-"


@dataclasses.dataclass(frozen=True)
class RestContext:
    """What the fuzz gateway offers: its keys and routing targets."""

    targets: FuzzTargets
    admin_key: str
    generate_key: str
    openai_secret: str
    stability_secret: str

    @property
    def bases(self) -> list[dict[str, Any]]:
        return base_configs(self.targets.stability_vk, self.targets.openai_vk, self.targets.openai_url)


@dataclasses.dataclass(frozen=True)
class RestRequest:
    """One POST to /v1/images/generations."""

    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def __repr__(self) -> str:
        shown = {k.decode("latin-1"): v.decode("latin-1")[:300] for k, v in self.headers}
        return f"RestRequest(headers={shown!r}, body={self.body[:1500]!r})"


def header_text(ch: Chooser, max_size: int = 40) -> str:
    return ch.text(max_size, HEADER_SAFE).strip()


def _param_value(ch: Chooser, name: str) -> Any:
    if ch.chance(88):
        if name == "prompt":
            return (
                ch.choice(("a cat", "a red fox in snow", "a cat", "ein Hund", "猫", " ", "", "x" * 40_000))
                if ch.chance(60)
                else ch.text(60)
            )
        if name == "model":
            return ch.choice(MODELS)
        if name == "size":
            return ch.choice(SIZES)
        if name == "response_format":
            return ch.choice(FORMATS)
        if name == "n":
            return ch.choice((1, 1, 2, 0, -1, 11, 10, 1.0, 1.5, "2", True, 2**63, float("nan"), float("inf")))
        if name in ("seed", "output_compression", "steps", "samples"):
            return ch.choice((0, 1, 42, -1, 100, 101, 2**32, 2**63, 1.5, "7", float("inf")))
        if name == "cfg_scale":
            return ch.choice((0, 7, 7.5, 35, -1, 1e308, "7", float("nan")))
        if name == "quality":
            return ch.choice(("standard", "hd", "low", "medium", "high", "auto", "ultra", ""))
        if name == "style":
            return ch.choice(("vivid", "natural", "photographic", ""))
        if name in (
            "user",
            "negative_prompt",
            "style_preset",
            "background",
            "output_format",
            "moderation",
            "aspect_ratio",
        ):
            return (
                ch.choice(("auto", "png", "16:9", "low", "transparent", "anime", "user-1"))
                if ch.chance(60)
                else ch.text(16)
            )
    return edge_value(ch) if ch.chance(50) else json_value(ch, 4)


def openai_body(ch: Chooser) -> dict[str, Any]:
    """An images/generations body: mostly OpenAI's fields, some wrong, some extra."""
    body: dict[str, Any] = {}
    if ch.chance(90):
        body["prompt"] = _param_value(ch, "prompt")
    if ch.chance(70):
        body["model"] = ch.choice(MODELS)
    if ch.chance(60):
        body["response_format"] = ch.choice(("b64_json", "b64_json", "url")) if ch.chance(85) else ch.choice(FORMATS)
    if ch.chance(40):
        body["size"] = ch.choice(SIZES)
    for _ in range(ch.integer(0, 3)):
        name = ch.choice(PARAM_KEYS)
        body[name] = _param_value(ch, name)
    if ch.chance(8):
        body[header_text(ch, 12) or "x"] = json_value(ch, 6)
    return body


def body_bytes(ch: Chooser) -> bytes:
    kind = ch.integer(0, 25)
    if kind < 20:
        return as_text(openai_body(ch)).encode()
    if kind == 20:
        text = as_text(openai_body(ch))
        return text[: ch.integer(0, len(text))].encode()
    if kind == 21:
        return as_text(json_value(ch)).encode()
    if kind == 22:
        return ch.choice(("[" * ch.integer(1, 200_000), '{"a":' * ch.integer(1, 50_000))).encode()
    if kind == 23:
        return ch.raw(200)
    if kind == 24:
        return as_text(mutate(ch, openai_body(ch))).encode()
    return ch.text(100).encode("utf-8", "surrogatepass")


def _routing(ch: Chooser, ctx: RestContext, headers: dict[str, str]) -> None:
    targets = ctx.targets
    kind = ch.integer(0, 9)
    if kind < 3:
        headers["x-portkey-virtual-key"] = ch.choice(
            (targets.openai_vk, targets.openai_vk, targets.stability_vk, "no-such-vk", header_text(ch, 20))
        )
        if ch.chance(20):
            headers["x-portkey-provider"] = ch.choice(PROVIDERS)
    elif kind < 5:
        headers["x-portkey-config"] = ch.choice(
            (
                targets.config_id,
                targets.config_id + "@1",
                targets.config_id + "@0",
                targets.config_id + "@x",
                "cfg-nope",
                header_text(ch, 20),
                "@",
                "@@1",
            )
        )
    elif kind < 8:
        text = config_text(ch, ctx.bases)
        try:
            parsed = json.loads(text)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            # json.loads takes nesting that json.dumps cannot write back: such a text is sent as it is.
            with contextlib.suppress(RecursionError):
                text = as_text(targets.config_dict_to_emulators(parsed))
        headers["x-portkey-config"] = text
    elif kind < 9:
        provider = ch.choice(PROVIDERS)
        headers["x-portkey-provider"] = provider
        host = targets.host_for(provider) if provider else None
        headers["x-portkey-custom-host"] = host if host and ch.chance(80) else ch.choice(REFUSED_HOSTS)
        if ch.chance(85):
            secret = ctx.openai_secret if host == targets.openai_url else ctx.stability_secret
            headers["authorization"] = "Bearer " + (secret if ch.chance(70) else header_text(ch, 30))
    # else: no routing header at all


def _plausible(ch: Chooser, ctx: RestContext) -> RestRequest:
    """A request that should reach a provider, with one fuzzed field: the adapters see odd but valid input."""
    t = ctx.targets
    headers = {"x-portkey-api-key": ctx.admin_key, "content-type": "application/json"}
    body: dict[str, Any] = {
        "prompt": ch.choice(("a cat", "a red fox in snow", "ein Hund", "猫")),
        "response_format": ch.choice(("b64_json", "url")),
    }
    routing = ch.integer(0, 2)
    if routing == 0:
        headers["x-portkey-virtual-key"] = t.openai_vk
        body["model"] = ch.choice(("dall-e-2", "dall-e-3", "gpt-image-1"))
    elif routing == 1:
        headers["x-portkey-virtual-key"] = t.stability_vk
        body["model"] = ch.choice(("stable-diffusion-v1-6", "core", "sd3"))
    else:
        headers["x-portkey-config"] = t.config_id
    name = ch.choice(PARAM_KEYS)
    if name not in body:
        body[name] = _param_value(ch, name)
    raw = tuple((k.encode(), v.encode()) for k, v in headers.items())
    return RestRequest(raw, as_text(body).encode())


def rest_request(ch: Chooser, ctx: RestContext) -> RestRequest:
    if ch.chance(30):
        return _plausible(ch, ctx)
    headers: dict[str, str] = {}
    auth = ch.integer(0, 29)
    if auth < 25:
        headers["x-portkey-api-key"] = ctx.admin_key
    elif auth == 25:
        headers["x-imagegw-api-key"] = ctx.generate_key
    elif auth == 26:
        headers["authorization"] = ch.choice(("Bearer ", "bearer ", "Basic ", "")) + ctx.admin_key
    elif auth == 27:
        headers["x-portkey-api-key"] = header_text(ch, 60)
    elif auth == 28:
        headers["x-portkey-api-key"] = ctx.admin_key[:-1] + "x"
    _routing(ch, ctx, headers)
    content_type = ch.integer(0, 29)
    if content_type < 26:
        headers["content-type"] = "application/json"
    elif content_type == 26:
        headers["content-type"] = ch.choice(
            (
                "Application/JSON; charset=utf-8",
                "application/json;",
                "text/plain",
                "multipart/form-data; boundary=x",
                "application/x-www-form-urlencoded",
                "",
                "application/json, text/plain",
                "*/*",
            )
        )
    elif content_type == 27:
        headers["content-type"] = header_text(ch, 30)
    if ch.chance(15):
        headers["x-portkey-metadata"] = (
            as_text(json_value(ch, 6))
            if ch.chance(60)
            else ch.choice(("{", "null", "[]", '{"a":' * 3000, "[" * 1500, "x" * 9000))
        )
    if ch.chance(15):
        headers["x-portkey-trace-id"] = (
            ch.text(40, METHOD_TOKEN) if ch.chance(70) else header_text(ch, 80) if ch.chance(90) else "t" * 5000
        )
    if ch.chance(10):
        headers["traceparent"] = ch.choice(
            (
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                "ff-zz",
                header_text(ch, 60),
            )
        )
    if ch.chance(10):
        headers["x-portkey-cache-force-refresh"] = (
            ch.choice(("true", "false", "1", "0", "TRUE", "yes", "")) if ch.chance(70) else header_text(ch, 10)
        )
    if ch.chance(10):
        # Short valid timeouts would make a 504 the right answer; send junk or a generous one.
        headers["x-portkey-request-timeout"] = ch.choice(
            ("0", "-1", "1e3", "abc", "", " ", "99999999999", "86400001", "\xb2", "60000", "120000")
        )
    if ch.chance(10):
        headers["x-imagegw-strict"] = (
            ch.choice(("true", "false", "TRUE", "yes", "")) if ch.chance(70) else header_text(ch, 10)
        )
    if ch.chance(5):
        headers["x-imagegw-keep-image"] = ch.choice(("true", "false", "maybe"))
    for _ in range(ch.integer(0, 2) if ch.chance(20) else 0):
        headers[ch.text(12, METHOD_TOKEN) or "x-empty"] = header_text(ch, 30)
    raw = tuple((name.encode("latin-1"), value.encode("latin-1", "replace")) for name, value in headers.items())
    return RestRequest(raw, body_bytes(ch))
