"""The routing-config model and its mappings: protobuf both ways, Portkey JSON, the stored document.

The model must say exactly what the message says (presence included), the stored document must stay
what protobuf's JSON mapping wrote (existing databases read and write the same), and inline configs
are parsed and compiled once per text while a bad one still fails every time.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
from google.protobuf import json_format
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from imagegateway.v1 import configs_pb2
from imagegateway_server.api import config_json, config_proto
from imagegateway_server.api.config_json import parse_config, parse_config_message, parse_inline_config
from imagegateway_server.api.config_proto import config_from_proto, config_to_proto, inline_config
from imagegateway_server.api.rest_mapping import routing_spec
from imagegateway_server.domain.config_document import config_document, config_from_document
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.routing_config import (
    CacheSettings,
    CircuitBreakerSettings,
    Condition,
    RetrySettings,
    RoutingConfig,
    Strategy,
)
from imagegateway_server.routing import config_service
from imagegateway_server.routing.config_service import ConfigService, config_associated_data
from imagegateway_server.routing.finite_numbers import refuse_non_finite_numbers
from imagegateway_server.routing.plan import compile_plan, leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.vault import Vault
from imagegateway_server.storage.base import Store
from tests.fuzz.json_inputs import base_configs

PROFILE = settings(deadline=None, max_examples=150)
HEADER = "x-portkey-config"

# Every field set, optional scalars set to their zero values, int64 fields, empty-but-present
# messages, -0.0 (which protobuf lists); one key per Struct object so the byte order is fixed.
RICH = {
    "strategy": {
        "mode": "conditional",
        "on_status_codes": [429, 503],
        "conditions": [{"query": {"metadata.tier": {"$in": ["gold", 2.5, True, None]}}, "then": "a"}, {"then": "b"}],
        "default": "b",
    },
    "override_params": {"nested": {"list": [1, [2.5], {"x": None}]}},
    "custom_host": "http://127.0.0.1:9/v1",
    "retry": {"attempts": 2, "on_status_codes": [500], "use_retry_after_header": False},
    "request_timeout": 30000,
    "cache": {"mode": "simple", "max_age": 0, "include_seeded_and_multi_image": False},
    "forward_headers": ["x-user", "x-team"],
    "circuit_breaker": {"consecutive_failures": 3, "failure_rate": -0.0, "cooldown_seconds": 2.5},
    "strict": False,
    "targets": [
        {
            "name": "a",
            "provider": "openai",
            "api_key": "sk-a",
            "weight": 0,
            "request_timeout": "9007199254740993",
            "retry": {},
            "cache": {"mode": "simple"},
            "strict": True,
            "override_params": {},
        },
        {
            "name": "b",
            "virtual_key": "vk-b",
            "weight": 2,
            "circuit_breaker": {"window": 7},
            "strategy": {},
            "targets": [],
        },
    ],
}


DOCUMENTS = [*base_configs(), RICH]


def proto_document(message: configs_pb2.RoutingConfig) -> dict[str, Any]:
    """What ConfigService stored before the model existed."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


