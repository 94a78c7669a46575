"""Cache keys: equal requests share a key; any change that could change the images, the tenant or the
routing identity gives another; no key, fingerprint or key material ever holds a secret."""

from __future__ import annotations

import dataclasses
import re
from types import MappingProxyType
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.routing.cache_key import (
    cache_key,
    credential_identity,
    key_material,
    plan_fingerprint,
    routing_identity,
)
from imagegateway_server.routing.cache_policy import CachePolicy
from imagegateway_server.routing.plan import Leaf, RetryPolicy, direct_leaf
from tests.credentials import api_key

HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")

text = st.text(min_size=1, max_size=40)
maybe_text = st.none() | text
requests = st.builds(
    ImageRequest,
    prompt=text,
    model=maybe_text,
    n=st.integers(1, 10),
    size=maybe_text,
    quality=maybe_text,
    style=maybe_text,
    negative_prompt=maybe_text,
    seed=st.none() | st.integers(0, 2**32),
    cfg_scale=st.none() | st.floats(0, 35, allow_nan=False),
    style_preset=maybe_text,
    background=maybe_text,
    output_format=maybe_text,
    output_compression=st.none() | st.integers(0, 100),
    moderation=maybe_text,
    aspect_ratio=maybe_text,
    response_format=st.sampled_from(ResponseFormat),
    extra=st.dictionaries(st.text(min_size=1, max_size=10), st.integers() | text, max_size=3).map(MappingProxyType),
)
# Fields whose change must change the key, with a value generator to change them to.
CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "prompt": text,
    "model": text,
    "n": st.integers(1, 10),
    "size": text,
    "quality": text,
    "style": text,
    "negative_prompt": text,
    "seed": st.integers(0, 2**32),
    "cfg_scale": st.floats(0, 35, allow_nan=False),
    "style_preset": text,
    "background": text,
    "output_format": text,
    "output_compression": st.integers(0, 100),
    "moderation": text,
    "aspect_ratio": text,
}
tenants = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=20)
secrets = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=16, max_size=48
).map(lambda s: "sk-" + s)


def leaf(path: str = "config.targets[0]", **fields: Any) -> Leaf:
    base = direct_leaf("openai", credential=api_key("sk-a-secret-key-0123456789", "openai"))
    return dataclasses.replace(base, path=path, **fields)


PLAN = plan_fingerprint([leaf()])


def key(request: ImageRequest, tenant: str = "key_1", plan: str = PLAN, **context: str) -> str:
    return cache_key(tenant=tenant, plan=plan, request=request, context=context)


@given(requests, tenants)
def test_equal_requests_have_equal_keys(request: ImageRequest, tenant: str) -> None:
    twin = dataclasses.replace(request, extra=MappingProxyType(dict(request.extra)))
    assert key(request, tenant) == key(twin, tenant)
    assert HEX_DIGEST.match(key(request, tenant))


@given(requests, st.data())
def test_a_change_to_any_field_that_shapes_the_images_changes_the_key(request: ImageRequest, data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(CHANGES)))
    value = data.draw(CHANGES[name])
    assume(getattr(request, name) != value)
    assert key(request) != key(dataclasses.replace(request, **{name: value}))


@given(requests, st.text(min_size=1, max_size=10), st.integers())
def test_a_provider_specific_extra_changes_the_key(request: ImageRequest, name: str, value: int) -> None:
    assume(request.extra.get(name) != value)
    changed = dataclasses.replace(request, extra=MappingProxyType({**request.extra, name: value}))
    assert key(request) != key(changed)


@given(requests, tenants, tenants)
def test_tenants_never_share_a_key(request: ImageRequest, first: str, second: str) -> None:
    assume(first != second)
    assert key(request, first) != key(request, second)


@given(requests, text, text)
def test_forwarded_header_values_are_part_of_the_key(request: ImageRequest, first: str, second: str) -> None:
    assume(first != second)
    assert key(request, **{"header:x-team": first}) != key(request, **{"header:x-team": second})


