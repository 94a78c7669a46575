"""Decides which upstream hosts and addresses the gateway may send a request to (the SSRF policy).

The providers' public hosts (each provider folder declares its own, ``ProviderSpec.public_hosts``)
are always allowed over https; an entry ``*.suffix`` (Azure's ``*.openai.azure.com``, one host per
customer resource) allows every name below ``suffix``, not ``suffix`` itself. Anything else must be on
IMAGEGW_ALLOWED_UPSTREAM_HOSTS (hosts, host:port or CIDRs); loopback, private, link-local and
other non-public addresses are refused unless listed, and plain http is allowed only for listed
hosts. Addresses are recognised in every spelling a resolver accepts (``2130706433``,
``0x7f.1``, ``0177.0.0.1``, ``127.1``, ``[::ffff:127.0.0.1]``, trailing dots), so no spelling
slips past the checks.

The policy is applied three times: ``check`` when a URL is saved or received (custom_host,
virtual-key base URL), ``refusal_for_url`` on every request the upstream client sends, and
``refused_addresses`` at connect time, on the addresses DNS actually returned
(``security.ssrf_transport``), so a name that later resolves somewhere else gets nowhere.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.providers.registry import public_provider_hosts

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What inet_aton accepts: 1-4 dot-separated decimal, octal (0...) or hex (0x...) parts.
_LEGACY_IPV4 = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")
# Deprecated IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) addresses embed an IPv4
# address a host may reach.
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"),)
# Teredo, ORCHID and the local-use NAT64 prefix (RFC 8215), whose IPv4 position varies.
_NEVER_PUBLIC_V6 = (
    ipaddress.IPv6Network("2001::/32"),
    ipaddress.IPv6Network("2001:10::/28"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?")
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DECISION_CACHE = 4096


def canonical_name(host: str) -> str:
    """A host as compared against the list: lower case, no brackets, no trailing dot."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") and not host.endswith("..") else host


def parse_address(host: str) -> IPAddress | None:
    """The IP address ``host`` spells, in any form a resolver accepts; None for a name."""
    name = canonical_name(host)
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        pass
    if _LEGACY_IPV4.fullmatch(name):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(name))
        except OSError:
            return None
    return None


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (not loopback, private, link-local, ...)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public(address.sixtofour) and address.is_global
        if address in _IPV4_COMPATIBLE or any(address in net for net in _NEVER_PUBLIC_V6):
            return False
        if any(address in net for net in _NAT64):
            return is_public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address.is_global and not address.is_multicast


def is_local_name(name: str) -> bool:
    """Names that always mean this machine (RFC 6761), whatever DNS says."""
    return name in _LOCAL_NAMES or name.endswith(".localhost")


