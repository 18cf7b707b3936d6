"""Which hosts image downloads may reach: the defence against server-side request forgery (SSRF).

Task data is written by anyone who can import tasks, so an image URL must not turn the backend into a
proxy towards internal services (cloud metadata at 169.254.169.254, Redis, admin pages on loopback).
Rules, in order:

1. The configured Label Studio host (scheme, host and port of its URL) is always allowed.
2. Any other host must be listed in ``allowed_hosts``: ``host``, ``host:port``, ``*.example.com``
   (any subdomain) or ``*`` (any host).
3. Every address the host resolves to must be globally routable (not loopback, private, link-local,
   shared, multicast, reserved, unspecified), unless ``allow_private_networks``. An IPv6 address that
   carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, IPv4-translated
   ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo) is
   judged by the IPv4 address it carries: a gateway on the way would deliver it there.

Limitation, stated plainly: the address is checked when the URL is checked, and the HTTP client
resolves the name again when it connects, so a DNS server that answers differently twice (rebinding)
can slip past rule 3. Listing exact hosts in ``allowed_hosts`` instead of ``*`` closes that gap.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import SplitResult


class RefusedHost(Exception):
    """The URL's host is not one downloads may reach."""


def origin(parts: SplitResult) -> tuple[str, str, int]:
    """``(scheme, host, port)`` with the default port filled in: what "the same host" compares."""
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, (parts.hostname or "").lower().rstrip("."), port


def host_listed(host: str, port: int, allowed_hosts: tuple[str, ...]) -> bool:
    """Whether ``host``/``port`` matches an ``allowed_hosts`` entry."""
    for entry in allowed_hosts:
        entry = entry.strip().lower().rstrip(".")
        if not entry:
            continue
        if entry == "*":
            return True
        name, _, eport = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
        if eport and (not eport.isdigit() or int(eport) != port):
            continue
        if name.startswith("*."):
            if host.endswith(name[1:]):
                return True
        elif host == name:
            return True
    return False


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, translated, NAT64, 6to4, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address (the server's is public by construction)
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_TRANSLATED or any(ip in net for net in _NAT64):
        return low32
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # :: and ::1 are not IPv4-compatible addresses
        return low32
    return None


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether downloads may reach ``ip``: globally routable, not multicast, and so is any IPv4 it carries."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = embedded_ipv4(ip)
        if inner is not None and not is_public(inner):
            return False
    return ip.is_global and not ip.is_multicast


def check_public(host: str, port: int) -> None:
    """Refuse a host that is, or resolves to, a non-public address.

    Raises:
        RefusedHost: naming the address; also when the name does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise RefusedHost(f"host {host!r} does not resolve: {exc}") from None
    for info in infos:
        addr = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not is_public(addr):
            raise RefusedHost(
                f"host {host!r} resolves to the non-public address {addr}; downloads there are refused "
                "(allow_private_networks is off)"
            )
