"""Property tests for plan compilation over random nested configs.

Any config either compiles or is refused with an InvalidArgument naming a field path; a compiled plan has
one well-formed, unique path per leaf, in document order, and every leaf carries exactly what the
inheritance rules give it (nearest setting wins; override_params merge down, the child winning).
"""

from __future__ import annotations

import copy
import math
import re
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.plan import Group, Leaf, Node, leaves
from imagegateway_server.routing.validation import validate_config

# No per-example deadline: the suite runs on a slow, noisy 2-core machine.
PROFILE = settings(deadline=None, max_examples=200)
ALLOWED_HOSTS = ("127.0.0.1",)
PATH = re.compile(r"config(?:\.targets\[(?:0|[1-9]\d*)\])*")
FIELD_PATH = re.compile(r"[a-z_]+(?:\[\d+\])?(?:\.[^.\s]+?(?:\[\d+\])?)*|x-portkey-config|config")

# -- arbitrary configs: valid, nearly valid and plainly wrong ------------------------------------------

anything = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=4))
queries = st.sampled_from(
    [
        {},
        {"metadata.tier": "gold"},
        {"params.n": {"$gt": 1}},
        {"params.model": {"$gt": 1}},
        {"$or": []},
        {"metadata.tier": {"$regex": "("}},
        {"bogus": 1},
        {"$and": [{"params.size": {"$in": ["1024x1024"]}}]},
    ]
)
names = st.sampled_from(["a", "b", "c", ""])
common_fields: dict[str, st.SearchStrategy[Any]] = {
    "name": names,
    "weight": st.one_of(st.integers(-1, 3), st.floats(0, 2)),
    "override_params": st.dictionaries(
        st.sampled_from(["model", "n", "size", "steps"]),
        st.one_of(st.text(max_size=4), st.integers(0, 12), st.booleans()),
        max_size=2,
    ),
    "custom_host": st.sampled_from(
        ["http://127.0.0.1:9000", "https://api.openai.com", "http://10.1.2.3", "ftp://x", "https://user:pw@127.0.0.1"]
    ),
    "request_timeout": st.integers(-10, 100_000),
    "retry": st.fixed_dictionaries(
        {}, optional={"attempts": st.integers(-1, 7), "on_status_codes": st.lists(st.integers(0, 700), max_size=2)}
    ),
    "forward_headers": st.lists(st.sampled_from(["X-User", "x-team"]), max_size=2),
}
wild_leaves = st.fixed_dictionaries(
    {},
    optional={
        "virtual_key": st.sampled_from(["vk-a", "vk-b"]),
        "provider": st.sampled_from(["openai", "stability-ai", "stabilityai", "no-such-provider"]),
        "api_key": st.just("sk-test"),
        **common_fields,
    },
)