class UpstreamHostPolicy:
    """The allow list, parsed once; every decision is a pure function of it and the providers' hosts.

    ``provider_hosts`` are the public hosts always allowed over https (default: every discovered
    provider's ``public_hosts``); ``*.suffix`` entries allow any name below ``suffix``.
    """

    def __init__(self, allowed: Iterable[str] = (), *, provider_hosts: Iterable[str] | None = None) -> None:
        self.provider_hosts = frozenset(
            canonical_name(host) for host in (public_provider_hosts() if provider_hosts is None else provider_hosts)
        )
        # ".openai.azure.com" for "*.openai.azure.com": matched as a name's ending, after at least one label.
        self._provider_suffixes = tuple(sorted(host[1:] for host in self.provider_hosts if host.startswith("*.")))
        hosts: set[str] = set()
        host_ports: set[tuple[str, int]] = set()
        networks: list[IPNetwork] = []
        address_ports: set[tuple[IPAddress, int]] = set()
        for raw in allowed:
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                if "/" in entry:
                    networks.append(ipaddress.ip_network(canonical_name(entry), strict=False))
                    continue
                host, port = _split_host_port(entry)
            except ValueError:
                raise ValueError(
                    f"IMAGEGW_ALLOWED_UPSTREAM_HOSTS: {raw.strip()!r} is not a host, host:port or CIDR"
                ) from None
            address = parse_address(host)
            if address is None and not _HOST_NAME.fullmatch(host):
                raise ValueError(f"IMAGEGW_ALLOWED_UPSTREAM_HOSTS: {raw.strip()!r} is not a host, host:port or CIDR")
            if address is not None and port is None:
                networks.append(ipaddress.ip_network(address))
            elif address is not None and port is not None:
                address_ports.add((address, port))
            elif port is None:
                hosts.add(canonical_name(host))
            else:
                host_ports.add((canonical_name(host), port))
        self._hosts = frozenset(hosts)
        self._host_ports = frozenset(host_ports)
        self._networks = tuple(networks)
        self._address_ports = frozenset(address_ports)
        # Decisions depend only on (scheme, host, port): cache them, every request asks.
        self.refusal_for_url = functools.lru_cache(maxsize=_DECISION_CACHE)(self._refusal_for_url)

    def _address_listed(self, address: IPAddress, port: int) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            if self._address_listed(address.ipv4_mapped, port):
                return True
        if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
            address = ipaddress.IPv6Address(str(address).split("%", 1)[0])
        return (address, port) in self._address_ports or any(address in net for net in self._networks)

    def name_listed(self, host: str, port: int) -> bool:
        """Whether ``host`` (a name, not an address) is on the list, for any port or this one."""
        name = canonical_name(host)
        return name in self._hosts or (name, port) in self._host_ports

    def listed(self, host: str, port: int) -> bool:
        """Whether ``host`` (a name or an address in any spelling) with ``port`` is on the list."""
        address = parse_address(host)
        if address is not None:
            return self._address_listed(address, port)
        return self.name_listed(host, port)

    def _is_provider_host(self, name: str) -> bool:
        """Whether a canonical host name is a provider's public host, exactly or below a ``*.`` suffix."""
        if name in self.provider_hosts:
            return True
        return any(name.endswith(suffix) and len(name) > len(suffix) for suffix in self._provider_suffixes)

    def _refusal_for_url(self, scheme: str, host: str, port: int) -> str | None:
        """Why a request to scheme://host:port is refused, or None when it is allowed."""
        if scheme not in _DEFAULT_PORTS or not host:
            return "must be an http(s) URL with a host"
        if self.listed(host, port):
            return None
        name = canonical_name(host)
        if scheme == "https" and self._is_provider_host(name):
            return None
        if scheme != "https":
            return (
                f"host {name!r} is not on IMAGEGW_ALLOWED_UPSTREAM_HOSTS; plain http is allowed only for listed hosts"
            )
        address = parse_address(host)
        if (address is not None and not is_public(address)) or (address is None and is_local_name(name)):
            return f"host {name!r} is a local or private address not on IMAGEGW_ALLOWED_UPSTREAM_HOSTS"
        return None

    def check(self, url: str, *, param: str) -> str:
        """Returns the URL without a trailing slash, or raises InvalidArgument naming ``param``."""
        text = url.strip()
        try:
            parts = urlsplit(text)
        except ValueError:  # an unbalanced "[" or "]" in the host
            raise InvalidArgument("must be an http(s) URL with a host", param=param) from None
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise InvalidArgument("must be an http(s) URL with a host", param=param)
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise InvalidArgument("must not carry credentials", param=param)
        if parts.query or parts.fragment or "#" in text or "?" in text:
            raise InvalidArgument("must not have a query or a fragment", param=param)
        if any(c.isspace() or c == "\\" for c in text):
            raise InvalidArgument("must not contain spaces or backslashes", param=param)
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise InvalidArgument("has an invalid port", param=param) from None
        refusal = self.refusal_for_url(parts.scheme, parts.hostname, port)
        if refusal is not None:
            raise InvalidArgument(refusal, param=param)
        return text.rstrip("/")

    def refused_addresses(self, host: str, port: int, addresses: Iterable[IPAddress]) -> list[IPAddress]:
        """The resolved addresses of ``host`` a connection may not go to.

        A name on the list is trusted wherever it resolves (the operator named it); otherwise
        every address must be public or itself listed.
        """
        if parse_address(host) is None and self.name_listed(host, port):
            return []
        return [a for a in addresses if not is_public(a) and not self._address_listed(a, port)]


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ValueError(entry)
        return host, _port(rest[1:]) if rest else None
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, _port(port)
    return entry, None


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(text)
    return port
