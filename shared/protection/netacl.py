"""Network allow-lists: which client addresses may call the gateway (issue 10, item 1).

Built once from configuration (CIDR ranges or single addresses, IPv4 and IPv6, as a
comma-separated string or a list), then asked per request about the address that
`shared.client_ip.client_ip` derived. IPv4-mapped IPv6 (::ffff:10.0.0.1) is treated as the
IPv4 address it carries, both in configuration and in requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from shared.errors import ConfigError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


def parse_address(text: str) -> Address | None:
    """The address in a peer or X-Forwarded-For entry, or None if there is none.

    Accepts surrounding whitespace, "[v6]", "[v6]:port", "v4:port" and zone ids
    ("fe80::1%eth0", dropped: an allow-list rule is about the address, not the interface).
    """
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest[0] == ":" and _is_port(rest[1:]))):
            return None
        text = host
    elif text.count(":") == 1:  # IPv6 has at least two colons, so this is "v4:port"
        text, _, port = text.partition(":")
        if not _is_port(port):
            return None
    if "%" in text and ":" in text:
        text, _, zone = text.partition("%")
        if not zone:
            return None
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_port(text: str) -> bool:
    return 0 < len(text) <= 5 and text.isascii() and text.isdigit()


def parse_networks(entries: str | Iterable[str], what: str) -> tuple[Network, ...]:
    """CIDR ranges from configuration; `what` names the setting in the error for a bad entry."""
    if isinstance(entries, str):
        entries = entries.split(",")
    networks: list[Network] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            network = ip_network(entry)
        except ValueError as exc:
            raise ConfigError(
                f"{what}: {entry!r} is not an IPv4 or IPv6 address or CIDR range ({exc})"
            ) from None
        if network.version == 6 and network.prefixlen >= 96:
            mapped = network.network_address.ipv4_mapped
            if mapped is not None:
                network = IPv4Network((mapped, network.prefixlen - 96))
        networks.append(network)
    return tuple(networks)


_Index = tuple[tuple[int, frozenset[int]], ...]


def _index(networks: Iterable[Network], bits: int) -> _Index:
    by_shift: dict[int, set[int]] = {}
    for network in networks:
        shift = bits - network.prefixlen
        by_shift.setdefault(shift, set()).add(int(network.network_address) >> shift)
    return tuple((shift, frozenset(prefixes)) for shift, prefixes in sorted(by_shift.items()))


class NetworkSet:
    """Membership in a fixed set of networks: one set lookup per distinct prefix length."""

    __slots__ = ("_v4", "_v6", "networks")

    def __init__(self, networks: Iterable[Network]) -> None:
        self.networks = tuple(networks)
        self._v4 = _index((n for n in self.networks if n.version == 4), 32)
        self._v6 = _index((n for n in self.networks if n.version == 6), 128)

    def __contains__(self, address: Address) -> bool:
        value = int(address)
        for shift, prefixes in self._v4 if address.version == 4 else self._v6:
            if value >> shift in prefixes:
                return True
        return False

    def __len__(self) -> int:
        return len(self.networks)


class AllowList:
    """Client ranges allowed to call; an empty list places no restriction."""

    __slots__ = ("_set",)

    def __init__(self, entries: str | Iterable[str] = (), what: str = "allow-list") -> None:
        self._set = NetworkSet(parse_networks(entries, what))

    @property
    def networks(self) -> tuple[Network, ...]:
        return self._set.networks

    def allows(self, address: str) -> bool:
        """Whether `address` may call; unparsable (or "", unknown) is denied unless unrestricted."""
        if not self._set:
            return True
        parsed = parse_address(address)
        return parsed is not None and parsed in self._set

    def __repr__(self) -> str:
        return f"AllowList({','.join(map(str, self.networks))!r})"
