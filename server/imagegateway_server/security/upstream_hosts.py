"""Decides which base URLs a custom_host or a virtual key may point the gateway at.

The providers' public hosts are always allowed over https. Anything else must be on
IMAGEGW_ALLOWED_UPSTREAM_HOSTS (hosts, host:port or CIDRs); loopback, private and link-local
addresses are refused unless listed, and plain http is allowed only for listed hosts.
The connect-time DNS check comes with the SSRF issue; this is the save-time check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from imagegateway_server.domain.errors import InvalidArgument

PUBLIC_PROVIDER_HOSTS = frozenset({"api.openai.com", "api.stability.ai"})


class UpstreamHostPolicy:
    """The allow list, parsed once."""

    def __init__(self, allowed: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._host_ports: set[tuple[str, int]] = set()
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allowed:
            entry = entry.strip().lower()
            if not entry:
                continue
            if "/" in entry:
                self._networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            host, port = _split_host_port(entry)
            if port is None:
                self._hosts.add(host)
            else:
                self._host_ports.add((host, port))

    def _listed(self, host: str, port: int) -> bool:
        if host in self._hosts or (host, port) in self._host_ports:
            return True
        address = _as_ip(host)
        return address is not None and any(address in net for net in self._networks)

    def check(self, url: str, *, param: str) -> str:
        """Returns the URL without a trailing slash, or raises InvalidArgument naming ``param``."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidArgument("must be an http(s) URL with a host", param=param)
        if parts.username or parts.password:
            raise InvalidArgument("must not carry credentials", param=param)
        host = parts.hostname.lower()
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise InvalidArgument("has an invalid port", param=param) from None
        if self._listed(host, port):
            return url.strip().rstrip("/")
        if parts.scheme != "https":
            raise InvalidArgument(
                f"host {host!r} is not on IMAGEGW_ALLOWED_UPSTREAM_HOSTS; plain http is allowed only for listed hosts",
                param=param,
            )
        address = _as_ip(host)
        if host == "localhost" or host.endswith(".localhost") or (address is not None and not address.is_global):
            raise InvalidArgument(
                f"host {host!r} is a local or private address not on IMAGEGW_ALLOWED_UPSTREAM_HOSTS",
                param=param,
            )
        return url.strip().rstrip("/")


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, None


def _as_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
