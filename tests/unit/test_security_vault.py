"""The vault: envelope round trips, binding to the row, tamper detection, master key loading."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imagegateway_server.security.vault import Vault, VaultError, load_master_key, master_key_id

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
ID_A, ID_B = master_key_id(KEY_A), master_key_id(KEY_B)
VAULT = Vault({ID_A: KEY_A}, ID_A)
AD = b"virtual_key:vk-1"


@given(plaintext=st.binary(max_size=2048), associated_data=st.binary(max_size=64))
def test_seal_then_open_round_trips(plaintext: bytes, associated_data: bytes) -> None:
    sealed = VAULT.seal(plaintext, associated_data=associated_data)
    assert VAULT.open(sealed, associated_data=associated_data) == plaintext


def test_sealing_twice_gives_different_bytes_without_the_plaintext() -> None:
    first = VAULT.seal(b"sk-live-secret", associated_data=AD)
    second = VAULT.seal(b"sk-live-secret", associated_data=AD)
    assert first != second
    assert b"sk-live-secret" not in first
    assert first[0] == 1 and first[2 : 2 + first[1]].decode() == ID_A
    assert VAULT.key_id_of(first) == ID_A


def test_other_associated_data_does_not_open() -> None:
    sealed = VAULT.seal(b"sk-live-secret", associated_data=AD)
    with pytest.raises(VaultError) as raised:
        VAULT.open(sealed, associated_data=b"virtual_key:vk-2")
    assert "sk-live" not in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


@pytest.mark.parametrize("position", [0, 1, 5, 12, 30, 60, 80, -1])
def test_any_flipped_byte_is_detected(position: int) -> None:
    sealed = bytearray(VAULT.seal(b"sk-live-secret", associated_data=AD))
    sealed[position] ^= 0x01
    with pytest.raises(VaultError):
        VAULT.open(bytes(sealed), associated_data=AD)


def test_truncated_or_empty_values_are_refused() -> None:
    sealed = VAULT.seal(b"x", associated_data=AD)
    for broken in (b"", sealed[:1], sealed[:40], sealed[:-1]):
        with pytest.raises(VaultError):
            VAULT.open(broken, associated_data=AD)


def test_value_sealed_under_an_unloaded_master_key_names_the_key() -> None:
    sealed = Vault({ID_B: KEY_B}, ID_B).seal(b"x", associated_data=AD)
    with pytest.raises(VaultError, match=ID_B):
        VAULT.open(sealed, associated_data=AD)


def test_rewrap_moves_a_secret_to_the_active_master_key() -> None:
    sealed = VAULT.seal(b"sk-live-secret", associated_data=AD)
    both = Vault({ID_A: KEY_A, ID_B: KEY_B}, ID_B)
    rewrapped = both.rewrap(sealed, associated_data=AD)
    assert both.key_id_of(rewrapped) == ID_B
    assert Vault({ID_B: KEY_B}, ID_B).open(rewrapped, associated_data=AD) == b"sk-live-secret"
    assert sealed.endswith(rewrapped[-30:])  # the secret's own ciphertext is untouched


def test_vault_rejects_bad_keys_and_hides_them_in_repr() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Vault({"short": b"123"}, "short")
    with pytest.raises(ValueError, match="not among"):
        Vault({ID_A: KEY_A}, "other")
    assert KEY_A.hex() not in repr(VAULT) and ID_A in repr(VAULT)


# Master key loading.


def test_master_key_from_setting() -> None:
    setting = base64.urlsafe_b64encode(KEY_A).decode().rstrip("=")
    assert load_master_key(setting, Path("/nonexistent")) == (ID_A, KEY_A, False)
    assert load_master_key(setting + "=", Path("/nonexistent"))[1] == KEY_A
    assert ID_A == hashlib.sha256(KEY_A).hexdigest()[:8]


@pytest.mark.parametrize(
    "setting",
    [
        "too-short",
        base64.urlsafe_b64encode(os.urandom(16)).decode(),
        base64.urlsafe_b64encode(os.urandom(33)).decode(),
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet: '+' and '/' are not base64url
        "A" * 42 + "!",
    ],
)
def test_bad_master_key_setting_is_rejected_without_echoing_it(setting: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IMAGEGW_MASTER_KEY must be the base64url encoding of exactly 32") as raised:
        load_master_key(setting, tmp_path)
    assert setting not in str(raised.value)
    assert not (tmp_path / "master.key").exists()


def test_master_key_is_generated_0600_then_reloaded(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    key_id, key, generated = load_master_key(None, data_dir)
    path = data_dir / "master.key"
    assert generated and len(key) == 32 and key_id == master_key_id(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert load_master_key(None, data_dir) == (key_id, key, False)
    assert load_master_key("  ", data_dir) == (key_id, key, False)  # blank setting counts as unset
    assert [p.name for p in data_dir.iterdir()] == ["master.key"]  # no temporary left behind


def test_corrupt_master_key_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_text("garbage\n")
    os.chmod(tmp_path / "master.key", 0o600)
    with pytest.raises(ValueError, match="master key file"):
        load_master_key(None, tmp_path)
