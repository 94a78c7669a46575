"""Master-key rotation over a real SQLite store: every secret moves under the new key, none is lost."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from imagegateway_server.api.config_json import parse_config
from imagegateway_server.core.master_key_rotation import rotate_master_key, rotate_with_settings
from imagegateway_server.providers.registry import canonical_provider
from imagegateway_server.routing.config_service import ConfigService
from imagegateway_server.routing.plan import leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.vault import Vault, VaultError, load_vault, master_key_id
from imagegateway_server.security.virtual_keys import VirtualKeyService
from imagegateway_server.security.virtual_keys import associated_data as virtual_key_associated_data
from imagegateway_server.settings import Settings
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.sqlite import SqliteStore
from tests.stores import execute

OLD, NEW, STRANGER = (secrets.token_bytes(32) for _ in range(3))
OLD_ID, NEW_ID = master_key_id(OLD), master_key_id(NEW)
OLD_VAULT = Vault({OLD_ID: OLD}, OLD_ID)
ROTATING_VAULT = Vault({NEW_ID: NEW, OLD_ID: OLD}, NEW_ID)
NEW_VAULT = Vault({NEW_ID: NEW}, NEW_ID)
CONFIG = {
    "strategy": {"mode": "fallback"},
    "targets": [
        {"provider": "openai", "api_key": "sk-config-secret-1"},
        {"provider": "stability-ai", "api_key": "sk-config-secret-2"},
    ],
}


def encoded(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each backend in turn (tests/conftest.py)."""
    return any_store


def virtual_keys(store: Store, vault: Vault) -> VirtualKeyService:
    return VirtualKeyService(store, vault, canonicalize_provider=canonical_provider, cache_ttl=0)


def configs(store: Store, vault: Vault) -> ConfigService:
    return ConfigService(store, vault, canonical_provider=canonical_provider, host_policy=UpstreamHostPolicy())


async def seed(store: Store) -> str:
    """Two virtual keys and a config with two versions, all sealed under the old key."""
    keys = virtual_keys(store, OLD_VAULT)
    await keys.create("alpha", "openai", "sk-alpha-secret")
    await keys.create("beta", "stability-ai", "sk-beta-secret")
    service = configs(store, OLD_VAULT)
    record = await service.create("fallback", parse_config(CONFIG))
    await service.update(record.id, parse_config(CONFIG))
    return record.id


async def test_rotation_moves_every_secret_under_the_new_key_and_the_old_key_can_go(store: Store) -> None:
    config_id = await seed(store)
    before = {k.id: k.rotate_time for k in await store.all_virtual_keys_sealed()}

    report = await rotate_master_key(store, ROTATING_VAULT)

    assert report.ok
    assert (report.virtual_keys.rewrapped, report.config_versions.rewrapped) == (2, 2)
    assert report.virtual_keys.key_ids_before == {OLD_ID: 2}
    for key in await store.all_virtual_keys_sealed():
        assert NEW_VAULT.key_id_of(key.sealed_secret) == NEW_ID
        assert key.rotate_time == before[key.id]  # the secret did not change, only its wrapping
    # With the old key gone entirely, every secret still opens.
    keys = virtual_keys(store, NEW_VAULT)
    assert (await keys.resolve("alpha")).credential.value("api_key") == "sk-alpha-secret"
    assert (await keys.resolve("beta")).credential.value("api_key") == "sk-beta-secret"
    for version in (1, 2):
        resolved = await configs(store, NEW_VAULT).resolve(f"{config_id}@{version}")
        assert sorted(
            leaf.credential.value("api_key") or "" if leaf.credential else "" for leaf in leaves(resolved.plan)
        ) == ["sk-config-secret-1", "sk-config-secret-2"]


async def test_a_second_run_has_nothing_to_do(store: Store) -> None:
    await seed(store)
    await rotate_master_key(store, ROTATING_VAULT)
    again = await rotate_master_key(store, ROTATING_VAULT)
    assert (again.virtual_keys.rewrapped, again.config_versions.rewrapped) == (0, 0)
    assert (again.virtual_keys.already_current, again.config_versions.already_current) == (2, 2)


async def test_a_dry_run_counts_and_writes_nothing(store: Store) -> None:
    await seed(store)
    report = await rotate_master_key(store, ROTATING_VAULT, dry_run=True)
    assert report.dry_run and report.virtual_keys.rewrapped == 2
    assert {OLD_VAULT.key_id_of(k.sealed_secret) for k in await store.all_virtual_keys_sealed()} == {OLD_ID}


