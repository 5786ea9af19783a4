"""The SSRF guard: decide whether a tool may open a connection to a URL, and to which address.

Every executor that opens outbound connections for a tool (HTTP tools, MCP over streamable HTTP)
goes through `guard_url`, then connects to the address it returns and nowhere else. The host is
resolved once here and the connection is pinned to that address, so a DNS answer that changes
between the check and the connect (DNS rebinding) cannot steer the call inside the network.

What is refused: schemes other than http and https, user names or passwords in the URL, host
spellings that parsers read differently (decimal, hex, octal or shortened IPv4, percent-encoding,
backslashes, zone ids, non-ASCII), and any host for which ANY resolved address is not a public
unicast address: loopback, private, link-local (cloud metadata at 169.254.169.254), carrier-grade
NAT, multicast, broadcast, reserved, benchmarking, documentation, and IPv6 forms that embed such an
IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4). A platform admin may allow internal hosts
by name with FLEETDECK_ALLOWED_INTERNAL_HOSTS ("crm.internal", "10.0.0.5", "crm.internal:8443").
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

from .base import ToolError, clip_text

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOWED_SCHEMES = {"http": 80, "https": 443}
REFUSED_CODE = "ssrf_refused"
HOW_TO_ALLOW = (
    "Tools may only reach public addresses; a platform admin can allow an internal host with "
    "FLEETDECK_ALLOWED_INTERNAL_HOSTS."
)

_net4 = ipaddress.IPv4Network
_net6 = ipaddress.IPv6Network

# Checked in order; the first match names the problem. Anything else that ipaddress does not call
# global is refused as well (see address_problem), so this table is for clear messages.
_IPV4_RANGES: list[tuple[ipaddress.IPv4Network, str]] = [
    (_net4("0.0.0.0/8"), "unspecified (0.0.0.0/8, 'this network')"),
    (_net4("127.0.0.0/8"), "loopback (this machine)"),
    (_net4("10.0.0.0/8"), "private (RFC 1918)"),
    (_net4("172.16.0.0/12"), "private (RFC 1918)"),
    (_net4("192.168.0.0/16"), "private (RFC 1918)"),
    (_net4("169.254.0.0/16"), "link-local (where cloud metadata services answer, e.g. 169.254.169.254)"),
    (_net4("100.64.0.0/10"), "shared address space (carrier-grade NAT, RFC 6598)"),
    (_net4("198.18.0.0/15"), "reserved for benchmarking (RFC 2544)"),
    (_net4("192.0.0.0/24"), "reserved for IETF protocol assignments"),
    (_net4("192.0.2.0/24"), "reserved for documentation"),
    (_net4("198.51.100.0/24"), "reserved for documentation"),
    (_net4("203.0.113.0/24"), "reserved for documentation"),
    (_net4("192.88.99.0/24"), "a deprecated 6to4 relay address"),
    (_net4("224.0.0.0/4"), "multicast"),
    (_net4("255.255.255.255/32"), "the broadcast address"),
    (_net4("240.0.0.0/4"), "reserved"),
]
_IPV6_RANGES: list[tuple[ipaddress.IPv6Network, str]] = [
    (_net6("::/128"), "unspecified (::)"),
    (_net6("::1/128"), "loopback (this machine)"),
    (_net6("fc00::/7"), "unique local (private, fc00::/7)"),
    (_net6("fe80::/10"), "link-local (fe80::/10)"),
    (_net6("fec0::/10"), "site-local (fec0::/10, private)"),
    (_net6("ff00::/8"), "multicast"),
    (_net6("64:ff9b:1::/48"), "local-use NAT64 (RFC 8215)"),
    (_net6("100::/64"), "a discard-only address"),
    (_net6("2001::/32"), "a Teredo tunnel address"),
    (_net6("2001:db8::/32"), "reserved for documentation"),
    (_net6("::/8"), "reserved"),
]
_MAPPED = _net6("::ffff:0:0/96")
_COMPATIBLE = _net6("::/96")
_NAT64 = _net6("64:ff9b::/96")
_SIXTOFOUR = _net6("2002::/16")

# The last label of a host name is never all digits or hex with 0x: such a host is a number the
# resolver reads as an IPv4 address in one of the legacy spellings (2130706433, 0x7f000001, 127.1).
_NUMERIC_LABEL_RE = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_NAME_RE = re.compile(r"^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?$")
_UNSAFE_CHAR_RE = re.compile(r"[\x00-\x20\x7f]")


def refuse(message: str) -> ToolError:
    """Return the ToolError for a refused destination (code ssrf_refused, not retryable)."""
    return ToolError(message, code=REFUSED_CODE, retryable=False)


def _embedded_v4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, str] | None:
    """Return the IPv4 address an IPv6 address carries, and how it carries it, if it does."""
    if address in _MAPPED:
        return address.ipv4_mapped, "an IPv4-mapped form of"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "a NAT64 form of"
    if address in _SIXTOFOUR:
        return address.sixtofour, "a 6to4 form of"
    if address in _COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "an IPv4-compatible form of"
    return None


def address_problem(address: IPAddress) -> str | None:
    """Return why a tool may not connect to this address ("private (RFC 1918)"), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "scoped to a network interface"
        embedded = _embedded_v4(address)
        if embedded is not None:
            v4, how = embedded
            problem = address_problem(v4)
            if problem is not None:
                return f"{how} {v4}, which is {problem}"
            if address in _COMPATIBLE:
                return f"{how} {v4} (deprecated, ::/96 is reserved)"
            return None  # a public IPv4 address in a form the network translates; what we checked is what is reached
        ranges = _IPV6_RANGES
    else:
        ranges = _IPV4_RANGES
    for network, problem in ranges:
        if address in network:
            return problem
    # Belt and braces: whatever the standard library knows to be non-public is refused too.
    if address.is_private or address.is_reserved or address.is_multicast or address.is_link_local:
        return "not a public address"
    if address.is_loopback or address.is_unspecified or not address.is_global:
        return "not a public address"
    return None


