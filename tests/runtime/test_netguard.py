"""The SSRF guard: internal addresses in every spelling are refused; public ones and allowed hosts pass.

Host names are resolved by this machine's real resolver: "localhost" is the name that resolves to
a loopback address everywhere, so it stands for "a name that leads inside" (the guard has no
pluggable resolver on purpose: it checks what the OS will actually connect to).
"""

from __future__ import annotations

import ipaddress

import pytest

from apps.runtime.executors import http as http_executor
from apps.runtime.executors.base import ToolCallContext, ToolError
from apps.runtime.executors.netguard import address_problem, guard_url, is_allowed_internal, resolve_public
from apps.tools.specs import tool_spec_validate
from tests.runtime.loopback import loopback_server

REFUSED = [
    # IPv4 loopback, in the spellings resolvers accept
    "http://127.0.0.1/",
    "http://127.0.0.1:8080/admin",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.1/",
    "http://0x7f.1/",
    # unspecified ("this host" on Linux)
    "http://0.0.0.0/",
    "http://0/",
    # RFC 1918 private ranges
    "http://10.0.0.5/",
    "http://167772165/",
    "http://012.0.0.5/",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://0xc0a80101/",
    # cloud metadata (link-local)
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/",
    "http://169.254.0.1/",
    # other special IPv4 ranges
    "http://100.64.0.1/",
    "http://100.127.255.254/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://239.255.255.250:1900/",
    "http://255.255.255.255/",
    "http://240.0.0.1/",
    "http://192.0.2.10/",
    "http://192.0.0.170/",
    # IPv6 and IPv6 forms that embed an internal IPv4 address
    "http://[::1]/",
    "http://[0:0:0:0:0:0:0:1]:8000/",
    "http://[::]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::7f00:1]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12::1]/",
    "http://[fec0::1]/",
    "http://[ff02::1]/",
    "http://[64:ff9b::a00:1]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b:1::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:a9fe:a9fe::1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
    "http://[::1%25lo]/",
    # names that resolve inside
    "http://localhost/",
    "http://LocalHost:8000/",
    "https://localhost/",
    # userinfo and parser confusion
    "http://public.example@127.0.0.1/",
    "http://user:password@example.com/",
    "http://example.com\\@127.0.0.1/",
    "http://example.com%40127.0.0.1/",
    "http://loc%61lhost/",
    "http://[127.0.0.1]/",
    "http://127.0.0.1 /",
    "http://127.0.0.1\t/",
    "http://exa mple.com/",
    "http:///etc/passwd",
    "http://example.com:0/",
    "http://bücher.example/",
    # not HTTP
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://example.com/pub",
    "dict://127.0.0.1:11211/stat",
    "ldap://127.0.0.1/",
    "javascript:alert(1)",
    "//example.com/no-scheme",
    "",
]


@pytest.fixture(autouse=True)
def nothing_allowed(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = []
    return settings


@pytest.mark.parametrize("url", REFUSED)
def test_internal_addresses_and_tricks_are_refused(url):
    with pytest.raises(ToolError) as refused:
        guard_url(url)
    assert refused.value.code == "ssrf_refused"
    assert refused.value.retryable is False
    assert refused.value.message.startswith("Refused to call")


@pytest.mark.parametrize(
    "spelling, address",
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("2852039166", "169.254.169.254"),
        ("0", "0.0.0.0"),
    ],
)
def test_what_the_resolver_makes_of_odd_spellings_is_checked_too(spelling, address):
    # Below the spelling check, the resolved address is what counts: the OS reads these as IPv4.
    with pytest.raises(ToolError) as refused:
        resolve_public(spelling, 80)
    assert refused.value.code == "ssrf_refused"
    assert f"resolves to {address}" in refused.value.message


def test_refusal_says_what_is_wrong_and_who_can_allow_it():
    with pytest.raises(ToolError) as refused:
        guard_url("http://10.0.0.5/")
    assert refused.value.message == (
        "Refused to call http://10.0.0.5/: the address 10.0.0.5 is private (RFC 1918). Tools may only reach "
        "public addresses; a platform admin can allow an internal host with FLEETDECK_ALLOWED_INTERNAL_HOSTS."
    )


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://localhost/", "localhost resolves to 127.0.0.1, which is loopback"),
        ("http://169.254.169.254/", "link-local (where cloud metadata services answer"),
        ("http://[::ffff:127.0.0.1]/", "an IPv4-mapped form of 127.0.0.1, which is loopback"),
        ("http://[64:ff9b::a00:1]/", "a NAT64 form of 10.0.0.1, which is private (RFC 1918)"),
        ("http://[2002:7f00:1::]/", "a 6to4 form of 127.0.0.1, which is loopback"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://2130706433/", "non-standard spelling"),
        ("http://user@example.com/", "user name or password"),
        ("gopher://example.com/", "only http:// and https://"),
    ],
)
def test_refusals_name_the_reason(url, words):
    with pytest.raises(ToolError) as refused:
        guard_url(url)
    assert words in refused.value.message


