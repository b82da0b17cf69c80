"""Entra ID callers: tokens signed by test keys served from a local JWKS endpoint."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from shared.auth.entra import (
    Claims,
    EntraMapping,
    EntraValidator,
    TokenRejected,
    entra_issuers,
    entra_jwks_url,
    system_for,
)
from shared.auth.jwks import JwksCache, JwksUnavailable, parse_jwks
from tests.support import FakeClock
from tests.support.jwks_server import JwksServer
from tests.support.keyvault_standin import write_self_signed_cert

TENANT = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
OTHER_TENANT = "c0ffee00-1234-4abc-8def-0123456789ab"
API_CLIENT_ID = "6e74172b-be56-4843-9ff4-e66a39bb12e3"  # the gateway's app registration
API_URI = "api://tollgate"
CALLER_APP = "75dbe77f-10a3-4e59-85fd-8c127544f17c"
CALLER_OID = "690222be-ff1a-4d56-abd1-7e4f7d38e474"
V1_ISSUER = f"https://sts.windows.net/{TENANT}/"
V2_ISSUER = f"https://login.microsoftonline.com/{TENANT}/v2.0"
DROP = object()


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": public["n"], "e": public["e"]}

    def sign(self, claims: dict[str, Any], alg: str = "RS256", kid: str | None = None) -> str:
        return jwt.encode(claims, self.private, algorithm=alg, headers={"kid": kid or self.kid})


@dataclass
class Keys:
    a: SigningKey
    b: SigningKey
    rogue: SigningKey  # never published


def new_key(kid: str, bits: int = 2048) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=bits))


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(new_key("kid-a"), new_key("kid-b"), new_key("kid-rogue"))


def from_now(seconds: int) -> Callable[[], int]:
    """A time claim computed when the token is minted, not when the test module is imported."""
    return lambda: int(time.time()) + seconds


def _claims(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = {**base, **overrides}
    return {
        name: value() if callable(value) else value
        for name, value in merged.items()
        if value is not DROP
    }


def v2_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "aud": API_CLIENT_ID,
        "iss": V2_ISSUER,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
        "azp": CALLER_APP,
        "azpacr": "2",
        "oid": CALLER_OID,
        "roles": ["Tollgate.Call"],
        "sub": CALLER_OID,
        "tid": TENANT,
        "ver": "2.0",
    }
    return _claims(base, overrides)


def v1_claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {
        "aud": API_URI,
        "iss": V1_ISSUER,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
        "appid": CALLER_APP,
        "appidacr": "2",
        "idp": V1_ISSUER,
        "oid": CALLER_OID,
        "sub": CALLER_OID,
        "tid": TENANT,
        "ver": "1.0",
    }
    return _claims(base, overrides)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = (json.dumps(header).encode(), json.dumps(claims).encode(), signature)
    return ".".join(b64url(part) for part in parts)


def hs256_with_public_key(key: SigningKey, claims: dict[str, Any]) -> str:
    """The classic confusion attack: the published RSA key used as an HMAC secret."""
    secret = key.private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    unsigned = forge({"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims).rsplit(".", 1)[0]
    signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64url(signature)}"


def assert_no_token_text(error: BaseException, token: str) -> None:
    text = str(error) + repr(error) + "".join(traceback.format_exception(error))
    for part in (token, *token.split(".")):
        if len(part) >= 8:
            assert part not in text
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


async def rejected(validator: EntraValidator, token: str) -> str:
    with pytest.raises(TokenRejected) as info:
        await validator.validate(token)
    assert_no_token_text(info.value, token)
    assert len(info.value.reason) <= 40
    return info.value.reason


@pytest.fixture
async def jwks(keys: Keys) -> AsyncIterator[JwksServer]:
    async with JwksServer([keys.a.jwk()]) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(jwks: JwksServer, clock: FakeClock) -> AsyncIterator[JwksCache]:
    cache = JwksCache(jwks.url, allow_local_http=True, clock=clock)
    yield cache
    await cache.aclose()


@pytest.fixture
def validator(cache: JwksCache) -> EntraValidator:
    return EntraValidator(TENANT, [API_CLIENT_ID, API_URI], cache)


# --- valid tokens --------------------------------------------------------------------------------


async def test_valid_v2_token(validator: EntraValidator, keys: Keys, jwks: JwksServer) -> None:
    claims = await validator.validate(keys.a.sign(v2_claims()))
    assert claims == Claims(CALLER_APP, CALLER_OID, TENANT, frozenset({"Tollgate.Call"}))
    assert jwks.fetches == 1


@pytest.mark.parametrize("audience", [API_URI, API_CLIENT_ID])
async def test_valid_v1_token(validator: EntraValidator, keys: Keys, audience: str) -> None:
    claims = await validator.validate(keys.a.sign(v1_claims(aud=audience)))
    assert claims == Claims(CALLER_APP, CALLER_OID, TENANT, frozenset())


async def test_clock_skew_inside_leeway_is_accepted(validator: EntraValidator, keys: Keys) -> None:
    now = int(time.time())
    token = keys.a.sign(v2_claims(iat=now + 30, nbf=now + 30))
    assert (await validator.validate(token)).app_id == CALLER_APP
    token = keys.a.sign(v2_claims(iat=now - 3600, nbf=now - 3600, exp=now - 30))
    assert (await validator.validate(token)).app_id == CALLER_APP


async def test_app_id_claim_follows_the_token_version(
    validator: EntraValidator, keys: Keys
) -> None:
    # A v2.0 token names the app in azp, a v1.0 token in appid; the other one does not count.
    assert await rejected(validator, keys.a.sign(v2_claims(azp=DROP, appid=CALLER_APP))) == (
        "missing claim azp"
    )
    assert await rejected(validator, keys.a.sign(v1_claims(appid=DROP, azp=CALLER_APP))) == (
        "missing claim appid"
    )


# --- rejected claims -----------------------------------------------------------------------------

CLAIM_CASES: list[tuple[str, Callable[..., dict[str, Any]], dict[str, Any]]] = [
    ("wrong audience", v2_claims, {"aud": "api://someone-else"}),
    ("wrong audience", v2_claims, {"aud": "00000003-0000-0000-c000-000000000000"}),
    ("wrong audience", v1_claims, {"aud": "https://management.azure.com/"}),
    ("wrong issuer", v2_claims, {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"}),
    ("wrong issuer", v1_claims, {"iss": f"https://sts.windows.net/{OTHER_TENANT}/"}),
    ("wrong issuer", v1_claims, {"iss": f"https://sts.windows.net/{TENANT}"}),
    ("wrong issuer", v2_claims, {"iss": f"https://login.microsoftonline.com/{TENANT}/"}),
    ("wrong tenant", v2_claims, {"tid": OTHER_TENANT}),
    ("wrong tenant", v1_claims, {"tid": OTHER_TENANT}),
    ("token expired", v2_claims, {"exp": from_now(-120)}),
    ("token not yet valid", v2_claims, {"nbf": from_now(300)}),
    ("issued in the future", v2_claims, {"iat": from_now(300)}),
    ("malformed token", v2_claims, {"exp": lambda: str(int(time.time()) + 3600)}),
    ("missing claim exp", v2_claims, {"exp": DROP}),
    ("missing claim nbf", v2_claims, {"nbf": DROP}),
    ("missing claim aud", v2_claims, {"aud": DROP}),
    ("missing claim tid", v2_claims, {"tid": DROP}),
    ("missing claim oid", v2_claims, {"oid": DROP}),
    ("delegated token", v2_claims, {"scp": "user_impersonation"}),
    ("delegated token", v2_claims, {"idtyp": "user"}),
    ("malformed roles", v2_claims, {"roles": "Tollgate.Call"}),
]


@pytest.mark.parametrize(("reason", "make", "overrides"), CLAIM_CASES)
async def test_claims_rejected(
    validator: EntraValidator, keys: Keys, reason: str, make: Any, overrides: dict[str, Any]
) -> None:
    assert await rejected(validator, keys.a.sign(make(**overrides))) == reason


async def test_idtyp_app_is_accepted(validator: EntraValidator, keys: Keys) -> None:
    assert (await validator.validate(keys.a.sign(v2_claims(idtyp="app")))).app_id == CALLER_APP


async def test_delegated_tokens_allowed_when_configured(cache: JwksCache, keys: Keys) -> None:
    validator = EntraValidator(TENANT, [API_CLIENT_ID], cache, app_only=False)
    claims = await validator.validate(keys.a.sign(v2_claims(scp="access_as_user")))
    assert claims.object_id == CALLER_OID


# --- signatures and algorithms -------------------------------------------------------------------


async def test_bad_signature(validator: EntraValidator, keys: Keys, jwks: JwksServer) -> None:
    # Signed by an unpublished key but claiming a published kid.
    assert await rejected(validator, keys.rogue.sign(v2_claims(), kid=keys.a.kid)) == (
        "bad signature"
    )
    # A genuine token whose payload was swapped for one with more roles.
    header, _, signature = keys.a.sign(v2_claims()).split(".")
    payload = b64url(json.dumps(v2_claims(roles=["Admin"])).encode())
    assert await rejected(validator, f"{header}.{payload}.{signature}") == "bad signature"
    assert jwks.fetches == 1  # a known kid never causes a refetch


@pytest.mark.parametrize("variant", ["none", "None", "HS256", "RS512", "ES256"])
async def test_other_algorithms_rejected_before_any_key_lookup(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, variant: str
) -> None:
    claims = v2_claims()
    if variant in ("none", "None"):
        token = forge({"alg": variant, "typ": "JWT", "kid": keys.a.kid}, claims)
    elif variant == "HS256":
        token = hs256_with_public_key(keys.a, claims)
    elif variant == "RS512":
        token = keys.a.sign(claims, alg="RS512")
    else:
        ec_key = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(claims, ec_key, algorithm="ES256", headers={"kid": keys.a.kid})
    assert await rejected(validator, token) == "unsupported algorithm"
    assert jwks.fetches == 0


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "bm90IGpzb24.e30.e30", "x" * 40_000])
async def test_malformed_tokens(validator: EntraValidator, jwks: JwksServer, token: str) -> None:
    assert await rejected(validator, token) == "malformed token"
    assert jwks.fetches == 0


async def test_header_without_kid(validator: EntraValidator, keys: Keys) -> None:
    token = jwt.encode(v2_claims(), keys.a.private, algorithm="RS256")
    assert await rejected(validator, token) == "missing key id"


# --- the key cache: rotation, unknown keys, concurrency, outages ---------------------------------


async def test_unknown_kid_refetches_once_then_rejects(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, clock: FakeClock
) -> None:
    await validator.validate(keys.a.sign(v2_claims()))
    assert jwks.fetches == 1
    clock.now += 120  # the cache has been warm for a while
    ghost = keys.rogue.sign(v2_claims())
    assert await rejected(validator, ghost) == "unknown signing key"
    assert jwks.fetches == 2
    for _ in range(5):  # more unknown kids inside the refetch window: no more fetches
        assert await rejected(validator, keys.rogue.sign(v2_claims(), kid="made-up")) == (
            "unknown signing key"
        )
    clock.now += 59
    assert await rejected(validator, ghost) == "unknown signing key"
    assert jwks.fetches == 2
    clock.now += 2
    assert await rejected(validator, ghost) == "unknown signing key"
    assert jwks.fetches == 3


async def test_key_rotation_is_picked_up(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, clock: FakeClock
) -> None:
    await validator.validate(keys.a.sign(v2_claims()))
    clock.now += 600
    jwks.keys = [keys.b.jwk()]  # Entra ID rolled its signing key
    claims = await validator.validate(keys.b.sign(v2_claims()))
    assert claims.app_id == CALLER_APP
    assert jwks.fetches == 2
    # The retired key is gone with the refetch.
    assert await rejected(validator, keys.a.sign(v2_claims())) == "unknown signing key"
    await validator.validate(keys.b.sign(v2_claims()))
    assert jwks.fetches == 2


async def test_keys_are_refetched_after_the_ttl(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, clock: FakeClock
) -> None:
    token = keys.a.sign(v2_claims())
    await validator.validate(token)
    clock.now += 3599
    await validator.validate(token)
    assert jwks.fetches == 1
    clock.now += 2
    await validator.validate(token)
    assert jwks.fetches == 2


async def test_concurrent_validations_share_one_fetch(
    validator: EntraValidator, keys: Keys, jwks: JwksServer
) -> None:
    jwks.gate.clear()
    tokens = [keys.a.sign(v2_claims(oid=f"{i:08d}-0000-0000-0000-000000000000")) for i in range(20)]
    tasks = [asyncio.create_task(validator.validate(t)) for t in tokens]
    await jwks.until_fetched(1)
    tasks[0].cancel()  # one caller giving up must not cancel the fetch the others wait on
    jwks.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert all(isinstance(r, Claims) for r in results[1:])
    assert jwks.fetches == 1


async def test_concurrent_unknown_kids_share_one_refetch(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, clock: FakeClock
) -> None:
    await validator.validate(keys.a.sign(v2_claims()))
    clock.now += 120
    jwks.gate.clear()
    tokens = [keys.rogue.sign(v2_claims(), kid=f"random-{i}") for i in range(10)]
    tasks = [asyncio.create_task(validator.validate(t)) for t in tokens]
    await jwks.until_fetched(2)
    jwks.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, TokenRejected) and r.reason == "unknown signing key" for r in results)
    assert jwks.fetches == 2


async def test_key_endpoint_down_on_a_cold_cache(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, clock: FakeClock
) -> None:
    token = keys.a.sign(v2_claims())
    jwks.status = 503
    # An outage, not a bad token: the gateway answers 503, not 401.
    with pytest.raises(JwksUnavailable):
        await validator.validate(token)
    with pytest.raises(JwksUnavailable):
        await validator.validate(token)
    assert jwks.fetches == 1  # failed fetches are retried at most every few seconds
    clock.now += 5
    jwks.status = 200
    assert (await validator.validate(token)).app_id == CALLER_APP
    assert jwks.fetches == 2


async def test_failed_refresh_keeps_the_last_keys_for_a_while(
    validator: EntraValidator, keys: Keys, jwks: JwksServer, clock: FakeClock
) -> None:
    token = keys.a.sign(v2_claims())
    await validator.validate(token)
    jwks.status = 500
    clock.now += 3601
    assert (await validator.validate(token)).app_id == CALLER_APP
    assert jwks.fetches == 2
    await validator.validate(token)
    assert jwks.fetches == 2
    clock.now += 5
    await validator.validate(token)
    assert jwks.fetches == 3
    clock.now += 3600  # past TTL + stale allowance: no keys to trust any more
    with pytest.raises(JwksUnavailable):
        await validator.validate(token)


async def test_an_empty_key_set_is_not_accepted(
    validator: EntraValidator, keys: Keys, jwks: JwksServer
) -> None:
    jwks.keys = []
    with pytest.raises(JwksUnavailable):
        await validator.validate(keys.a.sign(v2_claims()))


def test_only_rsa_signature_keys_are_taken(keys: Keys) -> None:
    small = new_key("small", bits=1024)
    private = RSAAlgorithm.to_jwk(keys.b.private, as_dict=True)
    ec_jwk = ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True)
    document = {
        "keys": [
            keys.a.jwk(),
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {**ec_jwk, "kid": "ec"},
            small.jwk(),
            {**private, "kid": "private"},
            {**keys.b.jwk(), "kid": "enc", "use": "enc"},
            {**keys.b.jwk(), "kid": "rs512", "alg": "RS512"},
            {**keys.b.jwk(), "kid": None},
            {**keys.b.jwk(), "kid": "broken", "n": "!!"},
            "not a key",
        ]
    }
    assert list(parse_jwks(document)) == [keys.a.kid]
    with pytest.raises(ValueError):
        parse_jwks({"kid": "x"})


# --- transport policy ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "allow_local_http"),
    [
        ("http://login.microsoftonline.com/t/discovery/v2.0/keys", False),
        ("http://login.microsoftonline.com/t/discovery/v2.0/keys", True),
        ("http://127.0.0.1:8080/keys", False),
        ("http://localhost:8080/keys", False),
        ("http://10.0.0.5/keys", True),
        ("ftp://127.0.0.1/keys", True),
        ("https:///keys", False),
    ],
)
def test_key_url_must_be_https(url: str, allow_local_http: bool) -> None:
    with pytest.raises(ValueError):
        JwksCache(url, allow_local_http=allow_local_http)


def test_entra_urls_and_issuers() -> None:
    url = entra_jwks_url(TENANT.upper())
    assert url == f"https://login.microsoftonline.com/{TENANT}/discovery/v2.0/keys"
    JwksCache(url)  # https needs no flag
    JwksCache("http://localhost:1/keys", allow_local_http=True)
    assert entra_issuers(TENANT) == (V1_ISSUER, V2_ISSUER)


async def test_tls_is_verified_even_with_an_unverified_session(tmp_path: Path, keys: Keys) -> None:
    cert, key = write_self_signed_cert(tmp_path)
    async with JwksServer([keys.a.jwk()], tls=(cert, key)) as server:
        connector = aiohttp.TCPConnector(ssl=False)
        async with aiohttp.ClientSession(connector=connector) as session:
            cache = JwksCache(server.url, session=session)
            with pytest.raises(JwksUnavailable):
                await cache.get_key(keys.a.kid)
            assert server.fetches == 0  # the handshake failed: the untrusted cert was refused
            async with session.get(server.url) as resp:  # the server itself is fine
                assert resp.status == 200
            await cache.aclose()
            assert not session.closed  # a shared session belongs to its owner


def test_validator_configuration(cache: JwksCache) -> None:
    with pytest.raises(ValueError):
        EntraValidator("contoso.onmicrosoft.com", [API_CLIENT_ID], cache)
    with pytest.raises(ValueError):
        EntraValidator(TENANT, ["", ""], cache)
    validator = EntraValidator(TENANT.upper(), [API_URI], cache)
    assert validator.tenant_id == TENANT
    assert (validator.v1_issuer, validator.v2_issuer) == (V1_ISSUER, V2_ISSUER)


# --- no token text in errors ---------------------------------------------------------------------


async def test_no_token_text_in_any_rejection(
    validator: EntraValidator, keys: Keys, clock: FakeClock
) -> None:
    await validator.validate(keys.a.sign(v2_claims()))
    clock.now += 120
    tokens = [keys.a.sign(make(**overrides)) for _, make, overrides in CLAIM_CASES]
    tokens += [
        keys.rogue.sign(v2_claims(), kid=keys.a.kid),
        keys.rogue.sign(v2_claims()),
        forge({"alg": "none", "kid": keys.a.kid}, v2_claims()),
        hs256_with_public_key(keys.a, v2_claims()),
        jwt.encode(v2_claims(), keys.a.private, algorithm="RS256"),
        "eyJhbGciOiJSUzI1NiJ9.not-base64-at-all!!.c2lnbmF0dXJl",
    ]
    reasons = set()
    for token in tokens:
        reasons.add(await rejected(validator, token))  # asserts the token is nowhere in it
    assert len(reasons) >= 15


# --- mapping a token to its system ---------------------------------------------------------------

MAPPINGS = [
    EntraMapping("0003R3", [CALLER_APP.upper()], []),
    EntraMapping("reports", [], ["Reports.Call"]),
    EntraMapping("batch", ["11111111-1111-1111-1111-111111111111"], ["Batch.Call"]),
]
UNKNOWN_APP = "99999999-9999-9999-9999-999999999999"


def caller(app_id: str = UNKNOWN_APP, *roles: str) -> Claims:
    return Claims(app_id, CALLER_OID, TENANT, frozenset(roles))


def test_system_by_app_id() -> None:
    assert system_for(caller(CALLER_APP), MAPPINGS) == "0003R3"
    assert system_for(caller("11111111-1111-1111-1111-111111111111"), MAPPINGS) == "batch"


def test_system_by_role() -> None:
    assert system_for(caller(UNKNOWN_APP, "Reports.Call"), MAPPINGS) == "reports"
    assert system_for(caller(UNKNOWN_APP, "Reports.Call", "Unrelated"), MAPPINGS) == "reports"
    assert system_for(caller(UNKNOWN_APP, "reports.call"), MAPPINGS) is None  # roles are exact


def test_ambiguous_mapping_is_refused() -> None:
    assert system_for(caller(CALLER_APP, "Reports.Call"), MAPPINGS) is None
    assert system_for(caller(UNKNOWN_APP, "Reports.Call", "Batch.Call"), MAPPINGS) is None
    shared_role = [*MAPPINGS, EntraMapping("other", [], ["Reports.Call"])]
    assert system_for(caller(UNKNOWN_APP, "Reports.Call"), shared_role) is None


def test_one_system_matched_twice_is_not_ambiguous() -> None:
    both = [("0003R3", [CALLER_APP], ["Tollgate.Call"]), ("0003R3", [], ["Other"])]
    assert system_for(caller(CALLER_APP, "Tollgate.Call", "Other"), both) == "0003R3"


def test_unknown_app_maps_to_nothing() -> None:
    assert system_for(caller(UNKNOWN_APP), MAPPINGS) is None
    assert system_for(caller(UNKNOWN_APP, "Tollgate.Call"), MAPPINGS) is None
    assert system_for(caller(CALLER_APP), []) is None


def test_a_bare_string_is_not_a_list_of_app_ids() -> None:
    # "75dbe77f" in "75dbe77f-..." would be a substring match: refused instead.
    with pytest.raises(TypeError):
        system_for(caller(CALLER_APP[:8]), [("0003R3", CALLER_APP, [])])


async def test_token_to_system(validator: EntraValidator, keys: Keys) -> None:
    by_app = await validator.validate(keys.a.sign(v2_claims(roles=DROP)))
    assert system_for(by_app, MAPPINGS) == "0003R3"
    by_role = await validator.validate(
        keys.a.sign(v1_claims(appid=UNKNOWN_APP, roles=["Reports.Call"]))
    )
    assert system_for(by_role, MAPPINGS) == "reports"
    stranger = await validator.validate(keys.a.sign(v2_claims(azp=UNKNOWN_APP, roles=DROP)))
    assert system_for(stranger, MAPPINGS) is None
