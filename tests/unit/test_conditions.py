"""Conditional routing queries: every operator, nesting, absent fields, type rules, and save-time errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from imagegateway_server.api.config_json import parse_config, parse_config_message
from imagegateway_server.api.config_proto import config_from_proto
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.request import ImageRequest, ResponseFormat
from imagegateway_server.routing.conditions import compile_query
from imagegateway_server.routing.plan import Group, Leaf, leaves
from imagegateway_server.routing.validation import validate_config

REQUEST = ImageRequest(prompt="a red fox in the snow", model="dall-e-3", size="1024x1024", n=2)


def matches(query: dict[str, Any], metadata: Mapping[str, str] | None = None, request: ImageRequest = REQUEST) -> bool:
    return compile_query(query, "query")(metadata or {}, request)


def refused(query: dict[str, Any]) -> str:
    """The field path named when ``query`` is refused at compile time."""
    with pytest.raises(InvalidArgument) as info:
        compile_query(query, "strategy.conditions[0].query")
    assert info.value.param is not None
    return info.value.param


# -- operators ----------------------------------------------------------------------------------------


def test_bare_value_means_eq() -> None:
    assert matches({"metadata.tier": "gold"}, {"tier": "gold"})
    assert not matches({"metadata.tier": "gold"}, {"tier": "silver"})


@pytest.mark.parametrize(
    "op,operand,value,expected",
    [
        ("$eq", "gold", "gold", True),
        ("$eq", "gold", "Gold", False),
        ("$ne", "gold", "gold", False),
        ("$ne", "gold", "silver", True),
        ("$gt", 3, "4", True),
        ("$gt", 3, "3", False),
        ("$gte", 3, "3", True),
        ("$gte", 3, "2.5", False),
        ("$lt", 3, "2.5", True),
        ("$lt", 3, "3", False),
        ("$lte", 3, "3", True),
        ("$lte", 3, "3.01", False),
        ("$in", ["gold", "platinum"], "platinum", True),
        ("$in", ["gold", "platinum"], "silver", False),
        ("$nin", ["gold", "platinum"], "silver", True),
        ("$nin", ["gold", "platinum"], "gold", False),
        ("$regex", "^plat", "platinum", True),
        ("$regex", "^plat", "replatform", False),
        ("$regex", "inum$", "platinum", True),
        ("$regex", "(?i)GOLD", "gold", True),
    ],
)
def test_each_operator_on_metadata(op: str, operand: Any, value: str, expected: bool) -> None:
    assert matches({"metadata.tier": {op: operand}}, {"tier": value}) is expected


def test_regex_searches_anywhere_like_javascripts_test() -> None:
    assert matches({"params.prompt": {"$regex": "fox"}})
    assert not matches({"params.prompt": {"$regex": "^fox"}})


def test_operators_under_one_field_must_all_hold() -> None:
    query = {"metadata.score": {"$gte": 10, "$lt": 20, "$ne": "15"}}
    assert matches(query, {"score": "10"})
    assert not matches(query, {"score": "15"})
    assert not matches(query, {"score": "20"})


def test_every_key_of_a_query_counts_even_beside_or() -> None:
    # Portkey returns at the first $or and ignores the rest of the object; we AND every key.
    query = {"$or": [{"metadata.tier": "gold"}], "params.model": "gpt-image-1"}
    assert not matches(query, {"tier": "gold"})
    assert matches(query, {"tier": "gold"}, ImageRequest(prompt="x", model="gpt-image-1"))


def test_empty_query_always_matches() -> None:
    assert matches({}, {})


# -- nesting ------------------------------------------------------------------------------------------


def test_and_or_nest_to_any_depth() -> None:
    query = {
        "$or": [
            {"$and": [{"metadata.tier": "gold"}, {"params.n": {"$gte": 2}}]},
            {
                "$and": [
                    {"metadata.region": {"$in": ["eu", "uk"]}},
                    {"$or": [{"params.size": "512x512"}, {"params.model": "dall-e-3"}]},
                ]
            },
        ]
    }
    assert matches(query, {"tier": "gold"})
    assert not matches(query, {"tier": "gold"}, ImageRequest(prompt="x", model="sdxl", n=1))
    assert matches(query, {"region": "uk"})
    assert not matches(query, {"region": "us"})


def test_and_needs_all_or_needs_one() -> None:
    gold, eu = {"metadata.tier": "gold"}, {"metadata.region": "eu"}
    assert matches({"$and": [gold, eu]}, {"tier": "gold", "region": "eu"})
    assert not matches({"$and": [gold, eu]}, {"tier": "gold"})
    assert matches({"$or": [gold, eu]}, {"region": "eu"})
    assert not matches({"$or": [gold, eu]}, {"region": "us"})


# -- params -------------------------------------------------------------------------------------------


def test_params_read_the_request_fields_with_their_types() -> None:
    assert matches({"params.model": "dall-e-3", "params.size": "1024x1024", "params.n": 2})
    assert matches({"params.n": {"$in": [2, 4]}})
    assert not matches({"params.n": {"$gt": 2}})
    assert matches({"params.n": 1}, request=ImageRequest(prompt="x"))  # n defaults to 1, and is still there


def test_response_format_compares_with_its_wire_name() -> None:
    assert matches(
        {"params.response_format": "b64_json"},
        request=ImageRequest(prompt="x", response_format=ResponseFormat.B64_JSON),
    )
    assert matches({"params.response_format": "bytes"}, request=ImageRequest(prompt="x"))


def test_unmodelled_params_read_the_request_extras() -> None:
    request = ImageRequest(prompt="x", extra={"steps": 30, "sampler": "K_EULER", "hdr": True})
    assert matches(
        {"params.steps": {"$gte": 25}, "params.sampler": {"$regex": "EULER"}, "params.hdr": True}, request=request
    )
    assert not matches({"params.steps": "30"}, request=request)  # a number is not the string "30"


# -- absent fields ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,operator,operand,expected",
    [
        ("metadata.tier", "$eq", "gold", False),
        ("metadata.tier", "$ne", "gold", True),
        ("metadata.tier", "$gt", 1, False),
        ("metadata.tier", "$gte", 1, False),
        ("metadata.tier", "$lt", 1, False),
        ("metadata.tier", "$lte", 1, False),
        ("metadata.tier", "$in", ["gold"], False),
        ("metadata.tier", "$nin", ["gold"], True),
        ("metadata.tier", "$regex", ".*", False),
        ("metadata.tier", "$eq", None, True),
        ("metadata.tier", "$ne", None, False),
        ("metadata.tier", "$in", [None, "gold"], True),
        ("params.style", "$eq", "vivid", False),
        ("params.style", "$ne", "vivid", True),
        ("params.style", "$regex", ".*", False),
        ("params.style", "$nin", ["vivid"], True),
        ("params.seed", "$gt", 0, False),
        ("params.seed", "$lte", 0, False),
        ("params.seed", "$in", [1, 2], False),
        ("params.steps", "$eq", 30, False),
        ("params.steps", "$ne", 30, True),
    ],
)
def test_an_absent_field(field: str, operator: str, operand: Any, expected: bool) -> None:
    assert matches({field: {operator: operand}}, {}) is expected


def test_null_means_absent_and_a_set_field_is_not_null() -> None:
    assert matches({"params.seed": None})
    assert not matches({"params.seed": None}, request=ImageRequest(prompt="x", seed=7))
    assert matches({"params.seed": {"$ne": None}}, request=ImageRequest(prompt="x", seed=7))


# -- type rules ---------------------------------------------------------------------------------------


def test_metadata_strings_read_as_numbers_and_booleans_when_compared_with_them() -> None:
    # REST sends x-portkey-metadata {"tier": 5} on as "5" and gRPC metadata is all strings.
    assert matches({"metadata.tier": 5}, {"tier": "5"})
    assert matches({"metadata.tier": 5}, {"tier": "5.0"})
    assert matches({"metadata.tier": {"$in": [1, 5]}}, {"tier": "5"})
    assert matches({"metadata.beta": True}, {"beta": "true"})
    assert not matches({"metadata.beta": True}, {"beta": "True"})
    assert not matches({"metadata.beta": True}, {"beta": "1"})


def test_only_whole_numeric_strings_compare_as_numbers() -> None:
    # Portkey's parseFloat would read "5px" as 5.
    assert not matches({"metadata.tier": {"$gt": 3}}, {"tier": "5px"})
    assert not matches({"metadata.tier": {"$gt": 3}}, {"tier": "five"})
    assert not matches({"metadata.tier": {"$gt": 3}}, {"tier": "inf"})
    assert not matches({"metadata.tier": {"$gt": 3}}, {"tier": ""})
    assert matches({"metadata.tier": {"$gt": 3}}, {"tier": "-1e3"}) is False
    assert matches({"metadata.tier": {"$lt": 3}}, {"tier": "-1e3"})
    assert matches({"metadata.tier": {"$lt": 3}}, {"tier": ".5"})


def test_a_string_operand_never_equals_a_number() -> None:
    assert not matches({"metadata.tier": "5"}, {"tier": "5.0"})
    assert not matches({"params.steps": "30"}, request=ImageRequest(prompt="x", extra={"steps": 30}))


def test_booleans_are_not_numbers() -> None:
    request = ImageRequest(prompt="x", extra={"hdr": True, "steps": 1})
    assert not matches({"params.hdr": 1}, request=request)
    assert not matches({"params.steps": True}, request=request)
    assert not matches({"params.hdr": {"$gt": 0}}, request=request)


def test_regex_skips_values_that_are_not_strings() -> None:
    assert not matches({"params.steps": {"$regex": "3"}}, request=ImageRequest(prompt="x", extra={"steps": 30}))


def test_regex_on_a_lone_surrogate_is_no_match_rather_than_an_error() -> None:
    assert not matches({"metadata.tier": {"$regex": "a"}}, {"tier": "\ud800a"})


# -- refused at compile time, naming the path ---------------------------------------------------------


@pytest.mark.parametrize(
    "query,path",
    [
        ({"metadata.tier": {"$gt": "3"}}, "strategy.conditions[0].query.metadata.tier.$gt"),
        ({"metadata.tier": {"$gt": True}}, "strategy.conditions[0].query.metadata.tier.$gt"),
        ({"metadata.tier": {"$lte": None}}, "strategy.conditions[0].query.metadata.tier.$lte"),
        ({"metadata.tier": {"$gt": float("nan")}}, "strategy.conditions[0].query.metadata.tier.$gt"),
        ({"metadata.tier": {"$in": "gold"}}, "strategy.conditions[0].query.metadata.tier.$in"),
        ({"metadata.tier": {"$nin": ["a", {"b": 1}]}}, "strategy.conditions[0].query.metadata.tier.$nin[1]"),
        ({"metadata.tier": {"$eq": ["gold"]}}, "strategy.conditions[0].query.metadata.tier.$eq"),
        ({"metadata.tier": ["gold", "silver"]}, "strategy.conditions[0].query.metadata.tier"),
        ({"metadata.tier": {"$regex": "(unclosed"}}, "strategy.conditions[0].query.metadata.tier.$regex"),
        ({"metadata.tier": {"$regex": "(?=lookahead)"}}, "strategy.conditions[0].query.metadata.tier.$regex"),
        ({"metadata.tier": {"$regex": 5}}, "strategy.conditions[0].query.metadata.tier.$regex"),
        ({"metadata.tier": {"$exists": True}}, "strategy.conditions[0].query.metadata.tier.$exists"),
        ({"metadata.tier": {"$or": [{"metadata.a": "b"}]}}, "strategy.conditions[0].query.metadata.tier.$or"),
        ({"$eq": "gold"}, "strategy.conditions[0].query.$eq"),
        ({"$and": {"metadata.tier": "gold"}}, "strategy.conditions[0].query.$and"),
        ({"$or": []}, "strategy.conditions[0].query.$or"),
        ({"$or": ["gold"]}, "strategy.conditions[0].query.$or[0]"),
        (
            {"$and": [{"$or": [{"metadata.a": {"$gt": "x"}}]}]},
            "strategy.conditions[0].query.$and[0].$or[0].metadata.a.$gt",
        ),
        ({"tier": "gold"}, "strategy.conditions[0].query.tier"),
        ({"metadata": {"tier": "gold"}}, "strategy.conditions[0].query.metadata"),
        ({"metadata.": "gold"}, "strategy.conditions[0].query.metadata."),
        ({"user.tier": "gold"}, "strategy.conditions[0].query.user.tier"),
        # params with a known type take operands of that type
        ({"params.model": 3}, "strategy.conditions[0].query.params.model"),
        ({"params.model": {"$gt": 3}}, "strategy.conditions[0].query.params.model.$gt"),
        ({"params.model": {"$in": ["dall-e-3", 3]}}, "strategy.conditions[0].query.params.model.$in[1]"),
        ({"params.n": "2"}, "strategy.conditions[0].query.params.n"),
        ({"params.n": {"$regex": "2"}}, "strategy.conditions[0].query.params.n.$regex"),
        ({"params.cfg_scale": {"$ne": True}}, "strategy.conditions[0].query.params.cfg_scale.$ne"),
    ],
)
def test_bad_queries_are_refused_naming_the_path(query: dict[str, Any], path: str) -> None:
    assert refused(query) == path


def test_the_error_message_says_what_is_wrong() -> None:
    with pytest.raises(InvalidArgument) as info:
        compile_query({"metadata.tier": {"$gt": "3"}}, "strategy.conditions[0].query")
    assert str(info.value) == "strategy.conditions[0].query.metadata.tier.$gt: must be a number"


# -- plan compilation ---------------------------------------------------------------------------------


def conditional(
    conditions: list[dict[str, Any]], default: str | None = "base", targets: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    strategy: dict[str, Any] = {"mode": "conditional", "conditions": conditions}
    if default is not None:
        strategy["default"] = default
    return {
        "strategy": strategy,
        "targets": targets
        if targets is not None
        else [{"name": "premium", "virtual_key": "openai-vk"}, {"name": "base", "virtual_key": "stability-vk"}],
    }


def compile_dict(document: dict[str, Any]) -> Leaf | Group:
    return validate_config(parse_config(document))


def compile_error(document: dict[str, Any]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        compile_dict(document)
    return info.value


def test_conditional_config_compiles_to_rules_over_named_targets() -> None:
    plan = compile_dict(conditional([{"query": {"metadata.tier": {"$eq": "gold"}}, "then": "premium"}]))
    assert isinstance(plan, Group) and plan.mode == "conditional" and plan.routes is not None
    assert plan.routes.choose({"tier": "gold"}, REQUEST) == 0
    assert plan.routes.choose({"tier": "free"}, REQUEST) == 1
    assert [leaf.path for leaf in leaves(plan)] == ["config.targets[0]", "config.targets[1]"]


def test_first_matching_condition_wins() -> None:
    plan = compile_dict(
        conditional(
            [
                {"query": {"params.model": "dall-e-3"}, "then": "base"},
                {"query": {}, "then": "premium"},
            ],
            default="base",
        )
    )
    assert isinstance(plan, Group) and plan.routes is not None
    assert plan.routes.choose({}, REQUEST) == 1
    assert plan.routes.choose({}, ImageRequest(prompt="x", model="sdxl")) == 0


def test_conditional_without_default_is_refused() -> None:
    error = compile_error(conditional([{"query": {}, "then": "premium"}], default=None))
    assert error.param == "strategy.default"


def test_then_must_name_a_target_of_the_group() -> None:
    error = compile_error(conditional([{"query": {}, "then": "premium"}, {"query": {}, "then": "nope"}]))
    assert error.param == "strategy.conditions[1].then" and "'nope'" in error.message


def test_default_must_name_a_target_of_the_group() -> None:
    assert compile_error(conditional([{"query": {}, "then": "premium"}], default="gone")).param == ("strategy.default")


def test_then_is_required() -> None:
    assert compile_error(conditional([{"query": {}}])).param == "strategy.conditions[0].then"


def test_query_is_required() -> None:
    assert compile_error(conditional([{"then": "base"}])).param == "strategy.conditions[0].query"


def test_conditions_are_required() -> None:
    assert compile_error(conditional([])).param == "strategy.conditions"


def test_target_names_must_be_unique_in_a_conditional_group() -> None:
    document = conditional(
        [{"query": {}, "then": "base"}],
        targets=[{"name": "base", "virtual_key": "a"}, {"name": "base", "virtual_key": "b"}],
    )
    assert compile_error(document).param == "targets[1].name"


def test_query_errors_name_the_nested_path() -> None:
    inner = conditional([{"query": {"metadata.tier": {"$gt": "3"}}, "then": "premium"}])
    document = {"strategy": {"mode": "fallback"}, "targets": [{"virtual_key": "x"}, inner]}
    error = compile_error(document)
    assert error.param == "targets[1].strategy.conditions[0].query.metadata.tier.$gt"
    assert error.message.endswith("must be a number")


def test_names_are_resolved_within_their_own_group() -> None:
    # "premium" exists in the outer group only; the inner conditional cannot reach it.
    inner = conditional([{"query": {}, "then": "premium"}], default="x", targets=[{"name": "x", "virtual_key": "a"}])
    document = {"strategy": {"mode": "fallback"}, "targets": [{"name": "premium", "virtual_key": "p"}, inner]}
    assert compile_error(document).param == "targets[1].strategy.conditions[0].then"


def test_conditions_and_default_belong_to_conditional_mode_only() -> None:
    targets = [{"name": "a", "virtual_key": "a"}]
    assert compile_error({"strategy": {"mode": "fallback", "default": "a"}, "targets": targets}).param == (
        "strategy.default"
    )
    assert (
        compile_error(
            {"strategy": {"mode": "loadbalance", "conditions": [{"query": {}, "then": "a"}]}, "targets": targets}
        ).param
        == "strategy.conditions"
    )


def test_conditional_groups_nest_and_inherit() -> None:
    inner = conditional([{"query": {"params.size": "512x512"}, "then": "premium"}])
    inner["override_params"] = {"quality": "hd"}
    plan = compile_dict(
        {
            "strategy": {"mode": "fallback"},
            "override_params": {"model": "dall-e-3"},
            "request_timeout": 5000,
            "targets": [inner, {"virtual_key": "last"}],
        }
    )
    first = leaves(plan)[0]
    assert first.path == "config.targets[0].targets[0]"
    assert dict(first.override_params) == {"model": "dall-e-3", "quality": "hd"}
    assert first.request_timeout_ms == 5000


def test_portkey_docs_example_compiles_unchanged() -> None:
    document = {
        "strategy": {
            "mode": "conditional",
            "conditions": [
                {"query": {"metadata.user_plan": {"$eq": "paid"}}, "then": "finetuned-gpt4"},
                {"query": {"metadata.user_plan": {"$eq": "free"}}, "then": "base-gpt4"},
            ],
            "default": "base-gpt4",
        },
        "targets": [
            {"name": "finetuned-gpt4", "virtual_key": "xx", "override_params": {"model": "ft://gpt4"}},
            {"name": "base-gpt4", "virtual_key": "yy", "override_params": {"model": "gpt-4"}},
        ],
    }
    plan = compile_dict(document)
    assert isinstance(plan, Group) and plan.routes is not None
    assert plan.routes.choose({"user_plan": "paid"}, REQUEST) == 0
    assert plan.routes.choose({"user_plan": "free"}, REQUEST) == 1
    assert plan.routes.choose({}, REQUEST) == 1


@pytest.mark.parametrize("weight", [float("nan"), float("inf"), -1])
def test_weights_must_be_finite_and_not_negative(weight: float) -> None:
    # JSON text cannot carry NaN or infinity into a weight, but a gRPC message can.
    message = parse_config_message(
        {"strategy": {"mode": "loadbalance"}, "targets": [{"virtual_key": "a"}, {"virtual_key": "b", "weight": 1}]}
    )
    message.targets[0].weight = weight
    with pytest.raises(InvalidArgument) as info:
        validate_config(config_from_proto(message))
    assert info.value.param == "targets[0].weight"


def test_loadbalance_weights_compile_in_target_order() -> None:
    plan = compile_dict(
        {
            "strategy": {"mode": "loadbalance"},
            "targets": [{"virtual_key": "a", "weight": 0}, {"virtual_key": "b", "weight": 3}, {"virtual_key": "c"}],
        }
    )
    assert isinstance(plan, Group) and plan.weights == (0.0, 3.0, 1.0)
