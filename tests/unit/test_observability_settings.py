"""The observability settings: log retention, prompt redaction and the price table file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from imagegateway_server.settings import SETTINGS, Settings


def test_defaults() -> None:
    settings = Settings.load(environ={})
    assert (settings.log_retention_days, settings.log_retention_max_records) == (30, 1_000_000)
    assert (settings.redact_prompts, settings.price_table_file) == (False, "")


def test_env_vars_and_flags_set_them(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"version": "v1", "providers": {}}))
    settings = Settings.load(
        environ={
            "IMAGEGW_LOG_RETENTION_DAYS": "0",
            "IMAGEGW_REDACT_PROMPTS": "true",
            "IMAGEGW_PRICE_TABLE_FILE": str(prices),
        },
        overrides={"log_retention_max_records": 500},
    )
    assert (settings.log_retention_days, settings.log_retention_max_records) == (0, 500)
    assert settings.redact_prompts and settings.price_table_file == str(prices)
    assert {
        "IMAGEGW_LOG_RETENTION_DAYS",
        "IMAGEGW_LOG_RETENTION_MAX_RECORDS",
        "IMAGEGW_REDACT_PROMPTS",
        "IMAGEGW_PRICE_TABLE_FILE",
    } <= {spec.env for spec in SETTINGS}


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("IMAGEGW_LOG_RETENTION_DAYS", "-1", "IMAGEGW_LOG_RETENTION_DAYS"),
        ("IMAGEGW_LOG_RETENTION_DAYS", "nan", "IMAGEGW_LOG_RETENTION_DAYS"),
        ("IMAGEGW_LOG_RETENTION_MAX_RECORDS", "-5", "IMAGEGW_LOG_RETENTION_MAX_RECORDS"),
        ("IMAGEGW_REDACT_PROMPTS", "maybe", "IMAGEGW_REDACT_PROMPTS"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(env: str, value: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        Settings.load(environ={env: value})


def test_a_bad_price_table_file_stops_the_start_with_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "prices.json"
    bad.write_text(json.dumps({"version": "v1", "providers": {"openai": {"models": {"x": {"prices": {}}}}}}))
    with pytest.raises(ValueError, match=r"providers\.openai\.models\.x\.prices"):
        Settings.load(environ={"IMAGEGW_PRICE_TABLE_FILE": str(bad)})
    with pytest.raises(ValueError, match="cannot read the price table"):
        Settings.load(environ={"IMAGEGW_PRICE_TABLE_FILE": str(tmp_path / "missing.json")})
