"""Gateway API keys: generation, authentication with its cache, revocation, rotation, deletion, bootstrap admin."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest

from imagegateway_server.domain.errors import FailedPrecondition, InvalidArgument, NotFound, Unauthenticated
from imagegateway_server.domain.limits import Limits
from imagegateway_server.security.api_keys import ApiKeyService, generate_api_key, hash_api_key
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.factory import store_for_url
from tests.stores import stored_bytes


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each backend in turn (tests/conftest.py)."""
    return any_store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class WallClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_generated_keys_have_the_igw_shape() -> None:
    plaintext, key_hash, prefix = generate_api_key()
    assert re.fullmatch(r"igw_[A-Za-z0-9_-]{43}", plaintext)
    assert key_hash == hashlib.sha256(plaintext.encode()).hexdigest() == hash_api_key(plaintext)
    assert prefix == plaintext[:10] and prefix.startswith("igw_")
    assert generate_api_key()[0] != plaintext


async def test_created_key_authenticates_and_only_its_hash_is_stored(store: Store) -> None:
    service = ApiKeyService(store)
    record, plaintext = await service.create("ci", "generate")
    assert (record.scope, record.display_prefix) == ("generate", plaintext[:10])
    assert await service.authenticate(plaintext) == record
    assert plaintext not in repr(record) and record.key_hash not in repr(record)
    await store.close()
    await store.open()
    contents = await stored_bytes(store)
    assert plaintext.encode() not in contents
    assert record.key_hash.encode() in contents


@pytest.mark.parametrize("scope, name", [("root", "x"), ("admin", ""), ("admin", "n" * 201)])
async def test_create_validates_scope_and_name(store: Store, scope: str, name: str) -> None:
    with pytest.raises(InvalidArgument):
        await ApiKeyService(store).create(name, scope)


@pytest.mark.parametrize("key", ["", "short", "igw_" + "x" * 300, "igw_with space_and_more_chars", "igw_" + "é" * 43])
async def test_malformed_keys_are_unauthenticated_without_echo(store: Store, key: str) -> None:
    with pytest.raises(Unauthenticated) as raised:
        await ApiKeyService(store).authenticate(key)
    assert key == "" or key not in raised.value.message


async def test_unknown_key_is_unauthenticated_without_echo(store: Store) -> None:
    plaintext, _, _ = generate_api_key()
    with pytest.raises(Unauthenticated, match="unknown or revoked") as raised:
        await ApiKeyService(store).authenticate(plaintext)
    assert plaintext not in str(raised.value)


async def test_revoked_key_is_refused_at_once_despite_the_cache(store: Store) -> None:
    service = ApiKeyService(store, cache_ttl=3600)
    record, plaintext = await service.create("ci", "generate")
    await service.authenticate(plaintext)  # now cached
    revoked = await service.revoke(record.id)
    assert revoked.revoke_time is not None
    with pytest.raises(Unauthenticated):
        await service.authenticate(plaintext)
    with pytest.raises(NotFound, match="API key 'nope' not found"):
        await service.revoke("nope")


async def test_cache_serves_within_ttl_and_rechecks_after(store: Store) -> None:
    clock = Clock()
    service = ApiKeyService(store, cache_ttl=5, clock=clock)
    other_replica = ApiKeyService(store)
    record, plaintext = await service.create("ci", "generate")
    await service.authenticate(plaintext)
    await other_replica.revoke(record.id)  # this process's cache does not know
    assert (await service.authenticate(plaintext)).id == record.id
    clock.now += 5.01
    with pytest.raises(Unauthenticated):
        await service.authenticate(plaintext)


async def test_cache_stays_bounded(store: Store) -> None:
    service = ApiKeyService(store, cache_size=3)
    keys = [(await service.create(f"k{index}", "generate"))[1] for index in range(6)]
    for key in keys:
        await service.authenticate(key)
    assert len(service._cache) == 3


async def test_bootstrap_makes_one_admin_key_when_there_are_none(store: Store) -> None:
    service = ApiKeyService(store)
    plaintext = await service.ensure_bootstrap_admin(None)
    assert plaintext is not None
    assert (await service.authenticate(plaintext)).scope == "admin"
    assert await service.ensure_bootstrap_admin(None) is None
    assert await service.ensure_bootstrap_admin("") is None
    assert await store.count_api_keys() == 1


async def test_replicas_starting_together_without_an_admin_key_make_exactly_one(store_url: str) -> None:
    # Three processes' stores on one database, each bootstrapping at once: the database decides, so
    # exactly one gets a plaintext to print and the others are told a key exists.
    stores = [store_for_url(store_url) for _ in range(3)]
    await asyncio.gather(*(replica.open() for replica in stores))
    try:
        made = await asyncio.gather(*(ApiKeyService(replica).ensure_bootstrap_admin(None) for replica in stores))
        printed = [plaintext for plaintext in made if plaintext is not None]
        assert len(printed) == 1, made
        assert await stores[0].count_api_keys() == 1
        for replica in stores:
            assert (await ApiKeyService(replica).authenticate(printed[0])).name == "bootstrap admin"
    finally:
        await asyncio.gather(*(replica.close() for replica in stores))


