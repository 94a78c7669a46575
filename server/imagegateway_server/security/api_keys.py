"""Gateway API keys: made once, shown once, stored as SHA-256, checked on every call.

A key is ``igw_`` and 43 URL-safe characters (256 random bits), so one unsalted SHA-256 is a
sound verifier: there is nothing to guess that a slow hash would protect. Successful checks are
cached for a few seconds because every request authenticates; a revoke, rotation or delete through
this service evicts at once, and is told to the other replicas (``on_change``; they call ``evict``),
so with a shared change feed it takes effect everywhere within a second, without one within the
cache's TTL. While the database is unreachable (``StoreUnavailable``), a key checked within
``stale_max_age`` seconds is still accepted from the cache: generation goes on through a database outage.

A rotation gives a key a new secret under the same id (so its limits, spend and log filters carry
on); the secret it replaced stays accepted for a grace the caller chooses (0 to 7 days), so callers
can move to the new one without downtime. Only the secret just replaced has a grace: rotating again
ends the earlier one's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from imagegateway_server.domain.errors import AlreadyExists, InvalidArgument, StoreUnavailable, Unauthenticated
from imagegateway_server.domain.limits import NO_LIMITS, Limits
from imagegateway_server.domain.scopes import Scope
from imagegateway_server.security.shared_reads import SharedReads
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import ApiKeyRecord, Page

KEY_PREFIX = "igw_"
SCOPES = frozenset(Scope)

# Generated keys match ``igw_`` + 43 URL-safe characters; an operator's IMAGEGW_ADMIN_KEY may be
# any run of 16-256 visible ASCII characters. Anything else is refused before a database look-up.
_ACCEPTED_KEY = re.compile(r"[\x21-\x7e]{16,256}")
_MAX_NAME_LENGTH = 200
# How long a rotated-away secret may stay accepted: long enough to roll a new secret out by hand.
MAX_PREVIOUS_KEY_VALID_SECONDS = 7 * 24 * 3600
# The name of the admin key made on a first start without IMAGEGW_ADMIN_KEY.
BOOTSTRAP_KEY_NAME = "bootstrap admin"


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
    stale_until: float  # how long it may still be served while the database is unreachable


class ApiKeyService:
    """Creates, authenticates, lists, rotates, revokes and deletes gateway API keys."""

    def __init__(
        self,
        store: Store,
        *,
        cache_ttl: float = 5.0,
        cache_size: int = 10_000,
        stale_max_age: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utc_now,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        self._on_change = on_change
        self._cache_ttl = cache_ttl
        self._stale_max_age = stale_max_age
        self._cache_size = cache_size
        self._clock = clock  # the cache's; rotation graces are stored times, read with wall_clock
        self._wall_clock = wall_clock
        self._cache: dict[str, _CacheEntry] = {}
        # Bumped around every revoke, rotation and delete: an authentication that raced one does not cache.
        self._invalidations = 0
        # A burst of requests on a missing or expired entry reads it once.
        self._reads: SharedReads[tuple[str, int], ApiKeyRecord | None] = SharedReads()

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
        if entry is not None and entry.expires > now:
            return entry.record
        invalidations = self._invalidations
        try:
            record = await self._reads.read(
                (key_hash, invalidations), lambda: self._store.get_api_key_by_hash(key_hash)
            )
        except StoreUnavailable:
            if entry is not None and entry.stale_until > now:
                return entry.record
            raise
        if entry is not None:
            self._cache.pop(key_hash, None)
        valid_for = None if record is None else self._accepted_for(record, key_hash)
        if record is None or valid_for is None:
            raise Unauthenticated("the API key is unknown or revoked")
        if invalidations == self._invalidations:
            self._remember(key_hash, record, now, valid_for)
        return record

    def _accepted_for(self, record: ApiKeyRecord, key_hash: str) -> float | None:
        """How long the secret hashing to ``key_hash`` stays acceptable (inf for a current secret, the
        rest of its grace for a rotated-away one); None if refused."""
        if record.revoke_time is not None:
            return None
        if hmac.compare_digest(record.key_hash, key_hash):
            return math.inf
        wall_now = self._wall_clock()
        if (
            record.previous_key_hash is not None
            and hmac.compare_digest(record.previous_key_hash, key_hash)
            and record.previous_key_expire_time is not None
            and record.previous_key_valid_at(wall_now)
        ):
            return (record.previous_key_expire_time - wall_now).total_seconds()
        return None

    def _remember(self, key_hash: str, record: ApiKeyRecord, now: float, valid_for: float) -> None:
        if len(self._cache) >= self._cache_size:
            for stale in [k for k, entry in self._cache.items() if entry.expires <= now]:
                del self._cache[stale]
            while len(self._cache) >= self._cache_size:
                del self._cache[next(iter(self._cache))]  # the oldest insertion
        # Cached no longer than its grace, so a short grace ends on time on this process, and never
        # served from a stale cache past it either.
        lifetime = min(self._cache_ttl, valid_for)
        stale_for = min(valid_for, max(lifetime, self._stale_max_age))
        self._cache[key_hash] = _CacheEntry(record, now + lifetime, now + stale_for)

    def _forget(self, record: ApiKeyRecord) -> None:
        for key_hash in (record.key_hash, record.previous_key_hash):
            if key_hash is not None:
                self._cache.pop(key_hash, None)
        if self._on_change is not None:
            self._on_change(record.id)

    def evict(self, api_key_id: str) -> None:
        """Drops what is cached of the key ``api_key_id`` (every key for ``"*"``): another replica changed it."""
        self._invalidations += 1  # an authentication in flight read the record before the change
        if api_key_id == "*":
            self._cache.clear()
            return
        for stale in [k for k, entry in self._cache.items() if entry.record.id == api_key_id]:
            del self._cache[stale]

    async def revoke(self, api_key_id: str) -> ApiKeyRecord:
        """Revokes the key (NotFound if unknown); this process refuses both its secrets from now on."""
        self._invalidations += 1
        try:
            record = await self._store.revoke_api_key(api_key_id, self._wall_clock())
        finally:
            self._invalidations += 1
        self._forget(record)
        return record

    async def rotate(self, api_key_id: str, previous_key_valid_seconds: int = 0) -> tuple[ApiKeyRecord, str]:
        """Gives the key a new secret, keeping its id, name, scope and limits; returns the record and
        the new plaintext (never available again). The replaced secret stays accepted for
        ``previous_key_valid_seconds`` (0: refused at once on this process, within the cache TTL on
        others). InvalidArgument for a grace outside 0-7 days, NotFound, FailedPrecondition if revoked.
        """
        if not 0 <= previous_key_valid_seconds <= MAX_PREVIOUS_KEY_VALID_SECONDS:
            raise InvalidArgument(
                f"must be 0-{MAX_PREVIOUS_KEY_VALID_SECONDS} seconds (at most 7 days)",
                param="previous_key_valid_seconds",
            )
        plaintext, key_hash, display_prefix = generate_api_key()
        now = self._wall_clock()
        self._invalidations += 1
        try:
            record = await self._store.rotate_api_key(
                api_key_id, key_hash, display_prefix, now, now + timedelta(seconds=previous_key_valid_seconds)
            )
        finally:
            self._invalidations += 1
        # The replaced secret's cached entry knows nothing of its grace: drop it, the next use re-reads.
        self._forget(record)
        return record, plaintext

    async def delete(self, api_key_id: str) -> ApiKeyRecord:
        """Deletes the key and returns it as it was; its request logs stay, still naming its id.
        NotFound if unknown; FailedPrecondition if it is the last unrevoked admin key."""
        self._invalidations += 1
        try:
            record = await self._store.delete_api_key(api_key_id)
        finally:
            self._invalidations += 1
        self._forget(record)
        return record

    async def ensure_bootstrap_admin(self, admin_key_setting: str | None) -> str | None:
        """Makes sure an admin can get in; returns a new admin key's plaintext if one was made.

        With IMAGEGW_ADMIN_KEY set, a key with that value and scope admin exists afterwards (made
        if missing) and None is returned; the setting naming a revoked or non-admin key is an
        error rather than a silent re-grant. Without it, an admin key is made only when no key
        exists at all, and its plaintext is returned for the caller to show once; of processes
        starting together on one database, only one gets a plaintext (the store decides).
        """
        if admin_key_setting is not None and admin_key_setting.strip():
            if not _ACCEPTED_KEY.fullmatch(admin_key_setting):
                raise ValueError("IMAGEGW_ADMIN_KEY must be 16-256 visible ASCII characters without spaces")
            key_hash = hash_api_key(admin_key_setting)
            existing = await self._store.get_api_key_by_hash(key_hash)
            if existing is not None and existing.key_hash != key_hash:
                # The setting is a secret a rotation replaced: fine during its grace, stale after.
                if existing.revoke_time is None and existing.previous_key_valid_at(self._wall_clock()):
                    return None
                raise ValueError(
                    f"IMAGEGW_ADMIN_KEY is the replaced secret of API key {existing.id!r}, which was rotated; "
                    "set it to the new secret or unset it"
                )
            if existing is None:
                try:
                    await self._store.create_api_key(
                        ApiKeyRecord(
                            id=secrets.token_hex(8),
                            name="bootstrap admin (IMAGEGW_ADMIN_KEY)",
                            scope=Scope.ADMIN,
                            key_hash=key_hash,
                            display_prefix=_display_prefix(admin_key_setting),
                            create_time=datetime.now(UTC),
                        )
                    )
                except AlreadyExists:
                    # A replica starting at the same time wrote it between our read and our write.
                    existing = await self._store.get_api_key_by_hash(key_hash)
                    if existing is None:
                        raise
            if existing is not None and existing.revoke_time is not None:
                raise ValueError(f"IMAGEGW_ADMIN_KEY is API key {existing.id!r}, which was revoked; set a new value")
            if existing is not None and existing.scope != Scope.ADMIN:
                raise ValueError(
                    f"IMAGEGW_ADMIN_KEY is API key {existing.id!r}, whose scope is {existing.scope!r}, not admin"
                )
            return None
        # Decided by the database, not by a count read first: of replicas starting together on an
        # empty one, exactly one writes its key, and the others are told no.
        plaintext, key_hash, display_prefix = generate_api_key()
        record = ApiKeyRecord(
            id=secrets.token_hex(8),
            name=BOOTSTRAP_KEY_NAME,
            scope=Scope.ADMIN,
            key_hash=key_hash,
            display_prefix=display_prefix,
            create_time=datetime.now(UTC),
        )
        return plaintext if await self._store.create_first_api_key(record) else None

    async def list(self, page_size: int = 0, page_token: str = "") -> Page[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        return await self._store.list_api_keys(page_size, page_token)