def _allow_entries() -> list[tuple[str, int | None]]:
    """Return FLEETDECK_ALLOWED_INTERNAL_HOSTS as (host, port or None) pairs, hosts in lowercase."""
    entries = []
    for raw in getattr(settings, "FLEETDECK_ALLOWED_INTERNAL_HOSTS", None) or []:
        entry = str(raw).strip().lower()
        if not entry:
            continue
        host, port = entry, None
        if entry.startswith("["):
            close = entry.find("]")
            host, rest = entry[1:close], entry[close + 1 :]
            if rest.startswith(":") and rest[1:].isdigit():
                port = int(rest[1:])
        elif entry.count(":") == 1:
            name, _, digits = entry.partition(":")
            if digits.isdigit():
                host, port = name, int(digits)
        entries.append((_canonical_host(host), port))
    return entries


def _canonical_host(host: str) -> str:
    """Return host in lowercase, IP literals in their one canonical spelling (so [0::1] matches ::1)."""
    host = host.strip().lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def is_allowed_internal(host: str, port: int) -> bool:
    """Return whether a platform admin allowed this host (as written in the URL) and port."""
    wanted = _canonical_host(host)
    return any(name == wanted and (allowed is None or allowed == port) for name, allowed in _allow_entries())


def _where(host: str, port: int, url: str | None) -> str:
    if url:
        return clip_text(url, 200)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_addresses(host: str, port: int, *, url: str | None = None) -> list[str]:
    """Resolve host once and return every address it has, in the resolver's order, all checked.

    Raise ToolError (code ssrf_refused) if any address is internal and the host is not allowed
    by FLEETDECK_ALLOWED_INTERNAL_HOSTS; code host_not_found if the name does not resolve.
    """
    where = _where(host, port, url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        temporary = isinstance(exc, socket.gaierror) and exc.errno == socket.EAI_AGAIN
        raise ToolError(
            f"Could not call {where}: the host name {host} does not resolve"
            f"{' (the DNS server did not answer; try again)' if temporary else ''}. Check the host in the tool's URL.",
            code="host_not_found",
            retryable=temporary,
        ) from None
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    if not addresses:
        raise ToolError(f"Could not call {where}: {host} has no address.", code="host_not_found")
    if is_allowed_internal(host, port):
        return addresses
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        problem = address_problem(address)
        if problem is None:
            continue
        if _canonical_host(host) == str(address):
            raise refuse(f"Refused to call {where}: the address {address} is {problem}. {HOW_TO_ALLOW}")
        raise refuse(f"Refused to call {where}: {host} resolves to {address}, which is {problem}. {HOW_TO_ALLOW}")
    return addresses


def resolve_public(host: str, port: int, *, url: str | None = None) -> str:
    """Resolve host once, refuse it if any address is internal (unless allowed), return the address to connect to."""
    return resolve_addresses(host, port, url=url)[0]


def check_url(url: str) -> tuple[SplitResult, str, int]:
    """Return (parsed URL, host, port) for a URL a tool may call; refuse ambiguous or non-HTTP URLs.

    This checks the spelling only; resolve_public checks where the host leads.
    """
    shown = clip_text(url, 200)
    if not isinstance(url, str) or not url:
        raise refuse("Refused to call an empty URL: the tool's URL must start with http:// or https://.")
    if _UNSAFE_CHAR_RE.search(url):
        raise refuse(f"Refused to call {shown!r}: the URL contains spaces or control characters; percent-encode them.")
    try:
        parsed = urlsplit(url)
        port = parsed.port
    except ValueError as exc:
        raise refuse(f"Refused to call {shown}: the URL cannot be read ({exc}).") from None
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise refuse(
            f"Refused to call {shown}: only http:// and https:// URLs may be called by tools, not {scheme or 'this'}:."
        )
    netloc = parsed.netloc
    if "@" in netloc:
        raise refuse(
            f"Refused to call {shown}: the URL holds a user name or password before '@'. "
            "Put credentials in a header that refers to a secret, e.g. Authorization: Bearer {{secrets.api_token}}."
        )
    if "\\" in netloc or "%" in netloc:
        raise refuse(
            f"Refused to call {shown}: the host is spelled with '\\' or '%', which URL parsers read differently."
        )
    host = parsed.hostname or ""
    if not host:
        raise refuse(f"Refused to call {shown}: the URL names no host.")
    if not host.isascii():
        raise refuse(f"Refused to call {shown}: write an international host name in its ASCII form (xn--...).")
    if netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise refuse(f"Refused to call {shown}: [{host}] is not an IPv6 address.") from None
    else:
        if not _HOST_NAME_RE.match(host):
            raise refuse(f"Refused to call {shown}: {host!r} is not a valid host name.")
        last_label = host.rstrip(".").rsplit(".", 1)[-1]
        if _NUMERIC_LABEL_RE.match(last_label):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise refuse(
                    f"Refused to call {shown}: {host} is an IPv4 address in a non-standard spelling "
                    "(decimal, hex, octal or shortened), which parsers read differently. "
                    "Write it as four decimal numbers, like 93.184.215.14."
                ) from None
    if port == 0:
        raise refuse(f"Refused to call {shown}: port 0 cannot be called.")
    return parsed, host, port or ALLOWED_SCHEMES[scheme]


def guard_url(url: str) -> tuple[SplitResult, str]:
    """Return (parsed URL, pinned IP) for a URL a tool may call: connect to that IP and no other.

    Raise ToolError with code ssrf_refused when the URL is refused, saying why and how an admin can
    allow an internal host. Send the original host name in the Host header and as TLS server name.
    """
    parsed, addresses = guard_url_addresses(url)
    return parsed, addresses[0]


def guard_url_addresses(url: str) -> tuple[SplitResult, list[str]]:
    """Return (parsed URL, every checked address of its host): like guard_url, for clients that fall back.

    A host with several addresses (IPv6 and IPv4, several A records) may be tried in this order,
    as socket.create_connection would; every one of them passed the guard.
    """
    parsed, host, port = check_url(url)
    return parsed, resolve_addresses(host, port, url=url)
