"""Master-key rotation: re-wraps every sealed secret in the store under the active master key.

It runs offline, against the database, beside gateways that keep serving (``imagegw admin
rotate-master-key``). The procedure, with no downtime:

1. restart the gateways one by one with ``IMAGEGW_MASTER_KEY=<new>`` and
   ``IMAGEGW_PREVIOUS_MASTER_KEYS=<old>``: they seal new secrets under the new key and open
   rows under either;
2. run the rotation with the same two settings: each virtual key and each config version that
   holds secrets gets its data key re-wrapped under the new key (the secret's own ciphertext is
   untouched, see ``vault``); rows already under the new key are left alone, so a re-run is safe;
3. when it reports nothing left under an old key, drop the old key from the previous keys.

Every write is a compare-and-swap on the sealed bytes read: a virtual key rotated by a live
gateway meanwhile is re-read, never overwritten with its old secret. Rows that open under no
loaded key are reported, not skipped silently.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Protocol

from imagegateway_server.domain.errors import NotFound
from imagegateway_server.routing.config_service import config_associated_data
from imagegateway_server.security.vault import Vault, VaultError, load_vault
from imagegateway_server.security.virtual_keys import associated_data as virtual_key_associated_data
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.factory import open_store

_MAX_RACES = 5  # re-reads of one row that keeps changing under us before it is reported


@dataclasses.dataclass
class RowCounts:
    """What happened to the rows of one kind."""

    rewrapped: int = 0
    already_current: int = 0
    gone: int = 0
    failed: list[str] = dataclasses.field(default_factory=list)
    key_ids_before: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


@dataclasses.dataclass
class RotationReport:
    """The outcome of one rotation run."""

    active_key_id: str
    dry_run: bool
    virtual_keys: RowCounts
    config_versions: RowCounts

    @property
    def ok(self) -> bool:
        """True when every row is (or, in a dry run, could be) under the active key."""
        return not self.virtual_keys.failed and not self.config_versions.failed

    def as_dict(self) -> dict[str, object]:
        def counts(rows: RowCounts) -> dict[str, object]:
            return {
                "rewrapped": rows.rewrapped,
                "already_current": rows.already_current,
                "gone": rows.gone,
                "failed": rows.failed,
                "key_ids_before": dict(rows.key_ids_before),
            }

        return {
            "active_key_id": self.active_key_id,
            "dry_run": self.dry_run,
            "virtual_keys": counts(self.virtual_keys),
            "config_versions": counts(self.config_versions),
        }


async def _rewrap_row(
    vault: Vault,
    sealed: bytes,
    associated_data: bytes,
    *,
    swap: Callable[[bytes, bytes], Awaitable[bool]],
    reread: Callable[[], Awaitable[bytes | None]],
    counts: RowCounts,
    name: str,
    dry_run: bool,
) -> None:
    first = True
    for _ in range(_MAX_RACES):
        try:
            key_id = vault.key_id_of(sealed)
            if first:
                counts.key_ids_before[key_id] += 1
                first = False
            if key_id == vault.active_key_id:
                counts.already_current += 1
                return
            rewrapped = vault.rewrap(sealed, associated_data=associated_data)
        except VaultError as exc:
            counts.failed.append(f"{name}: {exc}")
            return
        if dry_run or await swap(sealed, rewrapped):
            counts.rewrapped += 1
            return
        current = await reread()  # changed by a live gateway meanwhile: look again
        if current is None:
            counts.gone += 1
            return
        sealed = current
    counts.failed.append(f"{name}: kept changing while being re-wrapped; run the rotation again")


async def rotate_master_key(store: Store, vault: Vault, *, dry_run: bool = False) -> RotationReport:
    """Re-wraps every virtual key and config-version secret under ``vault.active_key_id``."""
    report = RotationReport(vault.active_key_id, dry_run, RowCounts(), RowCounts())

    for key in await store.all_virtual_keys_sealed():

        async def reread_key(key_id: str = key.id) -> bytes | None:
            try:
                return (await store.get_virtual_key(key_id)).sealed_secret
            except NotFound:
                return None

        async def swap_key(old: bytes, new: bytes, key_id: str = key.id) -> bool:
            return await store.replace_virtual_key_sealed_secret(key_id, old, new)

        await _rewrap_row(
            vault,
            key.sealed_secret,
            virtual_key_associated_data(key.id),
            swap=swap_key,
            reread=reread_key,
            counts=report.virtual_keys,
            name=f"virtual key {key.id!r}",
            dry_run=dry_run,
        )

    for config in await store.all_config_versions_sealed():
        if config.sealed_secrets is None:
            continue

        async def reread_config(config_id: str = config.id, version: int = config.version) -> bytes | None:
            try:
                return (await store.get_config(config_id, version)).sealed_secrets
            except NotFound:
                return None

        async def swap_config(
            old: bytes, new: bytes, config_id: str = config.id, version: int = config.version
        ) -> bool:
            return await store.replace_config_sealed_secrets(config_id, version, old, new)

        await _rewrap_row(
            vault,
            config.sealed_secrets,
            config_associated_data(config.id),
            swap=swap_config,
            reread=reread_config,
            counts=report.config_versions,
            name=f"config {config.id}@{config.version}",
            dry_run=dry_run,
        )
    return report


class RotationSettings(Protocol):
    """The process settings rotation reads (``settings.Settings`` has them; not imported, it is above the core)."""

    @property
    def master_key(self) -> str: ...
    @property
    def previous_master_keys(self) -> Sequence[str]: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def effective_database_url(self) -> str: ...


async def rotate_with_settings(settings: RotationSettings, *, dry_run: bool = False) -> RotationReport:
    """Opens the configured store and vault (never generating a key) and rotates."""
    vault, _ = load_vault(settings.master_key or None, settings.previous_master_keys, settings.data_dir, generate=False)
    store = await open_store(settings.effective_database_url)
    try:
        return await rotate_master_key(store, vault, dry_run=dry_run)
    finally:
        await store.close()