@given(requests)
def test_bytes_and_b64_json_share_entries_but_url_requests_do_not(request: ImageRequest) -> None:
    as_bytes = key(dataclasses.replace(request, response_format=ResponseFormat.BYTES))
    assert as_bytes == key(dataclasses.replace(request, response_format=ResponseFormat.B64_JSON))
    assert as_bytes != key(dataclasses.replace(request, response_format=ResponseFormat.URL))


@given(requests, maybe_text)
def test_the_end_user_id_does_not_split_entries(request: ImageRequest, user: str | None) -> None:
    assert key(request) == key(dataclasses.replace(request, user=user))


def test_json_numbers_key_alike_whichever_transport_decoded_them() -> None:
    # protobuf Structs (gRPC extra_params) turn 7 into 7.0; REST JSON keeps 7.
    rest = ImageRequest(prompt="p", extra=MappingProxyType({"steps": 7, "nested": {"a": [1, 2.0]}}))
    grpc = ImageRequest(prompt="p", extra=MappingProxyType({"steps": 7.0, "nested": {"a": [1.0, 2]}}))
    assert key(rest) == key(grpc)


PLAN_CHANGES: dict[str, st.SearchStrategy[Any]] = {
    "path": st.sampled_from(["config.targets[1]", "config.targets[0].targets[0]"]),
    "provider": st.sampled_from(["stability-ai", "azure-openai"]),
    "virtual_key": text,
    "credential": secrets.map(api_key),
    "custom_host": st.sampled_from(["https://proxy.example.com/v1", "https://eu.api.openai.com/v1"]),
    "override_params": st.dictionaries(st.sampled_from(["model", "size", "quality"]), text, min_size=1).map(
        MappingProxyType
    ),
    "strict": st.just(True),
}


@given(st.data())
def test_any_change_to_a_targets_routing_identity_changes_the_plan_fingerprint(data: Any) -> None:
    name = data.draw(st.sampled_from(sorted(PLAN_CHANGES)))
    changed = leaf(**{name: data.draw(PLAN_CHANGES[name])})
    assert plan_fingerprint([changed]) != PLAN
    assert plan_fingerprint([leaf(), changed]) != plan_fingerprint([leaf()])


def test_settings_that_cannot_change_the_images_keep_the_plan_fingerprint() -> None:
    other = leaf(
        request_timeout_ms=5000, name="primary", retry=RetryPolicy(2, frozenset({503})), cache=CachePolicy(max_age=5)
    )
    assert plan_fingerprint([other]) == PLAN


@given(secrets, secrets, st.sampled_from(["openai", "stability-ai"]), st.none() | st.just("https://h.example/v1"))
def test_routing_identity_tells_accounts_apart_and_never_holds_the_key(
    first: str, second: str, provider: str, base_url: str | None
) -> None:
    assume(first != second)
    identity = routing_identity(provider, base_url, api_key(first, provider))
    assert HEX_DIGEST.match(identity)
    assert identity == routing_identity(provider, base_url, api_key(first, provider))
    assert identity != routing_identity(provider, base_url, api_key(second, provider))
    assert identity != routing_identity("azure-openai", base_url, api_key(first, provider))
    assert identity != routing_identity(provider, "https://other.example/v1", api_key(first, provider))
    assert first not in identity and first not in credential_identity(api_key(first, provider))


@given(requests, secrets, tenants)
def test_no_secret_reaches_the_key_or_its_material(request: ImageRequest, secret: str, tenant: str) -> None:
    assume(secret not in request.prompt and all(secret not in str(v) for v in request.extra.values()))
    plan = plan_fingerprint([leaf(credential=api_key(secret))])
    material = key_material(tenant=tenant, plan=plan, request=request)
    digest = cache_key(tenant=tenant, plan=plan, request=request)
    assert secret not in material and secret not in digest and secret not in plan
    assert HEX_DIGEST.match(digest)
