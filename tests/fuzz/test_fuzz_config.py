"""Fuzzing the config parser and validator: any input is a plan or an InvalidArgument naming a field.

``parse_config`` takes text from the ``x-portkey-config`` header and documents from the admin API;
``validate_config`` compiles them. Whatever arrives, nothing but ``InvalidArgument`` may escape, and
its ``param`` must point somewhere (a field path, or the config itself).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.routing.plan import Node, leaves
from imagegateway_server.routing.validation import validate_config
from tests.fuzz.budget import cases
from tests.fuzz.choosers import Chooser
from tests.fuzz.json_inputs import as_text, base_configs, config_document, config_text, json_value
from tests.fuzz.strategies import drawn, first_failure, seeded

ALLOWED_HOSTS = ("127.0.0.1",)
BASES = base_configs()
BATCH = 25


def parse_and_validate(document: str | bytes | dict[str, Any]) -> Node | InvalidArgument:
    """The plan, or the InvalidArgument that refused the document; any other exception fails the test."""
    try:
        return validate_config(parse_config(document), ALLOWED_HOSTS)
    except InvalidArgument as exc:
        assert exc.param, f"an error must name the field it is about: {exc.message!r}"
        assert exc.status_code == 400
        return exc


def check_document(document: Any) -> None:
    if isinstance(document, dict):
        outcome = parse_and_validate(document)
        if not isinstance(outcome, InvalidArgument):
            assert leaves(outcome), "a compiled plan has at least one target"
    # The same document as header text, where JSON's NaN and Infinity can appear too.
    text_outcome = parse_and_validate(as_text(document))
    if not isinstance(document, dict):
        assert isinstance(text_outcome, InvalidArgument)


def check_text(text: str) -> None:
    parse_and_validate(text)
    parse_and_validate(text.encode())


def documents(ch: Chooser) -> Any:
    return config_document(ch, BASES)


def texts(ch: Chooser) -> str:
    return config_text(ch, BASES)


def test_every_base_config_compiles() -> None:
    # The mutations start from valid documents; if a base stopped compiling, they would test less.
    for document in BASES:
        assert not isinstance(parse_and_validate(document), InvalidArgument), document


@cases(2_500)
@given(drawn(documents))
def test_config_documents_compile_or_are_refused_with_a_field(document: Any) -> None:
    check_document(document)


@cases(2_000)
@given(drawn(texts))
@example('{"targets":[' * 5000 + "]}" * 5000)
@example('{"weight": Infinity}')
@example('{"request_timeout": NaN}')
@example('{"provider": "openai", "api_key": "k", "override_params": {"n": 1e400}}')
@example('{"": {}}')
@example('{"provider": "openai", "api_key": "k", "custom_host": "http://064.0.0.1[9"}')
def test_config_text_parses_or_is_refused_with_a_field(text: str) -> None:
    check_text(text)


@cases(1_500)
@given(st.binary(max_size=300))
def test_config_bytes_parse_or_are_refused(raw: bytes) -> None:
    parse_and_validate(raw)


@cases(600)
@given(seeded(documents, BATCH))
def test_bulk_config_documents(batch: list[Any]) -> None:
    first_failure(batch, check_document)


@cases(400)
@given(seeded(texts, BATCH))
def test_bulk_config_texts(batch: list[str]) -> None:
    first_failure(batch, check_text)


@cases(400)
@given(seeded(json_value, BATCH))
def test_bulk_json_values(batch: list[Any]) -> None:
    first_failure(batch, lambda value: parse_and_validate(json.dumps(value)))
