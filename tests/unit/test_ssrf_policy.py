"""The SSRF policy: which upstream URLs and resolved addresses the gateway may reach.

Non-public addresses are refused in every spelling a resolver accepts; each generated spelling is
first checked against the system resolver, so the test proves what a connect would really reach.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagegateway_server.domain.errors import InvalidArgument
from imagegateway_server.security.upstream_hosts import UpstreamHostPolicy, is_public, parse_address

NON_PUBLIC_V4 = [
    ipaddress.IPv4Network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "0.0.0.0/8",
        "100.64.0.0/10",
        "224.0.0.0/4",
        "240.0.0.0/4",
    )
]
EMPTY = UpstreamHostPolicy()


def _resolves_to(spelling: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """What the system resolver makes of a numeric host (no DNS query is sent)."""
    info = socket.getaddrinfo(spelling, 443, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    return ipaddress.ip_address(str(info[0][4][0]).split("%")[0])


@st.composite
def non_public_v4(draw: st.DrawFn) -> ipaddress.IPv4Address:
    net = draw(st.sampled_from(NON_PUBLIC_V4))
    return net[draw(st.integers(0, net.num_addresses - 1))]


@st.composite
def v4_spelling(draw: st.DrawFn, address: ipaddress.IPv4Address) -> str:
    """One of the spellings inet_aton accepts: parts in decimal, octal or hex, 1-4 parts."""
    value = int(address)
    octets = list(address.packed)
    shape = draw(st.sampled_from(["dotted", "int", "hexint", "mixed", "three", "two"]))
    if shape == "int":
        return str(value)
    if shape == "hexint":
        return hex(value)
    if shape == "three":
        parts = [octets[0], octets[1], (octets[2] << 8) | octets[3]]
    elif shape == "two":
        parts = [octets[0], value & 0xFFFFFF]
    else:
        parts = octets
    if shape == "dotted":
        return ".".join(map(str, parts))
    spelled = []
    for part in parts:
        form = draw(st.sampled_from(["dec", "oct", "hex"]))
        spelled.append(str(part) if form == "dec" else ("0" + format(part, "o")) if form == "oct" else hex(part))
    return ".".join(spelled)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), address=non_public_v4(), trailing_dot=st.booleans())
def test_every_ipv4_spelling_of_a_non_public_address_is_refused(
    data: st.DataObject, address: ipaddress.IPv4Address, trailing_dot: bool
) -> None:
    spelling = data.draw(v4_spelling(address))
    assert _resolves_to(spelling) == address  # the spelling really means the address
    host = spelling + ("." if trailing_dot else "")
    assert parse_address(host) == address
    for scheme in ("https", "http"):
        with pytest.raises(InvalidArgument) as refused:
            EMPTY.check(f"{scheme}://{host}:8443/v1", param="custom_host")
        assert refused.value.param == "custom_host"


@settings(max_examples=200, deadline=None)
@given(address=non_public_v4(), form=st.sampled_from(["dotted", "hex"]))
def test_ipv4_mapped_ipv6_spellings_of_a_non_public_address_are_refused(
    address: ipaddress.IPv4Address, form: str
) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    spelling = f"::ffff:{address}" if form == "dotted" else mapped.compressed
    assert _resolves_to(spelling) == mapped
    assert not is_public(mapped)
    with pytest.raises(InvalidArgument):
        EMPTY.check(f"https://[{spelling}]/", param="base_url")


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost/",
        "https://localhost./",
        "https://LOCALHOST:443/",
        "https://api.localhost/",
        "https://127.0.0.1/",
        "https://127.1/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0177.0.0.1/",
        "https://0x7f000001/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://[::ffff:7f00:1]/",
        "https://[::127.0.0.1]/",
        "https://[64:ff9b::7f00:1]/",
        "https://[2002:7f00:1::]/",
        "https://[fe80::1%25eth0]/",
        "https://169.254.169.254/",
        "https://[fd00:ec2::254]/",
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://192.168.1.1/",
        "https://0.0.0.0/",
        "https://100.64.0.1/",
        "https://224.0.0.1/",
    ],
)
def test_local_private_and_link_local_hosts_are_refused_unless_listed(url: str) -> None:
    with pytest.raises(InvalidArgument, match="local or private"):
        EMPTY.check(url, param="custom_host")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://8.8.8.8/",
        "https://[2606:4700::1111]/",
        "https://images.example.com:8443/v2/",
    ],
)
def test_public_https_hosts_are_allowed_without_a_listing(url: str) -> None:
    assert EMPTY.check(url, param="custom_host") == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://api.openai.com/v1", "http://8.8.8.8/", "http://images.example.com/"])
def test_plain_http_is_refused_for_unlisted_hosts(url: str) -> None:
    with pytest.raises(InvalidArgument, match="plain http is allowed only for listed hosts"):
        EMPTY.check(url, param="base_url")


def test_listed_address_allows_http_in_any_spelling_of_it() -> None:
    policy = UpstreamHostPolicy(["127.0.0.1"])
    for host in ("127.0.0.1", "2130706433", "0x7f.1", "127.0.0.1.", "[::ffff:127.0.0.1]"):
        assert policy.check(f"http://{host}:8080/v1", param="custom_host") == f"http://{host}:8080/v1"
    with pytest.raises(InvalidArgument):
        policy.check("http://127.0.0.2:8080/", param="custom_host")


def test_host_port_entries_bind_only_that_port() -> None:
    policy = UpstreamHostPolicy(["internal.example:8080", "10.0.0.5:9000", "[fd00::5]:7000"])
    assert policy.check("http://internal.example:8080", param="p") == "http://internal.example:8080"
    assert policy.check("http://internal.example.:8080/", param="p") == "http://internal.example.:8080"
    assert policy.check("http://10.0.0.5:9000", param="p") == "http://10.0.0.5:9000"
    assert policy.check("http://[fd00::5]:7000", param="p") == "http://[fd00::5]:7000"
    for url in ("http://internal.example:8081", "https://10.0.0.5/", "http://[fd00::5]:7001"):
        with pytest.raises(InvalidArgument):
            policy.check(url, param="p")


def test_cidr_entries_allow_every_address_inside() -> None:
    policy = UpstreamHostPolicy(["10.20.0.0/16", "fd00:1::/64"])
    assert policy.check("http://10.20.3.4:81", param="p") == "http://10.20.3.4:81"
    assert policy.check("http://[fd00:1::9]", param="p") == "http://[fd00:1::9]"
    with pytest.raises(InvalidArgument):
        policy.check("http://10.21.0.1", param="p")


def test_listed_names_match_case_insensitively_and_with_a_trailing_dot() -> None:
    policy = UpstreamHostPolicy(["Emulator.Internal."])
    assert policy.check("http://emulator.internal/v1", param="p") == "http://emulator.internal/v1"
    assert policy.check("http://EMULATOR.internal./v1", param="p") == "http://EMULATOR.internal./v1"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://api.openai.com/", r"http\(s\) URL"),
        ("https:///v1", r"http\(s\) URL"),
        ("https://user:pass@api.openai.com/", "credentials"),
        ("https://api.openai.com@127.0.0.1/", "credentials"),
        ("https://api.openai.com/v1?x=1", "query or a fragment"),
        ("https://api.openai.com/v1#frag", "query or a fragment"),
        ("https://api.openai.com:99999/", "invalid port"),
        ("https://api.openai.com\\@127.0.0.1/", "credentials|backslashes"),
    ],
)
def test_malformed_urls_are_refused_naming_the_field(url: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why) as refused:
        EMPTY.check(url, param="targets[0].custom_host")
    assert refused.value.param == "targets[0].custom_host"


@pytest.mark.parametrize("entry", ["not a host", "10.0.0.0/33", "host:port", "host:0", "[::1]x"])
def test_a_bad_allow_list_entry_is_a_startup_error_naming_it(entry: str) -> None:
    with pytest.raises(ValueError, match="IMAGEGW_ALLOWED_UPSTREAM_HOSTS"):
        UpstreamHostPolicy([entry])


def test_connect_time_check_refuses_private_answers_for_unlisted_names() -> None:
    policy = UpstreamHostPolicy(["10.9.0.0/16", "trusted.internal"])
    public, loopback, listed = (ipaddress.ip_address(a) for a in ("93.184.216.34", "127.0.0.1", "10.9.1.1"))
    assert policy.refused_addresses("images.example.com", 443, [public]) == []
    assert policy.refused_addresses("images.example.com", 443, [public, loopback]) == [loopback]
    assert policy.refused_addresses("images.example.com", 443, [listed]) == []
    # A listed name is trusted wherever it resolves: the operator named it.
    assert policy.refused_addresses("trusted.internal", 443, [loopback]) == []
    assert policy.refused_addresses("127.0.0.1", 443, [loopback]) == [loopback]


@settings(max_examples=300, deadline=None)
@given(address=st.ip_addresses())
def test_public_means_globally_routable_and_unicast(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    if is_public(address):
        assert address.is_global and not address.is_multicast
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            assert address.ipv4_mapped.is_global
    if address.version == 4 and any(address in net for net in NON_PUBLIC_V4):
        assert not is_public(address)


def test_decisions_are_cached_per_scheme_host_and_port() -> None:
    policy = UpstreamHostPolicy()
    for _ in range(3):
        assert policy.refusal_for_url("https", "api.openai.com", 443) is None
    assert policy.refusal_for_url.cache_info().hits == 2
