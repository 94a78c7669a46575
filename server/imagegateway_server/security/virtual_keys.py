"""Virtual keys: named provider accounts whose secrets are sealed at rest and never read back.

A virtual key holds a typed credential (``domain/credentials.py``), checked by its provider's
schema when it is created or rotated. The secret fields are sealed together by the vault, as one
JSON object, with ``virtual_key:<id>`` as associated data; the public fields (a region, a project)
are stored readable. Rows written before credentials were typed hold the bare API key sealed, and
read as ``{"api_key": <it>}``. ``resolve`` is the one way out, for the router: it opens the
secrets and caches them briefly, since every request through a virtual key needs them; rotate and
delete through this service evict at once and tell the other replicas (``on_change``; they call
``evict``). While the database is unreachable (``StoreUnavailable``), a key resolved within
``stale_max_age`` seconds is still served from the cache.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from imagegateway_server.domain.credentials import API_KEY, Credential
from imagegateway_server.domain.errors import InvalidArgument, NotFound, StoreUnavailable
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.providers.kit.spec import CredentialSchema
from imagegateway_server.providers.registry import credential_schema as registry_credential_schema
from imagegateway_server.security.shared_reads import SharedReads
from imagegateway_server.security.vault import Vault
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import Page, VirtualKeyRecord

_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_MAX_NAME_LENGTH = 200


@dataclasses.dataclass(frozen=True, slots=True, repr=False)
class ResolvedVirtualKey:
    """A virtual key with its credential opened, ready for a provider call."""

    id: str
    provider: str
    base_url: str | None
    credential: Credential
    limits: Limits = NO_LIMITS

    def __repr__(self) -> str:
        return f"ResolvedVirtualKey(id={self.id!r}, provider={self.provider!r}, base_url={self.base_url!r})"


def associated_data(virtual_key_id: str) -> bytes:
    """What a virtual key's secret is bound to."""
    return f"virtual_key:{virtual_key_id}".encode()


def slugify(name: str) -> str:
    """An id made from a name: lowercase letters and digits, other runs turned into one dash."""
    return _NOT_SLUG.sub("-", name.lower()).strip("-")[:63].rstrip("-")


def _raw_fields(secret: str, credential_fields: Mapping[str, str] | None) -> dict[str, str]:
    """The credential fields asked for: ``credential_fields``, with ``secret`` as the ``api_key``."""
    if not credential_fields:
        if not secret.strip():
            raise InvalidArgument("must not be empty", param="secret")
        return {API_KEY: secret}
    fields = dict(credential_fields)
    if secret:
        if API_KEY in fields:
            raise InvalidArgument(f"give the {API_KEY} as secret or in credential_fields, not both", param="secret")
        fields[API_KEY] = secret
    return fields


def _open_credential(record: VirtualKeyRecord, opened: bytes) -> Credential:
    if record.public_credential_fields is None:  # written before credentials were typed
        return Credential.of(record.provider, {API_KEY: opened.decode("utf-8")}, {API_KEY})
    secret_fields: dict[str, str] = json.loads(opened)
    return Credential.of(record.provider, {**record.public_credential_fields, **secret_fields}, secret_fields)


def _check_base_url(base_url: str) -> None:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument("must be an http:// or https:// URL with a host", param="base_url")