async def test_the_first_key_is_written_only_into_an_empty_table(store: Store) -> None:
    service = ApiKeyService(store)
    revoked, _ = await service.create("first", "admin")
    await service.create("second", "admin")
    await service.revoke(revoked.id)
    # A revoked key still counts: the table is not empty, so no bootstrap key is made.
    assert await service.ensure_bootstrap_admin(None) is None
    assert await store.count_api_keys() == 2


async def test_bootstrap_makes_nothing_when_keys_exist(store: Store) -> None:
    service = ApiKeyService(store)
    await service.create("someone", "generate")
    assert await service.ensure_bootstrap_admin(None) is None
    assert await store.count_api_keys() == 1


async def test_admin_key_setting_is_stored_as_admin_idempotently(store: Store) -> None:
    service = ApiKeyService(store)
    await service.create("someone", "generate")
    setting = "operator-chosen-admin-key-0123456789"
    assert await service.ensure_bootstrap_admin(setting) is None
    assert await service.ensure_bootstrap_admin(setting) is None
    record = await service.authenticate(setting)
    assert record.scope == "admin" and record.display_prefix == "oper"
    assert await store.count_api_keys() == 2
    listed = (await service.list()).items
    assert [r.name for r in listed] == ["someone", "bootstrap admin (IMAGEGW_ADMIN_KEY)"]


async def test_admin_key_setting_that_was_revoked_or_is_not_admin_is_an_error(store: Store) -> None:
    service = ApiKeyService(store)
    setting = "operator-chosen-admin-key-0123456789"
    await service.ensure_bootstrap_admin(setting)
    record = await service.authenticate(setting)
    await service.create("second admin", "admin")  # the last admin key cannot be revoked
    await service.revoke(record.id)
    with pytest.raises(ValueError, match="revoked") as raised:
        await service.ensure_bootstrap_admin(setting)
    assert setting not in str(raised.value)

    generate_record, generate_key = await service.create("ci", "generate")
    with pytest.raises(ValueError, match="not admin"):
        await service.ensure_bootstrap_admin(generate_key)
    assert (await service.authenticate(generate_key)).scope == "generate"
    assert generate_record.id


async def test_weak_admin_key_setting_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="IMAGEGW_ADMIN_KEY must be 16-256"):
        await ApiKeyService(store).ensure_bootstrap_admin("short")


# Rotation


async def test_rotation_keeps_the_id_scope_and_limits_and_only_the_new_secret_is_stored(store: Store) -> None:
    service = ApiKeyService(store)
    limits = Limits(requests_per_minute=7, usd_per_day=1.5)
    record, old = await service.create("ci", "admin", limits)
    rotated, new = await service.rotate(record.id, 60)
    assert new != old and rotated.display_prefix == new[:10]
    assert (rotated.id, rotated.name, rotated.scope, rotated.limits) == (record.id, "ci", "admin", limits)
    assert rotated.key_hash == hash_api_key(new) and rotated.previous_key_hash == record.key_hash
    assert rotated.rotate_time is not None and rotated.previous_key_expire_time == rotated.rotate_time + timedelta(
        seconds=60
    )
    assert new not in repr(rotated) and rotated.key_hash not in repr(rotated)
    assert (await service.authenticate(new)).id == record.id
    assert (await service.authenticate(old)).id == record.id  # within its grace
    assert [r.id for r in (await service.list()).items] == [record.id]


async def test_the_old_secret_is_refused_when_its_grace_ends_even_if_cached(store: Store) -> None:
    clock, wall = Clock(), WallClock()
    service = ApiKeyService(store, cache_ttl=3600, clock=clock, wall_clock=wall)
    record, old = await service.create("ci", "generate")
    await service.authenticate(old)  # cached before the rotation
    _, new = await service.rotate(record.id, 2)
    await service.authenticate(old)  # re-read, cached no longer than the grace
    clock.now += 1.0
    wall.now += timedelta(seconds=1)
    await service.authenticate(old)
    clock.now += 1.0
    wall.now += timedelta(seconds=1)
    with pytest.raises(Unauthenticated, match="unknown or revoked"):
        await service.authenticate(old)
    assert (await service.authenticate(new)).id == record.id


async def test_rotation_with_no_grace_refuses_the_old_secret_at_once_despite_the_cache(store: Store) -> None:
    service = ApiKeyService(store, cache_ttl=3600)
    record, old = await service.create("ci", "generate")
    await service.authenticate(old)
    _, new = await service.rotate(record.id)
    with pytest.raises(Unauthenticated):
        await service.authenticate(old)
    assert (await service.authenticate(new)).id == record.id