# -- random models ---------------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)  # UTF-8 only, as protobuf
int32s = st.integers(-(2**31), 2**31 - 1)
int64s = st.integers(-(2**63), 2**63 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
json_objects = st.dictionaries(texts, json_values, max_size=3)
strategies = st.builds(
    Strategy,
    mode=texts,
    on_status_codes=st.lists(int32s, max_size=3).map(tuple),
    conditions=st.lists(st.builds(Condition, query=st.none() | json_objects, then=texts), max_size=2).map(tuple),
    default=texts,
)
retries = st.builds(
    RetrySettings,
    attempts=int32s,
    on_status_codes=st.lists(int32s, max_size=2).map(tuple),
    use_retry_after_header=st.none() | st.booleans(),
)
caches = st.builds(
    CacheSettings, mode=texts, max_age=st.none() | int64s, include_seeded_and_multi_image=st.none() | st.booleans()
)
breakers = st.builds(
    CircuitBreakerSettings,
    consecutive_failures=int32s,
    failure_rate=st.floats(allow_nan=False),
    window=int32s,
    cooldown_seconds=st.floats(allow_nan=False),
)


def _config(targets: st.SearchStrategy[tuple[RoutingConfig, ...]]) -> st.SearchStrategy[RoutingConfig]:
    return st.builds(
        RoutingConfig,
        strategy=st.none() | strategies,
        targets=targets,
        name=texts,
        provider=texts,
        api_key=texts,
        virtual_key=texts,
        override_params=st.none() | json_objects,
        weight=st.none() | st.floats(allow_nan=False),
        custom_host=texts,
        retry=st.none() | retries,
        request_timeout=st.none() | int64s,
        cache=st.none() | caches,
        forward_headers=st.lists(texts, max_size=2).map(tuple),
        circuit_breaker=st.none() | breakers,
        strict=st.none() | st.booleans(),
    )


models = st.recursive(_config(st.just(())), lambda inner: _config(st.lists(inner, max_size=3).map(tuple)), max_leaves=6)


# -- protobuf both ways ----------------------------------------------------------------------------


@PROFILE
@given(models)
def test_model_to_proto_and_back_is_the_same_model(config: RoutingConfig) -> None:
    assert config_from_proto(config_to_proto(config)) == config


@PROFILE
@given(models)
def test_proto_to_model_and_back_is_the_same_message(config: RoutingConfig) -> None:
    message = config_to_proto(config)
    assert config_to_proto(config_from_proto(message)) == message


def test_presence_is_kept_as_the_message_has_it() -> None:
    config = config_from_proto(parse_config_message(RICH))
    first, second = config.targets
    assert first.weight == 0.0 and first.retry == RetrySettings() and first.override_params == {}
    assert first.strategy is None and first.circuit_breaker is None and first.strict is True
    assert second.weight == 2.0 and second.strategy == Strategy() and second.request_timeout is None
    assert second.retry is None and second.cache is None and second.override_params is None
    assert config.cache == CacheSettings(mode="simple", max_age=0, include_seeded_and_multi_image=False)
    assert config.strict is False and config.strategy is not None
    assert config.strategy.conditions[1].query is None
    assert first.request_timeout == 9007199254740993  # beyond a double's integers: read as text, exactly


def test_struct_values_are_read_only_and_numbers_are_doubles() -> None:
    config = parse_config({"virtual_key": "vk", "override_params": {"n": 2, "list": [1, {"a": True}]}})
    params = config.override_params
    assert params is not None and params["n"] == 2.0 and isinstance(params["n"], float)
    with pytest.raises(TypeError):
        params["n"] = 3  # type: ignore[index]
    listed = params["list"]
    assert isinstance(listed, tuple) and listed[1] == {"a": True}
    with pytest.raises(TypeError):
        listed[1]["a"] = False  # type: ignore[index]


def test_nan_and_infinity_in_a_message_reach_the_model_for_the_compiler_to_name() -> None:
    message = configs_pb2.RoutingConfig(virtual_key="vk", weight=math.inf)
    message.override_params.update({"cfg_scale": math.nan})
    config = config_from_proto(message)
    assert config.weight == math.inf
    assert config.override_params is not None and math.isnan(config.override_params["cfg_scale"])  # type: ignore[arg-type]


def test_the_api_key_stays_out_of_reprs() -> None:
    config = parse_config(
        {"strategy": {"mode": "fallback"}, "targets": [{"provider": "openai", "api_key": "sk-s3cret"}]}
    )
    assert "sk-s3cret" not in repr(config) and "sk-s3cret" not in str(config)


# -- Portkey JSON ----------------------------------------------------------------------------------


@pytest.mark.parametrize("document", DOCUMENTS)
def test_json_parses_to_the_model_of_its_message(document: dict[str, Any]) -> None:
    expected = config_from_proto(json_format.ParseDict(document, configs_pb2.RoutingConfig()))
    assert parse_config(document) == expected
    assert parse_config(json.dumps(document)) == expected


# -- the stored document ---------------------------------------------------------------------------


def test_the_stored_document_is_byte_for_byte_what_protobuf_wrote() -> None:
    message = parse_config_message(RICH)
    document = config_document(config_from_proto(message))
    assert json.dumps(document) == json.dumps(proto_document(message))
    assert document["request_timeout"] == "30000"  # int64 as text, as protobuf writes it
    assert document["targets"][0]["request_timeout"] == "9007199254740993"
    assert document["cache"] == {"mode": "simple", "max_age": "0", "include_seeded_and_multi_image": False}


@PROFILE
@given(models)
def test_the_stored_document_matches_protobuf_for_any_config(config: RoutingConfig) -> None:
    # No NaN or infinity reaches the store: compiling refuses them.
    assume(_is_finite(config))
    document = config_document(config)
    assert document == proto_document(config_to_proto(config))
    assert config_from_document(json.loads(json.dumps(document))) == config


def _is_finite(config: RoutingConfig) -> bool:
    try:
        refuse_non_finite_numbers(config)
    except InvalidArgument:
        return False
    return True


@pytest.mark.parametrize("document", DOCUMENTS)
def test_a_stored_document_reads_back_as_the_parser_reads_it(document: dict[str, Any]) -> None:
    stored = json.loads(json.dumps(proto_document(parse_config_message(document))))
    assert config_from_document(stored) == parse_config(document)


def test_a_document_that_is_not_a_stored_config_is_a_store_fault() -> None:
    with pytest.raises(ValueError, match=r"unknown field targets\[0\]\.bogus"):
        config_from_document({"targets": [{"bogus": 1}]})
    with pytest.raises(ValueError, match="wrong type"):
        config_from_document({"weight": "heavy"})


async def test_saved_configs_store_the_same_document_and_read_old_rows(any_store: Store) -> None:
    store = any_store
    vault = Vault({"k1": b"\x01" * 32}, "k1")
    service = ConfigService(
        store, vault, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(("127.0.0.1",))
    )
    document = {
        "strategy": {"mode": "fallback"},
        "request_timeout": 5000,
        "override_params": {"model": "dall-e-3"},
        "targets": [{"provider": "openai", "api_key": "sk-one"}, {"virtual_key": "vk"}],
    }
    record = await service.create("c", parse_config(document))
    redacted = parse_config_message(document)
    redacted.targets[0].ClearField("api_key")
    assert record.document == json.dumps(proto_document(redacted))  # what the proto path wrote
    assert "sk-one" not in record.document
    resolved = await service.resolve(record.id)
    assert [leaf.credential and leaf.credential.value("api_key") for leaf in leaves(resolved.plan)] == [
        "sk-one",
        None,
    ]


AZURE_TARGET = {
    "provider": "azure-openai",
    "azure_ad_token": "entra-token-secret",
    "resource_name": "my-resource",
    "deployment_id": "dalle3",
    "api_version": "2024-10-21",
}


async def test_every_secret_credential_field_is_sealed_and_the_public_ones_are_stored(any_store: Store) -> None:
    store = any_store
    vault = Vault({"k1": b"\x01" * 32}, "k1")
    service = ConfigService(store, vault, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy())
    document = {
        "strategy": {"mode": "fallback"},
        "targets": [AZURE_TARGET, {"provider": "openai", "api_key": "sk-two"}],
    }
    record = await service.create("c", parse_config(document))
    stored = json.loads(record.document)
    assert "entra-token-secret" not in record.document and "sk-two" not in record.document
    assert stored["targets"][0] == {k: v for k, v in AZURE_TARGET.items() if k != "azure_ad_token"}
    assert record.sealed_secrets is not None
    sealed = json.loads(vault.open(record.sealed_secrets, associated_data=config_associated_data(record.id)))
    assert sealed == {"targets[0]": {"azure_ad_token": "entra-token-secret"}, "targets[1]": {"api_key": "sk-two"}}
    azure, openai = leaves((await service.resolve(record.id)).plan)
    assert azure.credential is not None and openai.credential is not None
    assert azure.credential.value("azure_ad_token") == "entra-token-secret"
    assert azure.credential.public_fields() == {
        "resource_name": "my-resource",
        "deployment_id": "dalle3",
        "api_version": "2024-10-21",
    }
    assert openai.credential.value("api_key") == "sk-two"


async def test_a_config_sealed_as_path_to_api_key_still_opens(any_store: Store) -> None:
    store = any_store
    vault = Vault({"k1": b"\x01" * 32}, "k1")
    service = ConfigService(store, vault, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy())
    record = await service.create("c", parse_config({"provider": "openai", "api_key": "sk-new"}))
    old_form = vault.seal(json.dumps({"": "sk-old"}).encode(), associated_data=config_associated_data(record.id))
    await store.add_config_version(dataclasses.replace(record, version=2, sealed_secrets=old_form))
    (leaf,) = leaves((await service.resolve(record.id)).plan)
    assert leaf.credential is not None and leaf.credential.value("api_key") == "sk-old"


def test_credential_fields_are_the_set_ones_and_redaction_removes_every_secret() -> None:
    config = parse_config(AZURE_TARGET)
    assert config.credential_fields() == {k: v for k, v in AZURE_TARGET.items() if k != "provider"}
    assert "entra-token-secret" not in repr(config)
    assert config.redacted().credential_fields() == {
        "resource_name": "my-resource",
        "deployment_id": "dalle3",
        "api_version": "2024-10-21",
    }


SERVICE_ACCOUNT_KEY = {
    "type": "service_account",
    "client_email": "imagegw@imagegw-test.iam.gserviceaccount.com",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN-secret-part\n-----END PRIVATE KEY-----\n",
    "token_uri": "https://oauth2.googleapis.com/token",
}


async def test_a_vertex_service_account_given_as_an_object_is_sealed_as_its_text(tmp_path: Any) -> None:
    from imagegateway_server.storage.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "imagegw.db")
    await store.open()
    try:
        vault = Vault({"k1": b"\x01" * 32}, "k1")
        service = ConfigService(store, vault, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy())
        # Portkey's configs carry the key file as a JSON object.
        target = {
            "provider": "vertex-ai",
            "vertex_project_id": "imagegw-test",
            "vertex_region": "us-central1",
            "vertex_service_account_json": SERVICE_ACCOUNT_KEY,
        }
        record = await service.create("c", parse_config({"strategy": {"mode": "single"}, "targets": [target]}))
        assert "secret-part" not in record.document
        assert json.loads(record.document)["targets"][0] == {
            "provider": "vertex-ai",
            "vertex_project_id": "imagegw-test",
            "vertex_region": "us-central1",
        }
        (leaf,) = leaves((await service.resolve(record.id)).plan)
        assert leaf.credential is not None
        assert json.loads(leaf.credential.value("vertex_service_account_json") or "") == SERVICE_ACCOUNT_KEY
        assert leaf.credential.public_fields() == {"vertex_project_id": "imagegw-test", "vertex_region": "us-central1"}
    finally:
        await store.close()


