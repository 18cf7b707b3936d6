"""Which hosts image downloads may reach: the defence against server-side request forgery (SSRF).

Task data is written by anyone who can import tasks, so an image URL must not turn the backend into a
proxy towards internal services (cloud metadata at 169.254.169.254, Redis, admin pages on loopback).
Rules, in order:

1. The configured Label Studio host (scheme, host and port of its URL) is always allowed.
2. Any other host must be listed in ``allowed_hosts``: ``host``, ``host:port``, ``*.example.com``
   (any subdomain) or ``*`` (any host).
3. Every address the host resolves to must be globally routable (not loopback, private, link-local,
   shared, multicast, reserved, unspecified), unless ``allow_private_networks``.

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


def _global(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
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
        if not _global(addr):
            raise RefusedHost(
                f"host {host!r} resolves to the non-public address {addr}; downloads there are refused "
                "(allow_private_networks is off)"
            )