class VirtualKeyService:
    """Creates, rotates, deletes, lists and resolves virtual keys.

    ``canonicalize_provider`` turns a provider name or alias into its canonical name and raises
    InvalidArgument (or ValueError / KeyError) for a provider the gateway does not know;
    ``credential_schema`` gives a canonical provider's credential schema.
    ``check_base_url``, if given, vets a base URL against the allowed upstream hosts and returns
    it as it should be stored.
    """

    def __init__(
        self,
        store: Store,
        vault: Vault,
        *,
        canonicalize_provider: Callable[[str], str],
        credential_schema: Callable[[str], CredentialSchema] = registry_credential_schema,
        check_base_url: Callable[[str], str] | None = None,
        cache_ttl: float = 10.0,
        stale_max_age: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._stale_max_age = stale_max_age
        self._vault = vault
        self._on_change = on_change
        self._canonicalize_provider = canonicalize_provider
        self._credential_schema = credential_schema
        self._check_base_url = check_base_url
        self._cache_ttl = cache_ttl
        self._clock = clock
        # id -> (the key, when the entry expires, until when it may be served while the database is down)
        self._cache: dict[str, tuple[ResolvedVirtualKey, float, float]] = {}
        # Bumped on every eviction: a resolve that raced a rotate or delete does not cache.
        self._evictions = 0
        # A burst of requests on a missing or expired entry reads it once.
        self._reads: SharedReads[tuple[str, int], VirtualKeyRecord] = SharedReads()

    async def create(
        self,
        name: str,
        provider: str,
        secret: str,
        base_url: str | None = None,
        virtual_key_id: str | None = None,
        limits: Limits = NO_LIMITS,
        credential_fields: Mapping[str, str] | None = None,
    ) -> VirtualKeyRecord:
        """Stores a new virtual key; its id is ``virtual_key_id`` or a slug of ``name``.

        Its credential is ``credential_fields`` (secret and public fields by name, as the provider's
        schema names them), with ``secret`` as the ``api_key``.
        """
        if not name.strip() or len(name) > _MAX_NAME_LENGTH:
            raise InvalidArgument(f"must be 1-{_MAX_NAME_LENGTH} characters", param="name")
        if virtual_key_id:
            if not _ID.fullmatch(virtual_key_id):
                raise InvalidArgument(
                    "must be 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit",
                    param="virtual_key_id",
                )
            key_id = virtual_key_id
        else:
            key_id = slugify(name)
            if not key_id:
                raise InvalidArgument(
                    "has no letters or digits to make an id from; give a virtual_key_id", param="name"
                )
        try:
            canonical = self._canonicalize_provider(provider)
        except (KeyError, ValueError):
            raise InvalidArgument(f"unknown provider {provider!r}", param="provider") from None
        credential = self._credential(canonical, secret, credential_fields)
        url = self._vet_base_url(base_url)
        now = datetime.now(UTC)
        record = VirtualKeyRecord(
            id=key_id,
            name=name,
            provider=canonical,
            base_url=url,
            sealed_secret=self._seal(key_id, credential),
            create_time=now,
            rotate_time=now,
            limits=limits,
            public_credential_fields=credential.public_fields(),
        )
        await self._store.create_virtual_key(record)
        return record

    def _credential(self, provider: str, secret: str, credential_fields: Mapping[str, str] | None) -> Credential:
        fields = _raw_fields(secret, credential_fields)
        return self._credential_schema(provider).parse(fields, provider=provider, param_prefix="credential_fields")

    def _seal(self, virtual_key_id: str, credential: Credential) -> bytes:
        plaintext = json.dumps(dict(credential.secret_fields()), sort_keys=True).encode("utf-8")
        return self._vault.seal(plaintext, associated_data=associated_data(virtual_key_id))

    def _vet_base_url(self, base_url: str | None) -> str | None:
        if not base_url:
            return None
        _check_base_url(base_url)
        return self._check_base_url(base_url) if self._check_base_url is not None else base_url

    async def get(self, virtual_key_id: str) -> VirtualKeyRecord:
        """The stored record (secret still sealed). NotFound if unknown."""
        return await self._store.get_virtual_key(virtual_key_id)

    async def list(self, page_size: int = 0, page_token: str = "") -> Page[VirtualKeyRecord]:
        """Every virtual key, ordered by id."""
        return await self._store.list_virtual_keys(page_size, page_token)

    async def rotate(
        self, virtual_key_id: str, secret: str, credential_fields: Mapping[str, str] | None = None
    ) -> VirtualKeyRecord:
        """Replaces the whole credential (as ``create`` takes it). NotFound if unknown."""
        fields = _raw_fields(secret, credential_fields)  # an empty secret is refused before the look-up
        provider = (await self._store.get_virtual_key(virtual_key_id)).provider
        credential = self._credential(provider, "", fields)
        try:
            return await self._store.update_virtual_key_secret(
                virtual_key_id, self._seal(virtual_key_id, credential), datetime.now(UTC), credential.public_fields()
            )
        finally:
            self._evict(virtual_key_id)
            self._changed(virtual_key_id)

    async def delete(self, virtual_key_id: str) -> None:
        """Deletes the key. NotFound if unknown."""
        try:
            await self._store.delete_virtual_key(virtual_key_id)
        finally:
            self._evict(virtual_key_id)
            self._changed(virtual_key_id)

    async def resolve(self, virtual_key_id: str) -> ResolvedVirtualKey:
        """The key with its secret opened. NotFound if unknown; VaultError if it does not open."""
        now = self._clock()
        cached = self._cache.get(virtual_key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        evictions = self._evictions
        try:
            record = await self._reads.read(
                (virtual_key_id, evictions), lambda: self._store.get_virtual_key(virtual_key_id)
            )
        except StoreUnavailable:
            if cached is not None and cached[2] > now:
                return cached[0]
            raise
        except NotFound:
            self._cache.pop(virtual_key_id, None)  # deleted elsewhere: never served stale later
            raise
        opened = self._vault.open(record.sealed_secret, associated_data=associated_data(record.id))
        resolved = ResolvedVirtualKey(
            record.id, record.provider, record.base_url, _open_credential(record, opened), record.limits
        )
        if evictions == self._evictions:
            self._forget_expired(now)
            stale_until = now + max(self._cache_ttl, self._stale_max_age)
            self._cache[virtual_key_id] = (resolved, now + self._cache_ttl, stale_until)
        return resolved

    async def limits(self, virtual_key_id: str) -> Limits:
        """The key's limits, from the same short-lived cache as ``resolve``."""
        return (await self.resolve(virtual_key_id)).limits

    def _evict(self, virtual_key_id: str) -> None:
        self._evictions += 1
        self._cache.pop(virtual_key_id, None)

    def _changed(self, virtual_key_id: str) -> None:
        if self._on_change is not None:
            self._on_change(virtual_key_id)

    def evict(self, virtual_key_id: str) -> None:
        """Drops the cached key ``virtual_key_id`` (every key for ``"*"``): another replica changed it."""
        if virtual_key_id == "*":
            self._evictions += 1
            self._cache.clear()
        else:
            self._evict(virtual_key_id)

    def _forget_expired(self, now: float) -> None:
        # Virtual keys are few (admin-made), so a sweep on each miss keeps the cache bounded.
        for stale in [key for key, (_, _, stale_until) in self._cache.items() if stale_until <= now]:
            del self._cache[stale]
