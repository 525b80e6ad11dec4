"""Who is calling: client IP (behind trusted proxies only), user agent, bearer credentials."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from service.config import IPNetwork
from service.domain.views import ClientInfo

MAX_USER_AGENT = 512


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, proxies: tuple[IPNetwork, ...]
) -> bool:
    return any(address in network for network in proxies)


def client_ip(request: web.Request, trusted_proxies: tuple[IPNetwork, ...]) -> str | None:
    """The peer address; behind trusted proxies, the right-most untrusted X-Forwarded-For hop.

    Only hops added by proxies we trust are believed, so a client cannot choose its own IP by
    sending the header itself: whatever it wrote stands left of what our proxies appended.
    """
    peer = _address(request.remote or "")
    if peer is None:
        return None
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return str(peer)
    client = peer
    hops = ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return str(client)


def client_info(request: web.Request, trusted_proxies: tuple[IPNetwork, ...]) -> ClientInfo:
    user_agent = request.headers.get("User-Agent")
    if user_agent is not None:
        user_agent = "".join(ch for ch in user_agent if ch.isprintable())[:MAX_USER_AGENT] or None
    return ClientInfo(user_agent=user_agent, ip=client_ip(request, trusted_proxies))


def bearer_token(request: web.Request) -> str | None:
    """The credentials of `Authorization: Bearer <token>`, or None when absent or not Bearer."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()
