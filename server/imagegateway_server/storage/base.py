"""The store interface: configs, virtual keys, API keys and request logs, backend-neutral.

Backends (SQLite now, PostgreSQL later) implement ``Store``. They speak only the dataclasses of
``records``: times are timezone-aware datetimes (returned in UTC; a naive datetime is a
programming error and raises ValueError), documents are opaque text, secrets opaque bytes.
Unknown ids raise ``NotFound`` and taken ids ``AlreadyExists``, each naming the id. Listings take
``page_size`` (0 = default, capped at the maximum) and an opaque ``page_token`` from the previous
page ("" for the first); a token from another listing raises ``InvalidArgument``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from imagegateway_server.storage.analytics import AnalyticsQuery, AnalyticsResult
from imagegateway_server.storage.records import (
    ApiKeyRecord,
    ConfigRecord,
    LogFilter,
    LogRecord,
    Page,
    SpendTotals,
    VirtualKeyRecord,
)


class Store(Protocol):
    """Persistent state of the gateway. Safe to share between tasks of one event loop."""

    async def open(self) -> None:
        """Connects, and brings the schema up to date (refusing a schema newer than the code)."""
        ...

    async def close(self) -> None:
        """Closes every connection; idempotent."""
        ...

    async def schema_version(self) -> int:
        """The highest migration applied; also the cheap read that tells whether the database answers."""
        ...

    # Saved configs: versioned; an update is a new version, old versions stay readable.

    async def create_config(self, record: ConfigRecord) -> ConfigRecord:
        """Saves version 1 of a new config and returns it as stored.

        ``record.version`` and ``record.first_create_time`` are ignored: the stored record has
        version 1 and ``first_create_time == create_time``. AlreadyExists if the id is taken, or
        the name (another config's latest version has it; ``param`` is ``name``).
        """
        ...

    async def add_config_version(self, record: ConfigRecord) -> ConfigRecord:
        """Saves the next version of an existing config, atomically, and returns it as stored.

        The store assigns ``version`` (latest + 1) and ``first_create_time``; the values passed
        in are ignored. NotFound if the id is unknown; AlreadyExists (``param`` ``name``) if another
        config's latest version has the name.
        """
        ...

    async def get_config(self, config_id: str, version: int | None = None) -> ConfigRecord:
        """The given version, or the latest when ``version`` is None. NotFound otherwise."""
        ...

    async def list_configs(self, page_size: int = 0, page_token: str = "") -> Page[ConfigRecord]:
        """The latest version of each config, ordered by id."""
        ...

    async def delete_config(self, config_id: str) -> None:
        """Deletes every version. NotFound if the id is unknown."""
        ...

    # Virtual keys.

    async def create_virtual_key(self, record: VirtualKeyRecord) -> None:
        """AlreadyExists if the id is taken."""
        ...

    async def get_virtual_key(self, virtual_key_id: str) -> VirtualKeyRecord:
        """NotFound if the id is unknown."""
        ...

    async def list_virtual_keys(self, page_size: int = 0, page_token: str = "") -> Page[VirtualKeyRecord]:
        """Ordered by id."""
        ...

    async def update_virtual_key_secret(
        self,
        virtual_key_id: str,
        sealed_secret: bytes,
        rotate_time: datetime,
        public_credential_fields: Mapping[str, str] | None = None,
    ) -> VirtualKeyRecord:
        """Replaces the sealed secret and the public credential fields (None: the sealed secret is a
        bare API key, the format before typed credentials) and returns the updated record. NotFound
        if unknown."""
        ...

    async def delete_virtual_key(self, virtual_key_id: str) -> None:
        """NotFound if the id is unknown."""
        ...

    async def all_virtual_keys_sealed(self) -> list[VirtualKeyRecord]:
        """Every virtual key, for re-wrapping secrets under a new master key."""
        ...

    async def replace_virtual_key_sealed_secret(self, virtual_key_id: str, expected: bytes, sealed: bytes) -> bool:
        """Swaps the sealed secret for ``sealed`` if it is still ``expected`` (rotate_time kept);
        False if it changed meanwhile or the key is gone. For master-key rotation beside live gateways."""
        ...

    async def all_config_versions_sealed(self) -> list[ConfigRecord]:
        """Every version of every config that holds sealed secrets, for master-key rotation."""
        ...

    async def replace_config_sealed_secrets(self, config_id: str, version: int, expected: bytes, sealed: bytes) -> bool:
        """Swaps one version's sealed secrets for ``sealed`` if they are still ``expected``;
        False if they changed meanwhile or the version is gone."""
        ...

    # Gateway API keys.

    async def create_api_key(self, record: ApiKeyRecord) -> None:
        """AlreadyExists if the id or the key hash is taken."""
        ...

    async def create_first_api_key(self, record: ApiKeyRecord) -> bool:
        """Writes the record only if no key exists at all (revoked ones count), deciding in one
        transaction that every process sharing the database serialises on; True if it was written.
        Replicas starting together on an empty database make exactly one bootstrap key this way."""
        ...

    async def get_api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        """The key whose current or previous secret has this SHA-256 hex digest, revoked or not
        (the caller decides whether a previous secret is still accepted); None if there is none."""
        ...

    async def list_api_keys(self, page_size: int = 0, page_token: str = "") -> Page[ApiKeyRecord]:
        """Oldest first (by create time, then id), revoked keys included."""
        ...

    async def revoke_api_key(self, api_key_id: str, when: datetime) -> ApiKeyRecord:
        """Marks the key revoked (an earlier revoke time is kept) and returns it. NotFound if unknown."""
        ...

    async def rotate_api_key(
        self,
        api_key_id: str,
        key_hash: str,
        display_prefix: str,
        rotate_time: datetime,
        previous_key_expire_time: datetime,
    ) -> ApiKeyRecord:
        """Gives the key a new secret, atomically, and returns it as stored: the current hash becomes
        ``previous_key_hash`` (accepted until ``previous_key_expire_time``), replacing any earlier
        one. NotFound if unknown; FailedPrecondition if revoked."""
        ...

    async def delete_api_key(self, api_key_id: str) -> ApiKeyRecord:
        """Deletes the key and returns it as it was; request logs naming it are kept. NotFound if
        unknown; FailedPrecondition if it is the last unrevoked admin key (checked in the same
        transaction, so two concurrent deletes cannot both pass)."""
        ...

    async def count_api_keys(self) -> int:
        """How many keys exist, revoked ones included."""
        ...

    # Request logs.

    async def append_logs(self, records: Sequence[LogRecord]) -> None:
        """Writes the records in one transaction. A record whose id is already stored is skipped,
        so a writer may retry a batch whose outcome it does not know."""
        ...

    async def get_log(self, log_id: str) -> LogRecord:
        """NotFound if the id is unknown."""
        ...

    async def list_logs(
        self, log_filter: LogFilter | None = None, page_size: int = 0, page_token: str = ""
    ) -> Page[LogRecord]:
        """Matching records, newest first (by create time, then id, both descending)."""
        ...

    async def prune_logs(self, older_than: datetime | None = None, keep_max: int | None = None) -> int:
        """Deletes records created before ``older_than``, then all but the newest ``keep_max``
        (None: no such limit); returns how many were deleted. A negative ``keep_max`` is a ValueError."""
        ...

    async def spend_since(self, since: datetime) -> SpendTotals:
        """The ``cost_usd`` of records created at or after ``since``, summed by caller key id and by
        virtual key id (records without a virtual key are left out of the second); keys that spent
        nothing are left out."""
        ...

    async def aggregate_logs(self, query: AnalyticsQuery) -> AnalyticsResult:
        """Analytics of the records created in the query's range that match its filter: one row per
        group with totals and every bucket (empty ones zero), as ``storage/analytics.py`` defines them.
        Every count and the cost agree exactly with the records, whether read from rollups or raw;
        percentiles are exact when no rollup serves the query, else within
        ``latency_histogram.LATENCY_RELATIVE_ERROR`` (see ``storage/analytics_rollup.py``)."""
        ...

    async def aggregate_logs_together(self, queries: Sequence[AnalyticsQuery]) -> list[AnalyticsResult]:
        """``aggregate_logs`` of each query, in order, all read from one snapshot of the log, so the
        answers of one view (a chart and its tables) count the same requests."""
        ...

    async def roll_up_logs(self, max_rows: int = 5000) -> int:
        """Adds up to ``max_rows`` records not rolled up yet to the analytics rollups, oldest first,
        in one transaction; returns how many. The store runs this in the background every few
        seconds; tools and tests call it to catch up at once."""
        ...
