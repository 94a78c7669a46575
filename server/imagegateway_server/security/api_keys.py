"""Gateway API keys: made once, shown once, stored as SHA-256, checked on every call.

A key is ``igw_`` and 43 URL-safe characters (256 random bits), so one unsalted SHA-256 is a
sound verifier: there is nothing to guess that a slow hash would protect. Successful checks are
cached for a few seconds because every request authenticates; a revoke through this service
evicts at once, a revoke by another replica takes effect within the cache's TTL.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime

from imagegateway_server.domain.errors import InvalidArgument, Unauthenticated
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import ApiKeyRecord, Page

KEY_PREFIX = "igw_"
SCOPE_ADMIN = "admin"
SCOPE_GENERATE = "generate"
SCOPES = frozenset({SCOPE_ADMIN, SCOPE_GENERATE})

# Generated keys match ``igw_`` + 43 URL-safe characters; an operator's IMAGEGW_ADMIN_KEY may be
# any run of 16-256 visible ASCII characters. Anything else is refused before a database look-up.
_ACCEPTED_KEY = re.compile(r"[\x21-\x7e]{16,256}")
_MAX_NAME_LENGTH = 200


def generate_api_key() -> tuple[str, str, str]:
    """A new key as (plaintext, SHA-256 hex, display prefix ``igw_`` + 6 characters)."""
    body = secrets.token_urlsafe(32)  # 32 bytes -> 43 characters
    plaintext = KEY_PREFIX + body
    return plaintext, hash_api_key(plaintext), KEY_PREFIX + body[:6]


def is_well_formed(plaintext: str) -> bool:
    """Whether ``plaintext`` could be a key at all (checked before any look-up)."""
    return _ACCEPTED_KEY.fullmatch(plaintext) is not None


def hash_api_key(plaintext: str) -> str:
    """The stored verifier of a key: SHA-256 of its UTF-8 bytes, in hex."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def _display_prefix(plaintext: str) -> str:
    if plaintext.startswith(KEY_PREFIX):
        return plaintext[: len(KEY_PREFIX) + 6]
    return plaintext[:4]


@dataclasses.dataclass(slots=True)
class _CacheEntry:
    record: ApiKeyRecord
    expires: float


class ApiKeyService:
    """Creates, authenticates, lists and revokes gateway API keys."""

    def __init__(
        self,
        store: Store,
        *,
        cache_ttl: float = 5.0,
        cache_size: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self._clock = clock
        self._cache: dict[str, _CacheEntry] = {}
        # Bumped on every revoke: an authentication that raced a revoke does not cache.
        self._revocations = 0

    async def create(self, name: str, scope: str, limits: Limits = NO_LIMITS) -> tuple[ApiKeyRecord, str]:
        """Makes a key; returns its record and its plaintext, which is never available again."""
        if not name.strip() or len(name) > _MAX_NAME_LENGTH:
            raise InvalidArgument(f"must be 1-{_MAX_NAME_LENGTH} characters", param="name")
        if scope not in SCOPES:
            raise InvalidArgument(f"must be one of {sorted(SCOPES)}", param="scope")
        plaintext, key_hash, display_prefix = generate_api_key()
        record = ApiKeyRecord(
            id=secrets.token_hex(8),
            name=name,
            scope=scope,
            key_hash=key_hash,
            display_prefix=display_prefix,
            create_time=datetime.now(UTC),
            limits=limits,
        )
        await self._store.create_api_key(record)
        return record, plaintext

    async def authenticate(self, plaintext: str) -> ApiKeyRecord:
        """The live key ``plaintext`` names; Unauthenticated if malformed, unknown or revoked."""
        if not _ACCEPTED_KEY.fullmatch(plaintext):
            raise Unauthenticated("the API key is malformed")
        key_hash = hash_api_key(plaintext)
        now = self._clock()
        entry = self._cache.get(key_hash)
        if entry is not None:
            if entry.expires > now:
                return entry.record
            del self._cache[key_hash]
        revocations = self._revocations
        record = await self._store.get_api_key_by_hash(key_hash)
        if (
            record is None
            or not hmac.compare_digest(record.key_hash, key_hash)
            or record.revoke_time is not None
        ):
            raise Unauthenticated("the API key is unknown or revoked")
        if revocations == self._revocations:
            self._remember(key_hash, record, now)
        return record

    def _remember(self, key_hash: str, record: ApiKeyRecord, now: float) -> None:
        if len(self._cache) >= self._cache_size:
            for stale in [k for k, entry in self._cache.items() if entry.expires <= now]:
                del self._cache[stale]
            while len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]  # the oldest insertion
        self._cache[key_hash] = _CacheEntry(record, now + self._cache_ttl)

    async def revoke(self, api_key_id: str) -> ApiKeyRecord:
        """Revokes the key (NotFound if unknown); this process refuses it from now on."""
        self._revocations += 1
        record = await self._store.revoke_api_key(api_key_id, datetime.now(UTC))
        self._revocations += 1
        self._cache.pop(record.key_hash, None)
        return record

    async def ensure_bootstrap_admin(self, admin_key_setting: str | None) -> str | None:
        """Makes sure an admin can get in; returns a new admin key's plaintext if one was made.

        With IMAGEGW_ADMIN_KEY set, a key with that value and scope admin exists afterwards (made
        if missing) and None is returned; the setting naming a revoked or non-admin key is an
        error rather than a silent re-grant. Without it, an admin key is made only when no key
        exists at all, and its plaintext is returned for the caller to show once.
        """
        if admin_key_setting is not None and admin_key_setting.strip():
            if not _ACCEPTED_KEY.fullmatch(admin_key_setting):
                raise ValueError("IMAGEGW_ADMIN_KEY must be 16-256 visible ASCII characters without spaces")
            key_hash = hash_api_key(admin_key_setting)
            existing = await self._store.get_api_key_by_hash(key_hash)
            if existing is None:
                await self._store.create_api_key(
                    ApiKeyRecord(
                        id=secrets.token_hex(8),
                        name="bootstrap admin (IMAGEGW_ADMIN_KEY)",
                        scope=SCOPE_ADMIN,
                        key_hash=key_hash,
                        display_prefix=_display_prefix(admin_key_setting),
                        create_time=datetime.now(UTC),
                    )
                )
            elif existing.revoke_time is not None:
                raise ValueError(
                    f"IMAGEGW_ADMIN_KEY is API key {existing.id!r}, which was revoked; set a new value"
                )
            elif existing.scope != SCOPE_ADMIN:
                raise ValueError(
                    f"IMAGEGW_ADMIN_KEY is API key {existing.id!r}, "
                    f"whose scope is {existing.scope!r}, not admin"
                )
            return None
        if await self._store.count_api_keys() > 0:
            return None
        _, plaintext = await self.create("bootstrap admin", SCOPE_ADMIN)
        return plaintext

    async def list(self, page_size: int = 0, page_token: str = "") -> Page[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        return await self._store.list_api_keys(page_size, page_token)
