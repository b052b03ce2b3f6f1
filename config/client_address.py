"""Which address a request comes from: the one answer every limit keyed on an address uses.

DRF's throttles (``config.throttling``), our HTML forms' limits (``throttled_post``) and
allauth's rate limits (``accounts.adapter``) all ask ``request_client_address``. The direct
peer is the client unless it is one of ``SALON_TRUSTED_PROXIES``: only then is
``X-Forwarded-For`` read, from the right (each proxy appends the address it was connected
from), skipping further trusted proxies; the first address that is not one is the client.
Anything to its left was written by the client and is ignored, so a client cannot pick its own
address by sending the header. With no trusted proxy configured (the default) the header is
never read.

``manage.py serve`` must not let daphne rewrite the peer from ``X-Forwarded-For`` itself
(daphne believes it from any peer): the peer seen here has to be the TCP peer.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# What a request without a known peer (a Unix socket, a test without REMOTE_ADDR) counts as:
# all such requests share one budget rather than escaping every limit.
UNKNOWN_ADDRESS = "unknown"


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"SALON_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR network"
            ) from None
    return tuple(networks)


def trusted_proxy_networks() -> tuple[IPNetwork, ...]:
    """``SALON_TRUSTED_PROXIES`` parsed; raises ImproperlyConfigured for a malformed entry."""
    return _networks(tuple(settings.SALON_TRUSTED_PROXIES))


def parse_address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address from a peer or an ``X-Forwarded-For`` entry (``1.2.3.4:5678``,
    ``[::1]:80`` and IPv4-mapped IPv6 included), or None if it is not one."""
    value = value.strip()
    if value.startswith("["):
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def client_address(*, peer: str | None, forwarded_for: str | None) -> str:
    """The client's address, given the direct peer's and the ``X-Forwarded-For`` header."""
    address = parse_address(peer) if peer else None
    if address is None:
        return UNKNOWN_ADDRESS
    trusted = trusted_proxy_networks()
    if not trusted or not forwarded_for:
        return str(address)

    def is_trusted(candidate) -> bool:
        return any(candidate in network for network in trusted)

    hops = forwarded_for.split(",")
    while is_trusted(address) and hops:
        hop = parse_address(hops.pop())
        if hop is None:
            # No proxy writes garbage: whatever stands left of it is the client's own text,
            # so the last address a trusted proxy vouched for is the best one known.
            break
        address = hop
    return str(address)


def request_client_address(request) -> str:
    """The client address of a Django (or DRF) request."""
    return client_address(
        peer=request.META.get("REMOTE_ADDR"),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR"),
    )