def test_a_vertex_target_without_a_region_or_a_key_member_is_refused_naming_the_path() -> None:
    service = ConfigService(None, None, canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy())  # type: ignore[arg-type]
    base = {"provider": "vertex-ai", "vertex_project_id": "imagegw-test", "vertex_region": "us-central1"}
    without_region = {k: v for k, v in base.items() if k != "vertex_region"}
    cases = [
        ({**without_region, "api_key": "ya29.token"}, "targets[0].vertex_region"),
        (
            {
                **base,
                "vertex_service_account_json": {k: v for k, v in SERVICE_ACCOUNT_KEY.items() if k != "client_email"},
            },
            "targets[0].vertex_service_account_json.client_email",
        ),
    ]
    for target, param in cases:
        with pytest.raises(InvalidArgument) as info:
            service.compile_inline(parse_config({"strategy": {"mode": "single"}, "targets": [target]}))
        assert info.value.param == param
        assert "secret-part" not in info.value.message


# -- inline configs: parsed and compiled once per text ---------------------------------------------


def service() -> ConfigService:
    return ConfigService(
        None,
        None,
        canonical_provider=lambda n: n,  # type: ignore[arg-type]
        host_policy=UpstreamHostPolicy(("127.0.0.1",)),
    )


INLINE = json.dumps(
    {
        "strategy": {"mode": "fallback"},
        "targets": [{"provider": "openai", "api_key": "sk-x", "custom_host": "http://127.0.0.1:9/v1"}],
    }
)


