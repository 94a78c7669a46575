"""The dashboard's log-list query: typed filters, a generate key pinned to its own requests, bad input by name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.api.dashboard_query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    PARAMS,
    LogQuery,
    parse_log_query,
)
from imagegateway_server.domain.calls import Caller
from imagegateway_server.domain.errors import InvalidArgument, PermissionDenied
from imagegateway_server.storage.records import LogFilter

ADMIN = Caller(key_id="admin1", scope="admin")
GENERATE = Caller(key_id="gen1", scope="generate")


def test_no_parameters_list_everything_for_an_admin() -> None:
    query = parse_log_query([], ADMIN)
    assert query == LogQuery(store_filter=LogFilter(), page_size=DEFAULT_PAGE_SIZE)


def test_a_generate_key_is_pinned_to_its_own_requests() -> None:
    assert parse_log_query([], GENERATE).store_filter.caller_key_id == "gen1"
    assert parse_log_query([("caller_key_id", "gen1")], GENERATE).store_filter.caller_key_id == "gen1"
    # The same refusal as gRPC's ListLogs (issue 9 made the two agree on PERMISSION_DENIED).
    with pytest.raises(PermissionDenied) as raised:
        parse_log_query([("caller_key_id", "admin1")], GENERATE)
    assert raised.value.param == "caller_key_id"


def test_an_admin_may_filter_by_caller() -> None:
    assert parse_log_query([("caller_key_id", "gen1")], ADMIN).store_filter.caller_key_id == "gen1"


def test_every_filter_is_typed_and_provider_spellings_are_canonical() -> None:
    query = parse_log_query(
        [
            ("trace_id", " abc "),
            ("outcome", "Failure"),
            ("status_code", "502"),
            ("provider", "stabilityai"),
            ("model", "dall-e-3"),
            ("config_id", "pc-1"),
            ("fallback_used", "true"),
            ("start_time", "2025-01-01T00:00:00Z"),
            ("end_time", "2025-01-02T00:00:00+01:00"),
            ("page_size", "10"),
            ("page_token", "tok"),
        ],
        ADMIN,
    )
    assert query.store_filter == LogFilter(
        trace_id="abc",
        status_code=502,
        success=False,
        provider="stability-ai",
        start_time=datetime(2025, 1, 1, tzinfo=UTC),
        end_time=datetime(2025, 1, 1, 23, 0, tzinfo=UTC),
        model="dall-e-3",
        config_id="pc-1",
        fallback_used=True,
    )
    assert (query.page_size, query.page_token) == (10, "tok")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("status_code", "abc"),
        ("status_code", "99"),
        ("status_code", "600"),
        ("status_code", "\u0665\u0660\u0660"),
        ("outcome", "maybe"),
        ("fallback_used", "yes please"),
        ("provider", "midjourney"),
        ("start_time", "yesterday"),
        ("start_time", "2025-01-01T00:00:00"),
        ("end_time", "x" * 100),
        ("page_size", "0"),
        ("page_size", str(MAX_PAGE_SIZE + 1)),
        ("trace_id", "t" * 201),
        ("page_token", "p" * 2001),
        ("nonsense", "1"),
    ],
)
def test_a_bad_value_is_refused_naming_its_parameter(name: str, value: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_log_query([(name, value)], ADMIN)
    assert raised.value.param == name


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_log_query([("model", "a"), ("model", "b")], ADMIN)
    assert raised.value.param == "model"


def test_the_time_range_must_not_be_empty() -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_log_query([("start_time", "2025-01-02T00:00:00Z"), ("end_time", "2025-01-01T00:00:00Z")], ADMIN)
    assert raised.value.param == "end_time"


def test_blank_values_mean_no_filter() -> None:
    blank = [(name, "  ") for name in sorted(PARAMS)]
    assert parse_log_query(blank, ADMIN) == parse_log_query([], ADMIN)


names = st.one_of(st.sampled_from(sorted(PARAMS)), st.text(max_size=12))
values = st.one_of(
    st.text(max_size=40),
    st.integers(-10, 1000).map(str),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.sampled_from(["true", "false", "success", "failure", "openai", "stability-ai"]),
)


@given(st.lists(st.tuples(names, values), max_size=6), st.sampled_from([ADMIN, GENERATE]))
def test_any_query_string_parses_or_is_refused_by_name(pairs: list[tuple[str, str]], caller: Caller) -> None:
    try:
        query = parse_log_query(pairs, caller)
    except (InvalidArgument, PermissionDenied) as exc:
        assert exc.param in {name for name, _ in pairs} | {"end_time"}
        return
    assert 1 <= query.page_size <= MAX_PAGE_SIZE
    if caller is GENERATE:
        assert query.store_filter.caller_key_id == "gen1"
    start, end = query.store_filter.start_time, query.store_filter.end_time
    assert start is None or end is None or end - start > timedelta(0)