async def test_rotating_again_ends_the_earlier_secrets_grace(store: Store) -> None:
    service = ApiKeyService(store)
    record, first = await service.create("ci", "generate")
    _, second = await service.rotate(record.id, 3600)
    _, third = await service.rotate(record.id, 3600)
    with pytest.raises(Unauthenticated):
        await service.authenticate(first)
    assert {(await service.authenticate(k)).id for k in (second, third)} == {record.id}


async def test_a_revoke_refuses_both_secrets_of_a_rotated_key(store: Store) -> None:
    service = ApiKeyService(store, cache_ttl=3600)
    record, old = await service.create("ci", "generate")
    _, new = await service.rotate(record.id, 3600)
    for key in (old, new):
        await service.authenticate(key)
    await service.revoke(record.id)
    for key in (old, new):
        with pytest.raises(Unauthenticated):
            await service.authenticate(key)


@pytest.mark.parametrize("seconds", [-1, 7 * 24 * 3600 + 1])
async def test_a_grace_outside_zero_to_seven_days_is_invalid_argument(store: Store, seconds: int) -> None:
    service = ApiKeyService(store)
    record, old = await service.create("ci", "generate")
    with pytest.raises(InvalidArgument) as raised:
        await service.rotate(record.id, seconds)
    assert raised.value.param == "previous_key_valid_seconds"
    assert (await service.authenticate(old)).id == record.id  # nothing changed
    await service.rotate(record.id, 7 * 24 * 3600)  # the cap itself is allowed


async def test_a_revoked_or_unknown_key_cannot_be_rotated(store: Store) -> None:
    service = ApiKeyService(store)
    record, _ = await service.create("ci", "generate")
    await service.revoke(record.id)
    with pytest.raises(FailedPrecondition, match="revoked") as raised:
        await service.rotate(record.id, 60)
    assert raised.value.param == "id"
    with pytest.raises(NotFound):
        await service.rotate("nope")


async def test_admin_key_setting_replaced_by_a_rotation_is_accepted_in_its_grace_and_an_error_after(
    store: Store,
) -> None:
    wall = WallClock()
    service = ApiKeyService(store, wall_clock=wall)
    setting = "operator-chosen-admin-key-0123456789"
    await service.ensure_bootstrap_admin(setting)
    record = await service.authenticate(setting)
    await service.rotate(record.id, 60)
    assert await service.ensure_bootstrap_admin(setting) is None
    assert await store.count_api_keys() == 1  # not made again
    wall.now += timedelta(seconds=61)
    with pytest.raises(ValueError, match="rotated") as raised:
        await service.ensure_bootstrap_admin(setting)
    assert setting not in str(raised.value)


# Deletion


async def test_deleted_key_is_gone_and_refused_at_once_despite_the_cache(store: Store) -> None:
    service = ApiKeyService(store, cache_ttl=3600)
    record, old = await service.create("ci", "generate")
    _, new = await service.rotate(record.id, 3600)
    for key in (old, new):
        await service.authenticate(key)
    deleted = await service.delete(record.id)
    assert deleted.id == record.id
    for key in (old, new):
        with pytest.raises(Unauthenticated):
            await service.authenticate(key)
    assert (await service.list()).items == []
    with pytest.raises(NotFound, match="API key 'nope' not found"):
        await service.delete("nope")


async def test_the_last_active_admin_key_cannot_be_deleted(store: Store) -> None:
    service = ApiKeyService(store)
    first, _ = await service.create("first admin", "admin")
    second, _ = await service.create("second admin", "admin")
    await service.create("generator", "generate")
    await service.delete(first.id)
    with pytest.raises(FailedPrecondition, match="last active admin key") as raised:
        await service.delete(second.id)
    assert raised.value.param == "id"

    # A revoked admin key does not count as one that could still get in, and may itself be deleted.
    third, _ = await service.create("third admin", "admin")
    await service.revoke(second.id)
    with pytest.raises(FailedPrecondition):
        await service.delete(third.id)
    await service.delete(second.id)
    assert [r.name for r in (await service.list()).items] == ["generator", "third admin"]


async def test_the_last_active_admin_key_cannot_be_revoked(store: Store) -> None:
    service = ApiKeyService(store)
    only, _ = await service.create("only admin", "admin")
    with pytest.raises(FailedPrecondition, match="last active admin key"):
        await service.revoke(only.id)
    other, _ = await service.create("second admin", "admin")
    assert (await service.revoke(only.id)).revoke_time is not None
    with pytest.raises(FailedPrecondition):
        await service.revoke(other.id)


async def test_replicas_starting_together_with_one_admin_key_setting_all_start(store: Store) -> None:
    # Replicas of one deployment share IMAGEGW_ADMIN_KEY and start at once: each may find the key
    # missing, and all but the first to write it must take the key the first one wrote, not fail.
    setting = "operator-chosen-admin-key-0123456789"
    replicas = [ApiKeyService(store) for _ in range(3)]
    assert await asyncio.gather(*(replica.ensure_bootstrap_admin(setting) for replica in replicas)) == [None] * 3
    assert await store.count_api_keys() == 1
    assert (await replicas[2].authenticate(setting)).scope == "admin"