def test_the_same_inline_text_gives_the_same_model_and_the_same_plan() -> None:
    configs = service()
    first = routing_spec({HEADER: INLINE}).config
    second = routing_spec({HEADER: INLINE}).config
    assert first is not None and first is second
    assert configs.compile_inline(first) is configs.compile_inline(second)


def test_an_equal_config_from_another_text_is_compiled_for_itself() -> None:
    configs = service()
    first = parse_inline_config(INLINE, param=HEADER)
    other = parse_inline_config(INLINE + " ", param=HEADER)
    assert first == other and first is not other
    plan = configs.compile_inline(first)
    assert configs.compile_inline(other) is not plan and configs.compile_inline(other) == plan


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        '{"strategy": {"mode": "fallback"}, "targets": [{"bogus": 1}]}',
    ],
)
def test_an_unparsable_inline_config_is_refused_on_every_request(text: str) -> None:
    errors = []
    for _ in range(3):
        with pytest.raises(InvalidArgument) as info:
            routing_spec({HEADER: text})
        errors.append((info.value.message, info.value.param))
    assert errors[0][1] in (HEADER, "targets[0].bogus") and errors.count(errors[0]) == 3


def test_an_inline_config_that_does_not_compile_is_refused_on_every_request() -> None:
    configs = service()
    config = parse_inline_config(
        '{"strategy": {"mode": "roundrobin"}, "targets": [{"virtual_key": "a"}]}', param=HEADER
    )
    errors = []
    for _ in range(3):
        with pytest.raises(InvalidArgument) as info:
            configs.compile_inline(config)
        errors.append((info.value.message, info.value.param))
    assert errors[0][1] == "strategy.mode" and errors.count(errors[0]) == 3


