"""The CLI's security commands: api-keys by positional id, TLS flags, the offline master-key rotation."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagegateway_server.cli import main
from tests.unit.test_client_fake_server import ADMIN_KEY, FakeGateway, serving


@pytest.fixture
def gw(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGateway]:
    fake = FakeGateway()
    with serving(fake) as target:
        monkeypatch.setenv("IMAGEGW_SERVER", target)
        monkeypatch.setenv("IMAGEGW_API_KEY", ADMIN_KEY)
        yield fake


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_api_keys_create_takes_a_scope_and_get_takes_a_positional_id(
    gw: FakeGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "api-keys", "create", "--name", "ops", "--scope", "admin", "-o", "json")
    assert code == 0
    created = json.loads(out)
    code, out, _ = run(capsys, "api-keys", "get", created["id"], "-o", "json")
    assert code == 0
    shown = json.loads(out)
    assert shown["id"] == created["id"] and shown["scope"] == "SCOPE_ADMIN"
    assert "key" not in shown  # the plaintext is shown once, at creation, never again
    code, _, err = run(capsys, "api-keys", "get", "key_does_not_exist")
    assert code == 1 and err.startswith("error: NOT_FOUND:")


def test_api_keys_scope_must_be_admin_or_generate(gw: FakeGateway, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "api-keys", "create", "--name", "x", "--scope", "root")
    assert code == 2 and "INVALID_ARGUMENT" in err


def test_tls_flags_need_readable_pem_files_and_a_cert_with_its_key(
    gw: FakeGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "--tls-ca", str(tmp_path / "missing.pem"), "configs", "list")
    assert code == 1 and "--tls-ca" in err and "missing.pem" in err
    code, _, err = run(capsys, "--tls-key", str(tmp_path / "k.pem"), "configs", "list")
    assert code == 2 and "--tls-cert and --tls-key" in err


def test_rotate_master_key_refuses_to_run_without_a_master_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMAGEGW_DATA_DIR", str(tmp_path / "fresh"))
    monkeypatch.delenv("IMAGEGW_MASTER_KEY", raising=False)
    code, _, err = run(capsys, "admin", "rotate-master-key")
    assert code == 1 and "no master key" in err
    assert not (tmp_path / "fresh" / "master.key").exists()


def test_rotate_master_key_dry_run_on_an_empty_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    monkeypatch.setenv("IMAGEGW_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("IMAGEGW_MASTER_KEY", key)
    code, out, _ = run(capsys, "admin", "rotate-master-key", "--dry-run")
    assert code == 0
    assert "dry run" in out and "virtual keys: would re-wrap 0" in out
    assert key not in out


def test_configs_validate_reports_a_bad_allow_list_entry_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"provider": "openai", "api_key": "sk-x"}))
    monkeypatch.setenv("IMAGEGW_ALLOWED_UPSTREAM_HOSTS", "good.internal, not a host")
    code, _, err = run(capsys, "configs", "validate", "--file", str(config))
    assert code == 2 and "'not a host'" in err and "IMAGEGW_ALLOWED_UPSTREAM_HOSTS" in err
