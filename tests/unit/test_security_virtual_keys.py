"""Virtual keys: sealed at rest, validated on create, resolved for the router, rotated, deleted."""

from __future__ import annotations

import pytest

from imagegateway_server.domain.credentials import Credential
from imagegateway_server.domain.errors import AlreadyExists, InvalidArgument, NotFound
from imagegateway_server.providers.kit.spec import CredentialField, CredentialSchema
from imagegateway_server.security.vault import Vault, VaultError, master_key_id
from imagegateway_server.security.virtual_keys import (
    ResolvedVirtualKey,
    VirtualKeyService,
    associated_data,
    slugify,
)
from imagegateway_server.storage.base import Store
from tests.credentials import api_key
from tests.stores import execute, stored_bytes

KEY = bytes(range(32))
VAULT = Vault({master_key_id(KEY): KEY}, master_key_id(KEY))
SECRET = "sk-PLAINTEXT-MUST-NOT-LEAK-0123456789"


def canonicalize(provider: str) -> str:
    aliases = {"openai": "openai", "stability-ai": "stability-ai", "stabilityai": "stability-ai"}
    if provider not in aliases:
        raise InvalidArgument(f"unknown provider {provider!r}", param="provider")
    return aliases[provider]


@pytest.fixture
def store(any_store: Store) -> Store:
    """Each backend in turn (tests/conftest.py)."""
    return any_store


@pytest.fixture
def service(store: Store) -> VirtualKeyService:
    return VirtualKeyService(store, VAULT, canonicalize_provider=canonicalize)


async def test_create_then_resolve_gives_the_secret_back(service: VirtualKeyService) -> None:
    record = await service.create("Prod Stability (EU)", "stabilityai", SECRET, "https://eu.example.test/v2")
    assert (record.id, record.provider, record.base_url) == (
        "prod-stability-eu",
        "stability-ai",
        record.base_url,
    )
    assert await service.get(record.id) == record
    resolved = await service.resolve(record.id)
    assert resolved == ResolvedVirtualKey(
        "prod-stability-eu", "stability-ai", "https://eu.example.test/v2", api_key(SECRET, "stability-ai")
    )
    assert SECRET not in repr(resolved) and SECRET not in str(resolved)
    assert SECRET not in repr(record)


async def test_secret_is_not_in_the_database_files(service: VirtualKeyService, store: Store) -> None:
    await service.create("k1", "openai", SECRET)
    await service.rotate("k1", SECRET + "-rotated")
    contents = await stored_bytes(store)
    assert b"k1" in contents  # the rows are there
    assert SECRET.encode() not in contents


async def test_create_validates_its_fields(service: VirtualKeyService) -> None:
    with pytest.raises(InvalidArgument, match="virtual_key_id"):
        await service.create("ok", "openai", SECRET, virtual_key_id="Not_A_Slug")
    with pytest.raises(InvalidArgument, match="virtual_key_id"):
        await service.create("ok", "openai", SECRET, virtual_key_id="x" * 64)
    with pytest.raises(InvalidArgument, match="name"):
        await service.create("!!!", "openai", SECRET)
    with pytest.raises(InvalidArgument, match="name"):
        await service.create("", "openai", SECRET, virtual_key_id="ok")
    with pytest.raises(InvalidArgument, match="secret"):
        await service.create("ok", "openai", "  ")
    with pytest.raises(InvalidArgument, match="provider"):
        await service.create("ok", "midjourney", SECRET)
    with pytest.raises(InvalidArgument, match="base_url"):
        await service.create("ok", "openai", SECRET, base_url="ftp://example.test")


async def test_given_id_is_used_and_taken_ids_are_refused(service: VirtualKeyService) -> None:
    record = await service.create("Anything", "openai", SECRET, virtual_key_id="vk-7")
    assert record.id == "vk-7"
    with pytest.raises(AlreadyExists, match="virtual key 'vk-7' already exists"):
        await service.create("Other", "openai", SECRET, virtual_key_id="vk-7")


def test_slugify() -> None:
    assert slugify("  My OpenAI key #2 ") == "my-openai-key-2"
    assert slugify("a" * 70) == "a" * 63
    assert slugify("a" * 62 + " b") == "a" * 62


async def test_rotate_replaces_the_secret_even_when_cached(service: VirtualKeyService) -> None:
    record = await service.create("k1", "openai", SECRET)
    assert (await service.resolve("k1")).credential.value("api_key") == SECRET  # now cached
    rotated = await service.rotate("k1", "sk-new")
    assert rotated.rotate_time > record.rotate_time
    assert (await service.resolve("k1")).credential.value("api_key") == "sk-new"
    with pytest.raises(InvalidArgument, match="secret"):
        await service.rotate("k1", "")
    with pytest.raises(NotFound, match="virtual key 'nope' not found"):
        await service.rotate("nope", "sk-x")


async def test_delete_evicts_the_cached_secret(service: VirtualKeyService) -> None:
    await service.create("k1", "openai", SECRET)
    await service.resolve("k1")
    await service.delete("k1")
    with pytest.raises(NotFound, match="virtual key 'k1' not found"):
        await service.resolve("k1")
    with pytest.raises(NotFound):
        await service.delete("k1")


async def test_list_pages(service: VirtualKeyService) -> None:
    for name in ("c", "a", "b"):
        await service.create(name, "openai", SECRET)
    first = await service.list(page_size=2)
    second = await service.list(page_size=2, page_token=first.next_page_token)
    assert [r.id for r in first.items + second.items] == ["a", "b", "c"]


