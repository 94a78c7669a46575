"""x-portkey-request-timeout: milliseconds from arrival to the deadline of the whole chain, or a 400 naming it."""

from __future__ import annotations

import pytest

from imagegateway_server.api.rest import MAX_REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_HEADER, request_deadline
from imagegateway_server.domain.errors import InvalidArgument


def test_absent_or_empty_header_sets_no_deadline() -> None:
    assert request_deadline(None, 100.0) is None
    assert request_deadline("  ", 100.0) is None


@pytest.mark.parametrize(
    ("value", "deadline"), [("1500", 101.5), (" 1 ", 100.001), (str(MAX_REQUEST_TIMEOUT_MS), 100.0 + 86_400)]
)
def test_milliseconds_count_from_arrival(value: str, deadline: float) -> None:
    assert request_deadline(value, 100.0) == pytest.approx(deadline)


@pytest.mark.parametrize(
    "value",
    ["0", "-1", "1.5", "1e3", "+5", "abc", "0x10", str(MAX_REQUEST_TIMEOUT_MS + 1), "9" * 400, "\u0665\u0660\u0660"],
)
def test_anything_but_whole_milliseconds_in_range_is_refused_naming_the_header(value: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        request_deadline(value, 100.0)
    assert info.value.param == REQUEST_TIMEOUT_HEADER
