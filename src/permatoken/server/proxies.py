"""The client address of a request: the peer, or the hop a trusted proxy forwarded for.

``X-Forwarded-For`` is believed only when the connection comes from a configured proxy
(``PERMATOKEN_TRUSTED_PROXIES``: addresses or networks, default none). Its hops are then read from
the right, skipping trusted proxies; the first untrusted one is the client. Anything else (no
trusted proxies, a peer that is not one, a hop that is not an IP address) means the peer itself:
a caller can never choose the address that the failed-authentication throttle and the audit log
record. ``permatoken serve`` turns uvicorn's own proxy-header handling off, so this is the only
place that reads the header.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``10.0.0.1``, ``10.0.0.0/8``, ``::1`` … (raises ValueError naming a bad entry)."""
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {value.strip()[:60]!r}") from None
    return tuple(out)


class ClientAddresses:
    def __init__(self, trusted: Iterable[str] = ()) -> None:
        self.trusted = parse_networks(trusted)

    def _trusts(self, host: str) -> bool:
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.trusted)

    def of(self, scope: Any) -> str:
        client = scope.get("client")
        peer: str = client[0] if client else "unknown"
        if not self.trusted or not self._trusts(peer):
            return peer
        hops: list[str] = [
            hop.strip()
            for key, value in scope.get("headers", ())
            if key == b"x-forwarded-for"
            for hop in value.decode("latin-1").split(",")
            if hop.strip()
        ]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a garbled chain: believe only the connection
            if not self._trusts(hop):
                return hop
        return hops[0] if hops else peer


__all__ = ["ClientAddresses", "parse_networks"]