async def test_a_secret_rotated_by_a_live_gateway_meanwhile_is_never_reverted(tmp_path: Path) -> None:
    class RacingStore(SqliteStore):
        """A live gateway rotates "alpha" between the rotation's read and its write."""

        raced = False

        async def replace_virtual_key_sealed_secret(self, virtual_key_id: str, expected: bytes, sealed: bytes) -> bool:
            if virtual_key_id == "alpha" and not self.raced:
                self.raced = True
                await virtual_keys(self, ROTATING_VAULT).rotate("alpha", "sk-alpha-rotated-live")
            return await super().replace_virtual_key_sealed_secret(virtual_key_id, expected, sealed)

    store = RacingStore(tmp_path / "imagegw.db")
    await store.open()
    try:
        await seed(store)
        report = await rotate_master_key(store, ROTATING_VAULT)
        assert store.raced and report.ok
        assert report.virtual_keys.rewrapped == 1 and report.virtual_keys.already_current == 1
        resolved = await virtual_keys(store, NEW_VAULT).resolve("alpha")
        assert resolved.credential.value("api_key") == "sk-alpha-rotated-live"
    finally:
        await store.close()


async def test_rows_under_an_unlisted_key_are_reported_not_skipped(store: Store) -> None:
    await seed(store)
    stranger_id = master_key_id(STRANGER)
    await virtual_keys(store, Vault({stranger_id: STRANGER}, stranger_id)).create("gamma", "openai", "sk-g")
    report = await rotate_master_key(store, ROTATING_VAULT)
    assert not report.ok
    assert len(report.virtual_keys.failed) == 1 and "'gamma'" in report.virtual_keys.failed[0]
    assert "IMAGEGW_PREVIOUS_MASTER_KEYS" in report.virtual_keys.failed[0]
    assert "sk-g" not in report.virtual_keys.failed[0]
    assert report.virtual_keys.rewrapped == 2  # the others still moved


async def test_rotation_from_settings_never_invents_a_master_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "empty")
    with pytest.raises(ValueError, match="no master key"):
        await rotate_with_settings(settings)
    assert not (tmp_path / "empty" / "master.key").exists()


async def test_rotation_from_settings_reads_the_new_and_previous_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "imagegw.db")
    await store.open()
    try:
        await seed(store)
    finally:
        await store.close()
    settings = Settings(data_dir=tmp_path, master_key=encoded(NEW), previous_master_keys=(encoded(OLD),))
    report = await rotate_with_settings(settings)
    assert report.ok and report.active_key_id == NEW_ID and report.virtual_keys.rewrapped == 2


def test_the_vault_opens_rows_under_any_listed_previous_key(tmp_path: Path) -> None:
    vault, generated = load_vault(encoded(NEW), [encoded(OLD), encoded(NEW)], tmp_path)
    assert not generated and vault.active_key_id == NEW_ID
    sealed = OLD_VAULT.seal(b"secret", associated_data=b"virtual_key:x")
    assert vault.open(sealed, associated_data=b"virtual_key:x") == b"secret"
    assert vault.key_id_of(vault.seal(b"s", associated_data=b"a")) == NEW_ID
    only_new, _ = load_vault(encoded(NEW), [], tmp_path)
    with pytest.raises(VaultError, match="IMAGEGW_PREVIOUS_MASTER_KEYS"):
        only_new.open(sealed, associated_data=b"virtual_key:x")
    with pytest.raises(ValueError, match="IMAGEGW_PREVIOUS_MASTER_KEYS entry 1"):
        load_vault(encoded(NEW), ["not-a-key"], tmp_path)


def test_settings_never_print_previous_master_keys() -> None:
    settings = Settings.load(environ={"IMAGEGW_PREVIOUS_MASTER_KEYS": f"{encoded(OLD)}, {encoded(STRANGER)}"})
    assert settings.previous_master_keys == (encoded(OLD), encoded(STRANGER))
    assert encoded(OLD) not in repr(settings)


async def test_virtual_keys_of_both_layouts_are_rewrapped(store: Store) -> None:
    # A row written before typed credentials (the bare key sealed, no public fields), and a typed one.
    sealed = OLD_VAULT.seal(b"sk-legacy-secret", associated_data=virtual_key_associated_data("legacy"))
    await execute(
        store,
        "INSERT INTO virtual_keys (id, name, provider, base_url, sealed_secret, create_time, rotate_time) "
        "VALUES ('legacy', 'legacy', 'openai', NULL, ?, 0, 0)",
        (sealed,),
    )
    await virtual_keys(store, OLD_VAULT).create("typed", "openai", "", credential_fields={"api_key": "sk-typed"})
    report = await rotate_master_key(store, ROTATING_VAULT)
    assert report.ok and report.virtual_keys.rewrapped == 2
    keys = virtual_keys(store, NEW_VAULT)
    assert (await keys.resolve("legacy")).credential.value("api_key") == "sk-legacy-secret"
    assert (await keys.resolve("typed")).credential.value("api_key") == "sk-typed"
