"""Where webhook deliveries may go: the rules that keep merchants from aiming our worker at internal hosts.

A merchant registers the URL, so without these rules any merchant could make the scheduler POST to the
cloud metadata service (169.254.169.254), a localhost admin port or the cluster's private ranges (SSRF).
The URL is checked when it is registered (a clear 422 for the merchant) and every resolved address is
checked again at delivery time, because the name's DNS answer can change after registration.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Named so the merchant and the delivery log say *why* an address is refused.
BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = (
    (_V4("0.0.0.0/8"), "unspecified"),
    (_V4("10.0.0.0/8"), "private"),
    (_V4("100.64.0.0/10"), "carrier-grade NAT"),
    (_V4("127.0.0.0/8"), "loopback"),
    (_V4("169.254.0.0/16"), "link-local"),
    (_V4("172.16.0.0/12"), "private"),
    (_V4("192.0.0.0/24"), "reserved"),
    (_V4("192.0.2.0/24"), "documentation"),
    (_V4("192.168.0.0/16"), "private"),
    (_V4("198.18.0.0/15"), "benchmarking"),
    (_V4("198.51.100.0/24"), "documentation"),
    (_V4("203.0.113.0/24"), "documentation"),
    (_V4("224.0.0.0/4"), "multicast"),
    (_V4("240.0.0.0/4"), "reserved"),  # includes the broadcast 255.255.255.255
    (_V6("::/128"), "unspecified"),
    (_V6("::1/128"), "loopback"),
    (_V6("::/96"), "reserved"),  # IPv4-compatible (deprecated): ::127.0.0.1 must not slip through
    (_V6("100::/64"), "discard"),
    (_V6("2001:db8::/32"), "documentation"),
    (_V6("fc00::/7"), "unique local"),
    (_V6("fe80::/10"), "link-local"),
    (_V6("fec0::/10"), "site-local"),
    (_V6("ff00::/8"), "multicast"),
)

# IPv6 forms that carry an IPv4 address the network will actually reach: judged by that address.
_NAT64 = _V6("64:ff9b::/96")
_SIX_TO_FOUR = _V6("2002::/16")


def blocked_reason(address: IPAddress) -> str | None:
    """Why a delivery must not go to this address (`None` = a public address)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = blocked_reason(embedded)
        return None if reason is None else f"{reason} (as {address})"
    for network, reason in BLOCKED_NETWORKS:
        if address.version == network.version and address in network:
            return f"{reason} address {address}"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def ip_literal(host: str) -> IPAddress | None:
    """The address if `host` is an IP literal (`[::1]` with or without brackets), else `None`."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]").split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class EgressPolicy:
    """What operators allow: production keeps both off; dev and test rigs deliver to local receivers."""

    allow_http: bool = False
    allow_private_networks: bool = False


def url_problem(url: str, policy: EgressPolicy) -> str | None:
    """Why an endpoint URL may not be registered (`None` = acceptable)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as error:
        return f"not a valid URL ({error})"
    allowed = ("https", "http") if policy.allow_http else ("https",)
    if parts.scheme not in allowed:
        return "must use https" if not policy.allow_http else "must use https or http"
    if "@" in parts.netloc:
        return "must not carry credentials (user:password@); authenticate with the signing secret"
    host = parts.hostname
    if not host:
        return "must name a host"
    address = ip_literal(host)
    if address is not None and not policy.allow_private_networks:
        reason = blocked_reason(address)
        if reason is not None:
            return f"must not point at a {reason}"
    return None


def addresses_problem(addresses: Iterable[IPAddress], policy: EgressPolicy) -> str | None:
    """Why a delivery must not connect, judging every address the name resolved to.

    Any blocked address refuses the whole name: a resolver answer mixing a public and a private address
    is how a rebinding attack gets a second connection to land inside.
    """
    found = list(addresses)
    if not found:
        return "the host resolved to no address"
    if policy.allow_private_networks:
        return None
    for address in found:
        reason = blocked_reason(address)
        if reason is not None:
            return f"the host resolves to a {reason}"
    return None
