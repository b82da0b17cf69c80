"""The calling client's address, trusting X-Forwarded-For only as far as known proxies vouch for it.

Each proxy appends the address it received the connection from to X-Forwarded-For, so the
header is only as trustworthy as the hop that wrote each entry. `client_ip` starts from the
TCP peer and walks the header from the right: while the current hop is a trusted proxy, the
entry to its left is believed; the first untrusted hop is the client. A peer that is not a
trusted proxy is the client itself, whatever header it sent, so a forged X-Forwarded-For
cannot move a caller into an allowed range.

Azure Functions: with the HTTP streaming extension the Functions host proxies each request to
the Python worker over loopback, so the TCP peer is always 127.0.0.1 (or ::1), and the App
Service front end puts the caller in X-Forwarded-For (for IPv4 typically as "ip:port"). The
trusted list there must hold the loopback addresses plus any hop the platform itself appends
(check the header a deployment actually receives; an internal load balancer or Application
Gateway in front adds its own subnet). Never trust a range your callers can connect from, or
they can name any address they like. Locally under uvicorn the peer is the real caller, and an
empty trusted list (the default) ignores X-Forwarded-For altogether.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.protection.netacl import Address, NetworkSet, parse_address, parse_networks

# More trusted hops than this is a misconfiguration or an attack; the cap bounds the work a
# long forged header can cause.
MAX_HOPS = 16


class TrustedProxies:
    """Proxies whose X-Forwarded-For entries are believed, from CIDRs ("10.0.0.0/8,fd00::/8")."""

    __slots__ = ("_set",)

    def __init__(self, entries: str | Iterable[str] = (), what: str = "trusted proxies") -> None:
        self._set = NetworkSet(parse_networks(entries, what))

    def trusts(self, address: Address) -> bool:
        return address in self._set

    def __bool__(self) -> bool:
        return bool(self._set)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address in canonical form, or "" when even the peer is unknown or garbage.

    An empty or unparsable X-Forwarded-For entry stops the walk at the last good address
    (the proxy that forwarded it), so a malformed header never reaches further left.
    """
    current = parse_address(peer) if peer else None
    if current is None:
        return ""
    if forwarded_for and trusted.trusts(current):
        # Past MAX_HOPS the leftmost piece still holds commas, fails to parse and ends the walk.
        for entry in reversed(forwarded_for.rsplit(",", MAX_HOPS)):
            hop = parse_address(entry)
            if hop is None:
                break
            current = hop
            if not trusted.trusts(current):
                break
    return str(current)
