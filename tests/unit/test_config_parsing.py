"""Config JSON parsing and plan compilation: errors name the field path, plans mean what Portkey's do."""

from __future__ import annotations

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.plan import Group, Leaf, compile_plan, leaves
from imagegateway_server.routing.validation import validate_config
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy

COOKBOOK = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"virtual_key": "stability-ai-virtualkey", "override_params": {"model": "stable-diffusion-v1-6"}},
        {"virtual_key": "open-ai-virtual-key", "override_params": {"model": "dall-e-3"}},
    ],
}


def compile_dict(document: dict, allowed: tuple[str, ...] = ()) -> Leaf | Group:
    return validate_config(parse_config(document), allowed)


def error_param(document: object) -> str | None:
    with pytest.raises(InvalidArgument) as info:
        compile_dict(document)  # type: ignore[arg-type]
    return info.value.param


def test_cookbook_config_compiles_to_a_two_target_fallback() -> None:
    plan = compile_dict(COOKBOOK)
    assert isinstance(plan, Group) and plan.mode == "fallback"
    first, second = leaves(plan)
    assert (first.path, first.virtual_key, dict(first.override_params)) == (
        "config.targets[0]",
        "stability-ai-virtualkey",
        {"model": "stable-diffusion-v1-6"},
    )
    assert (second.path, second.virtual_key) == ("config.targets[1]", "open-ai-virtual-key")


def test_camel_case_json_names_are_accepted_too() -> None:
    plan = compile_dict(
        {
            "strategy": {"mode": "fallback", "onStatusCodes": [503]},
            "targets": [{"virtualKey": "a"}, {"virtualKey": "b"}],
        }
    )
    assert isinstance(plan, Group) and plan.on_status_codes == frozenset({503})


def test_unknown_field_is_named_with_its_path() -> None:
    assert error_param({"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"bogus": 1}]}) == (
        "targets[1].bogus"
    )


def test_wrong_type_is_named_with_its_path() -> None:
    assert error_param({"strategy": {"mode": 3}, "targets": [{"virtual_key": "a"}]}) == "strategy.mode"
    assert error_param({"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a", "weight": "x"}]}) == (
        "targets[0].weight"
    )


def test_unknown_mode_names_the_nested_field() -> None:
    document = {
        "strategy": {"mode": "fallback"},
        "targets": [{"strategy": {"mode": "roundrobin"}, "targets": [{"virtual_key": "a"}]}],
    }
    with pytest.raises(InvalidArgument) as info:
        compile_dict(document)
    assert info.value.param == "targets[0].strategy.mode"
    assert "must be one of" in info.value.message


def test_target_without_provider_or_virtual_key_is_refused() -> None:
    assert error_param({"strategy": {"mode": "fallback"}, "targets": [{"override_params": {"model": "x"}}]}) == (
        "targets[0].provider"
    )


def test_provider_without_api_key_is_refused() -> None:
    assert error_param({"provider": "openai"}) == "api_key"


def test_unknown_provider_is_refused_naming_the_field() -> None:
    assert error_param({"provider": "nonesuch", "api_key": "k"}) == "provider"


def test_override_params_type_errors_name_the_param() -> None:
    assert error_param({"virtual_key": "a", "override_params": {"n": "two"}}) == "override_params.n"


def test_override_params_merge_down_with_the_child_winning() -> None:
    plan = compile_dict(
        {
            "strategy": {"mode": "fallback"},
            "override_params": {"model": "parent", "size": "1024x1024"},
            "targets": [{"virtual_key": "a", "override_params": {"model": "child"}}, {"virtual_key": "b"}],
        }
    )
    first, second = leaves(plan)
    assert dict(first.override_params) == {"model": "child", "size": "1024x1024"}
    assert dict(second.override_params) == {"model": "parent", "size": "1024x1024"}


