"""Network allow-lists (shared/protection/netacl.py) and the client address (client_ip.py)."""

import random

import pytest

from shared.protection.client_ip import MAX_HOPS, TrustedProxies, client_ip
from shared.protection.netacl import AllowList

INTERNAL = AllowList("10.0.0.0/8, 192.168.1.5, 2001:db8::/32, fd00::1")
# Azure Functions: the host reaches the worker over loopback; an internal load balancer in 10/8.
AZURE = TrustedProxies("127.0.0.1/32,::1,10.0.0.0/8")


def _words(text: str) -> list[str]:
    return text.split()


ALLOWED = [
    *_words("""10.0.0.0 10.255.255.255 192.168.1.5 2001:db8::1 fd00::1 FD00:0:0::1 ::ffff:10.1.2.3
        2001:db8:ffff:ffff:ffff:ffff:ffff:ffff 10.1.2.3:8080 [2001:db8::1] [2001:db8::1]:443
        2001:db8::1%eth0 [2001:db8::1%eth0]:443"""),
    " 10.1.2.3\t",
]
# ::a00:1 is 10.0.0.1's bits as IPv6 (versions never mix); 2002:a00:1:: is its 6to4 form.
DENIED = _words("""11.0.0.1 9.255.255.255 192.168.1.4 192.168.1.6 2001:db9::1 fd00::2 ::a00:1
    ::ffff:11.0.0.1 2002:a00:1::""")
GARBAGE = [
    *_words("""garbage unknown 10.0.0 10.0.0.256 010.0.0.1 \uff11\uff10.0.0.1 10.0.0.1: 10.0.0.0/8
        10.0.0.1:port 10.0.0.1:99999999 10.0.0.1%eth0 [10.0.0.1 [2001:db8::1]x [2001:db8::1]:
        2001:db8::1%"""),
    "",
    "   ",
    "10.0.0.1, 10.0.0.2",
]


@pytest.mark.parametrize("address", ALLOWED)
def test_allowed(address):
    assert INTERNAL.allows(address)


@pytest.mark.parametrize("address", DENIED)
def test_denied(address):
    assert not INTERNAL.allows(address)


@pytest.mark.parametrize("address", GARBAGE)
def test_unparsable_address_is_denied(address):
    assert not INTERNAL.allows(address)


def test_ranges_of_every_length_and_mapped_configuration():
    acl = AllowList(["0.0.0.0/1", "172.16.0.0/12", "::ffff:203.0.113.0/120"])
    assert acl.allows("127.0.0.1") and acl.allows("172.31.255.255")
    assert acl.allows("203.0.113.77") and acl.allows("::ffff:203.0.113.77")
    assert not acl.allows("172.32.0.0") and not acl.allows("203.0.114.1")
    assert not acl.allows("::1")  # an IPv4 /1 says nothing about IPv6
    assert [str(n) for n in acl.networks] == ["0.0.0.0/1", "172.16.0.0/12", "203.0.113.0/24"]
    everything = AllowList("0.0.0.0/0,::/0")
    assert everything.allows("8.8.8.8") and everything.allows("2001:4860::8888")


@pytest.mark.parametrize("config", ["", " , ", [], ["", "  "]])
def test_empty_list_allows_everything(config):
    acl = AllowList(config)
    assert acl.networks == ()
    assert acl.allows("8.8.8.8") and acl.allows("2001:4860::8888") and acl.allows("")


@pytest.mark.parametrize(
    "entry", ["banana", "10.0.0.0/33", "10.0.0.1/8", "fd00::/129", "10.0.0.0/8/8", "1.2.3.4:80"]
)
def test_bad_configuration_names_the_entry(entry):
    with pytest.raises(ValueError, match="system 'abc' allowedNetworks") as info:
        AllowList(f"10.0.0.0/8, {entry}", "system 'abc' allowedNetworks")
    assert repr(entry) in str(info.value)
    with pytest.raises(ValueError, match="trusted proxies") as info:
        TrustedProxies(["127.0.0.1", entry])
    assert repr(entry) in str(info.value)


def test_no_forwarded_for_or_untrusted_peer_is_the_peer():
    assert client_ip("10.1.2.3", None, AZURE) == "10.1.2.3"
    assert client_ip("10.1.2.3", "", AZURE) == "10.1.2.3"
    # An untrusted peer's header is ignored entirely, garbage or not.
    assert client_ip("198.51.100.7", "10.0.0.5", AZURE) == "198.51.100.7"
    assert client_ip("198.51.100.7", "x, , 10.0.0.5:1", AZURE) == "198.51.100.7"
    # With nothing trusted, not even loopback can vouch for a header.
    assert client_ip("127.0.0.1", "10.0.0.5", TrustedProxies()) == "127.0.0.1"


