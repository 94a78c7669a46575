"""Database URLs to stores, and the page tokens every backend shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.storage.database_url import parse_postgres_url
from imagegateway_server.storage.factory import open_store, store_for_url
from imagegateway_server.storage.paging import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    decode_page_token,
    encode_page_token,
    page_size_or_default,
)
from imagegateway_server.storage.postgres import PostgresStore
from imagegateway_server.storage.sqlite import SqliteStore


async def test_absolute_sqlite_url_opens_that_file(tmp_path: Path) -> None:
    path = tmp_path / "abs" / "gw.db"
    store = await open_store(f"sqlite:///{path}")
    try:
        assert isinstance(store, SqliteStore)
        assert store.path == path
        assert await store.count_api_keys() == 0
    finally:
        await store.close()
    assert path.exists()


def test_relative_sqlite_url_is_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = store_for_url("sqlite:///state/gw.db")
    assert isinstance(store, SqliteStore)
    assert store.path == Path(os.getcwd()) / "state" / "gw.db"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://user:hunter2@db/igw",
        "postgres://user:hunter2@db:6432/igw",
        "postgresql://user:hunter2@db/igw?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=3",
    ],
)
def test_postgresql_urls_choose_the_postgres_store_and_hide_the_password(url: str) -> None:
    store = store_for_url(url)
    assert isinstance(store, PostgresStore)
    assert store.name.startswith("postgresql://user@db:")
    assert "hunter2" not in store.name
    assert "hunter2" not in repr(store)


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://user:hunter2@db/igw", "postgresql://user:hunter2@db/igw?no_such_option=1"]
)
def test_bad_postgresql_urls_are_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match="postgresql://") as raised:
        store_for_url(url)
    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "url", ["mysql://db/x", "/just/a/path", "sqlite://host/x.db", "sqlite:///", "sqlite:///:memory:"]
)
def test_other_urls_are_refused_clearly(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///PATH"):
        store_for_url(url)


def test_the_password_is_scrubbed_from_text_as_written_and_percent_encoded() -> None:
    parsed = parse_postgres_url("postgresql://gw:p%40ss%2Fw0rd@db/igw")
    assert parsed.password == "p@ss/w0rd"
    assert parsed.scrub("failed for p@ss/w0rd and p%40ss%2Fw0rd") == "failed for *** and ***"
    assert parse_postgres_url("host=db user=gw password=s3cret dbname=igw").name == "postgresql://gw@db:5432/igw"


@given(
    listing=st.sampled_from(["configs", "request_logs"]),
    micros=st.integers(min_value=-(2**62), max_value=2**62),
    last_id=st.text(),
)
def test_page_tokens_round_trip(listing: str, micros: int, last_id: str) -> None:
    token = encode_page_token(listing, (micros, last_id))
    assert decode_page_token(listing, token, (int, str)) == (micros, last_id)


@given(st.text(min_size=1))
def test_garbage_page_tokens_raise_invalid_argument(token: str) -> None:
    try:
        decoded = decode_page_token("configs", token, (str,))
    except InvalidArgument as error:
        assert error.param == "page_token"
    else:  # only text that encodes a key of this listing's shape decodes
        assert decoded is not None and len(decoded) == 1 and isinstance(decoded[0], str)


def test_page_size_defaults_and_caps() -> None:
    assert page_size_or_default(0) == DEFAULT_PAGE_SIZE
    assert page_size_or_default(7) == 7
    assert page_size_or_default(10**9) == MAX_PAGE_SIZE
    with pytest.raises(InvalidArgument, match="page_size"):
        page_size_or_default(-1)
