"""Which webhook URLs and resolved addresses the egress rules refuse (SSRF guard)."""

from __future__ import annotations

import ipaddress

import pytest

from content.domain.egress import EgressPolicy, addresses_problem, blocked_reason, url_problem

STRICT = EgressPolicy()
DEV = EgressPolicy(allow_http=True, allow_private_networks=True)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fc00::1", "unique local"),
        ("fd12:3456::1", "unique local"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.0.0.1", "private"),
        ("::127.0.0.1", "reserved"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ],
)
def test_internal_addresses_are_blocked_with_a_reason(address: str, reason: str) -> None:
    found = blocked_reason(ipaddress.ip_address(address))
    assert found is not None
    assert found.startswith(reason)


@pytest.mark.parametrize(
    "address",
    ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"],
)
def test_public_addresses_pass(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.0.0.5:8443/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[fd00::1]/hook", "unique local"),
        ("https://100.100.100.200/", "carrier-grade NAT"),
        ("http://example.com/hook", "https"),
        ("ftp://example.com/hook", "https"),
        ("https://user:secret@example.com/hook", "credentials"),
        ("https://@example.com/hook", "credentials"),
        ("https:///hook", "host"),
    ],
)
def test_strict_policy_refuses_the_url(url: str, words: str) -> None:
    problem = url_problem(url, STRICT)
    assert problem is not None
    assert words in problem


def test_names_and_public_addresses_are_accepted_at_registration() -> None:
    assert url_problem("https://hooks.example.com/meadow", STRICT) is None
    assert url_problem("https://93.184.216.34:8443/x?y=1", STRICT) is None
    # A name is judged by what it resolves to when delivering, not here.
    assert url_problem("https://localhost/hook", STRICT) is None


def test_escape_hatches_are_separate() -> None:
    http_only = EgressPolicy(allow_http=True)
    assert url_problem("http://example.com/hook", http_only) is None
    assert url_problem("http://127.0.0.1:8080/hook", http_only) is not None
    assert url_problem("http://127.0.0.1:8080/hook", DEV) is None
    assert url_problem("https://user:pw@127.0.0.1/hook", DEV) is not None  # credentials never


def test_any_blocked_resolved_address_refuses_the_name() -> None:
    public, metadata = ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("169.254.169.254")
    assert addresses_problem([public], STRICT) is None
    problem = addresses_problem([public, metadata], STRICT)
    assert problem is not None
    assert "link-local" in problem
    assert addresses_problem([public, metadata], DEV) is None
    assert addresses_problem([], DEV) is not None