@pytest.mark.parametrize(
    "url, pinned",
    [
        ("https://93.184.215.14/v1/customers?id=5", "93.184.215.14"),
        ("http://8.8.8.8:8080/", "8.8.8.8"),
        ("https://[2606:4700:4700::1111]/dns-query", "2606:4700:4700::1111"),
        ("https://[64:ff9b::5db8:d70e]/", "64:ff9b::5db8:d70e"),
    ],
)
def test_public_addresses_pass_and_are_pinned(url, pinned):
    parsed, address = guard_url(url)
    assert address == pinned
    assert parsed.hostname == pinned


def test_unknown_host_is_a_clear_error_not_a_refusal():
    with pytest.raises(ToolError) as failed:
        guard_url("https://no-such-host.invalid/")
    assert failed.value.code == "host_not_found"
    assert "does not resolve" in failed.value.message


def test_allowlisted_host_passes(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1", "LOCALHOST"]
    assert guard_url("http://127.0.0.1:8000/x")[1] == "127.0.0.1"
    assert guard_url("http://localhost/")[1] in {"127.0.0.1", "::1"}
    # Still only as written: the same address in a legacy spelling, or another loopback, stays refused.
    for url in ("http://2130706433/", "http://127.0.0.2/", "http://[::1]/"):
        with pytest.raises(ToolError):
            guard_url(url)


def test_allowlisted_host_with_port_allows_that_port_only(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1:8000", "[::1]:9000", "crm.internal:8443"]
    assert guard_url("http://127.0.0.1:8000/")[1] == "127.0.0.1"
    assert guard_url("http://[::1]:9000/")[1] == "::1"
    for url in ("http://127.0.0.1:8001/", "http://127.0.0.1/", "http://[::1]/"):
        with pytest.raises(ToolError) as refused:
            guard_url(url)
        assert refused.value.code == "ssrf_refused"
    assert is_allowed_internal("CRM.internal", 8443)
    assert not is_allowed_internal("crm.internal", 443)


def test_allowlisting_a_name_does_not_allow_its_address(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["localhost"]
    with pytest.raises(ToolError):
        guard_url("http://127.0.0.1/")


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.215.14", "2002:5db8:d70e::"]
)
def test_public_addresses_have_no_problem(address):
    assert address_problem(ipaddress.ip_address(address)) is None


def _http_tool(url: str) -> dict:
    return tool_spec_validate({"description": "Read a page.", "kind": "http", "config": {"url": url, "timeout_s": 5}})


def test_redirect_from_an_allowed_server_to_metadata_is_refused_at_the_hop(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]

    def handler(request):
        request.reply(302, "", headers={"Location": "http://169.254.169.254/latest/meta-data"})

    ctx = ToolCallContext(team_id=1, run_id=1, step_index=3, idempotency_key="1:3")
    with loopback_server(handler) as server:
        with pytest.raises(ToolError) as refused:
            http_executor.execute(spec=_http_tool(server.url + "/start"), arguments={}, ctx=ctx)
    assert refused.value.code == "ssrf_refused"
    assert "169.254.169.254" in refused.value.message
    assert [r.path for r in server.requests] == ["/start"]


def test_redirect_to_the_same_address_under_another_name_is_refused(settings):
    settings.FLEETDECK_ALLOWED_INTERNAL_HOSTS = ["127.0.0.1"]
    ctx = ToolCallContext(team_id=1)
    with loopback_server(lambda request: None) as target:
        location = f"http://localhost:{target.port}/"

        def handler(request):
            request.reply(307, "", headers={"Location": location})

        with loopback_server(handler) as server:
            with pytest.raises(ToolError) as refused:
                http_executor.execute(spec=_http_tool(server.url + "/"), arguments={}, ctx=ctx)
    assert refused.value.code == "ssrf_refused"
    assert target.requests == []
