"""Conditional routing: compiles Portkey's condition queries into predicates once, when a plan is compiled.

A query is an object whose keys are ANDed: field paths (``metadata.<key>``, ``params.<name>``) and the
combinators ``$and`` / ``$or`` (lists of queries). A field's value is either a bare value (``$eq``)
or an object of operators, all of which must hold: ``$eq $ne $gt $gte $lt $lte $in $nin $regex``.
Everything that can be wrong with a query (an unknown operator, an operand of the wrong type, a
regex that does not compile) is refused here, naming the field path, so evaluation never fails.

Where Portkey's evaluator is loose we are exact, and say so in the README: every key of a query
counts (Portkey stops at the first ``$or``/``$and``), numbers compare numerically but a string only
reads as a number when it is one (Portkey's ``parseFloat`` reads "5px" as 5), and ``$regex`` uses
RE2 (linear time, so an inline config cannot stall the event loop every request shares).
"""

from __future__ import annotations

import dataclasses
import math
import operator
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import re2

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.domain.request import ImageRequest
from imagegateway_server.domain.routing_config import Strategy, thaw_json

# A compiled query: (the caller's metadata, the caller's request) -> does it match?
Predicate = Callable[[Mapping[str, str], ImageRequest], bool]
_Getter = Callable[[Mapping[str, str], ImageRequest], Any]
_Test = Callable[[Any], bool]

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$regex")
COMBINATORS = ("$and", "$or")

# What a field holds, so operands can be checked when the config is saved.
_STRING, _NUMBER, _ANY = "string", "number", "any"

# A string reads as a number only when all of it is one (JSON's number syntax, without "NaN").
_NUMERIC = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class _Pattern(Protocol):
    def search(self, text: str) -> object | None: ...


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print the refused pattern to stderr, past our logging
    return options


_RE2_OPTIONS = _re2_options()


def _param_kinds() -> dict[str, str]:
    kinds: dict[str, str] = {}
    for name, hint in typing.get_type_hints(ImageRequest).items():
        if name == "extra":
            continue
        args = typing.get_args(hint) or (hint,)
        kinds[name] = _NUMBER if (int in args or float in args) else _STRING
    return kinds


# params.<name> of a modelled request field has a known type; any other name is a provider extra.
PARAM_KINDS: Mapping[str, str] = _param_kinds()


@dataclasses.dataclass(frozen=True, slots=True)
class ConditionalRoutes:
    """A conditional group's compiled rules: the first matching query picks its target, else the default."""

    rules: tuple[tuple[Predicate, int], ...]
    default: int

    def choose(self, metadata: Mapping[str, str], request: ImageRequest) -> int:
        """The index of the target this request goes to."""
        for predicate, index in self.rules:
            if predicate(metadata, request):
                return index
        return self.default


