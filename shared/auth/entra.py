"""Microsoft Entra ID access tokens as gateway credentials: validation, and the caller's system.

An app calls with ``Authorization: Bearer <token>``, the token coming from its managed identity or
app registration (client credentials) for the gateway's app registration. `EntraValidator`
accepts only RS256 tokens signed by a key from the tenant's JWKS, issued by that tenant (v1.0 or
v2.0 issuer), for one of the configured audiences, inside their validity window. `system_for`
then maps the token's app id or app roles to exactly one system: the caller never names it.

Reasons in `TokenRejected` are fixed short phrases, safe to log and to return in a 401; they
never contain the token or any value taken from it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.auth.jwks import JwksCache
from shared.errors import ConfigError

if TYPE_CHECKING:  # PyJWT and cryptography (about 8 MB) load with the first token checked
    from jwt import exceptions as jwt_errors

ENTRA_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_LEEWAY_SECONDS = 60.0
# Far above any real access token; bounds the work a junk header can cost.
MAX_TOKEN_CHARS = 32 * 1024
_REQUIRED_CLAIMS = ["iss", "aud", "exp", "nbf", "iat", "tid", "oid"]


class TokenRejected(Exception):
    """The bearer token is not acceptable; `reason` is a short fixed phrase (never token text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    app_id: str  # the calling app's client id: `azp` (v2.0 tokens) or `appid` (v1.0)
    object_id: str  # `oid`: the calling service principal (or managed identity)
    tenant_id: str
    roles: frozenset[str]


def entra_jwks_url(tenant_id: str) -> str:
    return f"{ENTRA_AUTHORITY}/{_tenant(tenant_id)}/discovery/v2.0/keys"


def entra_issuers(tenant_id: str) -> tuple[str, str]:
    """The tenant's v1.0 and v2.0 issuers; a token's version follows the API's registration
    (`accessTokenAcceptedVersion`), not the endpoint the client used, so both are accepted."""
    tid = _tenant(tenant_id)
    return f"https://sts.windows.net/{tid}/", f"{ENTRA_AUTHORITY}/{tid}/v2.0"


class EntraValidator:
    """Validates Entra ID access tokens for one tenant.

    `audiences` are the gateway app registration's identifiers as they appear in `aud`: its client
    id (always the v2.0 form) and its application ID URI such as ``api://tollgate`` (v1.0 tokens
    requested for that URI). `app_only` (the default) refuses delegated tokens (those carrying
    `scp`, or `idtyp` = "user"): callers are apps with their own identity, and a user token
    obtained through some app must not count as that app calling.
    """

    def __init__(
        self,
        tenant_id: str,
        audiences: Iterable[str],
        jwks: JwksCache,
        *,
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
        app_only: bool = True,
    ) -> None:
        self.tenant_id = _tenant(tenant_id)
        self.audiences = tuple(dict.fromkeys(a for a in audiences if a))
        if not self.audiences:
            raise ConfigError("at least one accepted audience is required")
        self.v1_issuer, self.v2_issuer = entra_issuers(self.tenant_id)
        self._jwks = jwks
        self._leeway = leeway_seconds
        self._app_only = app_only

    async def aclose(self) -> None:
        await self._jwks.aclose()

    async def validate(self, token: str) -> Claims:
        """The caller's claims, or TokenRejected. JwksUnavailable (from the key cache) means the
        keys could not be fetched at all: answer 503, not 401."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenRejected("malformed token")
        import jwt
        from jwt import exceptions as jwt_errors

        try:
            header = jwt.get_unverified_header(token)
        except jwt_errors.PyJWTError:
            raise TokenRejected("malformed token") from None
        # Decided before any key lookup: `none`, HS* (a public key used as an HMAC secret) and
        # everything else never reach signature verification or cause a JWKS fetch.
        if header.get("alg") != "RS256":
            raise TokenRejected("unsupported algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("missing key id")
        key = await self._jwks.get_key(kid)
        if key is None:
            raise TokenRejected("unknown signing key")
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=list(self.audiences),
                issuer=(self.v1_issuer, self.v2_issuer),
                leeway=self._leeway,
                # iat is checked below, so "issued in the future" reads apart from nbf.
                options={"require": _REQUIRED_CLAIMS, "verify_iat": False},
            )
        except jwt_errors.MissingRequiredClaimError as exc:
            raise TokenRejected(f"missing claim {exc.claim}") from None
        except jwt_errors.PyJWTError as exc:
            # `from None`: PyJWT's error and its message stay out of logs and tracebacks.
            raise TokenRejected(_reason(exc)) from None
        return self._claims(payload)

    def _claims(self, payload: dict[str, Any]) -> Claims:
        iat, nbf, exp = payload["iat"], payload["nbf"], payload["exp"]
        if not all(_is_number(t) for t in (iat, nbf, exp)) or iat > exp:
            raise TokenRejected("malformed token")
        if iat > time.time() + self._leeway:
            raise TokenRejected("issued in the future")
        if payload["tid"] != self.tenant_id:
            raise TokenRejected("wrong tenant")
        # The issuer (already one of ours) says which version's claim names the calling app.
        app_claim = "azp" if payload["iss"] == self.v2_issuer else "appid"
        app_id, object_id = payload.get(app_claim), payload["oid"]
        if not isinstance(app_id, str) or not app_id:
            raise TokenRejected(f"missing claim {app_claim}")
        if not isinstance(object_id, str) or not object_id:
            raise TokenRejected("missing claim oid")
        if self._app_only and ("scp" in payload or payload.get("idtyp") == "user"):
            raise TokenRejected("delegated token")
        roles = payload.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise TokenRejected("malformed roles")
        return Claims(app_id.lower(), object_id, self.tenant_id, frozenset(roles))


class EntraMapping(NamedTuple):
    """A system's `entra` registry entry: `{"app_ids": [...], "roles": [...]}`."""

    system_id: str
    app_ids: Collection[str]
    roles: Collection[str]


def system_for(
    claims: Claims, mappings: Iterable[tuple[str, Collection[str], Collection[str]]]
) -> str | None:
    """The one system whose app ids contain the token's app id or whose roles meet its roles.

    More than one matching system is ambiguous and yields None (refuse the call): picking one would
    let a registry overlap, such as a role shared by two systems, route a caller to whichever came
    first. No match is also None. App ids compare case-insensitively (GUIDs); roles exactly.
    Only the token's claims take part, so a caller can never choose its system.
    """
    app_id = claims.app_id.lower()
    matched: set[str] = set()
    for system_id, app_ids, roles in mappings:
        if app_id in {a.lower() for a in _values(app_ids)} or not claims.roles.isdisjoint(
            _values(roles)
        ):
            matched.add(system_id)
    return next(iter(matched)) if len(matched) == 1 else None


def _values(values: Collection[str]) -> frozenset[str]:
    # A bare string would match substrings / single characters: refuse it outright.
    if isinstance(values, str):
        raise TypeError("app_ids and roles must be collections of strings, not a string")
    return frozenset(values)


def _tenant(tenant_id: str) -> str:
    """The tenant id as Entra ID writes it in `tid` and `iss`: a lowercase GUID."""
    try:
        return str(uuid.UUID(tenant_id))
    except (ValueError, TypeError, AttributeError):
        raise ConfigError("the Entra tenant id must be a GUID") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reason(exc: jwt_errors.PyJWTError) -> str:
    from jwt import exceptions as jwt_errors

    # Most specific first (InvalidSignatureError is a DecodeError).
    reasons: tuple[tuple[type[jwt_errors.PyJWTError], str], ...] = (
        (jwt_errors.InvalidSignatureError, "bad signature"),
        (jwt_errors.ExpiredSignatureError, "token expired"),
        (jwt_errors.ImmatureSignatureError, "token not yet valid"),
        (jwt_errors.InvalidAudienceError, "wrong audience"),
        (jwt_errors.InvalidIssuerError, "wrong issuer"),
        (jwt_errors.InvalidAlgorithmError, "unsupported algorithm"),
        (jwt_errors.DecodeError, "malformed token"),
    )
    for error_type, reason in reasons:
        if isinstance(exc, error_type):
            return reason
    return "invalid token"
