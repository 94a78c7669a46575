"""Saved, versioned routing configs: validate on save, keep secret credential fields sealed, compile on use.

Every secret credential field of a target (``api_key``, ``azure_ad_token``, and any field its
provider's schema calls secret) is taken out of the stored document and sealed in the vault as
``{path: {field: value}}``; configs sealed before credentials were typed hold ``{path: api_key}``,
which is read as the ``api_key`` field.

Inline configs (sent with a request) are compiled here too, with a small cache of their plans.
While the database is unreachable (``StoreUnavailable``), a config's latest version as last read
(within ``stale_max_age`` seconds) is still used, so requests naming it keep being served.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from imagegateway_server.domain.config_document import config_document, config_from_document
from imagegateway_server.domain.credentials import API_KEY
from imagegateway_server.domain.errors import InvalidArgument, NotFound, StoreUnavailable
from imagegateway_server.domain.routing_config import SECRET_CREDENTIAL_FIELDS, RoutingConfig
from imagegateway_server.providers.kit.spec import CredentialSchema
from imagegateway_server.providers.registry import credential_schema as registry_credential_schema
from imagegateway_server.routing.plan import MAX_DEPTH, MAX_TARGETS, Node, compile_plan, leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.vault import Vault
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import ConfigRecord, Page

# How long "latest version" look-ups are trusted before the store is asked again.
LATEST_TTL_SECONDS = 2.0
# Compiled plans of inline configs kept (least recently used goes first).
INLINE_PLAN_ENTRIES = 256


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """A compiled saved config, ready for the router."""

    id: str
    version: int
    plan: Node


def config_associated_data(config_id: str) -> bytes:
    """What a config's sealed credential secrets are bound to (the vault's associated data)."""
    return f"config:{config_id}".encode()


def split_config_ref(ref: str) -> tuple[str, int | None]:
    """Splits ``id@version`` into its parts."""
    config_id, sep, version = ref.partition("@")
    if not config_id:
        raise InvalidArgument("must name a config id", param="config_id")
    if not sep:
        return config_id, None
    if not (version.isascii() and version.isdigit()) or int(version) < 1:  # isdigit() alone takes "²"
        raise InvalidArgument("version after '@' must be a positive integer", param="config_id")
    return config_id, int(version)


class ConfigService:
    """Config CRUD over a Store plus a cache of compiled plans (compiled once per version)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        *,
        canonical_provider: Callable[[str], str],
        host_policy: UpstreamHostPolicy,
        credential_schema: Callable[[str], CredentialSchema] = registry_credential_schema,
        virtual_key_exists: Callable[[str], Awaitable[object]] | None = None,
        max_depth: int = MAX_DEPTH,
        max_targets: int = MAX_TARGETS,
        stale_max_age: float = 0.0,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._stale_max_age = stale_max_age
        self._on_change = on_change
        # Bumped by every eviction: a resolve that raced one does not remember the latest version.
        self._evictions = 0
        self._max_depth = max_depth
        self._max_targets = max_targets
        self._store = store
        self._vault = vault
        self._canonical_provider = canonical_provider
        self._host_policy = host_policy
        self._credential_schema = credential_schema
        self._virtual_key_exists = virtual_key_exists
        self._plans: dict[tuple[str, int], ResolvedConfig] = {}
        self._latest: dict[str, tuple[int, float]] = {}
        # Keyed by the config object's identity, the entry holding the object so that its id is not
        # reused while the entry lives. Not by value: the model is not hashable (it holds mappings),
        # hashing a whole config each request would cost much of what the cache saves, and value
        # equality says True == 1.0 inside override_params, which must not share a plan. The front
        # ends give the same object back for the same inline text or message (api/config_json.py).
        self._inline_plans: OrderedDict[int, tuple[RoutingConfig, Node]] = OrderedDict()

    def compile(self, config: RoutingConfig) -> Node:
        """Validates and compiles a config (raises InvalidArgument naming the field path)."""
        return compile_plan(
            config,
            canonical_provider=self._canonical_provider,
            host_policy=self._host_policy,
            credential_schema=self._credential_schema,
            max_depth=self._max_depth,
            max_targets=self._max_targets,
        )

    def compile_inline(self, config: RoutingConfig) -> Node:
        """``compile`` for a config sent with a request: the same object compiles once (while it stays
        among the last few hundred); a config that fails to compile fails the same way every time."""
        cached = self._inline_plans.get(id(config))
        if cached is not None and cached[0] is config:
            self._inline_plans.move_to_end(id(config))
            return cached[1]
        plan = self.compile(config)
        self._inline_plans[id(config)] = (config, plan)
        if len(self._inline_plans) > INLINE_PLAN_ENTRIES:
            self._inline_plans.popitem(last=False)
        return plan

    async def _check_virtual_keys(self, plan: Node) -> None:
        if self._virtual_key_exists is None:
            return
        for leaf in leaves(plan):
            if leaf.virtual_key:
                try:
                    await self._virtual_key_exists(leaf.virtual_key)
                except NotFound:
                    field = (
                        "virtual_key" if leaf.path == "config" else (leaf.path.removeprefix("config.") + ".virtual_key")
                    )
                    raise InvalidArgument(f"virtual key {leaf.virtual_key!r} does not exist", param=field) from None

    def _secret_names(self, config: RoutingConfig) -> frozenset[str]:
        """The credential fields of ``config``'s targets that are secret (the config compiled, so providers exist)."""
        names = set(SECRET_CREDENTIAL_FIELDS)
        for _, node in config.walk():
            if node.provider:
                names |= self._credential_schema(node.provider).secret_names
        return frozenset(names)

    def _seal(self, config_id: str, config: RoutingConfig) -> tuple[str, bytes | None]:
        secret_names = self._secret_names(config)
        found = {
            path: secrets_here
            for path, node in config.walk()
            if (secrets_here := {k: v for k, v in node.credential_fields().items() if k in secret_names})
        }
        document = json.dumps(config_document(config.redacted(secret_names)))
        sealed = None
        if found:
            sealed = self._vault.seal(json.dumps(found).encode(), associated_data=config_associated_data(config_id))
        return document, sealed

    def _unseal(self, record: ConfigRecord) -> RoutingConfig:
        config = config_from_document(json.loads(record.document))
        if record.sealed_secrets:
            found = json.loads(
                self._vault.open(record.sealed_secrets, associated_data=config_associated_data(record.id))
            )
            # {path: api_key} before credentials were typed; {path: {field: value}} since.
            fields = {path: value if isinstance(value, dict) else {API_KEY: value} for path, value in found.items()}
            config = config.with_credential_fields(fields)
        return config

    async def create(self, name: str, config: RoutingConfig) -> ConfigRecord:
        plan = self.compile(config)
        await self._check_virtual_keys(plan)
        config_id = "pc-" + secrets.token_hex(6)
        document, sealed = self._seal(config_id, config)
        now = datetime.now(UTC)
        record = ConfigRecord(
            id=config_id,
            name=name or config_id,
            version=1,
            document=document,
            sealed_secrets=sealed,
            create_time=now,
            first_create_time=now,
        )
        await self._store.create_config(record)
        return record

    async def update(self, config_id: str, config: RoutingConfig, name: str = "") -> ConfigRecord:
        current = await self._store.get_config(config_id, None)
        plan = self.compile(config)
        await self._check_virtual_keys(plan)
        document, sealed = self._seal(config_id, config)
        record = dataclasses.replace(
            current,
            name=name or current.name,
            version=current.version + 1,
            document=document,
            sealed_secrets=sealed,
            create_time=datetime.now(UTC),
        )
        stored = await self._store.add_config_version(record)
        self.evict(config_id)
        self._changed(config_id)
        return stored

    async def get(self, ref: str, version: int | None = None) -> ConfigRecord:
        config_id, ref_version = split_config_ref(ref)
        return await self._store.get_config(config_id, version or ref_version)

    async def list(self, page_size: int, page_token: str) -> Page[ConfigRecord]:
        return await self._store.list_configs(page_size, page_token)

    async def delete(self, config_id: str) -> None:
        await self._store.delete_config(config_id)
        self.evict(config_id)
        self._changed(config_id)

    def evict(self, config_id: str) -> None:
        """Forgets the latest version and the plans of ``config_id`` (of every config for ``"*"``):
        it changed, here or on another replica."""
        self._evictions += 1
        if config_id == "*":
            self._latest.clear()
            self._plans.clear()
            return
        self._latest.pop(config_id, None)
        for key in [k for k in self._plans if k[0] == config_id]:
            del self._plans[key]

    def _changed(self, config_id: str) -> None:
        if self._on_change is not None:
            self._on_change(config_id)

    async def resolve(self, ref: str) -> ResolvedConfig:
        """The compiled plan of ``id`` (latest) or ``id@version``; NotFound names the id."""
        config_id, version = split_config_ref(ref)
        cached = self._latest.get(config_id) if version is None else None
        if cached and time.monotonic() - cached[1] < LATEST_TTL_SECONDS:
            version = cached[0]
        if version is not None and (config_id, version) in self._plans:
            return self._plans[(config_id, version)]
        evictions = self._evictions
        try:
            record = await self._store.get_config(config_id, version)
        except StoreUnavailable:
            if cached and time.monotonic() - cached[1] < self._stale_max_age and (config_id, cached[0]) in self._plans:
                return self._plans[(config_id, cached[0])]
            raise
        resolved = ResolvedConfig(record.id, record.version, self.compile(self._unseal(record)))
        self._plans[(record.id, record.version)] = resolved
        if version is None and evictions == self._evictions:
            self._latest[config_id] = (record.version, time.monotonic())
        return resolved