def _field(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def compile_conditional(strategy: Strategy, target_names: Sequence[str], field_prefix: str) -> ConditionalRoutes:
    """Compiles a conditional strategy over its group's targets; raises InvalidArgument naming the path."""
    index_of: dict[str, int] = {}
    for i, name in enumerate(target_names):
        if not name:
            continue
        if name in index_of:
            raise InvalidArgument(
                f"duplicates targets[{index_of[name]}].name; conditional routing picks targets by name",
                param=_field(field_prefix, f"targets[{i}].name"),
            )
        index_of[name] = i

    def target(name: str, param: str) -> int:
        if not name:
            raise InvalidArgument("is required: name the target to use", param=param)
        if name not in index_of:
            known = ", ".join(repr(n) for n in index_of) or "none (set 'name' on the targets)"
            raise InvalidArgument(f"no target of this group is named {name!r}; names: {known}", param=param)
        return index_of[name]

    conditions_param = _field(field_prefix, "strategy.conditions")
    if not strategy.conditions:
        raise InvalidArgument("conditional mode needs at least one condition", param=conditions_param)
    rules: list[tuple[Predicate, int]] = []
    for i, condition in enumerate(strategy.conditions):
        here = f"{conditions_param}[{i}]"
        if condition.query is None:
            raise InvalidArgument("is required", param=f"{here}.query")
        # As plain dicts and lists, NaN and infinity kept for the checks below to name.
        predicate = compile_query(thaw_json(condition.query), f"{here}.query")
        rules.append((predicate, target(condition.then, f"{here}.then")))
    default_param = _field(field_prefix, "strategy.default")
    if not strategy.default:
        raise InvalidArgument(
            "is required: conditional routing needs a target for requests no condition matches", param=default_param
        )
    return ConditionalRoutes(rules=tuple(rules), default=target(strategy.default, default_param))


def compile_query(query: Mapping[str, Any], path: str) -> Predicate:
    """Compiles one query object (an implicit AND over its keys) into a predicate."""
    parts: list[Predicate] = []
    for key, value in query.items():
        here = f"{path}.{key}"
        if key in COMBINATORS:
            subs = _query_list(value, here)
            parts.append(_all(subs) if key == "$and" else _any(subs))
        elif key.startswith("$"):
            raise InvalidArgument(
                f"is not allowed here; a query takes {' and '.join(COMBINATORS)} and field paths, and "
                'comparison operators go under a field, as in {"metadata.tier": {"$eq": "gold"}}',
                param=here,
            )
        else:
            getter, kind = _getter(key, here)
            test = _field_test(value, kind, key, here)
            parts.append(_apply(getter, test))
    return _all(parts)


def _apply(getter: _Getter, test: _Test) -> Predicate:
    return lambda metadata, request: test(getter(metadata, request))


def _all(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    frozen = tuple(parts)
    return lambda metadata, request: all(p(metadata, request) for p in frozen)


def _any(parts: Sequence[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    frozen = tuple(parts)
    return lambda metadata, request: any(p(metadata, request) for p in frozen)


def _query_list(value: Any, path: str) -> list[Predicate]:
    if not isinstance(value, list) or not value:
        raise InvalidArgument("must be a non-empty list of queries", param=path)
    out: list[Predicate] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidArgument("must be a query object", param=f"{path}[{i}]")
        out.append(compile_query(item, f"{path}[{i}]"))
    return out


def _getter(key: str, path: str) -> tuple[_Getter, str]:
    source, dot, name = key.partition(".")
    if not dot or not name or source not in ("metadata", "params"):
        raise InvalidArgument("must be a field path metadata.<key> or params.<name>, or $and / $or", param=path)
    if source == "metadata":
        # Metadata is a flat map of strings; a dotted name is one key ("metadata.user.plan" reads "user.plan").
        return (lambda metadata, request: metadata.get(name)), _ANY
    kind = PARAM_KINDS.get(name)
    if kind is None:
        return (lambda metadata, request: request.extra.get(name)), _ANY
    if name == "response_format":
        return (lambda metadata, request: request.response_format.value), _STRING
    attribute = operator.attrgetter(name)
    return (lambda metadata, request: attribute(request)), kind


def _field_test(value: Any, kind: str, field: str, path: str) -> _Test:
    if isinstance(value, dict):
        return _all_tests([_operator(op, operand, kind, field, f"{path}.{op}") for op, operand in value.items()])
    if isinstance(value, list):
        raise InvalidArgument('a list is no value to compare with; use {"$in": [...]}', param=path)
    return _equals(_scalar(value, kind, field, path))


def _all_tests(tests: Sequence[_Test]) -> _Test:
    if len(tests) == 1:
        return tests[0]
    frozen = tuple(tests)
    return lambda value: all(t(value) for t in frozen)


def _operator(op: str, operand: Any, kind: str, field: str, path: str) -> _Test:
    if op in ("$eq", "$ne"):
        if isinstance(operand, list | dict):
            raise InvalidArgument("must be a string, number, boolean or null", param=path)
        equal = _equals(_scalar(operand, kind, field, path))
        return equal if op == "$eq" else (lambda value: not equal(value))
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if kind == _STRING:
            raise InvalidArgument(f"compares numbers, and {field} is a string", param=path)
        bound = _finite_number(operand, path)
        compare = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}[op]
        return lambda value: (number := _as_number(value)) is not None and compare(number, bound)
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise InvalidArgument("must be a list", param=path)
        members = [_scalar(item, kind, field, f"{path}[{i}]") for i, item in enumerate(operand)]
        contains = _membership(members)
        return contains if op == "$in" else (lambda value: not contains(value))
    if op == "$regex":
        if kind == _NUMBER:
            raise InvalidArgument(f"matches strings, and {field} is a number", param=path)
        if not isinstance(operand, str):
            raise InvalidArgument("must be a string", param=path)
        return _regex_test(_compile_regex(operand, path))
    if op in COMBINATORS:
        raise InvalidArgument("combines whole queries; put it beside field paths, not under one", param=path)
    raise InvalidArgument(f"is not an operator; use one of: {', '.join(COMPARISONS)}", param=path)


def _scalar(value: Any, kind: str, field: str, path: str) -> Any:
    """Checks one comparison value against what ``field`` holds; null stands for 'absent'."""
    if value is None:
        return None
    if isinstance(value, list | dict):
        raise InvalidArgument("must be a string, number, boolean or null", param=path)
    if kind == _STRING and not isinstance(value, str):
        raise InvalidArgument(f"must be a string, as {field} is", param=path)
    if kind == _NUMBER:
        return _finite_number(value, path)
    if isinstance(value, float | int) and not isinstance(value, bool) and not math.isfinite(value):
        raise InvalidArgument("must be a finite number", param=path)
    return value


def _finite_number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument("must be a number", param=path)
    return float(value)


def _as_number(value: Any) -> float | None:
    """A number, or a string that is one (metadata travels as strings); anything else is not."""
    kind = type(value)
    if kind is int or kind is float:
        number = float(value)
    elif kind is str and _NUMERIC.fullmatch(value):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) else None


def _equals(expected: Any) -> _Test:
    """Equality as the README documents it: typed, except that a string may spell a number or boolean."""
    if expected is None:
        return lambda value: value is None
    if isinstance(expected, bool):
        spelled = "true" if expected else "false"
        return lambda value: value is expected or (type(value) is str and value == spelled)
    if isinstance(expected, int | float):
        number = float(expected)
        return lambda value: _as_number(value) == number
    return lambda value: type(value) is str and value == expected


def _membership(members: Sequence[Any]) -> _Test:
    if all(isinstance(m, str) for m in members):
        # The common case, {"$in": ["gold", "platinum"]}: one set look-up.
        strings = frozenset(members)
        return lambda value: type(value) is str and value in strings
    tests = tuple(_equals(m) for m in members)
    return lambda value: any(t(value) for t in tests)


def _compile_regex(pattern: str, path: str) -> _Pattern:
    try:
        compiled: _Pattern = re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InvalidArgument(f"is not a valid RE2 regular expression: {reason}", param=path) from None
    return compiled


def _regex_test(pattern: _Pattern) -> _Test:
    def test(value: Any) -> bool:
        if type(value) is not str:
            return False
        try:
            return pattern.search(value) is not None
        except UnicodeEncodeError:  # a lone surrogate from a JSON escape cannot be matched as UTF-8
            return False

    return test