def test_forged_forwarded_for_does_not_bypass_the_list():
    # Straight from an untrusted caller: the header names an allowed address.
    assert not INTERNAL.allows(client_ip("198.51.100.7", "10.0.0.5", AZURE))
    # Through the Functions front end, which appends the real caller to the forged value.
    forwarded = "10.0.0.5, 192.168.1.5, 198.51.100.7:50123"
    assert client_ip("127.0.0.1", forwarded, AZURE) == "198.51.100.7"
    assert not INTERNAL.allows(client_ip("127.0.0.1", forwarded, AZURE))
    # The genuine internal caller behind the same front end is let in.
    assert INTERNAL.allows(client_ip("127.0.0.1", "192.168.1.5:50123", AZURE))


def test_chain_of_trusted_proxies():
    chain = "198.51.100.7, 10.0.0.9, 10.0.0.8"
    assert client_ip("127.0.0.1", chain, AZURE) == "198.51.100.7"
    assert client_ip("10.0.0.7", chain, AZURE) == "198.51.100.7"
    # Every hop trusted: the leftmost address is as far back as the header goes.
    assert client_ip("127.0.0.1", "10.0.0.1, 10.0.0.2", AZURE) == "10.0.0.1"


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("127.0.0.1", "203.0.113.5:54321", "203.0.113.5"),
        ("127.0.0.1", "  203.0.113.5 ,\t10.0.0.2  ", "203.0.113.5"),
        ("::1", "[2001:db8::1]:443", "2001:db8::1"),
        ("::1", "2001:DB8:0:0::1", "2001:db8::1"),
        ("::1", "[2001:db8::1]", "2001:db8::1"),
        ("::1", "fe80::1%eth0", "fe80::1"),
        ("::ffff:127.0.0.1", "::ffff:203.0.113.5", "203.0.113.5"),
        ("[::ffff:127.0.0.1]:7071", "203.0.113.5, [::ffff:10.0.0.2]:1", "203.0.113.5"),
        ("::1", "2001:db8::1, ::ffff:10.0.0.2", "2001:db8::1"),
        # Garbage or an empty entry stops the walk at the last good address.
        ("127.0.0.1", "203.0.113.5, garbage, 10.0.0.2", "10.0.0.2"),
        ("127.0.0.1", "203.0.113.5, , 10.0.0.2", "10.0.0.2"),
        ("127.0.0.1", "203.0.113.5,", "127.0.0.1"),
        ("127.0.0.1", "   ", "127.0.0.1"),
        ("127.0.0.1", "unknown", "127.0.0.1"),
        ("127.0.0.1", "203.0.113.5:http", "127.0.0.1"),
        ("127.0.0.1", 'for="[2001:db8::1]"', "127.0.0.1"),
        ("127.0.0.1", "203.0.113.5, 10.0.0.2:", "127.0.0.1"),
    ],
)
def test_address_forms_and_garbage(peer, forwarded, expected):
    assert client_ip(peer, forwarded, AZURE) == expected


@pytest.mark.parametrize("peer", [None, "", "testclient", "garbage", "10.0.0.1, 10.0.0.2"])
def test_unknown_peer_is_no_address(peer):
    assert client_ip(peer, "10.0.0.5", AZURE) == ""
    assert not INTERNAL.allows("")


def test_long_headers_are_walked_only_up_to_the_cap():
    within = ", ".join(["198.51.100.7"] + ["10.0.0.1"] * MAX_HOPS)
    assert client_ip("127.0.0.1", within, AZURE) == "198.51.100.7"
    beyond = ", ".join(["198.51.100.7"] + ["10.0.0.1"] * (MAX_HOPS + 1))
    assert client_ip("127.0.0.1", beyond, AZURE) == "10.0.0.1"
    assert client_ip("127.0.0.1", "10.0.0.1," * 100_000, AZURE) == "127.0.0.1"


def test_never_raises_on_random_input():
    rng = random.Random(10)
    pieces = [*"0123456789abcdefABCDEF:.[]%, \t/-x\ufb00\uff11\x00", "10.0.0.1", "::ffff:", "]:"]
    for _ in range(3000):
        peer = "".join(rng.choices(pieces, k=rng.randint(0, 20)))
        forwarded = "".join(rng.choices(pieces, k=rng.randint(0, 60)))
        for trusted_peer in (peer, "127.0.0.1"):
            result = client_ip(trusted_peer, forwarded, AZURE)
            assert isinstance(result, str)
            INTERNAL.allows(result)
            INTERNAL.allows(forwarded)