@st.composite
def wild_groups(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    strategy: dict[str, Any] = {
        "mode": draw(st.sampled_from(["fallback", "loadbalance", "single", "conditional", "roundrobin", ""]))
    }
    if draw(st.booleans()):
        strategy["conditions"] = draw(st.lists(st.fixed_dictionaries({"query": queries, "then": names}), max_size=2))
    if draw(st.booleans()):
        strategy["default"] = draw(names)
    if draw(st.booleans()):
        strategy["on_status_codes"] = draw(st.lists(st.integers(0, 700), max_size=2))
    group = draw(st.fixed_dictionaries({}, optional=common_fields))
    return {**group, "strategy": strategy, "targets": draw(st.lists(children, max_size=4))}


wild_configs = st.recursive(wild_leaves, lambda children: wild_groups(children), max_leaves=10)


@PROFILE
@given(st.one_of(wild_configs, st.deferred(lambda: mutated_configs)))
# Found by this test: JSON text's Infinity once escaped as OverflowError / ValueError (a 500).
@example({"virtual_key": "vk-a", "request_timeout": math.inf})
@example({"virtual_key": "vk-a", "override_params": {"seed": math.inf}})
@example(
    {
        "strategy": {
            "mode": "conditional",
            "default": "a",
            "conditions": [{"query": {"metadata.x": {"$gt": math.inf}}, "then": "a"}],
        },
        "targets": [{"name": "a", "virtual_key": "vk"}],
    }
)
def test_compile_raises_nothing_but_a_named_invalid_argument(document: dict[str, Any]) -> None:
    try:
        plan = validate_config(parse_config(document), ALLOWED_HOSTS)
    except InvalidArgument as exc:
        assert exc.param and FIELD_PATH.fullmatch(exc.param), exc.param
        return
    assert_well_formed(plan)


# -- valid configs, to check what compilation produces -------------------------------------------------

inherited_fields: dict[str, st.SearchStrategy[Any]] = {
    "override_params": st.dictionaries(
        st.sampled_from(["model", "n", "size", "steps"]), st.one_of(st.text(max_size=4), st.integers(1, 4)), max_size=2
    ).map(
        lambda d: {k: (str(v) if k in ("model", "size") else v) for k, v in d.items() if k != "n" or isinstance(v, int)}
    ),
    "custom_host": st.sampled_from(["http://127.0.0.1:9000", "https://api.openai.com", "https://api.stability.ai"]),
    "request_timeout": st.integers(1, 100_000),
    "retry": st.fixed_dictionaries({"attempts": st.integers(0, 5)}),
    "forward_headers": st.lists(st.sampled_from(["X-User", "x-team"]), min_size=1, max_size=2),
}
valid_leaves = st.builds(
    lambda vk, extra: {"virtual_key": vk, **extra},
    st.sampled_from(["vk-a", "vk-b"]),
    st.fixed_dictionaries({}, optional=inherited_fields),
)


@st.composite
def valid_groups(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    mode = draw(st.sampled_from(["fallback", "loadbalance", "single", "conditional"]))
    targets = [dict(t) for t in draw(st.lists(children, min_size=1, max_size=1 if mode == "single" else 4))]
    strategy: dict[str, Any] = {"mode": mode}
    if mode == "loadbalance":
        weights = draw(st.lists(st.integers(0, 3), min_size=len(targets), max_size=len(targets)))
        weights[draw(st.integers(0, len(targets) - 1))] += 1  # at least one above zero
        for target, weight in zip(targets, weights, strict=True):
            target["weight"] = weight
    if mode == "conditional":
        for i, target in enumerate(targets):
            target["name"] = f"t{i}"
        pick = st.integers(0, len(targets) - 1).map(lambda i: f"t{i}")
        strategy["conditions"] = draw(
            st.lists(st.fixed_dictionaries({"query": queries.filter(compiles), "then": pick}), min_size=1, max_size=3)
        )
        strategy["default"] = draw(pick)
    group = draw(st.fixed_dictionaries({}, optional=inherited_fields))
    return {**group, "strategy": strategy, "targets": targets}


def compiles(query: dict[str, Any]) -> bool:
    try:
        validate_config(
            parse_config(
                {
                    "strategy": {"mode": "conditional", "default": "a", "conditions": [{"query": query, "then": "a"}]},
                    "targets": [{"name": "a", "virtual_key": "vk"}],
                }
            )
        )
    except InvalidArgument:
        return False
    return True


valid_configs = st.recursive(valid_leaves, lambda children: valid_groups(children), max_leaves=12)

KEYS = (
    "name",
    "weight",
    "provider",
    "virtual_key",
    "api_key",
    "targets",
    "strategy",
    "mode",
    "conditions",
    "default",
    "query",
    "then",
    "override_params",
    "request_timeout",
    "retry",
    "attempts",
    "cache",
    "forward_headers",
    "custom_host",
    "on_status_codes",
    "unknown_field",
)
BAD_VALUES = st.one_of(
    anything,
    st.floats(allow_nan=False),
    st.sampled_from(
        [
            [],
            {},
            [{}],
            {"mode": "conditional"},
            "conditional",
            {"$gt": "x"},
            {"metadata.a": {"$regex": "["}},
            [{"query": {}, "then": "zz"}],
            -1,
            10**12,
        ]
    ),
)


@st.composite
def mutated(draw: st.DrawFn, configs: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid config with one field somewhere set, replaced or removed."""
    document = copy.deepcopy(draw(configs))  # sampled values are shared between examples
    objects: list[dict[str, Any]] = []

    def collect(value: Any) -> None:
        if isinstance(value, dict):
            objects.append(value)
            for item in value.values():
                collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    collect(document)
    target = draw(st.sampled_from(objects))
    key = draw(st.sampled_from(KEYS))
    if key in target and draw(st.booleans()):
        del target[key]
    else:
        target[key] = draw(BAD_VALUES)
    return document


mutated_configs = mutated(valid_configs)


def expected_leaves(
    document: dict[str, Any], path: str = "config", inherited: dict[str, Any] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """A reference walk: each leaf's path and what it should inherit, straight from the document."""
    here = dict(inherited or {"override_params": {}, "forward_headers": ()})
    for name in ("custom_host", "request_timeout", "retry"):
        if name in document:
            here[name] = document[name]
    if document.get("forward_headers"):
        here["forward_headers"] = tuple(h.lower() for h in document["forward_headers"])
    here["override_params"] = {**here["override_params"], **document.get("override_params", {})}
    if "targets" not in document:
        return [(path, here)]
    out: list[tuple[str, dict[str, Any]]] = []
    for i, child in enumerate(document["targets"]):
        out.extend(expected_leaves(child, f"{path}.targets[{i}]", here))
    return out


@PROFILE
@given(valid_configs)
def test_valid_configs_compile_with_unique_paths_and_inherited_settings(document: dict[str, Any]) -> None:
    plan = validate_config(parse_config(document), ALLOWED_HOSTS)
    assert_well_formed(plan)
    compiled = leaves(plan)
    expected = expected_leaves(document)
    assert [leaf.path for leaf in compiled] == [path for path, _ in expected]
    for leaf, (_, want) in zip(compiled, expected, strict=True):
        assert leaf.custom_host == want.get("custom_host")
        assert leaf.request_timeout_ms == want.get("request_timeout")
        assert (leaf.retry.attempts if leaf.retry else None) == (want["retry"]["attempts"] if "retry" in want else None)
        assert leaf.forward_headers == want["forward_headers"]
        assert dict(leaf.override_params) == want["override_params"]
    assert_names_resolved(plan, document)


def assert_names_resolved(node: Node, document: dict[str, Any]) -> None:
    """Each conditional rule and default points at the target its name names, in its own group."""
    if isinstance(node, Leaf):
        return
    if node.routes is not None:
        targets, strategy = document["targets"], document["strategy"]
        assert targets[node.routes.default]["name"] == strategy["default"]
        assert [targets[i]["name"] for _, i in node.routes.rules] == [c["then"] for c in strategy["conditions"]]
    for child, child_document in zip(node.children, document["targets"], strict=True):
        assert_names_resolved(child, child_document)


@PROFILE
@given(valid_configs)
def test_compilation_is_deterministic(document: dict[str, Any]) -> None:
    first = validate_config(parse_config(document), ALLOWED_HOSTS)
    second = validate_config(parse_config(document), ALLOWED_HOSTS)
    assert [repr(leaf) for leaf in leaves(first)] == [repr(leaf) for leaf in leaves(second)]
    assert [leaf.override_params for leaf in leaves(first)] == [leaf.override_params for leaf in leaves(second)]


def assert_well_formed(plan: Node) -> None:
    paths = [leaf.path for leaf in leaves(plan)]
    assert len(paths) == len(set(paths))
    assert all(PATH.fullmatch(path) for path in paths), paths
    assert_groups(plan)


def assert_groups(node: Node) -> None:
    if isinstance(node, Leaf):
        return
    assert isinstance(node, Group) and node.children
    assert len(node.weights) == len(node.children)
    assert all(child.path.startswith(node.path + ".targets[") for child in node.children)
    if node.mode == "single":
        assert len(node.children) == 1
    if node.mode == "loadbalance":
        assert any(w > 0 for w in node.weights)
    if node.mode == "conditional":
        assert node.routes is not None
        indexes = [index for _, index in node.routes.rules] + [node.routes.default]
        assert all(0 <= i < len(node.children) for i in indexes)
    else:
        assert node.routes is None
    for child in node.children:
        assert_groups(child)
