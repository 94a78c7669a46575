"""The ``cache`` block of a config: validated when compiled, errors naming the field, inherited like retry."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.cache_policy import DEFAULT_MAX_AGE_SECONDS, MAX_MAX_AGE_SECONDS, CachePolicy
from imagegateway_server.routing.plan import Leaf, Node, compile_plan, leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy


def compile_dict(document: dict[str, Any]) -> Node:
    return compile_plan(parse_config(document), canonical_provider=lambda n: n, host_policy=UpstreamHostPolicy(()))


def refused(document: dict[str, Any]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        compile_dict(document)
    return info.value


def chain(top: dict[str, Any] | None = None, second: dict[str, Any] | None = None) -> dict[str, Any]:
    """A two-target fallback with an optional cache block on the config and on its second target."""
    document: dict[str, Any] = {
        "strategy": {"mode": "fallback"},
        "targets": [{"virtual_key": "a"}, {"virtual_key": "b"}],
    }
    if top is not None:
        document["cache"] = top
    if second is not None:
        document["targets"][1]["cache"] = second
    return document


def test_simple_mode_with_max_age_in_seconds_compiles() -> None:
    (leaf,) = leaves(compile_dict({"virtual_key": "a", "cache": {"mode": "simple", "max_age": 120}}))
    assert leaf.cache == CachePolicy(max_age=120, include_seeded_and_multi_image=False)


def test_max_age_defaults_to_an_hour() -> None:
    (leaf,) = leaves(compile_dict({"virtual_key": "a", "cache": {"mode": "simple"}}))
    assert leaf.cache is not None and leaf.cache.max_age == DEFAULT_MAX_AGE_SECONDS == 3600


def test_a_config_without_cache_caches_nothing() -> None:
    assert all(leaf.cache is None for leaf in leaves(compile_dict(chain())))


def test_semantic_mode_is_refused_for_images_naming_cache_mode() -> None:
    error = refused({"virtual_key": "a", "cache": {"mode": "semantic"}})
    assert error.param == "cache.mode" and "semantic" in error.message


@pytest.mark.parametrize("mode", ["", "SIMPLE", "lru", "none"])
def test_unknown_or_missing_mode_is_refused_naming_cache_mode(mode: str) -> None:
    assert refused({"virtual_key": "a", "cache": {"mode": mode}}).param == "cache.mode"


def test_an_empty_cache_block_is_refused_naming_cache_mode() -> None:
    assert refused({"virtual_key": "a", "cache": {}}).param == "cache.mode"


@pytest.mark.parametrize("max_age", [0, -1, MAX_MAX_AGE_SECONDS + 1])
def test_max_age_out_of_range_is_refused_naming_cache_max_age(max_age: int) -> None:
    error = refused({"virtual_key": "a", "cache": {"mode": "simple", "max_age": max_age}})
    assert error.param == "cache.max_age"


def test_errors_inside_targets_name_the_full_path() -> None:
    error = refused(chain(second={"mode": "semantic"}))
    assert error.param == "targets[1].cache.mode"
    nested = {
        "strategy": {"mode": "fallback"},
        "targets": [
            {
                "strategy": {"mode": "fallback"},
                "targets": [{"virtual_key": "a", "cache": {"mode": "simple", "max_age": 0}}],
            }
        ],
    }
    assert refused(nested).param == "targets[0].targets[0].cache.max_age"


def test_children_inherit_the_parents_cache_unless_they_set_their_own() -> None:
    plan = compile_dict(
        chain(
            top={"mode": "simple", "max_age": 100},
            second={"mode": "simple", "max_age": 5, "include_seeded_and_multi_image": True},
        )
    )
    first, second = leaves(plan)
    assert first.cache == CachePolicy(100, False)
    assert second.cache == CachePolicy(5, True)


def test_a_cache_set_only_on_one_target_applies_to_that_target_alone() -> None:
    first, second = leaves(compile_dict(chain(second={"mode": "simple"})))
    assert first.cache is None and second.cache == CachePolicy()


def test_portkeys_camel_case_spelling_is_accepted() -> None:
    (leaf,) = leaves(compile_dict({"virtual_key": "a", "cache": {"mode": "simple", "maxAge": 30}}))
    assert leaf.cache == CachePolicy(30)


# A tree of targets, each with an optional cache block; the reference says what each leaf must get.
cache_blocks = st.none() | st.builds(
    lambda age, include: {"mode": "simple", "max_age": age, "include_seeded_and_multi_image": include},
    st.integers(1, 10_000),
    st.booleans(),
)
trees = st.recursive(
    st.builds(lambda cache: {"virtual_key": "vk", **({"cache": cache} if cache else {})}, cache_blocks),
    lambda children: st.builds(
        lambda targets, cache: {
            "strategy": {"mode": "fallback"},
            "targets": targets,
            **({"cache": cache} if cache else {}),
        },
        st.lists(children, min_size=1, max_size=3),
        cache_blocks,
    ),
    max_leaves=8,
)


def expected(document: dict[str, Any], inherited: CachePolicy | None = None) -> list[CachePolicy | None]:
    block = document.get("cache")
    here = inherited if block is None else CachePolicy(block["max_age"], block["include_seeded_and_multi_image"])
    if "targets" not in document:
        return [here]
    return [policy for child in document["targets"] for policy in expected(child, here)]


@given(trees)
def test_every_leaf_gets_the_nearest_cache_block_above_it(document: dict[str, Any]) -> None:
    plan = compile_dict(document)
    got: list[CachePolicy | None] = [leaf.cache for leaf in leaves(plan) if isinstance(leaf, Leaf)]
    assert got == expected(document)
