"""Property tests for condition queries: operator laws hold for any values, and compiling or evaluating never
fails in any way but a named InvalidArgument at compile time."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.routing.conditions import COMPARISONS, Predicate, compile_query

# No per-example deadline: the suite runs on a slow, noisy 2-core machine.
PROFILE = settings(deadline=None, max_examples=150)

KEYS = ("tier", "region", "score")
REQUEST = ImageRequest(prompt="a fox", model="dall-e-3", n=2, size="1024x1024", extra={"steps": 30})

# Metadata values as they arrive: strings, some of which spell numbers or booleans.
metadata_values = st.one_of(
    st.sampled_from(["gold", "silver", "", "5", "5.0", "-2", "1e3", "true", "false", "0x10", " 5"]),
    st.integers(-10, 10).map(str),
    st.floats(-100, 100, allow_nan=False).map(repr),
    st.text(max_size=6),
)
metadatas = st.dictionaries(st.sampled_from(KEYS), metadata_values, max_size=3)
# Comparison operands a query may hold for a metadata field.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(-100, 100, allow_nan=False),
    st.sampled_from(["gold", "silver", "", "5", "true"]),
    st.text(max_size=4),
)
numbers = st.one_of(st.integers(-10, 10), st.floats(-100, 100, allow_nan=False))
fields = st.sampled_from([f"metadata.{k}" for k in KEYS])


def run(query: dict[str, Any], metadata: dict[str, str]) -> bool:
    return compile_query(query, "q")(metadata, REQUEST)


@st.composite
def leaf_queries(draw: st.DrawFn) -> dict[str, Any]:
    field = draw(fields)
    op = draw(st.sampled_from(COMPARISONS))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        operand: Any = draw(numbers)
    elif op in ("$in", "$nin"):
        operand = draw(st.lists(scalars, max_size=4))
    elif op == "$regex":
        operand = draw(st.sampled_from(["^g", "d$", "[0-9]", "^$", "(?i)GOLD", "."]))
    else:
        operand = draw(scalars)
    return {field: {op: operand}}


queries = st.recursive(
    leaf_queries(),
    lambda inner: st.one_of(
        st.builds(lambda qs: {"$and": qs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda qs: {"$or": qs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda a, b: {**a, **b}, inner, inner),
    ),
    max_leaves=8,
)


@PROFILE
@given(fields, st.lists(scalars, max_size=5), metadatas)
def test_in_is_any_eq_and_nin_is_not_in(field: str, members: list[Any], metadata: dict[str, str]) -> None:
    in_result = run({field: {"$in": members}}, metadata)
    assert in_result == any(run({field: {"$eq": m}}, metadata) for m in members)
    assert run({field: {"$nin": members}}, metadata) == (not in_result)


@PROFILE
@given(fields, scalars, metadatas)
def test_ne_is_not_eq_and_a_bare_value_is_eq(field: str, value: Any, metadata: dict[str, str]) -> None:
    eq = run({field: {"$eq": value}}, metadata)
    assert run({field: {"$ne": value}}, metadata) == (not eq)
    assert run({field: value}, metadata) == eq


@PROFILE
@given(fields, numbers, metadatas)
def test_order_comparisons_are_consistent(field: str, bound: float, metadata: dict[str, str]) -> None:
    lt, eq, gt = (run({field: {op: bound}}, metadata) for op in ("$lt", "$eq", "$gt"))
    assert run({field: {"$gte": bound}}, metadata) == (gt or eq)
    assert run({field: {"$lte": bound}}, metadata) == (lt or eq)
    assert int(lt) + int(eq) + int(gt) <= 1  # and exactly one when the value reads as a number
    if field.split(".", 1)[1] in metadata and lt + eq + gt == 0:
        assert not run({field: {"$gte": -1e300}}, metadata)  # then it is no number at all


@PROFILE
@given(queries, queries, queries, metadatas)
def test_and_or_laws(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any], metadata: dict[str, str]) -> None:
    va, vb, vc = run(a, metadata), run(b, metadata), run(c, metadata)
    assert run({"$and": [a, b]}, metadata) == (va and vb)
    assert run({"$or": [a, b]}, metadata) == (va or vb)
    assert run({"$and": [a]}, metadata) == va == run({"$or": [a]}, metadata)
    assert run({"$and": [a, {"$and": [b, c]}]}, metadata) == run({"$and": [{"$and": [a, b]}, c]}, metadata)
    assert run({"$or": [a, b]}, metadata) == run({"$or": [b, a]}, metadata)
    # distributivity
    assert (
        run({"$and": [a, {"$or": [b, c]}]}, metadata)
        == (va and (vb or vc))
        == run({"$or": [{"$and": [a, b]}, {"$and": [a, c]}]}, metadata)
    )


@PROFILE
@given(fields, fields, scalars, scalars, metadatas)
def test_a_query_object_is_the_and_of_its_keys(f1: str, f2: str, v1: Any, v2: Any, metadata: dict[str, str]) -> None:
    query = {f1: {"$eq": v1}} if f1 == f2 else {f1: {"$eq": v1}, f2: {"$eq": v2}}
    parts = [{k: v} for k, v in query.items()]
    assert run(query, metadata) == run({"$and": parts}, metadata)


@PROFILE
@given(st.text(alphabet="abc019", max_size=4), st.text(alphabet="abc019", max_size=8))
def test_anchored_regex_is_a_prefix_test(prefix: str, value: str) -> None:
    assert run({"metadata.tier": {"$regex": "^" + prefix}}, {"tier": value}) == value.startswith(prefix)


WORDS = (
    *COMPARISONS,
    "$and",
    "$or",
    "$not",
    "metadata.tier",
    "metadata.",
    "metadata",
    "params.n",
    "params.model",
    "params.size",
    "params.steps",
    "other",
    "(",
    "^a",
)
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.floats(allow_nan=True),
        st.text(max_size=6),
        st.sampled_from(WORDS),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(WORDS), inner, max_size=3)),
    max_leaves=10,
)
contexts = st.dictionaries(st.sampled_from(["tier", "n"]), st.text(max_size=6), max_size=2)


@PROFILE
@given(
    st.dictionaries(
        st.sampled_from(["$and", "$or", "metadata.tier", "params.n", "params.model", "params.x", "x", "$eq"]),
        json_values,
        max_size=3,
    ),
    contexts,
)
def test_compile_refuses_only_with_a_named_path_and_a_compiled_query_never_fails(
    query: dict[str, Any], metadata: dict[str, str]
) -> None:
    try:
        predicate: Predicate = compile_query(query, "strategy.conditions[0].query")
    except InvalidArgument as exc:
        assert exc.param is not None and exc.param.startswith("strategy.conditions[0].query.")
        return
    for request in (REQUEST, ImageRequest(prompt="x"), ImageRequest(prompt="x", extra={"x": [1]})):
        assert predicate(metadata, request) in (True, False)
