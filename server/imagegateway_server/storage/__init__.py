"""Persistent state: the backend-neutral Store interface, its records, and its backends."""

from imagegateway_server.storage.base import Store
from imagegateway_server.storage.factory import open_store, store_for_url
from imagegateway_server.storage.records import (
    ApiKeyRecord,
    ConfigRecord,
    LogFilter,
    LogRecord,
    Page,
    VirtualKeyRecord,
)

__all__ = [
    "ApiKeyRecord",
    "ConfigRecord",
    "LogFilter",
    "LogRecord",
    "Page",
    "Store",
    "VirtualKeyRecord",
    "open_store",
    "store_for_url",
]
