"""Saved, versioned routing configs: validate on save, keep api_key values sealed, compile on use."""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime

from google.protobuf import json_format

from imagegateway.v1 import configs_pb2
from imagegateway_server.domain.errors import InvalidArgument, NotFound
from imagegateway_server.routing.config_json import parse_config
from imagegateway_server.routing.plan import MAX_DEPTH, MAX_TARGETS, Node, compile_plan, leaves
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy
from imagegateway_server.security.vault import Vault
from imagegateway_server.storage.base import Store
from imagegateway_server.storage.records import ConfigRecord, Page

# How long "latest version" look-ups are trusted before the store is asked again.
LATEST_TTL_SECONDS = 2.0


@dataclasses.dataclass(frozen=True, slots=True)
class ResolvedConfig:
    """A compiled saved config, ready for the router."""

    id: str
    version: int
    plan: Node


def config_associated_data(config_id: str) -> bytes:
    """What a config's sealed api_key values are bound to (the vault's associated data)."""
    return f"config:{config_id}".encode()


def split_config_ref(ref: str) -> tuple[str, int | None]:
    """Splits ``id@version`` into its parts."""
    config_id, sep, version = ref.partition("@")
    if not config_id:
        raise InvalidArgument("must name a config id", param="config_id")
    if not sep:
        return config_id, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidArgument("version after '@' must be a positive integer", param="config_id")
    return config_id, int(version)


def _walk(node: configs_pb2.RoutingConfig, path: str = "") -> Iterator[tuple[str, configs_pb2.RoutingConfig]]:
    yield path, node
    for i, child in enumerate(node.targets):
        yield from _walk(child, f"{path}.targets[{i}]" if path else f"targets[{i}]")


class ConfigService:
    """Config CRUD over a Store plus a cache of compiled plans (compiled once per version)."""

    def __init__(
        self,
        store: Store,
        vault: Vault,
        *,
        canonical_provider: Callable[[str], str],
        host_policy: UpstreamHostPolicy,
        virtual_key_exists: Callable[[str], Awaitable[object]] | None = None,
        max_depth: int = MAX_DEPTH,
        max_targets: int = MAX_TARGETS,
    ) -> None:
        self._max_depth = max_depth
        self._max_targets = max_targets
        self._store = store
        self._vault = vault
        self._canonical_provider = canonical_provider
        self._host_policy = host_policy
        self._virtual_key_exists = virtual_key_exists
        self._plans: dict[tuple[str, int], ResolvedConfig] = {}
        self._latest: dict[str, tuple[int, float]] = {}

    def compile(self, config: configs_pb2.RoutingConfig) -> Node:
        """Validates and compiles a config (raises InvalidArgument naming the field path)."""
        return compile_plan(config, canonical_provider=self._canonical_provider, host_policy=self._host_policy,
                            max_depth=self._max_depth, max_targets=self._max_targets)

    async def _check_virtual_keys(self, plan: Node) -> None:
        if self._virtual_key_exists is None:
            return
        for leaf in leaves(plan):
            if leaf.virtual_key:
                try:
                    await self._virtual_key_exists(leaf.virtual_key)
                except NotFound:
                    field = "virtual_key" if leaf.path == "config" else (
                        leaf.path.removeprefix("config.") + ".virtual_key")
                    raise InvalidArgument(f"virtual key {leaf.virtual_key!r} does not exist", param=field) from None

    def _seal(self, config_id: str, config: configs_pb2.RoutingConfig) -> tuple[str, bytes | None]:
        redacted = configs_pb2.RoutingConfig()
        redacted.CopyFrom(config)
        found: dict[str, str] = {}
        for path, node in _walk(redacted):
            if node.api_key:
                found[path] = node.api_key
                node.ClearField("api_key")
        document = json.dumps(json_format.MessageToDict(redacted, preserving_proto_field_name=True))
        sealed = None
        if found:
            sealed = self._vault.seal(json.dumps(found).encode(), associated_data=config_associated_data(config_id))
        return document, sealed

    def _unseal(self, record: ConfigRecord) -> configs_pb2.RoutingConfig:
        config = parse_config(record.document)
        if record.sealed_secrets:
            found = json.loads(self._vault.open(record.sealed_secrets,
                                                associated_data=config_associated_data(record.id)))
            for path, node in _walk(config):
                if path in found:
                    node.api_key = found[path]
        return config

    async def create(self, name: str, config: configs_pb2.RoutingConfig) -> ConfigRecord:
        plan = self.compile(config)
        await self._check_virtual_keys(plan)
        config_id = "pc-" + secrets.token_hex(6)
        document, sealed = self._seal(config_id, config)
        now = datetime.now(UTC)
        record = ConfigRecord(id=config_id, name=name or config_id, version=1, document=document,
                              sealed_secrets=sealed, create_time=now, first_create_time=now)
        await self._store.create_config(record)
        return record

    async def update(self, config_id: str, config: configs_pb2.RoutingConfig, name: str = "") -> ConfigRecord:
        current = await self._store.get_config(config_id, None)
        plan = self.compile(config)
        await self._check_virtual_keys(plan)
        document, sealed = self._seal(config_id, config)
        record = dataclasses.replace(current, name=name or current.name, version=current.version + 1,
                                     document=document, sealed_secrets=sealed, create_time=datetime.now(UTC))
        stored = await self._store.add_config_version(record)
        self._latest.pop(config_id, None)
        return stored

    async def get(self, ref: str, version: int | None = None) -> ConfigRecord:
        config_id, ref_version = split_config_ref(ref)
        return await self._store.get_config(config_id, version or ref_version)

    async def list(self, page_size: int, page_token: str) -> Page[ConfigRecord]:
        return await self._store.list_configs(page_size, page_token)

    async def delete(self, config_id: str) -> None:
        await self._store.delete_config(config_id)
        self._latest.pop(config_id, None)
        for key in [k for k in self._plans if k[0] == config_id]:
            del self._plans[key]

    async def resolve(self, ref: str) -> ResolvedConfig:
        """The compiled plan of ``id`` (latest) or ``id@version``; NotFound names the id."""
        config_id, version = split_config_ref(ref)
        if version is None:
            cached = self._latest.get(config_id)
            if cached and time.monotonic() - cached[1] < LATEST_TTL_SECONDS:
                version = cached[0]
        if version is not None and (config_id, version) in self._plans:
            return self._plans[(config_id, version)]
        record = await self._store.get_config(config_id, version)
        resolved = ResolvedConfig(record.id, record.version, self.compile(self._unseal(record)))
        self._plans[(record.id, record.version)] = resolved
        if version is None:
            self._latest[config_id] = (record.version, time.monotonic())
        return resolved

    @staticmethod
    def to_proto(record: ConfigRecord) -> configs_pb2.Config:
        """The API view of a saved config (api_key values are never included)."""
        message = configs_pb2.Config(id=record.id, name=record.name, version=record.version,
                                     config=parse_config(record.document))
        message.create_time.FromDatetime(record.create_time)
        message.first_create_time.FromDatetime(record.first_create_time)
        return message
