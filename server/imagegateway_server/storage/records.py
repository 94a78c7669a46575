"""The rows the store keeps, as frozen dataclasses every backend reads and writes.

Times are timezone-aware UTC datetimes; documents and payloads are opaque JSON text; sealed
secrets are opaque bytes made by the vault. Nothing here knows which database holds them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Generic, TypeVar

from imagegateway_server.domain.limits import NO_LIMITS, Limits

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigRecord:
    """One version of a saved routing config.

    ``document`` is the config's JSON text with every ``api_key`` value removed; those values
    travel sealed in ``sealed_secrets`` (associated data ``config:<id>@<version>``).
    ``first_create_time`` is when version 1 was saved.
    """

    id: str
    name: str
    version: int
    document: str
    sealed_secrets: bytes | None = dataclasses.field(repr=False)
    create_time: datetime
    first_create_time: datetime


@dataclasses.dataclass(frozen=True, slots=True)
class VirtualKeyRecord:
    """A provider account: the provider, an optional base URL and its credential, the secret part sealed.

    ``sealed_secret`` is sealed with associated data ``virtual_key:<id>``; it holds the credential's
    secret fields as one JSON object, and ``public_credential_fields`` its other fields. A row
    written before credentials were typed has ``public_credential_fields`` None, and its sealed
    secret is the bare API key. ``limits`` are set at creation.
    """

    id: str
    name: str
    provider: str
    base_url: str | None
    sealed_secret: bytes = dataclasses.field(repr=False)
    create_time: datetime
    rotate_time: datetime
    limits: Limits = NO_LIMITS
    public_credential_fields: Mapping[str, str] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """A gateway API key, kept only as the SHA-256 of its plaintext.

    ``scope`` is ``"admin"`` or ``"generate"``; ``display_prefix`` is what may be shown to
    identify the key (``igw_`` and six characters); ``revoke_time`` is set once revoked;
    ``limits`` are set at creation. A rotation replaces ``key_hash`` and ``display_prefix``, sets
    ``rotate_time``, and moves the replaced hash to ``previous_key_hash``, which is accepted until
    ``previous_key_expire_time`` (and kept, no longer accepted, until the next rotation).
    """

    id: str
    name: str
    scope: str
    key_hash: str = dataclasses.field(repr=False)
    display_prefix: str
    create_time: datetime
    revoke_time: datetime | None = None
    limits: Limits = NO_LIMITS
    rotate_time: datetime | None = None
    previous_key_hash: str | None = dataclasses.field(default=None, repr=False)
    previous_key_expire_time: datetime | None = None

    def previous_key_valid_at(self, when: datetime) -> bool:
        """Whether the secret replaced by the last rotation is still accepted at ``when``."""
        return self.previous_key_expire_time is not None and when < self.previous_key_expire_time


@dataclasses.dataclass(frozen=True, slots=True)
class LogRecord:
    """One request log entry. The indexed columns are copied out of ``payload`` for filtering.

    ``virtual_key_id`` (not in the payload's message) is the virtual key of the target that served,
    or of the last one tried when none did ("" for none): the key a request's cost is charged to,
    with ``cost_usd``, so spend per key can be summed without reading payloads.
    """

    id: str
    trace_id: str
    create_time: datetime
    status_code: int
    provider: str
    model: str
    caller_key_id: str
    config_id: str
    fallback_used: bool
    payload: str
    virtual_key_id: str = ""
    cost_usd: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class LogFilter:
    """Conditions on request logs; unset fields do not filter. All set fields must hold.

    ``success`` True keeps 2xx statuses, False keeps the rest. ``start_time`` is inclusive,
    ``end_time`` exclusive.
    """

    trace_id: str | None = None
    status_code: int | None = None
    success: bool | None = None
    provider: str | None = None
    caller_key_id: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    model: str | None = None
    config_id: str | None = None
    fallback_used: bool | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SpendTotals:
    """USD spent since some instant, by gateway key id and by virtual key id (from the request log)."""

    by_caller_key: dict[str, float]
    by_virtual_key: dict[str, float]


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_page_token`` is empty on the last page."""

    items: list[T]
    next_page_token: str