async def test_secret_moved_to_another_row_does_not_open(service: VirtualKeyService, store: Store) -> None:
    await service.create("victim", "openai", SECRET)
    await service.create("attacker", "openai", "sk-attacker")
    stolen = (await store.get_virtual_key("victim")).sealed_secret
    await store.update_virtual_key_secret("attacker", stolen, (await store.get_virtual_key("attacker")).rotate_time)
    with pytest.raises(VaultError):
        await service.resolve("attacker")


async def test_base_url_checker_is_applied(store: Store) -> None:
    def only_example(url: str) -> str:
        if "example.test" not in url:
            raise InvalidArgument("host is not allowed", param="base_url")
        return url.rstrip("/")

    service = VirtualKeyService(store, VAULT, canonicalize_provider=canonicalize, check_base_url=only_example)
    assert (await service.create("k", "openai", SECRET, "https://example.test/v1/")).base_url == (
        "https://example.test/v1"
    )
    with pytest.raises(InvalidArgument, match="base_url"):
        await service.create("k2", "openai", SECRET, "https://127.0.0.1/v1")


# -- typed credentials -----------------------------------------------------------------------------

TOKEN = "eyJ-session-token-MUST-NOT-LEAK-5555"
REGIONAL = CredentialSchema(
    (
        CredentialField("region", secret=False, required=True),
        CredentialField("access_key_id", secret=True, required=True),
        CredentialField("secret_access_key", secret=True, required=True),
        CredentialField("session_token", secret=True, required=False),
    )
)


def regional_service(store: Store) -> VirtualKeyService:
    return VirtualKeyService(store, VAULT, canonicalize_provider=canonicalize, credential_schema=lambda _: REGIONAL)


async def test_credential_fields_are_sealed_together_and_the_public_ones_stay_readable(store: Store) -> None:
    service = regional_service(store)
    fields = {
        "region": "eu-west-1",
        "access_key_id": "AKIA-ID-0001",
        "secret_access_key": SECRET,
        "session_token": TOKEN,
    }
    record = await service.create("aws", "openai", "", credential_fields=fields)
    assert dict(record.public_credential_fields or {}) == {"region": "eu-west-1"}
    stored = await store.get_virtual_key("aws")
    assert stored.public_credential_fields == {"region": "eu-west-1"}
    for secret in (SECRET, TOKEN, "AKIA-ID-0001"):
        assert secret.encode() not in stored.sealed_secret and secret not in repr(stored)
    resolved = await service.resolve("aws")
    assert resolved.credential == Credential.of(
        "openai", fields, {"access_key_id", "secret_access_key", "session_token"}
    )
    assert SECRET not in repr(resolved) and TOKEN not in str(resolved)


async def test_rotation_replaces_the_whole_credential(store: Store) -> None:
    service = regional_service(store)
    await service.create(
        "aws",
        "openai",
        "",
        credential_fields={
            "region": "eu-west-1",
            "access_key_id": "id-1",
            "secret_access_key": "old-secret",
            "session_token": TOKEN,
        },
    )
    rotated = await service.rotate(
        "aws", "", {"region": "us-east-1", "access_key_id": "id-2", "secret_access_key": SECRET}
    )
    assert dict(rotated.public_credential_fields or {}) == {"region": "us-east-1"}
    credential = (await service.resolve("aws")).credential
    assert (credential.value("secret_access_key"), credential.value("session_token")) == (SECRET, None)


@pytest.mark.parametrize(
    "fields,param",
    [
        ({"region": "eu", "access_key_id": "id"}, "credential_fields.secret_access_key"),
        (
            {"region": "eu", "access_key_id": "id", "secret_access_key": SECRET, "colour": "red"},
            "credential_fields.colour",
        ),
    ],
)
async def test_a_bad_credential_is_refused_naming_the_field(store: Store, fields: dict[str, str], param: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        await regional_service(store).create("aws", "openai", "", credential_fields=fields)
    assert info.value.param == param and SECRET not in info.value.message
    with pytest.raises(NotFound):
        await store.get_virtual_key("aws")


async def test_the_api_key_comes_as_secret_or_as_a_field_not_both(service: VirtualKeyService) -> None:
    record = await service.create("k", "openai", "", credential_fields={"api_key": SECRET})
    assert (await service.resolve(record.id)).credential == api_key(SECRET)
    with pytest.raises(InvalidArgument, match="not both") as info:
        await service.create("k2", "openai", SECRET, credential_fields={"api_key": SECRET})
    assert info.value.param == "secret" and SECRET not in info.value.message


async def test_a_row_written_before_typed_credentials_reads_as_an_api_key(
    service: VirtualKeyService, store: Store
) -> None:
    # As the gateway wrote it before: no public_credential_fields, the bare key sealed.
    sealed = VAULT.seal(SECRET.encode(), associated_data=associated_data("old"))
    await execute(
        store,
        "INSERT INTO virtual_keys (id, name, provider, base_url, sealed_secret, create_time, rotate_time) "
        "VALUES ('old', 'old', 'openai', NULL, ?, 0, 0)",
        (sealed,),
    )
    assert (await store.get_virtual_key("old")).public_credential_fields is None
    assert (await service.resolve("old")).credential == api_key(SECRET)
    rotated = await service.rotate("old", "sk-new-secret")  # rotation moves it to the typed layout
    assert rotated.public_credential_fields == {}
    assert (await service.resolve("old")).credential == api_key("sk-new-secret")