def test_children_inherit_timeout_retry_and_custom_host() -> None:
    plan = compile_dict(
        {
            "strategy": {"mode": "fallback"},
            "request_timeout": 5000,
            "retry": {"attempts": 2},
            "custom_host": "http://127.0.0.1:9000/v1",
            "targets": [{"virtual_key": "a"}, {"virtual_key": "b", "request_timeout": 100, "retry": {"attempts": 0}}],
        },
        allowed=("127.0.0.1",),
    )
    first, second = leaves(plan)
    assert first.request_timeout_ms == 5000 and first.retry is not None and first.retry.attempts == 2
    assert first.custom_host == "http://127.0.0.1:9000/v1"
    assert second.request_timeout_ms == 100 and second.retry is not None and second.retry.attempts == 0


def test_nested_targets_get_portkey_paths() -> None:
    plan = compile_dict(
        {
            "strategy": {"mode": "fallback"},
            "targets": [
                {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "a"}, {"virtual_key": "b"}]},
                {"virtual_key": "c"},
            ],
        }
    )
    assert [leaf.path for leaf in leaves(plan)] == [
        "config.targets[0].targets[0]",
        "config.targets[0].targets[1]",
        "config.targets[1]",
    ]


def test_custom_host_on_loopback_needs_the_allow_list() -> None:
    document = {"provider": "openai", "api_key": "k", "custom_host": "http://127.0.0.1:9/v1"}
    assert error_param(document) == "custom_host"
    assert isinstance(compile_dict(document, allowed=("127.0.0.1",)), Leaf)


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/v1",
        "https://localhost/v1",
        "https://169.254.169.254/",
        "http://example.com/v1",
        "ftp://api.openai.com",
        "https://user:pw@api.openai.com",
    ],
)
def test_host_policy_refuses_private_plain_and_odd_urls(url: str) -> None:
    with pytest.raises(InvalidArgument):
        UpstreamHostPolicy(()).check(url, param="custom_host")


def test_host_policy_allows_public_https_and_listed_cidrs() -> None:
    policy = UpstreamHostPolicy(("10.1.0.0/16", "gw.internal:8443"))
    assert policy.check("https://api.openai.com/v1/", param="x") == "https://api.openai.com/v1"
    assert policy.check("http://10.1.2.3:8080", param="x") == "http://10.1.2.3:8080"
    assert policy.check("http://gw.internal:8443", param="x") == "http://gw.internal:8443"
    with pytest.raises(InvalidArgument):
        policy.check("http://gw.internal:9000", param="x")


def test_all_zero_loadbalance_weights_are_refused() -> None:
    assert error_param(
        {
            "strategy": {"mode": "loadbalance"},
            "targets": [{"virtual_key": "a", "weight": 0}, {"virtual_key": "b", "weight": 0}],
        }
    ) == ("targets")


def test_conditional_mode_without_a_default_is_refused() -> None:
    assert (
        error_param(
            {
                "strategy": {"mode": "conditional", "conditions": [{"query": {}, "then": "a"}]},
                "targets": [{"name": "a", "virtual_key": "a"}],
            }
        )
        == "strategy.default"
    )


def test_retry_attempts_are_bounded() -> None:
    assert error_param({"virtual_key": "a", "retry": {"attempts": 9}}) == "retry.attempts"


def test_status_codes_must_be_http_statuses() -> None:
    assert (
        error_param({"strategy": {"mode": "fallback", "on_status_codes": [42]}, "targets": [{"virtual_key": "a"}]})
        == "strategy.on_status_codes[0]"
    )


def test_invalid_json_text_is_a_clear_error() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse_config("{not json", param="x-portkey-config")
    assert info.value.param == "x-portkey-config"


def test_compile_plan_is_deterministic() -> None:
    config = parse_config(COOKBOOK)
    kwargs = {"canonical_provider": lambda name: name, "host_policy": UpstreamHostPolicy(())}
    assert compile_plan(config, **kwargs) == compile_plan(config, **kwargs)