def test_the_inline_caches_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_service, "INLINE_PLAN_ENTRIES", 2)
    configs = service()
    models = [parse_config({"virtual_key": f"vk-{i}"}) for i in range(3)]
    plans = [configs.compile_inline(model) for model in models]
    assert configs.compile_inline(models[2]) is plans[2]
    assert configs.compile_inline(models[0]) is not plans[0]  # the oldest went first
    long_text = json.dumps({"virtual_key": "vk", "name": "n" * config_json.MAX_CACHED_TEXT_CHARS})
    assert parse_inline_config(long_text, param=HEADER) is not parse_inline_config(long_text, param=HEADER)


def test_the_same_grpc_inline_message_gives_the_same_model() -> None:
    message = parse_config_message(INLINE)
    assert inline_config(message) is inline_config(parse_config_message(INLINE))
    big = configs_pb2.RoutingConfig(virtual_key="vk", name="n" * config_proto.MAX_CACHED_MESSAGE_BYTES)
    assert inline_config(big) is not inline_config(big) and inline_config(big) == config_from_proto(big)


# -- a huge message is converted only as far as compiling needs ------------------------------------


def _compile_outcome(config: RoutingConfig, max_targets: int, max_depth: int = 10) -> Any:
    try:
        return compile_plan(
            config,
            canonical_provider=lambda n: n,
            host_policy=UpstreamHostPolicy(()),
            max_targets=max_targets,
            max_depth=max_depth,
        )
    except InvalidArgument as exc:
        return (exc.message, exc.param)


shapes = st.recursive(st.just(()), lambda inner: st.lists(inner, max_size=6).map(tuple), max_leaves=40)


def _message(shape: tuple[Any, ...]) -> configs_pb2.RoutingConfig:
    if not shape:
        return configs_pb2.RoutingConfig(virtual_key="vk")
    return configs_pb2.RoutingConfig(
        strategy=configs_pb2.Strategy(mode="fallback"), targets=[_message(child) for child in shape]
    )


@PROFILE
@given(shapes, st.integers(1, 12), st.integers(0, 6), st.integers(1, 6))
def test_a_config_cut_at_the_target_bound_compiles_to_the_same_outcome(
    shape: tuple[Any, ...], max_targets: int, slack: int, max_depth: int
) -> None:
    message = _message(shape)
    full = config_from_proto(message)
    cut = config_from_proto(message, max_targets=max_targets + slack)
    assert _compile_outcome(cut, max_targets, max_depth) == _compile_outcome(full, max_targets, max_depth)
    # Only the targets counted before the bound was passed, and one more, are made at all.
    assert sum(1 for _ in cut.walk()) <= max_targets + slack + 2


def test_a_message_with_many_targets_is_not_converted_target_by_target() -> None:
    message = configs_pb2.RoutingConfig(strategy=configs_pb2.Strategy(mode="fallback"))
    message.targets.extend([configs_pb2.RoutingConfig()] * 200_000)
    config = config_from_proto(message, max_targets=100)
    assert len(config.targets) == 101
    message_text, param = _compile_outcome(config, 100)
    assert "at most 100 targets in all" in message_text and param == "targets"
