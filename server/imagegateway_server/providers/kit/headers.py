"""The headers an adapter sends: the caller's forwarded ones overlaid by its own, all checked sendable."""

from __future__ import annotations

import re
from collections.abc import Mapping

from multidict import CIMultiDict

from imagegateway_server.domain.errors import ErrorKind, ProviderError

_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Checked by the regex engine, not character by character in Python: every header of every upstream call.
_SENDABLE_VALUE = re.compile(r"[\t\x20-\x7e]*")


def header_value_ok(value: str) -> bool:
    """Whether ``value`` can travel in an HTTP/1.1 header (visible ASCII, spaces and tabs)."""
    return _SENDABLE_VALUE.fullmatch(value) is not None


def request_headers(provider: str, forwarded: Mapping[str, str], own: Mapping[str, str]) -> CIMultiDict[str]:
    """``forwarded`` headers overlaid by the adapter's ``own`` (auth wins); unsendable ones refused.

    Names compare case-insensitively, so a forwarded ``authorization`` cannot ride along with ours.
    A bad ``authorization`` value is an AUTHENTICATION error whose message never shows the key.
    """
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in (*forwarded.items(), *own.items()):
        if _TOKEN.match(name) and header_value_ok(value):
            headers[name] = value
        elif name.lower() == "authorization":
            raise ProviderError(
                ErrorKind.AUTHENTICATION,
                f"{provider}: the API key contains characters that cannot be sent in an HTTP header",
                provider=provider,
                status_code=401,
                code="invalid_api_key",
            )
        else:
            raise ProviderError(
                ErrorKind.BAD_REQUEST,
                f"{provider}: header {name!r} cannot be sent: only visible ASCII is allowed",
                provider=provider,
                status_code=400,
                code="invalid_value",
                param=name,
            )
    return headers
